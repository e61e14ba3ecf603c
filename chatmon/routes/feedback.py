"""The operator's review queue over HTTP (behind the monitor login like every /api/*).

- ``GET /api/feedback`` (and ``/api/feedback.csv``): rated or implicitly flagged replies
  over a window. The window parameters of ``/api/stats`` and ``model``, plus
  ``prompt_version``, ``rating=up|down|flagged`` (flagged: not rated, but an implicit
  signal flagged it), ``reason`` (one of the thumbs-down reasons), ``order=newest|worst``
  (default newest) and ``limit`` (1-1000, default 100).
- ``GET /api/feedback/conversation?id=<correlation_id>``: the rated reply and the
  messages before it, read-only, PII-redacted when ENABLE_PII_REDACTION is on. Each
  read is recorded (who, when, which conversation). 404 with FEEDBACK_REVIEW=off.
- ``GET /api/feedback/views``: the latest recorded reads, newest first.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass
from datetime import datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from chatmon import access, db, deps
from chatmon.routes.stats import neutralised, window_from_query
from chatmon.services import feedback_review
from chatmon.services.feedback import REASONS
from chatmon.services.stats import WindowError
from chatmon.settings import get_settings

DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
MAX_ID = 32
UNAUTHENTICATED = "(MONITOR_AUTH=off)"


@dataclass(frozen=True)
class Query:
    start: datetime
    end: datetime
    label: str
    model: str | None
    prompt_version: str | None
    rating: str | None
    reason: str | None
    order: feedback_review.Order
    limit: int


def _limit(text: str, maximum: int) -> int:
    if not text.isdigit() or not 1 <= int(text) <= maximum:
        raise WindowError(f"limit must be a whole number from 1 to {maximum}")
    return int(text)


def _parse(request: Request) -> Query:
    return parse_params(dict(request.query_params))


def parse_params(params: dict[str, str]) -> Query:
    """The queue's filters from query parameters; raises WindowError on bad input."""
    prompt_version = params.pop("prompt_version", None) or None
    rating = params.pop("rating", None) or None
    if rating is not None and rating not in feedback_review.RATING_FILTERS:
        raise WindowError("rating must be up, down or flagged")
    reason = params.pop("reason", None) or None
    if reason is not None and reason not in REASONS:
        raise WindowError(f"reason must be one of {', '.join(REASONS)}")
    order = params.pop("order", "newest")
    if order not in feedback_review.ORDERS:
        raise WindowError(f"order must be one of {', '.join(feedback_review.ORDERS)}")
    limit = _limit(params.pop("limit", str(DEFAULT_LIMIT)), MAX_LIMIT)
    start, end, label = window_from_query(params)
    return Query(
        start=start,
        end=end,
        label=label,
        model=params.get("model") or None,
        prompt_version=prompt_version,
        rating=rating,
        reason=reason,
        order=order,
        limit=limit,
    )


async def rated_rows(query: Query) -> list[feedback_review.RatedReply]:
    """The rated replies ``query`` asks for, read in a worker thread."""
    return await db.run(
        feedback_review.rated_replies,
        start=query.start,
        end=query.end,
        model=query.model,
        prompt_version=query.prompt_version,
        rating=query.rating,
        reason=query.reason,
        order=query.order,
        limit=query.limit,
    )


async def api_feedback(request: Request) -> Response:
    """Rated replies as JSON: ``{"window", "order", "rows": [...]}``."""
    try:
        query = _parse(request)
    except WindowError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    rows = await rated_rows(query)
    return JSONResponse(
        {
            "window": query.label,
            "order": query.order,
            "review": get_settings().feedback_review,
            "rows": [row.to_json() for row in rows],
        }
    )


def _cell(value: object) -> object:
    """A list (a row's reasons) as one cell: ``wrong;unsafe``."""
    return ";".join(str(item) for item in value) if isinstance(value, list) else value


async def api_feedback_csv(request: Request) -> Response:
    """The same rows as CSV (text cells neutralised against spreadsheet formulas)."""
    try:
        query = _parse(request)
    except WindowError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    rows = await rated_rows(query)
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(feedback_review.COLUMNS)
    for row in rows:
        data = row.to_json()
        writer.writerow(
            [
                "" if v is None else neutralised(v) if isinstance(v, str) else v
                for v in (_cell(data[name]) for name in feedback_review.COLUMNS)
            ]
        )
    filename = f"chatmon-feedback-{query.label}-{query.end.strftime('%Y%m%dT%H%M%SZ')}.csv"
    return Response(
        buffer.getvalue(),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


def viewer_of(request: Request) -> str:
    """Who is reading: the monitor session's user, else the HTTP Basic user the access
    middleware already checked. With the gate off nobody is known, and a Basic header
    is then unchecked, so it is not believed."""
    if not deps.monitor_gate().enabled:
        return UNAUTHENTICATED
    token = access.cookies_of(request.headers.get("cookie")).get(access.SESSION_COOKIE)
    user = access.monitor_user_for_token(token)
    if user is not None:
        return user
    credentials = access.basic_credentials(request.headers)
    return credentials[0] if credentials else "(unknown)"


async def read_conversation(
    correlation_id: str, viewer: str
) -> list[feedback_review.ShownMessage] | None:
    """The conversation around a rated reply (the read is recorded in the audit log)."""
    settings = get_settings()
    return await db.run(
        feedback_review.conversation_around,
        correlation_id=correlation_id,
        viewer=viewer,
        enabled=settings.feedback_review,
        redact_pii=settings.enable_pii_redaction,
    )


async def api_feedback_conversation(request: Request) -> Response:
    """The conversation around one rated reply, recorded in the audit log."""
    if not get_settings().feedback_review:
        return JSONResponse(
            {"error": "conversation review is off (FEEDBACK_REVIEW=off)"}, status_code=404
        )
    params = request.query_params
    correlation_id = params.get("id", "")
    if set(params) - {"id"} or not correlation_id.isalnum() or len(correlation_id) > MAX_ID:
        return JSONResponse(
            {"error": "give id, the correlation_id of a rated reply (letters and digits)"},
            status_code=400,
        )
    shown = await read_conversation(correlation_id, viewer_of(request))
    if shown is None:
        return JSONResponse({"error": "no stored reply has that id"}, status_code=404)
    return JSONResponse(
        {
            "correlation_id": correlation_id,
            "redacted": get_settings().enable_pii_redaction,
            "messages": [m.to_json() for m in shown],
        }
    )


async def latest_views(limit: int) -> list[feedback_review.ReviewView]:
    """The latest recorded conversation reads, newest first."""
    return await db.run(feedback_review.recent_views, limit=limit)


async def api_feedback_views(request: Request) -> Response:
    """The latest recorded conversation reads: ``{"views": [...]}``."""
    params = dict(request.query_params)
    try:
        limit = _limit(params.pop("limit", "50"), MAX_LIMIT)
    except WindowError as exc:
        return JSONResponse({"error": str(exc)}, status_code=400)
    if params:
        return JSONResponse({"error": "the only parameter is limit"}, status_code=400)
    views = await latest_views(limit)
    return JSONResponse({"views": [v.to_json() for v in views]})
