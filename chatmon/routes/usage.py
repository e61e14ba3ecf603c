"""GET /api/usage (and /api/usage.csv): where the money goes over a window.

``by=user|conversation|model|prompt_version`` (default model), ``limit`` (1-1000,
default 50), plus the window parameters of ``/api/stats``. Rows are sorted by cost,
most expensive first. "user" keys are owner keys (keyed hashes), never raw ids.
Behind the monitor login like every ``/api/*`` route.
"""

from __future__ import annotations

import csv
import io
from datetime import datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from chatmon import db
from chatmon.routes.stats import neutralised, window_from_query
from chatmon.services import usage
from chatmon.services.stats import WindowError

DEFAULT_BY = "model"
DEFAULT_LIMIT = 50
MAX_LIMIT = 1000
CSV_COLUMNS = (
    "key",
    "requests",
    "errors",
    "tokens_input",
    "tokens_output",
    "cost_usd",
    "unpriced_requests",
    "feedback_up",
    "feedback_down",
)


def _parse(request: Request) -> tuple[datetime, datetime, str, str, int]:
    params = dict(request.query_params)
    by = params.pop("by", DEFAULT_BY)
    if by not in usage.DIMENSIONS:
        raise WindowError(f"by must be one of {', '.join(usage.DIMENSIONS)}")
    text = params.pop("limit", str(DEFAULT_LIMIT))
    if not text.isdigit() or not 1 <= int(text) <= MAX_LIMIT:
        raise WindowError(f"limit must be a whole number from 1 to {MAX_LIMIT}")
    if "model" in params:
        raise WindowError("model is not a filter of /api/usage; use by=model")
    start, end, label = window_from_query(params)
    return start, end, label, by, int(text)


async def api_usage(request: Request) -> Response:
    """Top spenders as JSON: ``{"window", "by", "rows": [...]}``."""
    try:
        start, end, label, by, limit = _parse(request)
    except WindowError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    rows = await db.run(usage.top, start=start, end=end, by=by, limit=limit)
    return JSONResponse({"window": label, "by": by, "rows": [row.to_json() for row in rows]})


async def api_usage_csv(request: Request) -> Response:
    """The same rows as CSV (key cells neutralised against spreadsheet formulas)."""
    try:
        start, end, label, by, limit = _parse(request)
    except WindowError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    rows = await db.run(usage.top, start=start, end=end, by=by, limit=limit)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    for row in rows:
        data = row.to_json()
        data["key"] = neutralised(data["key"])
        writer.writerow([data[name] for name in CSV_COLUMNS])
    filename = f"chatmon-usage-{by}-{label}-{end.strftime('%Y%m%dT%H%M%SZ')}.csv"
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
