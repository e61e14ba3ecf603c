"""The write side of the usage rollups: ``llm_usage_hourly``, ``llm_usage_6h`` and
``llm_usage_daily`` kept in step with ``llm_request`` (called by ``request_log`` in the
recorder's transaction, so they never disagree). Every 6-hour block and every day row
is the sum of its hourly rows, every hourly row the sum of its requests; the read side
(``chatmon.services.usage``) relies on both.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from typing import Any

from sqlalchemy import bindparam, case, delete, func, insert, literal, select, update
from sqlmodel import Session, col

from chatmon.models import LLMRequest, LLMUsageDaily, LLMUsageHourly, LLMUsageSixHourly
from chatmon.observability.call_status import ERROR_STATUSES
from chatmon.services import usage_plan
from chatmon.services.sql_time import epoch_seconds, hour_of

DIMENSIONS: dict[str, str] = {  # ?by= value -> llm_request column
    "user": "session_id",
    "conversation": "conversation_id",
    "model": "model",
    "prompt_version": "prompt_version",
}
COUNTERS = (
    "requests",
    "errors",
    "tokens_input",
    "tokens_output",
    "cost_usd",
    "unpriced",
    "feedback_up",
    "feedback_down",
)
_KEY = ("dimension", "hour", "key")
_DAY_KEY = ("dimension", "day", "key")
_BLOCK_KEY = ("dimension", "block", "key")
RollupKey = tuple[str, int, str]  # (dimension, hour, key)
HOUR = 3600
HOURS_PER_DAY = 24
HOURS_PER_BLOCK = 6
# the coarser rollups: (model, primary key names, hours per period); each row is the
# sum of its hourly rows
_COARSE = (
    (LLMUsageSixHourly, _BLOCK_KEY, HOURS_PER_BLOCK),
    (LLMUsageDaily, _DAY_KEY, HOURS_PER_DAY),
)
TABLES: dict[int, tuple[Any, str]] = {  # plan period -> rollup, its period column
    usage_plan.HOUR: (LLMUsageHourly, "hour"),
    usage_plan.SIX_HOURS: (LLMUsageSixHourly, "block"),
    usage_plan.DAY: (LLMUsageDaily, "day"),
}


def deltas(rows: Iterable[dict[str, Any]]) -> dict[RollupKey, Counter[str]]:
    """Rollup increments of freshly inserted ``llm_request`` rows (column dicts)."""
    out: dict[RollupKey, Counter[str]] = defaultdict(Counter)
    for row in rows:
        hour = hour_of(row["started_at"])
        for dimension, column in DIMENSIONS.items():
            delta = out[(dimension, hour, (row[column] or "")[:200])]
            delta["requests"] += 1
            delta["errors"] += 1 if row["status"] in ERROR_STATUSES else 0
            delta["tokens_input"] += row["input_tokens"] or 0
            delta["tokens_output"] += row["output_tokens"] or 0
            delta["cost_usd"] += row["cost_usd"] or 0
            delta["unpriced"] += 0 if row["priced"] else 1
            delta["feedback_up"] += 1 if row["feedback"] == 1 else 0
            delta["feedback_down"] += 1 if row["feedback"] == -1 else 0
    return out


def feedback_deltas(row: LLMRequest, *, up: int, down: int) -> dict[RollupKey, Counter[str]]:
    """Increments for a rating change of one recorded request."""
    hour = hour_of(row.started_at)
    values = {d: str(getattr(row, c) or "")[:200] for d, c in DIMENSIONS.items()}
    return {(d, hour, k): Counter(feedback_up=up, feedback_down=down) for d, k in values.items()}


def add(session: Session, changes: dict[RollupKey, Counter[str]], upsert: Any) -> None:
    """Apply increments with ``upsert`` (``request_log._upsert``) to the hourly rows, their
    blocks and their days, in key order (concurrent writers then lock rollup rows in the
    same order: no deadlock)."""
    levels: list[tuple[Any, tuple[str, ...], dict[RollupKey, Counter[str]]]] = [
        (LLMUsageHourly, _KEY, changes)
    ]
    for coarse_model, coarse_names, hours in _COARSE:
        coarse: dict[RollupKey, Counter[str]] = defaultdict(Counter)
        for (dimension, hour, key), delta in changes.items():
            coarse[(dimension, hour // hours, key)].update(delta)
        levels.append((coarse_model, coarse_names, coarse))
    for model, names, rows in levels:
        params = [
            {**dict(zip(names, key, strict=True)), **{name: rows[key][name] for name in COUNTERS}}
            for key in sorted(rows)
        ]
        if params:
            session.connection().execute(upsert(session, model, names), params)


def prune(session: Session, *, before_hour: int) -> None:
    """Delete rollup hours before ``before_hour`` (the retention cutoff), and the blocks
    and days before its block and day; those two rows lose exactly the hours deleted
    from them (the DELETE returns them), so every block and day stays the sum of its
    hours."""
    h = LLMUsageHourly
    cutoff_day = before_hour // HOURS_PER_DAY
    session.execute(delete(h).where(col(h.hour) < cutoff_day * HOURS_PER_DAY))
    for model, names, hours in _COARSE:
        index = col(getattr(model, names[1]))
        session.execute(delete(model).where(index < before_hour // hours))
    deleted = session.execute(
        delete(h)
        .where(col(h.hour) >= cutoff_day * HOURS_PER_DAY, col(h.hour) < before_hour)
        .returning(
            col(h.dimension), col(h.hour), col(h.key), *(col(getattr(h, n)) for n in COUNTERS)
        )
    ).all()
    for model, names, hours in _COARSE:
        cutoff = before_hour // hours
        lost: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
        for dimension, hour, key, *values in deleted:
            if hour // hours == cutoff:  # the earlier blocks of the day are gone already
                lost[(dimension, key)].update(dict(zip(COUNTERS, values, strict=True)))
        _subtract(session, model, names[1], cutoff, lost)
        index = col(getattr(model, names[1]))
        session.execute(delete(model).where(index == cutoff, col(model.requests) <= 0))


def _subtract(
    session: Session,
    model: Any,
    index: str,
    value: int,
    lost: dict[tuple[str, str], Counter[str]],
) -> None:
    """Take ``lost`` away from the rows of period ``value`` of a coarse rollup."""
    table = model.__table__
    subtract = (
        update(table)
        .where(
            table.c.dimension == bindparam("p_dimension"),
            table.c[index] == value,
            table.c.key == bindparam("p_key"),
        )
        .values({n: table.c[n] - bindparam(f"p_{n}") for n in COUNTERS})
    )
    params = [  # in key order, as every writer locks rollup rows
        {
            "p_dimension": dimension,
            "p_key": key,
            **{f"p_{n}": lost[(dimension, key)][n] for n in COUNTERS},
        }
        for dimension, key in sorted(lost)
    ]
    if params:
        session.connection().execute(subtract, params)


def rebuild(session: Session) -> None:
    """Recompute the rollups from the rows, in SQL (the caller commits)."""
    for model, _column in TABLES.values():
        session.execute(delete(model))
    r = LLMRequest
    hour = (epoch_seconds(r.started_at) // HOUR).label("hour")
    for dimension, column in DIMENSIONS.items():
        key = func.coalesce(getattr(r, column), "")
        select_ = (
            select(literal(dimension), hour, key, *_sums(r))
            .where(col(r.synthetic).is_(False))  # the probe's requests: in no usage figure
            .group_by(hour, key)
        )
        session.execute(insert(LLMUsageHourly).from_select([*_KEY, *COUNTERS], select_))
    h = LLMUsageHourly
    for model, names, hours in _COARSE:
        period = col(h.hour) // hours
        sums = select(
            col(h.dimension), period, col(h.key), *(func.sum(getattr(h, n)) for n in COUNTERS)
        ).group_by(col(h.dimension), period, col(h.key))
        session.execute(insert(model).from_select([*names, *COUNTERS], sums))


def _sums(r: Any) -> list[Any]:
    def as_int(condition: Any) -> Any:
        return func.sum(case((condition, 1), else_=0))

    return [
        func.count(),
        as_int(col(r.status).in_(ERROR_STATUSES)),
        func.coalesce(func.sum(r.input_tokens), 0),
        func.coalesce(func.sum(r.output_tokens), 0),
        func.coalesce(func.sum(r.cost_usd), 0.0),
        as_int(col(r.priced).is_(False)),
        as_int(r.feedback == 1),
        as_int(r.feedback == -1),
    ]
