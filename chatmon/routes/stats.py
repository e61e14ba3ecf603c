"""GET /api/stats and GET /api/requests.csv: the request log's figures over a window.

Both take ``window=1h|6h|24h|7d`` (default 24h) or ``start`` and ``end`` (ISO 8601;
without an offset they are UTC), and optionally ``model``. Anything else, or a bad
value, is a 400 whose JSON ``error`` says what to fix. Queries run in a worker thread.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

from sqlmodel import Session
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse

from chatmon import db
from chatmon.models import LLMRequest
from chatmon.services import implicit_counts, stats
from chatmon.services.stats import WindowError

ALLOWED_PARAMS = frozenset({"window", "start", "end", "model"})
DEFAULT_WINDOW = "24h"
CSV_COLUMNS = (
    "correlation_id",
    "started_at",
    "model",
    "provider",
    "status",
    "error_category",
    "latency_seconds",
    "ttft_seconds",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "priced",
    "retries",
    "fallback",  # True: a model of LLM_FALLBACK_MODELS served it (``model``)
    "temperature",
    "prompt_version",
    "feedback",
    "conversation_id",
    "session_id",
)
_CSV_ROWS_PER_CHUNK = 1000


def _parse_time(name: str, text: str) -> datetime:
    try:
        return datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        raise WindowError(f"{name} must be an ISO 8601 time such as 2025-01-31T12:00:00Z") from None


def window_from_query(params: Mapping[str, str]) -> tuple[datetime, datetime, str]:
    """``(start, end, label)`` from the query string; raises WindowError on bad input."""
    unknown = sorted(set(params) - ALLOWED_PARAMS)
    if unknown:
        raise WindowError(
            f"unknown query parameter(s): {', '.join(unknown)}; "
            f"use window=1h|6h|24h|7d, or start and end, and optionally model"
        )
    has_range = "start" in params or "end" in params
    if has_range and "window" in params:
        raise WindowError("give either window or start and end, not both")
    if has_range:
        if "start" not in params or "end" not in params:
            raise WindowError("start and end go together")
        start, end = stats.check_window(
            _parse_time("start", params["start"]), _parse_time("end", params["end"])
        )
        return start, end, "custom"
    name = params.get("window", DEFAULT_WINDOW)
    start, end = stats.last(stats.parse_window(name))
    return start, end, name


def _bad_request(exc: WindowError) -> JSONResponse:
    return JSONResponse({"error": str(exc)}, status_code=400)


def _summary(
    *, session: Session, start: datetime, end: datetime, model: str | None
) -> dict[str, Any]:
    summary = stats.window_summary(session=session, start=start, end=end, model=model)
    flags = implicit_counts.flag_counts(session=session, start=start, end=end, model=model)
    return {**summary.to_json(), **implicit_json(flags, requests=summary.requests)}


def implicit_json(flags: implicit_counts.FlagCounts, *, requests: int) -> dict[str, Any]:
    """The implicit-signal keys of ``/api/stats``: requests carrying each signal, carrying
    any, and that as a percent of the window's requests."""
    return {
        "implicit_flags": flags.by_signal(),
        "implicit_flagged": flags.flagged,
        "implicit_flag_rate": round(100.0 * flags.flagged / requests, 2) if requests else 0.0,
    }


async def api_stats(request: Request) -> Response:
    """The window's headline figures as JSON (keys: see ARCHITECTURE.md)."""
    try:
        start, end, label = window_from_query(request.query_params)
    except WindowError as exc:
        return _bad_request(exc)
    model = request.query_params.get("model") or None
    body = await db.run(_summary, start=start, end=end, model=model)
    return JSONResponse({"window": label, **body})


_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def neutralised(value: str) -> str:
    """A text cell a spreadsheet will not run as a formula (OWASP CSV injection).

    A cell starting with ``= + - @``, a tab or a carriage return gets a leading ``'``,
    which spreadsheets show as text. Numbers are not text cells and stay as they are.
    """
    return "'" + value if value.startswith(_FORMULA_STARTS) else value


def csv_row(row: LLMRequest) -> list[object]:
    """One request as CSV cells (times in ISO 8601 UTC, empty for NULL, text neutralised)."""
    cells: list[object] = []
    for name in CSV_COLUMNS:
        value = getattr(row, name)
        if isinstance(value, datetime):
            value = value.isoformat()
        elif isinstance(value, str):
            value = neutralised(value)
        cells.append("" if value is None else value)
    return cells


def _csv_chunks(start: datetime, end: datetime, model: str | None) -> Iterator[str]:
    """The CSV in chunks of rows; runs in Starlette's thread pool, never on the loop."""
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow(CSV_COLUMNS)
    with Session(db.get_engine()) as session:
        for count, row in enumerate(
            stats.iter_requests(
                session=session, start=start, end=end, where=stats.RequestFilter(model=model)
            ),
            start=1,
        ):
            writer.writerow(csv_row(row))
            if count % _CSV_ROWS_PER_CHUNK == 0:
                yield buffer.getvalue()
                buffer.seek(0)
                buffer.truncate()
    yield buffer.getvalue()


async def api_requests_csv(request: Request) -> Response:
    """The window's requests as CSV, oldest first, streamed."""
    try:
        start, end, label = window_from_query(request.query_params)
    except WindowError as exc:
        return _bad_request(exc)
    model = request.query_params.get("model") or None
    filename = f"chatmon-requests-{label}-{end.strftime('%Y%m%dT%H%M%SZ')}.csv"
    return StreamingResponse(
        _csv_chunks(start, end, model),
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )
