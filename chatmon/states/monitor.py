"""MonitorState: the monitor page's controller.

Every read runs in a worker thread (``db.run``) through
:mod:`chatmon.presenters.dashboard`, so a slow query never stalls the event loop.
Auto-refresh is a background event that reloads the page's data every
``REFRESH_SECONDS`` while the toggle is on, the page is mounted and the browser is
still connected; a newer loop (page reloaded, toggle flipped) retires the older one.
"""

from __future__ import annotations

import asyncio
import logging
import os
import uuid
from datetime import UTC, datetime
from typing import Any

import reflex as rx

from chatmon import db, metrics
from chatmon.observability import series
from chatmon.observability.call_status import CallStatus
from chatmon.presenters import dashboard as view
from chatmon.presenters.dashboard import ALL, DashboardQuery, DashboardView, Kpis
from chatmon.presenters.requests import RequestDetail, RequestRow, load_detail
from chatmon.presenters.spend import USAGE_BY_CHOICES, BudgetBar, SpenderRow
from chatmon.presenters.window_input import WINDOW_CHOICES, default_custom_range, window_bounds
from chatmon.services.errors import ErrorCategory
from chatmon.services.stats import SORTABLE_COLUMNS, WindowError
from chatmon.states import args
from chatmon.states.auth import monitor_allowed

log = logging.getLogger(__name__)

REFRESH_SECONDS = 10
STATUSES = (ALL, CallStatus.OK.value, CallStatus.ERROR.value, CallStatus.CANCELLED.value)
CATEGORIES = (ALL, *(c.value for c in ErrorCategory))


def _client_connected(token: str) -> bool:
    """Whether the browser tab behind ``token`` still has its websocket open here."""
    try:
        from reflex.utils.prerequisites import get_and_validate_app

        namespace = get_and_validate_app().app.event_namespace
    except Exception:  # noqa: BLE001 - cannot tell: let the other stop conditions decide
        return True
    return namespace is None or token in namespace.token_to_sid


MAX_ARG_CHARS = 200  # longer than any model name or ISO time the page sends


def _is_correlation_id(value: object) -> bool:
    """The shape of a request's correlation id (16 hex characters; 32 at most)."""
    return isinstance(value, str) and 0 < len(value) <= 32 and value.isalnum()


