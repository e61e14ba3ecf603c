"""``GET /api/versions``: prompt versions and each prompt or model change, judged.

Takes ``window=1h|6h|24h|7d`` (default 7d) or ``start`` and ``end`` (ISO 8601; UTC
without an offset), behind the monitor login like every ``/api/*``. Returns the
versions used in the window with their figures, and every change of prompt version or
model in it with before/after figures, 95 % intervals and a verdict (see
:mod:`chatmon.services.version_compare`). A bad parameter is a 400 whose ``error`` says
what to fix. The queries run in a worker thread.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from datetime import datetime

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from chatmon.db import get_engine
from chatmon.services import stats, version_compare
from chatmon.services.stats import WindowError

ALLOWED_PARAMS = frozenset({"window", "start", "end"})
DEFAULT_WINDOW = "7d"


def _parse_time(name: str, text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise WindowError(f"{name} must be an ISO 8601 time such as 2025-01-31T12:00:00Z") from None


def window_of(params: Mapping[str, str]) -> tuple[datetime, datetime, str]:
    """``(start, end, label)`` from the query string; raises WindowError on bad input."""
    unknown = sorted(set(params) - ALLOWED_PARAMS)
    if unknown:
        raise WindowError(
            f"unknown query parameter(s): {', '.join(unknown)}; "
            "use window=1h|6h|24h|7d, or start and end"
        )
    if "start" in params or "end" in params:
        if "window" in params:
            raise WindowError("give either window or start and end, not both")
        if "start" not in params or "end" not in params:
            raise WindowError("start and end go together")
        start, end = stats.check_window(
            _parse_time("start", params["start"]), _parse_time("end", params["end"])
        )
        return start, end, "custom"
    name = params.get("window", DEFAULT_WINDOW)
    start, end = stats.last(stats.parse_window(name))
    return start, end, name


def _report(start: datetime, end: datetime) -> version_compare.VersionsReport:
    with Session(get_engine()) as session:
        return version_compare.report(session=session, start=start, end=end)


async def api_versions(request: Request) -> Response:
    """The window's prompt versions and changes with their figures, as JSON."""
    try:
        start, end, label = window_of(request.query_params)
    except WindowError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    found = await asyncio.to_thread(_report, start, end)
    return JSONResponse({"window": label, **found.to_json()})
