"""GET /health: is chatmon able to serve?"""

from __future__ import annotations

import asyncio

from sqlalchemy import text
from starlette.requests import Request
from starlette.responses import JSONResponse

from chatmon.db import get_engine


def _database_ok() -> bool:
    try:
        with get_engine().connect() as connection:
            connection.execute(text("SELECT 1"))
    except Exception:  # noqa: BLE001 - any failure means the database is unreachable
        return False
    return True


async def health(_request: Request) -> JSONResponse:
    """Health with a real database query; 503 when the database is unreachable."""
    database_ok = await asyncio.to_thread(_database_ok)
    status = "ok" if database_ok else "down"
    return JSONResponse(
        {"status": status, "checks": {"database": "ok" if database_ok else "down"}},
        status_code=200 if database_ok else 503,
    )
