"""A window's implicit signals, counted: for the dashboard, ``/api/stats`` and the
``dissatisfaction`` alert rule.

The per-signal counts are not in the hourly rollups: flagged rows are a small share of
all requests, and a partial index holds only them, so a window's counts read just the
flagged rows of the window.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, literal, select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from chatmon.models import LLMRequest
from chatmon.services.implicit_signals import SIGNALS, bits
from chatmon.services.sql_time import to_utc


def any_signal() -> ColumnElement[bool]:
    """The request carries any signal."""
    # Spelled exactly like the partial index's predicate (a literal, not a bound
    # parameter), so SQLite's planner can use it.
    return col(LLMRequest.implicit_flags) != literal(0, literal_execute=True)


@dataclass(frozen=True)
class FlagCounts:
    """A window's implicit signals: requests carrying each, and carrying any."""

    stopped: int = 0
    rephrased: int = 0
    regenerated: int = 0
    abandoned_after_error: int = 0
    flagged: int = 0  # requests with at least one signal (one request may carry several)

    def by_signal(self) -> dict[str, int]:
        """``{signal: requests}`` in ``SIGNALS`` order."""
        return {name: getattr(self, name) for name in SIGNALS}


def flag_counts(
    *, session: Session, start: datetime, end: datetime, model: str | None = None
) -> FlagCounts:
    """How many real requests that started in ``[start, end)`` carry each signal."""
    r = LLMRequest
    query = (
        select(col(r.implicit_flags), func.count())
        .where(any_signal())
        .where(col(r.started_at) >= to_utc(start), col(r.started_at) < to_utc(end))
        .where(col(r.synthetic).is_(False))
        .group_by(col(r.implicit_flags))
    )
    if model is not None:
        query = query.where(col(r.model) == model)
    per_signal: Counter[str] = Counter()
    flagged = 0
    for flags, number in session.execute(query):
        flagged += number
        for name in bits(flags):
            per_signal[name] += number
    return FlagCounts(**{name: per_signal[name] for name in SIGNALS}, flagged=flagged)


def unrated_flags_by_version(
    *, session: Session, start: datetime, end: datetime
) -> tuple[Counter[str], dict[str, Counter[str]]]:
    """Per prompt version, the real requests of ``[start, end)`` that carry a signal and
    were not rated (the ``dissatisfaction`` rule weighs them), and each signal's count."""
    r = LLMRequest
    query = (
        select(col(r.prompt_version), col(r.implicit_flags), func.count())
        .where(any_signal())
        .where(col(r.started_at) >= to_utc(start), col(r.started_at) < to_utc(end))
        .where(col(r.synthetic).is_(False), col(r.feedback).is_(None))
        .group_by(col(r.prompt_version), col(r.implicit_flags))
    )
    flagged: Counter[str] = Counter()
    signals: dict[str, Counter[str]] = {}
    for version, flags, number in session.execute(query):
        flagged[version] += number
        named = signals.setdefault(version, Counter())
        for name in bits(flags):
            named[name] += number
    return flagged, signals
