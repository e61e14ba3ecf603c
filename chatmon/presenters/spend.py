"""The monitor's "Top spenders" panel and budget bars, shaped for display (plain
Python, runs in a thread).

Keys of "user" and "conversation" are long opaque ids (a user key is a keyed hash):
the panel shows their first characters (:func:`chatmon.services.usage_keys.short_key`),
and the full key travels only as the value the drill-down sends back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlmodel import Session

from chatmon.services import budget, usage
from chatmon.services.usage_keys import short_key

TOP_N = 10
USAGE_BY_CHOICES: tuple[str, ...] = tuple(usage.DIMENSIONS)
USAGE_BY_LABELS = {
    "model": "Model",
    "user": "User",
    "conversation": "Conversation",
    "prompt_version": "Prompt version",
}


@dataclass
class SpenderRow:
    """One line of the panel."""

    key: str = ""
    label: str = ""
    requests: str = "0"
    errors: str = "0"
    cost: str = "$0.00"
    unpriced: str = ""
    feedback: str = "0 / 0"


def _usd(value: float) -> str:
    return f"${value:,.2f}" if value >= 1 or value == 0 else f"${value:.4f}"


def spenders(*, session: Session, start: datetime, end: datetime, by: str) -> list[SpenderRow]:
    """The window's top ``TOP_N`` keys of ``by``, most expensive first."""
    rows = usage.top(session=session, start=start, end=end, by=by, limit=TOP_N)
    return [
        SpenderRow(
            key=row.key,
            label=short_key(row.key, by),
            requests=f"{row.requests:,}",
            errors=f"{row.errors:,}",
            cost=_usd(row.cost_usd),
            unpriced=f"+ {row.unpriced_requests:,} unpriced" if row.unpriced_requests else "",
            feedback=f"{row.feedback_up:,} / {row.feedback_down:,}",
        )
        for row in rows
    ]


@dataclass
class BudgetBar:
    """One budget period on the monitor: how full, where it is heading, what happens."""

    period: str = ""
    title: str = ""
    spent: str = ""
    percent: float = 0.0  # 0-100 for the bar (capped)
    color: str = "green"  # green | amber | red
    forecast: str = ""
    action: str = ""


_ACTION_TEXT = {
    "warn": "at 100 %: keep serving (warn)",
    "fallback": "at 100 %: answer with {model}",
    "refuse": "at 100 %: refuse new requests",
}


def budget_bars(*, session: Session, settings: Any, now: datetime) -> list[BudgetBar]:
    """The budget bars with their forecast (none when no budget is configured)."""
    config = budget.BudgetConfig.from_settings(settings)
    bars = []
    for status in budget.statuses(session=session, config=config, now=now):
        zone = config.zone
        resets = status.resets_at.astimezone(zone).strftime("%Y-%m-%d %H:%M") + f" {zone.key}"
        if status.forecast_usd is None:
            outlook = "not enough data to forecast yet"
        else:
            outlook = f"forecast {_usd(status.forecast_usd)} by the reset ({resets})"
        if status.reached_at is not None:
            at = status.reached_at.astimezone(zone).strftime("%H:%M")
            outlook += f"; the limit is reached at {at} {zone.key} at the current pace"
        if status.exceeded:
            outlook = f"limit reached; resets {resets}"
        bars.append(
            BudgetBar(
                period=status.period,
                title=f"{status.period.capitalize()} budget",
                spent=f"{_usd(status.spent_usd)} of {_usd(status.limit_usd)} "
                f"({status.percent:.0f} %)",
                percent=min(status.percent, 100.0),
                color="red" if status.exceeded else ("amber" if status.level else "green"),
                forecast=outlook,
                action=_ACTION_TEXT[config.action].format(model=config.fallback_model),
            )
        )
    return bars
