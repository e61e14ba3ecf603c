"""Where the money goes: spend by user, conversation, model or prompt version.

The write side keeps ``llm_usage_hourly`` in step with ``llm_request`` (called by
``request_log`` in the recorder's transaction, so the two never disagree); the read
side answers "top spenders" for any window the way ``stats`` does: whole hours from
the rollup, the two partial hours at the edges from the rows.

"user" is the browser's owner key (``chatmon.services.identity``): the keyed hash the
request log, the CSV and Langfuse already carry, never a raw browser id. Chat sign-in
has no user names (one CHAT_PASSWORD), so there is no name to show instead.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, case, delete, func, insert, literal, or_, select, union_all
from sqlmodel import Session, col

from chatmon.models import LLMRequest, LLMUsageHourly, table_of
from chatmon.services.call_status import ERROR_STATUSES
from chatmon.services.sql_time import epoch_of, epoch_seconds, from_epoch, hour_of

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
RollupKey = tuple[str, int, str]  # (dimension, hour, key)
HOUR = 3600


@dataclass(frozen=True)
class UsageRow:
    """One key's figures over a window (cost excludes unpriced requests)."""

    key: str
    requests: int
    errors: int
    tokens_input: int
    tokens_output: int
    cost_usd: float
    unpriced_requests: int
    feedback_up: int
    feedback_down: int

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["cost_usd"] = round(self.cost_usd, 6)
        return data


# ----------------------------------------------------------------------------- writing


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
    """Apply increments with ``upsert`` (``request_log._upsert``), in key order
    (concurrent writers then lock rollup rows in the same order: no deadlock)."""
    params = [
        {**dict(zip(_KEY, key, strict=True)), **{name: changes[key][name] for name in COUNTERS}}
        for key in sorted(changes)
    ]
    if params:
        session.connection().execute(upsert(session, LLMUsageHourly, _KEY), params)


def prune(session: Session, *, before_hour: int) -> None:
    """Delete rollup hours before ``before_hour`` (the retention cutoff)."""
    session.execute(delete(LLMUsageHourly).where(col(LLMUsageHourly.hour) < before_hour))


def rebuild(session: Session) -> None:
    """Recompute the rollup from the rows, in SQL (the caller commits)."""
    session.execute(delete(LLMUsageHourly))
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


# ----------------------------------------------------------------------------- reading


def top(
    *, session: Session, start: datetime, end: datetime, by: str, limit: int = 50
) -> list[UsageRow]:
    """The window's keys of dimension ``by``, most expensive first (then most requests).

    Raises:
        ValueError: ``by`` is not one of ``DIMENSIONS``.
    """
    if by not in DIMENSIONS:
        raise ValueError(f"by must be one of {', '.join(DIMENSIONS)}")
    # One statement: the rollup's whole hours and the edge rows, grouped, sorted and cut
    # in the database (a high-cardinality key such as "user" can have as many rollup
    # rows as requests; merging them in Python was 10x slower than this).
    parts: list[Any] = []  # SELECTs of (key, counters...)
    first_hour, end_hour = math.ceil(epoch_of(start) / HOUR), math.floor(epoch_of(end) / HOUR)
    edges = [(start, end)]
    if end_hour > first_hour:
        h = LLMUsageHourly
        parts.append(
            select(
                col(h.key).label("key"), *(col(getattr(h, name)).label(name) for name in COUNTERS)
            ).where(col(h.dimension) == by, col(h.hour) >= first_hour, col(h.hour) < end_hour)
        )
        edges = [(start, from_epoch(first_hour * HOUR)), (from_epoch(end_hour * HOUR), end)]
    edges = [(a, b) for a, b in edges if b > a]
    if edges:
        r = LLMRequest
        started = col(r.started_at)
        key = func.coalesce(getattr(r, DIMENSIONS[by]), "")
        parts.append(
            select(
                key.label("key"),
                *(v.label(n) for n, v in zip(COUNTERS, _row_values(r), strict=True)),
            ).where(
                col(r.synthetic).is_(False),  # the probe's requests: in no usage or budget
                or_(*(and_(started >= a, started < b) for a, b in edges)),
            )
        )
    combined: Any = union_all(*parts) if len(parts) > 1 else parts[0]
    union = combined.subquery()
    cost = func.sum(union.c.cost_usd)
    requests = func.sum(union.c.requests)
    query = (
        select(union.c.key, *(func.sum(union.c[name]) for name in COUNTERS))
        .group_by(union.c.key)
        .order_by(cost.desc(), requests.desc(), union.c.key)
        .limit(limit)
    )
    return [_row(key or "", [v or 0 for v in values]) for key, *values in session.execute(query)]


def _row_values(r: Any) -> list[Any]:
    """Per-row counter values of ``llm_request`` (what one request adds to a rollup row)."""

    def flag(condition: Any) -> Any:
        return case((condition, 1), else_=0)

    return [
        literal(1),
        flag(col(r.status).in_(ERROR_STATUSES)),
        func.coalesce(r.input_tokens, 0),
        func.coalesce(r.output_tokens, 0),
        func.coalesce(r.cost_usd, 0.0),
        flag(col(r.priced).is_(False)),
        flag(r.feedback == 1),
        flag(r.feedback == -1),
    ]


def _row(key: str, values: list[float]) -> UsageRow:
    counts = [int(v) for v in values]
    return UsageRow(
        key=key,
        requests=counts[0],
        errors=counts[1],
        tokens_input=counts[2],
        tokens_output=counts[3],
        cost_usd=float(values[4]),
        unpriced_requests=counts[5],
        feedback_up=counts[6],
        feedback_down=counts[7],
    )


def request_page(
    *,
    session: Session,
    start: datetime,
    end: datetime,
    by: str,
    key: str,
    sort: str = "started_at",
    descending: bool = True,
    limit: int = 25,
    offset: int = 0,
) -> tuple[list[LLMRequest], int]:
    """One page of the window's requests of one key (the "Top spenders" drill-down),
    and how many there are. Read from the rows: a single key's requests are few."""
    from chatmon.services.stats import SORTABLE_COLUMNS, WindowError

    if by not in DIMENSIONS:
        raise ValueError(f"by must be one of {', '.join(DIMENSIONS)}")
    if sort not in SORTABLE_COLUMNS:
        raise WindowError(f"sort must be one of {', '.join(SORTABLE_COLUMNS)}")
    r = LLMRequest
    where = and_(
        col(r.started_at) >= start,
        col(r.started_at) < end,
        func.coalesce(getattr(r, DIMENSIONS[by]), "") == key,
        col(r.synthetic).is_(False),
    )
    column = col(getattr(r, sort))
    order = column.desc() if descending else column.asc()
    if table_of(r).c[sort].nullable:
        order = order.nulls_last()
    tiebreak = col(r.id).desc() if descending else col(r.id).asc()
    query = select(r).where(where).order_by(order, tiebreak).limit(limit).offset(offset)
    rows = list(session.execute(query).scalars())
    total = session.execute(select(func.count()).select_from(r).where(where)).scalar_one()
    return rows, int(total)


def spend(*, session: Session, start: datetime, end: datetime) -> tuple[float, int]:
    """USD spent and requests made in ``[start, end)`` (priced requests' cost only)."""
    if end <= start:
        return 0.0, 0
    rows = top(session=session, start=start, end=end, by="model", limit=10_000)
    return sum(r.cost_usd for r in rows), sum(r.requests for r in rows)
