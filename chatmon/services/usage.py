"""Where the money goes: spend by user, conversation, model or prompt version.

The read side of the usage rollups (written by ``chatmon.services.usage_rollups``):
"top spenders" for any window from whole days, 6-hour blocks, whole hours and the
rows at the edges, as planned by ``chatmon.services.usage_plan``.

"user" is the browser's owner key (``chatmon.services.identity``): the keyed hash the
request log, the CSV and Langfuse already carry, never a raw browser id. Chat sign-in
has no user names (one CHAT_PASSWORD), so there is no name to show instead.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Numeric, and_, case, cast, func, literal, select, union_all
from sqlmodel import Session, col

from chatmon.models import LLMRequest
from chatmon.observability.call_status import ERROR_STATUSES
from chatmon.services import usage_plan
from chatmon.services.stats.filters import ALL_REQUESTS, RequestFilter
from chatmon.services.stats.requests import page_rows, request_query
from chatmon.services.stats.window import check_window
from chatmon.services.usage_rollups import COUNTERS, DIMENSIONS, TABLES

__all__ = ["COUNTERS", "DIMENSIONS", "UsageRow", "request_page", "spend", "top"]

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
        table, column = TABLES[part.period]
        index = col(getattr(table, column))
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
