"""The monitor's "Top spenders" panel, shaped for display (plain Python, runs in a thread).

Keys of "user" and "conversation" are long opaque ids (a user key is a keyed hash):
the panel shows their first characters, and the full key travels only as the value
the drill-down sends back.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlmodel import Session

from chatmon.services import usage

TOP_N = 10
SHORT_KEY = 12
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


def short(key: str, by: str) -> str:
    """What the panel shows of a key: model names whole, long ids shortened."""
    if not key:
        return "(none)"
    if by in ("model", "prompt_version") or len(key) <= SHORT_KEY + 1:
        return key
    return key[:SHORT_KEY] + "…"


def _usd(value: float) -> str:
    return f"${value:,.2f}" if value >= 1 or value == 0 else f"${value:.4f}"


def spenders(*, session: Session, start: datetime, end: datetime, by: str) -> list[SpenderRow]:
    """The window's top ``TOP_N`` keys of ``by``, most expensive first."""
    rows = usage.top(session=session, start=start, end=end, by=by, limit=TOP_N)
    return [
        SpenderRow(
            key=row.key,
            label=short(row.key, by),
            requests=f"{row.requests:,}",
            errors=f"{row.errors:,}",
            cost=_usd(row.cost_usd),
            unpriced=f"+ {row.unpriced_requests:,} unpriced" if row.unpriced_requests else "",
            feedback=f"{row.feedback_up:,} / {row.feedback_down:,}",
        )
        for row in rows
    ]
