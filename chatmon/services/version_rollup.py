"""The write side of the prompt-version rollups (``llm_version_hourly`` and
``llm_version_latency_hourly``), read by :mod:`chatmon.services.versions`.

Called in the same transaction as the change it follows, so the rollups never
disagree with ``llm_request``: by the request log when rows are inserted
(:func:`add_rows`) and rated (:func:`add_feedback`), and by the implicit signals when
a request gets its first flag (:func:`add_flagged`). Synthetic (probe) requests are
in neither table. Increments are applied in key order, so concurrent writers lock
rollup rows in the same order and cannot deadlock each other.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, delete, func, insert, select
from sqlmodel import Session, col

from chatmon.models import LLMRequest, LLMVersionHourly, LLMVersionLatencyHourly
from chatmon.observability.call_status import ERROR_STATUSES
from chatmon.services import sql_upsert
from chatmon.services.sql_time import epoch_seconds, hour_of

COUNTERS = (
    "requests",
    "errors",
    "feedback_up",
    "feedback_down",
    "flagged",
    "costed",
    "cost_usd",
    "cost_squares",
)
_KEY = ("hour", "prompt_version", "model")
_BIN_KEY = ("hour", "prompt_version", "model", "bin")
VersionKey = tuple[int, str, str]  # _KEY: epoch hour, prompt version, model
BinKey = tuple[int, str, str, int]  # _BIN_KEY


def key_of(*, started_at: datetime, prompt_version: str | None, model: str) -> VersionKey:
    """The rollup key of a request."""
    return (hour_of(started_at), (prompt_version or "")[:64], model[:200])


def _add(session: Session, changes: Mapping[VersionKey, Mapping[str, float]]) -> None:
    params = [
        {**dict(zip(_KEY, key, strict=True)), **{n: changes[key].get(n, 0) for n in COUNTERS}}
        for key in sorted(changes)
    ]
    if params:
        statement = sql_upsert.adding(session, LLMVersionHourly, _KEY)
        session.connection().execute(statement, params)


def add_rows(session: Session, rows: Iterable[Mapping[str, Any]]) -> None:
    """Add freshly inserted, non-synthetic ``llm_request`` rows (column dicts)."""
    counts: defaultdict[VersionKey, Counter[str]] = defaultdict(Counter)
    bins: Counter[BinKey] = Counter()
    for row in rows:
        key = key_of(
            started_at=row["started_at"], prompt_version=row["prompt_version"], model=row["model"]
        )
        delta = counts[key]
        delta["requests"] += 1
        delta["errors"] += 1 if row["status"] in ERROR_STATUSES else 0
        delta["feedback_up"] += 1 if row["feedback"] == 1 else 0
        delta["feedback_down"] += 1 if row["feedback"] == -1 else 0
        delta["flagged"] += 1 if row.get("implicit_flags") else 0
        cost = row["cost_usd"]
        if cost is not None and row["priced"]:
            delta["costed"] += 1
            delta["cost_usd"] += cost
            delta["cost_squares"] += cost * cost
        if row["latency_bin"] is not None:
            bins[(*key, row["latency_bin"])] += 1
    _add(session, counts)
    params = [{**dict(zip(_BIN_KEY, k, strict=True)), "count": bins[k]} for k in sorted(bins)]
    if params:
        statement = sql_upsert.adding(session, LLMVersionLatencyHourly, _BIN_KEY)
        session.connection().execute(statement, params)


def add_feedback(session: Session, row: LLMRequest, *, up: int, down: int) -> None:
    """A rating change of one recorded (non-synthetic) request."""
    if up or down:
        key = key_of(started_at=row.started_at, prompt_version=row.prompt_version, model=row.model)
        _add(session, {key: {"feedback_up": up, "feedback_down": down}})


def add_flagged(session: Session, keys: Iterable[VersionKey]) -> None:
    """Requests that just got their first implicit flag (one key per request)."""
    _add(session, {key: {"flagged": n} for key, n in Counter(keys).items()})


def prune(session: Session, *, before_hour: int) -> None:
    """Delete rollup hours before ``before_hour`` (the retention cutoff)."""
    for table in (LLMVersionHourly, LLMVersionLatencyHourly):
        session.execute(delete(table).where(col(table.hour) < before_hour))


def rebuild(session: Session) -> None:
    """Recompute both tables from the rows, in SQL (the caller commits)."""
    session.execute(delete(LLMVersionHourly))
    session.execute(delete(LLMVersionLatencyHourly))
    r = LLMRequest
    hour = (epoch_seconds(r.started_at) // 3600).label("hour")
    keys = (hour, col(r.prompt_version), col(r.model))
    real = col(r.synthetic).is_(False)

    def count_if(condition: Any) -> Any:
        return func.coalesce(func.sum(case((condition, 1), else_=0)), 0)

    known = and_(col(r.cost_usd).is_not(None), col(r.priced).is_(True))
    totals = (
        select(
            *keys,
            func.count(),
            count_if(col(r.status).in_(ERROR_STATUSES)),
            count_if(col(r.feedback) == 1),
            count_if(col(r.feedback) == -1),
            count_if(col(r.implicit_flags) != 0),
            count_if(known),
            func.coalesce(func.sum(case((known, r.cost_usd), else_=0.0)), 0.0),
            func.coalesce(
                func.sum(case((known, col(r.cost_usd) * col(r.cost_usd)), else_=0.0)), 0.0
            ),
        )
        .where(real)
        .group_by(*keys)
    )
    session.execute(insert(LLMVersionHourly).from_select([*_KEY, *COUNTERS], totals))
    bins = (
        select(*keys, col(r.latency_bin), func.count())
        .where(real, col(r.latency_bin).is_not(None))
        .group_by(*keys, col(r.latency_bin))
    )
    session.execute(insert(LLMVersionLatencyHourly).from_select([*_BIN_KEY, "count"], bins))
