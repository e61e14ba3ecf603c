"""``GET /api/versions``: prompt versions and each prompt or model change, judged.

Takes ``window=1h|6h|24h|7d`` (default 7d) or ``start`` and ``end`` (ISO 8601; UTC
without an offset), behind the monitor login like every ``/api/*``. Returns the
versions used in the window with their figures, and every change of prompt version or
model in it with before/after figures, 95 % intervals and a verdict (see
:mod:`chatmon.services.versions`). A bad parameter is a 400 whose ``error`` says
what to fix. The queries run in a worker thread.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from chatmon import db
from chatmon.routes.stats import window_from_query
from chatmon.services import versions
from chatmon.services.stats import WindowError

WINDOW_PARAMS = frozenset({"window", "start", "end"})
DEFAULT_WINDOW = "7d"  # /api/stats' default is 24h: a prompt change is judged over days


def window_of(params: Mapping[str, str]) -> tuple[datetime, datetime, str]:
    """``(start, end, label)`` as ``/api/stats`` reads them, without ``model`` (a change's
    figures cover every model) and over the last 7 days by default."""
    unknown = sorted(set(params) - WINDOW_PARAMS)
    if unknown:
        raise WindowError(
            f"unknown query parameter(s): {', '.join(unknown)}; "
            "use window=1h|6h|24h|7d, or start and end"
        )
    if not WINDOW_PARAMS & set(params):
        params = {**params, "window": DEFAULT_WINDOW}
    return window_from_query(params)


async def api_versions(request: Request) -> Response:
    """The window's prompt versions and changes with their figures, as JSON."""
    try:
        start, end, label = window_of(request.query_params)
    except WindowError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    found = await db.run(versions.report, start=start, end=end)
    return JSONResponse({"window": label, **found.to_json()})
