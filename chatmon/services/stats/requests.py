"""The request table: one page of a window's requests, the CSV export, one request."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from chatmon.models import LLMRequest, table_of
from chatmon.services.stats.filters import ALL_REQUESTS, RequestFilter
from chatmon.services.stats.window import check_window


def request_query(
    start: datetime, end: datetime, where: RequestFilter, *, also: ColumnElement[bool] | None = None
) -> Any:
    """The window's requests (not the probe's) that pass ``where``'s filters (and the
    condition ``also``, when given), unordered."""
    r = LLMRequest
    query = select(r).where(col(r.started_at) >= start, col(r.started_at) < end)
    if also is not None:
        query = query.where(also)
    query = query.where(col(r.synthetic).is_(False))  # the probe's requests: not in the table
    return where.apply(
        query,
        model=col(r.model),
        status=col(r.status),
        error_category=func.coalesce(r.error_category, ""),
    )


def page_rows(
    session: Session,
    start: datetime,
    end: datetime,
    where: RequestFilter,
    *,
    also: ColumnElement[bool] | None = None,
) -> list[LLMRequest]:
    """The rows of ``where``'s page of the (checked) window ``[start, end)`` (of the
    requests that also meet ``also``, when given)."""
    column = col(getattr(LLMRequest, where.sort))
    order = column.desc() if where.descending else column.asc()
    if table_of(LLMRequest).c[where.sort].nullable:  # requests without a value go last
        order = order.nulls_last()  # (never on NOT NULL columns: it would stop PostgreSQL
        # from reading started_at's index backwards, and sort the whole window instead)
    tiebreak = col(LLMRequest.id).desc() if where.descending else col(LLMRequest.id).asc()
    query = request_query(start, end, where, also=also)
    query = query.order_by(order, tiebreak).limit(where.limit).offset(where.offset)
    return list(session.execute(query).scalars())


def iter_requests(
    *,
    session: Session,
    start: datetime,
    end: datetime,
    where: RequestFilter = ALL_REQUESTS,
    batch_size: int = 2000,
) -> Iterator[LLMRequest]:
    """Every request of the window that passes ``where``'s filters, oldest first, read
    in batches (for CSV export; ``where``'s sort and page do not apply)."""
    start, end = check_window(start, end)
    query = (
        request_query(start, end, where)
        .order_by(col(LLMRequest.started_at), col(LLMRequest.id))
        .execution_options(yield_per=batch_size)
    )
    yield from session.execute(query).scalars()


def get_request(*, session: Session, correlation_id: str) -> LLMRequest | None:
    """The request with this correlation id, if it was recorded."""
    query = select(LLMRequest).where(col(LLMRequest.correlation_id) == correlation_id)
    return session.execute(query).scalar_one_or_none()


def has_any_request(*, session: Session) -> bool:
    """Whether anything but the probe was ever recorded (a new install shows a
    getting-started note instead of empty charts)."""
    real = select(col(LLMRequest.id)).where(col(LLMRequest.synthetic).is_(False))
    return session.execute(real.limit(1)).first() is not None
