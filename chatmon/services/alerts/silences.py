"""Silences: "I know, I'm on it, stop telling me" for one rule, until a given time.

During planned work (a provider migration, a load test) a rule that fires is noise that
teaches people to ignore pages. A silence holds a rule's messages back for a chosen time:
the rule is still evaluated and its state still moves, and every message it would have
sent is recorded (marked with the silence: who, until when, why) with no delivery, so the
history shows what was held back, and when the silence ends nothing is replayed. A rule
still firing after its silence ends is reminded after the cooldown as usual.

Silences live in the database, so every worker and instance honours them at once.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import update
from sqlmodel import Session, col, select

from chatmon.models import AlertSilence

MAX_SILENCE = timedelta(days=30)  # a forgotten silence must end by itself
MAX_REASON = 200
_DURATION = re.compile(r"(\d{1,6})([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


@dataclass(frozen=True)
class Silence:
    """An active silence, as people are shown it."""

    rule: str
    until: datetime
    reason: str
    created_by: str

    def note(self) -> str:
        stamp = self.until.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
        return f"silenced until {stamp} by {self.created_by}: {self.reason}"


def parse_duration(text: str) -> timedelta:
    """``90s``, ``30m``, ``2h``, ``1d``, or sums such as ``1h30m``; at most 30 days.
    Raises ValueError saying what is accepted."""
    compact = text.strip().lower().replace(" ", "")
    parts = _DURATION.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"{text!r} is not a duration such as 30m, 2h or 1d")
    total = sum((timedelta(**{_UNITS[unit]: int(n)}) for n, unit in parts), timedelta())
    if total <= timedelta(0) or total > MAX_SILENCE:
        raise ValueError("a silence lasts more than 0 and at most 30 days")
    return total


def _aware(moment: datetime) -> datetime:
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def add_silence(
    *, session: Session, rule: str, duration: timedelta, reason: str, by: str, now: datetime
) -> Silence:
    """Silence ``rule`` from ``now`` for ``duration``. The caller commits."""
    reason = " ".join(reason.split())[:MAX_REASON]
    if not reason:
        raise ValueError("a silence needs a reason (what is going on, for whoever looks)")
    if duration <= timedelta(0) or duration > MAX_SILENCE:
        raise ValueError("a silence lasts more than 0 and at most 30 days")
    row = AlertSilence(
        rule=rule,
        until=_aware(now) + duration,
        reason=reason,
        created_by=(" ".join(by.split()) or "unknown")[:64],
        created_at=_aware(now),
    )
    session.add(row)
    return Silence(rule=row.rule, until=row.until, reason=row.reason, created_by=row.created_by)


def clear_silences(*, session: Session, rule: str, now: datetime) -> int:
    """End every active silence of ``rule`` now; how many there were. The caller commits."""
    rows: int = session.exec(
        update(AlertSilence)
        .where(
            col(AlertSilence.rule) == rule,
            col(AlertSilence.until) > _aware(now),
            col(AlertSilence.cleared_at).is_(None),
        )
        .values(cleared_at=_aware(now))
    ).rowcount
    return rows


def active_silences(*, session: Session, now: datetime) -> dict[str, Silence]:
    """The silence holding each silenced rule now (the one lasting longest)."""
    rows = session.exec(
        select(AlertSilence)
        .where(col(AlertSilence.until) > _aware(now), col(AlertSilence.cleared_at).is_(None))
        .order_by(col(AlertSilence.until))
    ).all()
    return {
        row.rule: Silence(
            rule=row.rule, until=_aware(row.until), reason=row.reason, created_by=row.created_by
        )
        for row in rows  # ordered by until: the longest one wins
    }
