"""The monitor's "Did the change help?" card as display rows (plain strings, no Reflex).

Built from :func:`chatmon.services.versions.report`; each change becomes a
:class:`ChangeCard` (its verdict sentence and one :class:`FigureRow` per figure: before
and after with their 95 % intervals), each prompt version a :class:`VersionLine`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sqlmodel import Session

from chatmon.services import versions as version_report
from chatmon.services.sql_time import to_utc
from chatmon.services.versions import Change, Estimate, Metric, Side

PREVIEW_CHARS = 160
CHOICES = ("24h", "7d")
DEFAULT = "7d"


@dataclass
class FigureRow:
    """``satisfaction | 81 % (77–85 %) | 72 % (67–76 %) | worse``."""

    label: str = ""
    before: str = ""
    after: str = ""
    outcome: str = ""  # better | worse | same | unknown


@dataclass
class ChangeCard:
    """One change: what, when, the verdict and the figures."""

    key: str = ""
    label: str = ""
    at: str = ""
    verdict: str = ""  # worse | better | mixed | no clear change | not enough data
    summary: str = ""
    sides: str = ""
    new_text: str = ""  # a prompt change: the new prompt's first characters
    figures: list[FigureRow] = field(default_factory=list)


@dataclass
class VersionLine:
    """One prompt version over the window."""

    version: str = ""
    first_seen: str = ""
    last_seen: str = ""
    requests: str = ""
    satisfaction: str = ""
    error_rate: str = ""
    latency_p95: str = ""
    preview: str = ""


@dataclass
class VersionsCard:
    """Everything the card shows."""

    changes: list[ChangeCard] = field(default_factory=list)
    versions: list[VersionLine] = field(default_factory=list)


def _moment(moment: datetime | None) -> str:
    return "" if moment is None else to_utc(moment).strftime("%Y-%m-%d %H:%M UTC")


def _duration(seconds: float) -> str:
    minutes = int(seconds // 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 48:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{hours // 24} d {hours % 24} h"


def shown(metric: Metric, estimate: Estimate) -> str:
    """``81 % (77–85 %)``; ``–`` when there is nothing to show."""
    if estimate.value is None:
        return "not recorded" if metric.key == "implicit_flag_rate" else "–"
    text = metric.show(estimate.value)
    if estimate.low is None or estimate.high is None:
        return text
    low, high = metric.show(estimate.low), metric.show(estimate.high)
    for unit in (" %", " s"):  # 77–85 %, not 77 %–85 %
        if low.endswith(unit) and high.endswith(unit):
            low = low.removesuffix(unit)
    return f"{text} ({low}–{high})"


def _preview(text: str | None) -> str:
    if not text:
        return ""
    flat = " ".join(text.split())
    return flat if len(flat) <= PREVIEW_CHARS else flat[: PREVIEW_CHARS - 1] + "…"


def _sides(before: Side, after: Side) -> str:
    length = (after.end - after.start).total_seconds()
    if length <= 0:
        return "no comparable window yet"
    return (
        f"{_duration(length)} each side: {before.requests:,} requests before,"
        f" {after.requests:,} after"
    )


def change_card(index: int, change: Change) -> ChangeCard:
    """One change as the card shows it."""
    return ChangeCard(
        key=str(index),
        label=change.label,
        at=_moment(change.at),
        verdict=change.verdict.kind,
        summary=change.verdict.text,
        sides=_sides(change.before, change.after),
        new_text=_preview(change.new_text),
        figures=[
            FigureRow(
                label=comparison.metric.label,
                before=shown(comparison.metric, comparison.before),
                after=shown(comparison.metric, comparison.after),
                outcome=comparison.outcome,
            )
            for comparison in change.comparisons
        ],
    )


def _metric(key: str) -> Metric:
    return next(metric for metric in version_report.METRICS if metric.key == key)


def build(found: version_report.VersionsReport) -> VersionsCard:
    """The card of a report."""
    return VersionsCard(
        changes=[change_card(i, change) for i, change in enumerate(found.changes)],
        versions=[
            VersionLine(
                version=row.version or "(none)",
                first_seen=_moment(row.first_seen),
                last_seen=_moment(row.last_seen),
                requests=f"{row.figures.requests:,}",
                satisfaction=shown(_metric("satisfaction"), row.figures.satisfaction),
                error_rate=shown(_metric("error_rate"), row.figures.error_rate),
                latency_p95=shown(_metric("latency_p95"), row.figures.latency_p95),
                preview=_preview(row.text),
            )
            for row in found.versions
        ],
    )


def load(session: Session, *, start: datetime, end: datetime) -> VersionsCard:
    """Read and build the card for ``[start, end)``."""
    return build(version_report.report(session=session, start=start, end=end))
