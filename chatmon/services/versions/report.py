"""The versions report: each prompt or model change of a window judged over comparable
windows, and the prompt versions in use (see :mod:`chatmon.services.versions`)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlmodel import Session, col, select

from chatmon.models import PromptVersion
from chatmon.services import prompt_versions
from chatmon.services.alerts import changes as change_events
from chatmon.services.sql_time import to_utc
from chatmon.services.versions.sides import figures_by_version, side_figures
from chatmon.services.versions.statistics import (
    METRICS,
    MIN_REQUESTS,
    Comparison,
    compare,
)
from chatmon.services.versions.tally import Side, iso

MAX_CHANGES = 20
MAX_VERSIONS = 20
COMPARED_KINDS = ("prompt", "model")
BOUNDARY_KINDS = ("prompt", "model", "version")  # what else would mix into a side


@dataclass(frozen=True)
class Verdict:
    """``kind``: worse | better | mixed | no clear change | not enough data; ``text``:
    the sentence the card shows."""

    kind: str
    text: str


def _listed(items: Sequence[Comparison]) -> str:
    return ", ".join(item.moved for item in items)


def _overlap_note(count: int) -> str:
    return "interval does not overlap" if count == 1 else "intervals do not overlap"


def verdict(before: Side, after: Side, comparisons: Sequence[Comparison]) -> Verdict:
    """The plain verdict on a change from its sides and compared figures."""
    if before.requests < MIN_REQUESTS or after.requests < MIN_REQUESTS:
        return Verdict(
            "not enough data",
            f"not enough data: {before.requests} requests before, {after.requests} after"
            f" (needs {MIN_REQUESTS} on each side)",
        )
    worse = [c for c in comparisons if c.outcome == "worse"]
    better = [c for c in comparisons if c.outcome == "better"]
    if worse and better:
        return Verdict(
            "mixed",
            f"mixed: worse {_listed(worse)}; better {_listed(better)};"
            f" {_overlap_note(len(worse) + len(better))}",
        )
    if worse:
        return Verdict("worse", f"worse: {_listed(worse)}, {_overlap_note(len(worse))}")
    if better:
        return Verdict("better", f"better: {_listed(better)}, {_overlap_note(len(better))}")
    return Verdict("no clear change", "no clear change: every interval overlaps")


def judge(before: Side, after: Side) -> tuple[list[Comparison], Verdict]:
    """Every figure compared, and the verdict."""
    comparisons = [
        compare(metric, before.estimate(metric.key), after.estimate(metric.key))
        for metric in METRICS
    ]
    return comparisons, verdict(before, after, comparisons)


# --------------------------------------------------------------------------- changes


@dataclass(frozen=True)
class Change:
    """One change of prompt version or model, with both sides and the verdict."""

    kind: str  # prompt | model
    old: str
    new: str
    at: datetime
    before: Side
    after: Side
    comparisons: list[Comparison]
    verdict: Verdict
    old_text: str | None = None  # a prompt change: the versions' texts, when kept
    new_text: str | None = None

    @property
    def label(self) -> str:
        what = "system prompt" if self.kind == "prompt" else "model"
        return f"{what} {self.old} → {self.new}"

    def to_json(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "old": self.old,
            "new": self.new,
            "at": iso(self.at),
            "label": self.label,
            "before": self.before.to_json(),
            "after": self.after.to_json(),
            "comparisons": [c.to_json() for c in self.comparisons],
            "verdict": self.verdict.kind,
            "summary": self.verdict.text,
            "old_text": self.old_text,
            "new_text": self.new_text,
        }


def comparable_windows(
    *,
    at: datetime,
    span: timedelta,
    now: datetime,
    previous: datetime | None = None,
    following: datetime | None = None,
) -> tuple[datetime, datetime, datetime]:
    """``(before_start, at, after_end)``: two sides of equal length around ``at``, each
    at most ``span``, neither past the neighbouring changes nor past ``now``."""
    at, now = to_utc(at), to_utc(now)
    before_start = at - span if previous is None else max(at - span, to_utc(previous))
    after_end = min(at + span, now) if following is None else min(at + span, now, to_utc(following))
    length = max(timedelta(0), min(at - before_start, after_end - at))
    return at - length, at, at + length


def _prompt_text(session: Session, prefix: str) -> str | None:
    row = prompt_versions.by_prefix(session=session, prefix=prefix)
    return None if row is None else row.text


def compare_changes(
    *,
    session: Session,
    start: datetime,
    end: datetime,
    span: timedelta | None = None,
    use_rollups: bool = True,
) -> list[Change]:
    """Every prompt or model change of ``[start, end)``, newest first, each judged over
    comparable windows of at most ``span`` (default: the window's length) a side."""
    start, end = to_utc(start), to_utc(end)
    span = span or (end - start)
    # neighbours may lie before the window: look one span further back
    events = [
        event
        for event in change_events.between(
            session=session, start=start - span, end=end, limit=4 * MAX_CHANGES
        )
        if event.kind in BOUNDARY_KINDS
    ]
    found: list[Change] = []
    for index, event in enumerate(events):
        at = to_utc(event.at)
        if event.kind not in COMPARED_KINDS or at < start or event.old is None:
            continue
        previous = next((e.at for e in reversed(events[:index]) if to_utc(e.at) < at), None)
        following = next((e.at for e in events[index + 1 :] if to_utc(e.at) > at), None)
        before_start, middle, after_end = comparable_windows(
            at=at, span=span, now=end, previous=previous, following=following
        )
        is_prompt = event.kind == "prompt"
        before = side_figures(
            session=session,
            start=before_start,
            end=middle,
            prompt_prefix=event.old if is_prompt else None,
            use_rollups=use_rollups,
        )
        after = side_figures(
            session=session,
            start=middle,
            end=after_end,
            prompt_prefix=event.new if is_prompt else None,
            use_rollups=use_rollups,
        )
        comparisons, judged = judge(before, after)
        found.append(
            Change(
                kind=event.kind,
                old=event.old,
                new=event.new,
                at=at,
                before=before,
                after=after,
                comparisons=comparisons,
                verdict=judged,
                old_text=_prompt_text(session, event.old) if is_prompt else None,
                new_text=_prompt_text(session, event.new) if is_prompt else None,
            )
        )
    return list(reversed(found))[:MAX_CHANGES]


# --------------------------------------------------------------------------- versions


@dataclass(frozen=True)
class VersionRow:
    """One prompt version: when it was first and last seen, its text (None when the
    version predates the ``prompt_version`` table), and its figures over the window."""

    version: str
    first_seen: datetime | None
    last_seen: datetime | None
    text: str | None
    figures: Side

    def to_json(self) -> dict[str, Any]:
        return {
            "version": self.version,
            "first_seen": iso(self.first_seen),
            "last_seen": iso(self.last_seen),
            "text": self.text,
            **self.figures.to_json(),
        }


def version_rows(
    *, session: Session, start: datetime, end: datetime, use_rollups: bool = True
) -> list[VersionRow]:
    """The prompt versions in use in ``[start, end)``, the latest used first: every kept
    version last seen in the window, and every version the window's requests name."""
    start, end = to_utc(start), to_utc(end)
    used = figures_by_version(session=session, start=start, end=end, use_rollups=use_rollups)
    kept = {
        row.hash: row
        for row in session.exec(
            select(PromptVersion)
            .where(col(PromptVersion.last_seen) >= start, col(PromptVersion.first_seen) < end)
            .order_by(col(PromptVersion.last_seen).desc())
            .limit(MAX_VERSIONS)
        ).all()
    }
    seen = {version: (first, last) for version, (_, first, last) in used.items()}
    for version in set(seen) - set(kept):
        row = session.get(PromptVersion, version)
        if row is not None:
            kept[version] = row
    names = set(seen) | set(kept)

    def last_of(version: str) -> datetime:
        row = kept.get(version)
        if row is not None:
            return to_utc(row.last_seen)
        moment = seen[version][1]
        return moment if moment is not None else start

    rows: list[VersionRow] = []
    for version in sorted(names, key=last_of, reverse=True)[:MAX_VERSIONS]:
        row = kept.get(version)
        first, last = seen.get(version, (None, None))
        rows.append(
            VersionRow(
                version=version,
                first_seen=to_utc(row.first_seen) if row is not None else first,
                last_seen=to_utc(row.last_seen) if row is not None else last,
                text=None if row is None else row.text,
                figures=used[version][0] if version in used else Side(start=start, end=end),
            )
        )
    return rows


@dataclass(frozen=True)
class VersionsReport:
    """What ``GET /api/versions`` returns and the monitor's card shows."""

    start: datetime
    end: datetime
    versions: list[VersionRow] = field(default_factory=list)
    changes: list[Change] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "start": iso(self.start),
            "end": iso(self.end),
            "min_requests": MIN_REQUESTS,
            "versions": [row.to_json() for row in self.versions],
            "changes": [change.to_json() for change in self.changes],
        }


def report(
    *, session: Session, start: datetime, end: datetime, use_rollups: bool = True
) -> VersionsReport:
    """The versions of the window and every change in it, judged (``use_rollups=False``:
    from every request of the window, the reference the rollups are checked against)."""
    return VersionsReport(
        start=to_utc(start),
        end=to_utc(end),
        versions=version_rows(session=session, start=start, end=end, use_rollups=use_rollups),
        changes=compare_changes(session=session, start=start, end=end, use_rollups=use_rollups),
    )
