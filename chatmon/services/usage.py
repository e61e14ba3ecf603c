"""Where the money goes: spend by user, conversation, model or prompt version.

The write side keeps ``llm_usage_hourly`` and ``llm_usage_daily`` in step with
``llm_request`` (called by ``request_log`` in the recorder's transaction, so they never
disagree); the read side answers "top spenders" for any window from whole days, whole
hours and the rows at the edges, as planned by ``chatmon.services.usage_plan``.

"user" is the browser's owner key (``chatmon.services.identity``): the keyed hash the
request log, the CSV and Langfuse already carry, never a raw browser id. Chat sign-in
has no user names (one CHAT_PASSWORD), so there is no name to show instead.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    Numeric,
    and_,
    bindparam,
    case,
    cast,
    delete,
    func,
    insert,
    literal,
    select,
    union_all,
    update,
)
from sqlmodel import Session, col

from chatmon.models import LLMRequest, LLMUsageDaily, LLMUsageHourly
from chatmon.observability.call_status import ERROR_STATUSES
from chatmon.services import usage_plan
from chatmon.services.sql_time import epoch_seconds, hour_of
from chatmon.services.stats.filters import ALL_REQUESTS, RequestFilter
from chatmon.services.stats.requests import page_rows, request_query
from chatmon.services.stats.window import check_window

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
RollupKey = tuple[str, int, str]  # (dimension, hour, key)
HOUR = 3600
HOURS_PER_DAY = 24
_SEEK_PERIODS = 100  # up to this many periods of a part, the ranked keys' rows are sought


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
    """Apply increments with ``upsert`` (``request_log._upsert``) to the hourly rows and
    their days, in key order (concurrent writers then lock rollup rows in the same
    order: no deadlock)."""
    daily: dict[RollupKey, Counter[str]] = defaultdict(Counter)
    for (dimension, hour, key), delta in changes.items():
        daily[(dimension, hour // HOURS_PER_DAY, key)].update(delta)
    for model, names, rows in ((LLMUsageHourly, _KEY, changes), (LLMUsageDaily, _DAY_KEY, daily)):
        params = [
            {**dict(zip(names, key, strict=True)), **{name: rows[key][name] for name in COUNTERS}}
            for key in sorted(rows)
        ]
        if params:
            session.connection().execute(upsert(session, model, names), params)


def prune(session: Session, *, before_hour: int) -> None:
    """Delete rollup hours before ``before_hour`` (the retention cutoff), and the days
    before its day; that day's row loses exactly the hours deleted from it (the
    DELETE returns them), so every day stays the sum of its hours."""
    h, d = LLMUsageHourly, LLMUsageDaily
    cutoff_day = before_hour // HOURS_PER_DAY
    session.execute(delete(h).where(col(h.hour) < cutoff_day * HOURS_PER_DAY))
    session.execute(delete(d).where(col(d.day) < cutoff_day))
    deleted = session.execute(
        delete(h)
        .where(col(h.hour) >= cutoff_day * HOURS_PER_DAY, col(h.hour) < before_hour)
        .returning(col(h.dimension), col(h.key), *(col(getattr(h, n)) for n in COUNTERS))
    ).all()
    lost: dict[tuple[str, str], Counter[str]] = defaultdict(Counter)
    for dimension, key, *values in deleted:
        lost[(dimension, key)].update(dict(zip(COUNTERS, values, strict=True)))
    table = LLMUsageDaily.__table__  # type: ignore[attr-defined]
    subtract = (
        update(table)
        .where(
            table.c.dimension == bindparam("p_dimension"),
            table.c.day == cutoff_day,
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
    session.execute(delete(d).where(col(d.day) == cutoff_day, col(d.requests) <= 0))


def rebuild(session: Session) -> None:
    """Recompute the rollups from the rows, in SQL (the caller commits)."""
    session.execute(delete(LLMUsageHourly))
    session.execute(delete(LLMUsageDaily))
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
    day = col(h.hour) // HOURS_PER_DAY
    days = select(
        col(h.dimension), day, col(h.key), *(func.sum(getattr(h, n)) for n in COUNTERS)
    ).group_by(col(h.dimension), day, col(h.key))
    session.execute(insert(LLMUsageDaily).from_select([*_DAY_KEY, *COUNTERS], days))


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
    *,
    session: Session,
    start: datetime,
    end: datetime,
    by: str,
    limit: int = 50,
    now: datetime | None = None,
) -> list[UsageRow]:
    """The window's keys of dimension ``by``, most expensive first (cost to the
    nano-dollar, then most requests, then key). ``now`` (default: the clock) only
    steers the plan: nothing has been recorded after it, so reading past it is free.

    Raises:
        ValueError: ``by`` is not one of ``DIMENSIONS``.
        WindowError: ``end`` is not after ``start``.
    """
    if by not in DIMENSIONS:
        raise ValueError(f"by must be one of {', '.join(DIMENSIONS)}")
    start, end = check_window(start, end)
    parts = usage_plan.plan(start, end, now=now or datetime.now(UTC))
    # Two statements: the ranking sums only cost and requests over every key of the
    # window (tens of thousands for "user": each summed column costs), then the full
    # figures of the keys ranked. Both group, sort and cut in the database.
    ranking = _grouped(parts, by, ("requests", "cost_usd"))
    cost, requests = ranking.selected_columns[2], ranking.selected_columns[1]
    ranked = [
        key
        for key, *_ in session.execute(
            ranking.having(requests > 0)  # a key of the parts taken away only
            # complements leave rounding noise (1e-18) in a cost: rank to the nano-dollar
            .order_by(
                func.round(cast(cost, Numeric), 9).desc(),
                requests.desc(),
                ranking.selected_columns[0],
            )
            .limit(limit)
        )
    ]
    if not ranked:
        return []
    figures = {
        key or "": _row(key or "", [v or 0 for v in values])
        for key, *values in session.execute(_grouped(parts, by, COUNTERS, keys=ranked))
    }
    rows = [figures[key or ""] for key in ranked if (key or "") in figures]
    # the order of the figures shown (a request recorded between the two statements)
    return sorted(rows, key=lambda r: (-round(r.cost_usd, 9), -r.requests, r.key))


def _grouped(
    parts: list[usage_plan.Part], by: str, names: tuple[str, ...], keys: list[str] | None = None
) -> Any:
    """SELECT key, sum of each of ``names`` over the plan's parts, GROUP BY key."""
    selects: list[Any] = [_part(part, by, names, keys) for part in parts]
    combined: Any = union_all(*selects) if len(selects) > 1 else selects[0]
    union = combined.subquery()
    columns: list[Any] = [union.c.key, *(func.sum(union.c[name]) for name in names)]
    return select(*columns).group_by(union.c.key)


