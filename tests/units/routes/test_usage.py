"""GET /api/usage and /api/usage.csv over the routes table, on a real database."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.testclient import TestClient

from chatmon.api import api
from tests.units.services.stats_factory import make_call, record


@pytest.fixture
def client(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setattr("chatmon.db.get_engine", lambda: engine)
    now = datetime.now(UTC)
    with Session(engine) as session:
        record(
            session,
            make_call(at=now - timedelta(minutes=5), session_id="=cmd|evil", cost_usd=0.01),
            make_call(at=now - timedelta(hours=2), session_id="owner-b", cost_usd=0.2),
            make_call(at=now - timedelta(days=3), session_id="owner-c", cost_usd=9.0),
        )
    return TestClient(api)


def test_usage_by_user_sorted_by_cost(client: TestClient) -> None:
    body = client.get("/api/usage", params={"window": "24h", "by": "user"}).json()
    assert body["by"] == "user" and body["window"] == "24h"
    assert [row["key"] for row in body["rows"]] == ["owner-b", "=cmd|evil"]
    assert set(body["rows"][0]) == {
        "key",
        "requests",
        "errors",
        "tokens_input",
        "tokens_output",
        "cost_usd",
        "unpriced_requests",
        "feedback_up",
        "feedback_down",
    }


@pytest.mark.parametrize(
    "params",
    [{"by": "session"}, {"limit": "0"}, {"limit": "x"}, {"window": "2y"}, {"model": "m"}],
)
def test_usage_bad_parameters_are_400(client: TestClient, params: dict[str, str]) -> None:
    response = client.get("/api/usage", params=params)
    assert response.status_code == 400
    assert response.json()["error"]


def test_usage_csv_neutralises_formula_keys(client: TestClient) -> None:
    response = client.get("/api/usage.csv", params={"window": "1h", "by": "user"})
    assert response.headers["content-type"].startswith("text/csv")
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0][0] == "key" and rows[1][0] == "'=cmd|evil"
