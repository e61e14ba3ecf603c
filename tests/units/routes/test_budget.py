"""GET /api/budget over the routes table, on a real database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.testclient import TestClient

from chatmon.api import api
from chatmon.settings import load_settings
from tests.units.services.stats_factory import make_call, record


@pytest.fixture
def client(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setattr("chatmon.db.get_engine", lambda: engine)
    settings = load_settings(daily_budget_usd=10, monthly_budget_usd=100, budget_action="refuse")
    monkeypatch.setattr("chatmon.routes.budget.get_settings", lambda: settings)
    with Session(engine) as session:
        record(session, make_call(at=datetime.now(UTC) - timedelta(seconds=5), cost_usd=0.5))
    return TestClient(api)


def test_budget_reports_both_periods(client: TestClient) -> None:
    body = client.get("/api/budget").json()
    assert body["timezone"] == "UTC" and body["action"] == "refuse"
    daily, monthly = body["periods"]
    assert (daily["period"], monthly["period"]) == ("daily", "monthly")
    for period in (daily, monthly):
        assert {
            "limit_usd",
            "spent_usd",
            "percent",
            "forecast_usd",
            "reached_at",
            "resets_at",
        } <= set(period)
        assert period["action"] == "serve"
    assert daily["limit_usd"] == 10 and daily["spent_usd"] == pytest.approx(0.5)
    assert daily["percent"] == pytest.approx(5.0)


def test_budget_takes_no_parameters(client: TestClient) -> None:
    assert client.get("/api/budget", params={"window": "1h"}).status_code == 400
