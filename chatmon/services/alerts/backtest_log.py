"""The request log as the backtest reads it: per-minute counts, cost, latency bins,
``circuit_open`` refusals and fallbacks; when chatmon started watching; the silences.

Grouped scans of the ``started_at`` index, read once per replay
(:func:`chatmon.services.alerts.backtest.replay` slides its windows over the minutes).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from chatmon.models import AlertRuleState, AlertSilence, LLMRequest
from chatmon.services.alerts.inputs import CIRCUIT_OPEN
from chatmon.services.sql_time import bucket_of, to_utc
from chatmon.services.stats import Histogram, check_window

MINUTE = 60


@dataclass
class Minute:
    """One minute of the request log."""

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)  # (status, category)
    cost_usd: float = 0.0
    latency: Histogram = field(default_factory=dict)
    refusing: frozenset[str] = frozenset()  # models refused with circuit_open
    fallbacks: Counter[str] = field(default_factory=Counter)  # fallback model -> requests

    @property
    def requests(self) -> int:
        return sum(self.counts.values())


def read_minutes(*, session: Session, start: datetime, end: datetime) -> dict[int, Minute]:
    """The log of ``[start, end)`` per epoch minute, in grouped scans of the
    ``started_at`` index (totals, latency bins, ``circuit_open`` refusals, fallbacks)."""
    start, end = check_window(start, end)
    r = LLMRequest
    minute = bucket_of(r.started_at, MINUTE).label("minute")
    in_window = (
        col(r.started_at) >= start,
        col(r.started_at) < end,
        col(r.synthetic).is_(False),  # the probe has its own rule, as live
    )
    category = func.coalesce(r.error_category, "")
    minutes: dict[int, Minute] = {}

    def at(index: int) -> Minute:
        found = minutes.get(index)
        if found is None:
            found = minutes[index] = Minute()
        return found

    totals = (
        select(minute, col(r.status), category, func.count(), func.sum(r.cost_usd))
        .where(*in_window)
        .group_by(minute, col(r.status), category)
    )
    for index, status, cat, count, cost in _rows(session, totals):
        one = at(int(index))
        one.counts[(status, cat or "")] += int(count)
        one.cost_usd += float(cost or 0.0)
    bins = (
        select(minute, col(r.latency_bin), func.count())
        .where(*in_window, col(r.latency_bin).is_not(None))
        .group_by(minute, col(r.latency_bin))
    )
    for index, bin_index, count in _rows(session, bins):
        hist = at(int(index)).latency
        hist[int(bin_index)] = hist.get(int(bin_index), 0) + int(count)
    refused = (
        select(minute, col(r.model))
        .where(*in_window, col(r.error_category) == CIRCUIT_OPEN)
        .group_by(minute, col(r.model))
    )
    for index, model in _rows(session, refused):
        one = at(int(index))
        one.refusing = one.refusing | {model}
    fallbacks = (
        select(minute, col(r.model), func.count())
        .where(*in_window, col(r.fallback).is_(True))
        .group_by(minute, col(r.model))
    )
    for index, model, count in _rows(session, fallbacks):
        at(int(index)).fallbacks[str(model)] += int(count)
    return minutes


def _rows(session: Session, query: Any) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in session.execute(query)]


def watching_since(*, session: Session, start: datetime) -> datetime:
    """When "no traffic" starts counting in the replay: its start, or later if chatmon was
    not watching yet (the first alert check, else the first request, as the live rule)."""
    first = [
        session.execute(select(func.min(AlertRuleState.created_at))).scalar_one_or_none(),
        session.execute(
            select(func.min(LLMRequest.started_at)).where(col(LLMRequest.synthetic).is_(False))
        ).scalar_one_or_none(),
    ]
    known = [to_utc(moment) for moment in first if moment is not None]
    return max(start, min(known)) if known else start


def read_silences(*, session: Session, start: datetime, end: datetime) -> list[AlertSilence]:
    """Silences in force at some moment of ``[start, end)``."""
    rows = session.execute(
        select(AlertSilence).where(
            col(AlertSilence.created_at) < end, col(AlertSilence.until) > start
        )
    ).scalars()
    return list(rows)


def silenced_at(silences: Iterable[AlertSilence], rule: str, now: datetime) -> bool:
    """A silence of ``silences`` holds ``rule`` back at ``now``."""
    for silence in silences:
        if silence.rule != rule or not to_utc(silence.created_at) <= now < to_utc(silence.until):
            continue
        if silence.cleared_at is None or now < to_utc(silence.cleared_at):
            return True
    return False
