"""Dashboard and alert figures for any time window, computed in SQL.

Shared by ``/api/stats``, ``/api/requests.csv``, the monitor page and the alert
rules. Every function takes an explicit session and a ``[start, end)`` window of
aware (or naive-UTC) datetimes and returns plain dataclasses.

- :mod:`.window`: named windows, ``[start, end)`` checks, chart bucket widths;
- :mod:`.filters`: :class:`RequestFilter`, the request table's filters, sort and page;
- :mod:`.results`: the returned dataclasses;
- :mod:`.rollups`: the reader (whole hours from the hourly rollups, the partial edge
  hours from ``llm_request``), totals and latency histograms;
- :mod:`.figures`: summary, series, per-model figures, counts, the dashboard's one read;
- :mod:`.requests`: request rows (a page, the CSV export, one request, whether any).

Import the names below from ``chatmon.services.stats``; the modules are its inside.
"""

from chatmon.observability.call_status import ERROR_STATUSES, CallStatus
from chatmon.services.stats.figures import (
    by_model,
    count_requests,
    dashboard,
    models_seen,
    request_page,
    time_series,
    window_summary,
)
from chatmon.services.stats.filters import ALL_REQUESTS, SORTABLE_COLUMNS, RequestFilter
from chatmon.services.stats.requests import get_request, has_any_request, iter_requests
from chatmon.services.stats.results import (
    Dashboard,
    ModelBreakdown,
    RequestPage,
    SeriesPoint,
    WindowSummary,
)
from chatmon.services.stats.rollups import Histogram
from chatmon.services.stats.window import (
    HOUR,
    WINDOWS,
    WindowError,
    bucket_seconds_for,
    check_window,
    last,
    parse_window,
)

__all__ = [
    "ALL_REQUESTS",
    "ERROR_STATUSES",
    "HOUR",
    "SORTABLE_COLUMNS",
    "WINDOWS",
    "CallStatus",
    "Dashboard",
    "Histogram",
    "ModelBreakdown",
    "RequestFilter",
    "RequestPage",
    "SeriesPoint",
    "WindowError",
    "WindowSummary",
    "bucket_seconds_for",
    "by_model",
    "check_window",
    "count_requests",
    "dashboard",
    "get_request",
    "has_any_request",
    "iter_requests",
    "last",
    "models_seen",
    "parse_window",
    "request_page",
    "time_series",
    "window_summary",
]
