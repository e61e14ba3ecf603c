"""The backtest as text: the per-rule table, then every episode (``alerts backtest``)."""

from __future__ import annotations

from datetime import datetime

from chatmon.services.alerts.backtest import Backtest
from chatmon.services.alerts.messages import format_threshold, format_value
from chatmon.services.errors import format_duration


def _time(moment: datetime | None) -> str:
    return "still firing" if moment is None else moment.strftime("%Y-%m-%d %H:%M")


def format_backtest(
    result: Backtest,
    *,
    baseline: Backtest | None = None,
    routes: dict[str, list[str]] | None = None,
) -> str:
    """The per-rule table, then every episode; with ``baseline`` (the current settings,
    when proposing others) each rule's messages under both; with ``routes`` (rule ->
    the channels ``ALERT_ROUTES`` sends it to) where the messages would have gone."""
    span = format_duration((result.end - result.start).total_seconds())
    lines = [
        f"backtest {result.start:%Y-%m-%d %H:%M} - {result.end:%Y-%m-%d %H:%M} UTC ({span}): "
        f"{result.requests} requests, {result.checks} checks (one a minute)",
        "",
    ]
    header = ["rule", "threshold", "fired", "firing for", "messages", "silenced"]
    if baseline is not None:
        header.append("messages now")
    if routes is not None:
        header.append("to")
    rows = []
    for replay_ in result.rules:
        if replay_.not_replayed:
            cells = [replay_.rule.value, "-", "not replayed", "", "", ""]
        elif replay_.off:
            cells = [replay_.rule.value, "off", "", "", "", ""]
        else:
            cells = [
                replay_.rule.value,
                format_threshold(replay_.rule, replay_.threshold),
                f"{len(replay_.episodes)}×",
                format_duration(replay_.firing_time(result.end).total_seconds())
                if replay_.episodes
                else "",
                str(replay_.messages),
                str(replay_.silenced),
            ]
        if baseline is not None:
            cells.append("" if replay_.not_replayed else str(baseline.rule(replay_.rule).messages))
        if routes is not None:
            cells.append(", ".join(routes.get(replay_.rule.value, [])) or "no channel")
        rows.append(cells)
    lines += _table(header, rows)
    episodes = sorted(
        (e for r in result.rules for e in r.episodes), key=lambda e: (e.fired_at, e.rule.value)
    )
    lines.append("")
    if not episodes:
        lines.append("nothing would have fired")
    else:
        lines += _table(
            ["rule", "fired", "resolved", "lasted", "peak", "messages", "note"],
            [
                [
                    e.rule.value,
                    _time(e.fired_at),
                    _time(e.resolved_at),
                    format_duration(e.lasted(result.end).total_seconds()),
                    format_value(e.rule, e.peak),
                    str(e.messages),
                    ("within the cooldown: nobody paged" if e.suppressed else "")
                    + (f"{e.silenced} held by a silence" if e.silenced else ""),
                ]
                for e in episodes
            ],
        )
    skipped = [f"{r.rule.value} ({r.not_replayed})" for r in result.rules if r.not_replayed]
    lines += ["", "not replayed: " + "; ".join(skipped)] if skipped else []
    return "\n".join(lines)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(row) for row in rows)]