def _part(part: usage_plan.Part, by: str, names: tuple[str, ...], keys: list[str] | None) -> Any:
    """A SELECT of (key, ``names``...) for one part of a window's plan, signed, of
    ``keys`` only when given."""
    if part.period == usage_plan.RAW:
        r = LLMRequest
        values = dict(zip(COUNTERS, _row_values(r), strict=True))
        started = col(r.started_at)
        key: Any = func.coalesce(getattr(r, DIMENSIONS[by]), "")
        where: Any = and_(
            col(r.synthetic).is_(False),  # the probe's requests: in no usage or budget
            started >= part.start,
            started < part.end,
        )
    else:
        table: Any = LLMUsageDaily if part.period == usage_plan.DAY else LLMUsageHourly
        index = col(table.day if part.period == usage_plan.DAY else table.hour)
        values = {name: col(getattr(table, name)) for name in COUNTERS}
        key = col(table.key)
        periods: Any = and_(index >= part.first, index < part.last)
        if keys is not None and part.last - part.first <= _SEEK_PERIODS:
            # each (period, key) one primary-key seek, not a scan of the periods' rows
            periods = index.in_(range(part.first, part.last))
        where = and_(col(table.dimension) == by, periods)
    if keys is not None:
        where = and_(where, key.in_(keys))
    signed = [values[n] if part.sign > 0 else -values[n] for n in names]
    return select(
        key.label("key"), *(value.label(name) for name, value in zip(names, signed, strict=True))
    ).where(where)


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
    # cost to the pico-dollar: a complement's rounding noise (x - y) is not a cost
    return UsageRow(
        key=key,
        requests=counts[0],
        errors=counts[1],
        tokens_input=counts[2],
        tokens_output=counts[3],
        cost_usd=round(float(values[4]), 12),
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
    where: RequestFilter = ALL_REQUESTS,
) -> tuple[list[LLMRequest], int]:
    """``where``'s page of the window's requests of one key (the "Top spenders"
    drill-down; ``where``'s filters apply too), and how many pass. Read from the rows:
    a single key's requests are few.

    Raises:
        ValueError: ``by`` is not one of ``DIMENSIONS``.
        WindowError: a bad sort column or page (from :class:`RequestFilter`).
    """
    if by not in DIMENSIONS:
        raise ValueError(f"by must be one of {', '.join(DIMENSIONS)}")
    start, end = check_window(start, end)
    of_key = func.coalesce(getattr(LLMRequest, DIMENSIONS[by]), "") == key
    rows = page_rows(session, start, end, where, also=of_key)
    count = select(func.count()).select_from(
        request_query(start, end, where, also=of_key).subquery()
    )
    return rows, int(session.execute(count).scalar_one())


def spend(*, session: Session, start: datetime, end: datetime) -> tuple[float, int]:
    """USD spent and requests made in ``[start, end)`` (priced requests' cost only)."""
    if end <= start:
        return 0.0, 0
    parts = usage_plan.plan(start, end, now=datetime.now(UTC))
    per_model = session.execute(_grouped(parts, "model", ("requests", "cost_usd"))).all()
    cost = round(sum(float(c or 0.0) for _key, _n, c in per_model), 12)  # as in _row
    return cost, sum(int(n or 0) for _key, n, _c in per_model)
