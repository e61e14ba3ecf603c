"""GET /api/budget: each budget period's limit, spend, forecast and the action in force.

``{"timezone", "action", "fallback_model", "periods": [...]}``; each period has
``limit_usd``, ``spent_usd``, ``percent``, ``forecast_usd`` (spend expected by the end
of the period, null without enough data), ``reached_at`` (when the limit is hit at the
current pace, ISO-8601 UTC, or null), ``resets_at`` and ``action`` ("serve" below the
limit, else BUDGET_ACTION). Takes no parameters. Behind the monitor login.
"""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from chatmon import db
from chatmon.services import budget
from chatmon.settings import get_settings


async def api_budget(request: Request) -> Response:
    """The budgets as JSON (an empty ``periods`` when none is configured)."""
    if request.query_params:
        return JSONResponse({"error": "/api/budget takes no parameters"}, status_code=400)
    settings = get_settings()
    config = budget.BudgetConfig.from_settings(settings)
    periods = await db.run(budget.statuses, config=config, now=datetime.now(UTC))
    return JSONResponse(
        {
            "timezone": config.timezone,
            "action": config.action,
            "fallback_model": config.fallback_model,
            "forecast_horizon_minutes": config.horizon_minutes,
            "periods": [status.to_json() for status in periods],
        }
    )
