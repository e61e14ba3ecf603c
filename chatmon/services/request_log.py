"""The write side of the request log: ``llm_request`` rows and their hourly rollups.

Every function takes an explicit session and leaves committing to the caller, so a
batch of rows and the rollup increments they cause land in one transaction: the
rollups can never disagree with the rows. Inserting is idempotent on
``correlation_id`` (a retried batch never records a request twice), and only rows
actually inserted are added to the rollups.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import case, delete, func, insert, literal, select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from chatmon.models import ALL_MODELS, LLMLatencyHourly, LLMRequest, LLMRequestHourly, table_of
from chatmon.observability.call_status import CallStatus
from chatmon.services import feedback, implicit_signals, sql_upsert, usage_rollups, version_rollup
from chatmon.services.events import LLMCall
from chatmon.services.histogram import bin_of
from chatmon.services.sql_time import epoch_seconds, hour_of, to_utc

# Requests chatmon refused itself never reached the provider: their latency says
# nothing about how fast the model is, so they stay out of the latency figures.
LOCAL_REFUSALS = frozenset({"circuit_open", "rate_limited_local", "budget_exceeded"})

HOURLY_COUNTERS = (
    "requests",
    "tokens_input",
    "tokens_output",
    "cost_usd",
    "unpriced",
    "retries",
    "feedback_up",
    "feedback_down",
)
_HOURLY_KEY = ("hour", "model", "status", "error_category")
_LATENCY_KEY = ("metric", "model", "hour", "bin")
HourKey = tuple[int, str, str, str]  # _HOURLY_KEY: epoch hour, model, status, error category
LatencyKey = tuple[str, str, int, int]  # _LATENCY_KEY: metric, model, epoch hour, bin

PriceKnown = Callable[[str], bool]


def counts_for_latency(*, status: str, error_category: str | None) -> bool:
    """Whether a request's total latency belongs in the latency percentiles.

    Cancelled requests (the user stopped them), interrupted ones (their worker died, so
    their duration is unknown) and requests refused locally are left out; successful
    and failed provider calls are in.
    """
    return (
        status not in (CallStatus.CANCELLED, CallStatus.INTERRUPTED)
        and (error_category or "") not in LOCAL_REFUSALS
    )


def is_priced(call: LLMCall, *, price_known: PriceKnown) -> bool:
    """Whether a call's cost is known (False: unpriced, counted apart, never as $0).

    A call with a cost is priced; one that reported tokens but got no cost is not; one
    without usage (it failed before any) is unpriced when its model has no price.
    """
    if call.cost_usd is not None:
        return True
    if call.input_tokens is not None or call.output_tokens is not None:
        return False
    return price_known(call.model)


def row_values(call: LLMCall, *, price_known: PriceKnown) -> dict[str, Any]:
    """The ``llm_request`` column values for one finished call.

    Cost: the call's own cost when it has one. Without one, the row is flagged
    ``priced=False`` when tokens were reported (the model has no known price) or when
    the model is not priced at all; a call that reported no usage keeps cost NULL.
    """
    priced = is_priced(call, price_known=price_known)
    measured = counts_for_latency(status=call.status, error_category=call.error_category)
    return {
        "correlation_id": call.correlation_id[:32],
        "session_id": call.session_id[:64],
        "conversation_id": (call.conversation_id or "")[:32],
        "model": call.model[:200],
        "provider": call.provider[:64] if call.provider else None,
        "started_at": to_utc(call.started_at),
        "ttft_seconds": call.first_token_seconds,
        "latency_seconds": call.total_seconds,
        "input_tokens": call.input_tokens,
        "output_tokens": call.output_tokens,
        "cost_usd": call.cost_usd,
        "priced": priced,
        "status": call.status[:16],
        "error_category": call.error_category,
        "retries": call.retries,
        "temperature": call.temperature,
        "prompt_version": call.prompt_version[:64],
        "feedback": None,
        "synthetic": call.synthetic,
        "fallback": call.fallback,
        "implicit_flags": implicit_signals.flags_on_insert(
            status=call.status, synthetic=call.synthetic
        ),
        "latency_bin": bin_of(call.total_seconds) if measured else None,
        "ttft_bin": bin_of(call.first_token_seconds)
        if call.first_token_seconds is not None
        else None,
    }


_dialect = sql_upsert.dialect
_upsert = sql_upsert.adding  # usage_rollups.add takes it as a parameter


def _insert_ignoring_duplicates(session: Session, rows: list[dict[str, Any]]) -> set[str]:
    """Insert the rows whose correlation id is new; return the ids actually inserted.

    Core statements on the session's connection: the ORM's bulk path costs several
    times more per row, and the writer thread shares the GIL with the event loop.
    """
    table = table_of(LLMRequest)
    statement = (
        _dialect(session)
        .insert(table)
        .on_conflict_do_nothing(index_elements=["correlation_id"])
        .returning(table.c.correlation_id)
    )
    result = session.connection().execute(statement, rows)
    return set(result.scalars().all())


def _hourly_deltas(rows: Iterable[dict[str, Any]]) -> dict[HourKey, defaultdict[str, float]]:
    deltas: defaultdict[HourKey, defaultdict[str, float]] = defaultdict(lambda: defaultdict(int))
    for row in rows:
        key = (hour_of(row["started_at"]), row["model"], row["status"], row["error_category"] or "")
        delta = deltas[key]
        delta["requests"] += 1
        delta["tokens_input"] += row["input_tokens"] or 0
        delta["tokens_output"] += row["output_tokens"] or 0
        delta["cost_usd"] += row["cost_usd"] or 0.0
        delta["unpriced"] += 0 if row["priced"] else 1
        delta["retries"] += row["retries"]
        delta["feedback_up"] += 1 if row["feedback"] == 1 else 0
        delta["feedback_down"] += 1 if row["feedback"] == -1 else 0
    return deltas


def _latency_deltas(rows: Iterable[dict[str, Any]]) -> Counter[LatencyKey]:
    deltas: Counter[LatencyKey] = Counter()
    for row in rows:
        hour = hour_of(row["started_at"])
        for metric in ("latency", "ttft"):
            bin_index = row[f"{metric}_bin"]
            if bin_index is not None:
                deltas[(metric, row["model"], hour, bin_index)] += 1
                deltas[(metric, ALL_MODELS, hour, bin_index)] += 1
    return deltas


def _add_hourly(session: Session, deltas: Mapping[HourKey, Mapping[str, float]]) -> None:
    # Sorted keys: concurrent writers (several workers on PostgreSQL) lock rollup rows
    # in the same order and cannot deadlock each other.
    params = [
        {
            **dict(zip(_HOURLY_KEY, key, strict=True)),
            **{name: deltas[key][name] for name in HOURLY_COUNTERS},
        }
        for key in sorted(deltas)
    ]
    if params:
        session.connection().execute(_upsert(session, LLMRequestHourly, _HOURLY_KEY), params)


def _add_latency(session: Session, deltas: Counter[LatencyKey]) -> None:
    params = [
        {**dict(zip(_LATENCY_KEY, key, strict=True)), "count": deltas[key]}
        for key in sorted(deltas)
    ]
    if params:
        session.connection().execute(_upsert(session, LLMLatencyHourly, _LATENCY_KEY), params)


def record_calls(*, session: Session, calls: Sequence[LLMCall], price_known: PriceKnown) -> int:
    """Insert one row per call (skipping correlation ids already recorded) and update
    the hourly rollups. Returns how many rows were inserted. The caller commits."""
    return len(insert_calls(session=session, calls=calls, price_known=price_known))


def insert_calls(
    *, session: Session, calls: Sequence[LLMCall], price_known: PriceKnown
) -> list[dict[str, Any]]:
    """:func:`record_calls`, returning the column values of the rows actually inserted
    (the recorder looks at them for implicit signals). The caller commits."""
    unique: dict[str, dict[str, Any]] = {}
    for call in calls:
        unique.setdefault(call.correlation_id, row_values(call, price_known=price_known))
    if not unique:
        return []
    inserted_ids = _insert_ignoring_duplicates(session, list(unique.values()))
    inserted = [row for cid, row in unique.items() if cid in inserted_ids]
    real = [row for row in inserted if not row["synthetic"]]  # probes: in no rollup
    _add_hourly(session, _hourly_deltas(real))
    _add_latency(session, _latency_deltas(real))
    usage_rollups.add(session, usage_rollups.deltas(real), _upsert)
    version_rollup.add_rows(session, real)
    return inserted


def record_feedback(
    *, session: Session, correlation_id: str, rating: int, reasons: tuple[str, ...] = ()
) -> bool:
    """Set (+1 / -1) or clear (0) a request's feedback, keeping the rollups in step.

    Returns False when no request has that correlation id (nothing is changed).
    """
    row = session.execute(
        select(LLMRequest).where(col(LLMRequest.correlation_id) == correlation_id)
    ).scalar_one_or_none()
    if row is None:
        return False
    new = rating if rating in (1, -1) else None
    row.feedback_reasons = feedback.encode_reasons(reasons) if new == -1 else None
    session.add(row)
    old = row.feedback
    if new == old:
        return True
    row.feedback = new
    session.add(row)
    if row.synthetic:  # in no rollup (nobody rates a probe, but the id could be guessed)
        return True
    key = (hour_of(row.started_at), row.model, row.status, row.error_category or "")
    delta = Counter(
        feedback_up=(new == 1) - (old == 1),
        feedback_down=(new == -1) - (old == -1),
    )
    _add_hourly(session, {key: delta})
    usage_rollups.add(
        session,
        usage_rollups.feedback_deltas(row, up=delta["feedback_up"], down=delta["feedback_down"]),
        _upsert,
    )
    version_rollup.add_feedback(session, row, up=delta["feedback_up"], down=delta["feedback_down"])
    return True


def prune_rows(*, session: Session, before: datetime, limit: int = 10_000) -> int:
    """Delete up to ``limit`` requests that started before ``before`` (an hour boundary).

    Small batches keep each write transaction short, so the recorder is never locked
    out for long on SQLite. Returns how many rows were deleted; the caller commits.
    """
    oldest = (
        select(col(LLMRequest.id))
        .where(col(LLMRequest.started_at) < to_utc(before))
        .order_by(col(LLMRequest.started_at))
        .limit(limit)
    )
    ids = list(session.execute(oldest).scalars())
    if not ids:
        return 0
    session.execute(delete(LLMRequest).where(col(LLMRequest.id).in_(ids)))
    return len(ids)


def prune_rollups(*, session: Session, before: datetime) -> None:
    """Delete the rollups of hours that ended before ``before`` (an hour boundary)."""
    cutoff = hour_of(before)
    session.execute(delete(LLMRequestHourly).where(col(LLMRequestHourly.hour) < cutoff))
    session.execute(delete(LLMLatencyHourly).where(col(LLMLatencyHourly.hour) < cutoff))
    usage_rollups.prune(session, before_hour=cutoff)
    version_rollup.prune(session, before_hour=cutoff)


def floor_hour(moment: datetime) -> datetime:
    """``moment`` (UTC) rounded down to its hour."""
    return to_utc(moment).replace(minute=0, second=0, microsecond=0)


def rebuild_rollups(*, session: Session) -> None:
    """Recompute every rollup from the rows, in SQL (after a bulk import, or to repair).

    The caller commits. Rows keep being recorded meanwhile only if the caller holds
    the write lock for the whole transaction (SQLite does; on PostgreSQL run it
    while no recorder writes).
    """
    session.execute(delete(LLMRequestHourly))
    session.execute(delete(LLMLatencyHourly))
    r = LLMRequest
    hour = (epoch_seconds(r.started_at) // 3600).label("hour")
    category = func.coalesce(r.error_category, "").label("error_category")
    model_column, status = col(r.model), col(r.status)
    real = col(r.synthetic).is_(False)

    def as_int(condition: ColumnElement[bool]) -> ColumnElement[int]:
        return case((condition, 1), else_=0)

    totals = (
        select(
            hour,
            model_column,
            status,
            category,
            func.count().label("requests"),
            func.coalesce(func.sum(r.input_tokens), 0),
            func.coalesce(func.sum(r.output_tokens), 0),
            func.coalesce(func.sum(r.cost_usd), 0.0),
            func.sum(as_int(col(r.priced).is_(False))),
            func.sum(r.retries),
            func.sum(as_int(col(r.feedback) == 1)),
            func.sum(as_int(col(r.feedback) == -1)),
        )
        .where(real)
        .group_by(hour, model_column, status, category)
    )
    session.execute(insert(LLMRequestHourly).from_select([*_HOURLY_KEY, *HOURLY_COUNTERS], totals))
    for metric, bin_column in (("latency", col(r.latency_bin)), ("ttft", col(r.ttft_bin))):
        for model in (model_column, literal(ALL_MODELS)):
            counts = (
                select(literal(metric), model, hour, bin_column, func.count())
                .where(real, bin_column.is_not(None))
                .group_by(*([model_column] if model is model_column else []), hour, bin_column)
            )
            session.execute(insert(LLMLatencyHourly).from_select([*_LATENCY_KEY, "count"], counts))
    usage_rollups.rebuild(session)
    version_rollup.rebuild(session)


def retention_cutoff(*, now: datetime, days: int) -> datetime:
    """The hour boundary before which requests are older than ``days`` days."""
    return floor_hour(to_utc(now) - timedelta(days=days))