class MonitorState(rx.State):
    """Window, filters and the figures shown for them."""

    window: str = "24h"
    custom_start: str = ""
    custom_end: str = ""
    auto_refresh: bool = True
    loading: bool = False
    loaded: bool = False  # the first read of this page has arrived
    error: str = ""
    updated_at: str = ""

    kpis: Kpis = Kpis()
    streams_in_progress: int = 0  # summed over workers, at the last refresh
    websocket_connections: int = 0
    capacity_note: str = ""  # "N per core (limit ≈ M)" from docs/scaling.md's sizing rule
    series: list[dict[str, Any]] = []
    errors_by_category: list[dict[str, Any]] = []
    cost_by_model: list[dict[str, Any]] = []
    rows: list[RequestRow] = []
    total_rows: int = 0
    models: list[str] = []
    has_any_request: bool = True
    price_warning: str = ""  # costs are incomplete (unpriced model / requests), and the fix
    spenders: list[SpenderRow] = []
    budgets: list[BudgetBar] = []
    markers: list[dict[str, str]] = []  # what changed in the window, on the charts
    usage_by: str = "model"  # Top spenders grouping: model | user | conversation | prompt_version
    usage_key: str = ""  # the table shows only this user's / conversation's / version's requests

    status_filter: str = ALL
    model_filter: str = ALL
    category_filter: str = ALL
    sort: str = "started_at"
    descending: bool = True
    page: int = 0

    detail: RequestDetail = RequestDetail()
    detail_open: bool = False

    _loop_id: str = ""
    _mounted: bool = False

    # ----- derived --------------------------------------------------------------------
    @rx.var
    def page_count(self) -> int:
        """Pages of the request table (at least 1)."""
        return max(1, -(-self.total_rows // view.PAGE_SIZE))

    @rx.var
    def page_label(self) -> str:
        """``Page 2 of 7 · 160 requests``."""
        return f"Page {self.page + 1} of {self.page_count} · {self.total_rows:,} requests"

    @rx.var
    def csv_query(self) -> str:
        """Query string of the CSV download for the current window."""
        if self.window == "custom":
            try:
                start, end = window_bounds("custom", self.custom_start, self.custom_end)
            except WindowError:
                return "window=24h"
            start_z, end_z = (moment.isoformat().replace("+00:00", "Z") for moment in (start, end))
            return f"start={start_z}&end={end_z}"
        return f"window={self.window}"

    @rx.var
    def is_empty(self) -> bool:
        """No request in the window (the page shows what to do instead of empty charts).

        Not before the first read has arrived: a page still loading must not say
        "no requests"."""
        return self.loaded and self.kpis.requests == "0"

    # ----- loading ----------------------------------------------------------------------
    def _query(self) -> DashboardQuery:
        start, end = window_bounds(self.window, self.custom_start, self.custom_end)
        return DashboardQuery(
            start=start,
            end=end,
            status=self.status_filter,
            model=self.model_filter,
            category=self.category_filter,
            sort=self.sort,
            descending=self.descending,
            page=self.page,
            usage_by=self.usage_by,
            usage_key=self.usage_key,
        )

    def _choices(self) -> tuple:
        """What the person picked; a refresh read for older choices is thrown away."""
        return (
            self.window,
            self.custom_start,
            self.custom_end,
            self.status_filter,
            self.model_filter,
            self.category_filter,
            self.sort,
            self.descending,
            self.page,
            self.usage_by,
            self.usage_key,
        )

    def _show(self, data: DashboardView) -> None:
        self.kpis = data.kpis
        self.series = data.series
        self.errors_by_category = data.errors_by_category
        self.cost_by_model = data.cost_by_model
        self.rows = data.rows
        self.total_rows = data.total_rows
        self.models = data.models
        self.has_any_request = data.has_any_request
        self.price_warning = data.price_warning
        self.spenders = data.spenders
        self.budgets = data.budgets
        self.markers = data.markers
        self.updated_at = datetime.now(UTC).strftime("%H:%M:%S UTC")
        self.error = ""

    def _show_capacity(self, snapshot: dict[str, int]) -> None:
        cores = os.cpu_count() or 1
        self.streams_in_progress = snapshot["streams_in_progress"]
        self.websocket_connections = snapshot["websocket_connections"]
        per_core = self.streams_in_progress / cores
        self.capacity_note = (
            f"{per_core:.1f} per core of {cores} (sizing limit ≈ "
            f"{series.STREAMS_PER_CORE_LIMIT} per core)"
        )

    async def _reload(self) -> None:
        """Read the current window in a thread and show it (holds the state meanwhile)."""
        if not await monitor_allowed(self):
            return
        try:
            query = self._query()
        except WindowError as exc:
            self.error = str(exc)
            return
        self.loading = True
        try:
            self._show(await db.run(view.load, query=query))
            self.loaded = True
            self._show_capacity(await asyncio.to_thread(metrics.capacity_snapshot))
        except Exception:
            log.exception("monitor: loading the dashboard failed")
            self.error = "Could not read the request log. Is the database reachable?"
        finally:
            self.loading = False

    @rx.event
    async def on_load(self) -> None:
        """Page load: prefill the custom range and read the window."""
        if not self.custom_start:
            self.custom_start, self.custom_end = default_custom_range(datetime.now(UTC))
        self.detail_open = False
        await self._reload()

    @rx.event
    def mount(self):
        """The page is shown: start auto-refresh.

        Started from the page's ``on_mount``, not chained from ``on_load``: Reflex holds
        events chained after a page load until the chain finishes, and this loop does not.
        """
        self._mounted = True
        return MonitorState.start_refresh

    @rx.event
    def leave(self) -> None:
        """The page was unmounted (navigation away): stop auto-refresh."""
        self._mounted = False
        self._loop_id = ""

    @rx.event
    async def refresh(self) -> None:
        """Reload now (the refresh button)."""
        await self._reload()

    # ----- window -----------------------------------------------------------------------
    @rx.event
    async def set_window(self, window: str) -> None:
        """Pick 1h / 6h / 24h / 7d, or custom (then the range inputs apply)."""
        if window not in WINDOW_CHOICES:
            return
        self.window = window
        self.page = 0
        await self._reload()

    @rx.event
    async def apply_custom_range(self, form_data: dict) -> None:
        """Use the custom range from the form (UTC)."""
        start = (args.form_text(form_data, "start") or "")[:MAX_ARG_CHARS]
        end = (args.form_text(form_data, "end") or "")[:MAX_ARG_CHARS]
        try:
            window_bounds("custom", start, end)
        except WindowError as exc:
            self.error = f"Custom range: {exc}"
            return
        self.custom_start, self.custom_end = start, end
        self.window = "custom"
        self.page = 0
        await self._reload()

    # ----- table ------------------------------------------------------------------------
    @rx.event
    async def sort_by(self, column: str) -> None:
        """Sort the table by ``column``; the same column again flips the direction."""
        if column not in SORTABLE_COLUMNS:
            return
        if column == self.sort:
            self.descending = not self.descending
        else:
            self.sort, self.descending = column, True
        self.page = 0
        await self._reload()

    @rx.event
    async def set_status_filter(self, value: str) -> None:
        """Show only ok / error / cancelled requests (or all)."""
        if value in STATUSES:
            self.status_filter, self.page = value, 0
            await self._reload()

    @rx.event
    async def set_model_filter(self, value: str) -> None:
        """Show only one model's requests (or all)."""
        if not isinstance(value, str) or len(value) > MAX_ARG_CHARS:
            return
        self.model_filter, self.page = value or ALL, 0
        await self._reload()

    @rx.event
    async def set_category_filter(self, value: str) -> None:
        """Show only one error category (or all)."""
        if value in CATEGORIES:
            self.category_filter, self.page = value, 0
            await self._reload()

    @rx.event
    async def next_page(self) -> None:
        """The next page of the table."""
        if self.page + 1 < self.page_count:
            self.page += 1
            await self._reload()

    @rx.event
    async def previous_page(self) -> None:
        """The previous page of the table."""
        if self.page > 0:
            self.page -= 1
            await self._reload()

    # ----- top spenders ----------------------------------------------------------------
    @rx.event
    async def set_usage_by(self, by: str | list[str]) -> None:
        """Group Top spenders by model, user, conversation or prompt version."""
        if isinstance(by, str) and by in USAGE_BY_CHOICES:
            self.usage_by, self.usage_key, self.page = by, "", 0
            await self._reload()

    @rx.event
    async def show_requests_of(self, key: str) -> None:
        """Show only the requests of one Top spenders row in the table."""
        if not isinstance(key, str) or len(key) > MAX_ARG_CHARS:
            return
        if self.usage_by == "model":
            self.model_filter = key or ALL
        else:
            self.usage_key = key
        self.page = 0
        await self._reload()

    @rx.event
    async def clear_usage_filter(self) -> None:
        """Back to every request of the window."""
        self.usage_key, self.page = "", 0
        await self._reload()

    # ----- detail -----------------------------------------------------------------------
    @rx.event
    async def open_detail(self, correlation_id: str) -> None:
        """Open a request's detail (every recorded field)."""
        if not await monitor_allowed(self) or not _is_correlation_id(correlation_id):
            return
        detail = await db.run(load_detail, correlation_id=correlation_id)
        if detail is None:
            self.error = f"Request {correlation_id} is no longer recorded."
            return
        self.detail = detail
        self.detail_open = True

    @rx.event
    def set_detail_open(self, is_open: bool) -> None:
        """The dialog's open state (closing it by Escape or the close button)."""
        self.detail_open = is_open is True

    # ----- auto-refresh -----------------------------------------------------------------
    @rx.event
    def set_auto_refresh(self, enabled: bool):
        """The auto-refresh switch."""
        self.auto_refresh = enabled = enabled is True
        if enabled:
            return MonitorState.start_refresh
        self._loop_id = ""
        return None

    @rx.event
    def start_refresh(self):
        """Start a refresh loop, retiring any older one of this tab."""
        if not self.auto_refresh or not self._mounted:
            return None
        self._loop_id = uuid.uuid4().hex
        return MonitorState.refresh_loop(self._loop_id)

    @rx.event(background=True)
    async def refresh_loop(self, loop_id: str):
        """Reload every REFRESH_SECONDS until the page is left, the switch is off, the
        tab disconnects or a newer loop takes over."""
        token = self.router.session.client_token
        while True:
            await asyncio.sleep(REFRESH_SECONDS)
            async with self:
                if self._loop_id != loop_id or not self.auto_refresh or not self._mounted:
                    return
                if not _client_connected(token) or not await monitor_allowed(self):
                    self._loop_id = ""
                    return
                try:
                    query, choices = self._query(), self._choices()
                except WindowError:
                    continue
            try:
                data = await db.run(view.load, query=query)
            except Exception:
                log.exception("monitor: auto-refresh failed")
                continue
            async with self:
                if self._loop_id == loop_id and self._choices() == choices:
                    self._show(data)
