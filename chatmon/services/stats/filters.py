"""Which requests of a window, in what order, and which page: :class:`RequestFilter`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy.sql.elements import SQLCoreOperations
from sqlalchemy.sql.selectable import Select

from chatmon.services.stats.window import WindowError

SORTABLE_COLUMNS = (
    "started_at",
    "latency_seconds",
    "ttft_seconds",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "model",
    "status",
)
MAX_PAGE = 1000

_Query = TypeVar("_Query", bound="Select[*tuple[Any, ...]]")


@dataclass(frozen=True)
class RequestFilter:
    """The request table's filters, sort and page, checked when made.

    ``model``, ``status`` and ``error_category`` are ``None`` for any; an
    ``error_category`` of ``""`` matches requests without one. ``sort`` is one of
    :data:`SORTABLE_COLUMNS`; requests without a value sort last either way, ties by id.
    Functions that count or export requests use the filters and ignore sort and page.
    Raises :class:`~chatmon.services.stats.WindowError` for an unknown sort column, a
    ``limit`` outside 1-1000 or a negative ``offset``.
    """

    model: str | None = None
    status: str | None = None
    error_category: str | None = None
    sort: str = "started_at"
    descending: bool = True
    limit: int = 25
    offset: int = 0

    def __post_init__(self) -> None:
        if self.sort not in SORTABLE_COLUMNS:
            raise WindowError(f"sort must be one of {', '.join(SORTABLE_COLUMNS)}")
        if not 1 <= self.limit <= MAX_PAGE or self.offset < 0:
            raise WindowError(f"limit must be 1-{MAX_PAGE} and offset >= 0")

    def matches(self, *, model: str, status: str, error_category: str) -> bool:
        """Whether a group of requests with these values passes the filters."""
        return (
            (self.model is None or model == self.model)
            and (self.status is None or status == self.status)
            and (self.error_category is None or error_category == self.error_category)
        )

    def apply(
        self,
        query: _Query,
        *,
        model: SQLCoreOperations[str],
        status: SQLCoreOperations[str],
        error_category: SQLCoreOperations[str],
    ) -> _Query:
        """``query`` narrowed by the filters, given the columns that hold each value."""
        if self.model is not None:
            query = query.where(model == self.model)
        if self.status is not None:
            query = query.where(status == self.status)
        if self.error_category is not None:
            query = query.where(error_category == self.error_category)
        return query


ALL_REQUESTS = RequestFilter()
