"""GET /api/stats and /api/requests.csv over the routes table, on a real database."""

from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, select
from starlette.testclient import TestClient

from chatmon.api import api
from chatmon.models import LLMRequest
from chatmon.routes.stats import CSV_COLUMNS
from tests.units.services.stats_factory import make_call, record

CONTRACT_KEYS = {
    "requests",
    "errors",
    "error_rate",
    "latency_p50",
    "latency_p95",
    "latency_p99",
    "ttft_p95",
    "tokens_input",
    "tokens_output",
    "cost_usd",
    "feedback_up",
    "feedback_down",
}


@pytest.fixture
def client(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setattr("chatmon.db.get_engine", lambda: engine)
    now = datetime.now(UTC)
    with Session(engine) as session:
        record(
            session,
            make_call(at=now - timedelta(minutes=10), input_tokens=5, output_tokens=7),
            make_call(
                at=now - timedelta(minutes=20),
                status="error",
                error_category="timeout",
                input_tokens=None,
                output_tokens=None,
                cost_usd=None,
            ),
            make_call(at=now - timedelta(hours=3), input_tokens=100, output_tokens=1),
            make_call(at=now - timedelta(days=3)),
        )
    return TestClient(api)


@pytest.mark.parametrize(("window", "requests"), [("1h", 2), ("6h", 3), ("24h", 3), ("7d", 4)])
def test_stats_per_window(client: TestClient, window: str, requests: int) -> None:
    response = client.get("/api/stats", params={"window": window})
    assert response.status_code == 200
    body = response.json()
    assert set(body) >= CONTRACT_KEYS
    assert body["window"] == window
    assert body["requests"] == requests


def test_stats_figures_of_the_last_hour(client: TestClient) -> None:
    body = client.get("/api/stats?window=1h").json()
    assert (body["requests"], body["errors"], body["error_rate"]) == (2, 1, 50.0)
    assert (body["tokens_input"], body["tokens_output"]) == (5, 7)
    assert body["errors_by_category"] == {"timeout": 1}
    assert body["latency_p50"] == pytest.approx(1.0, rel=0.01)


def test_stats_default_window_is_24h(client: TestClient) -> None:
    assert client.get("/api/stats").json()["window"] == "24h"


def test_stats_custom_range(client: TestClient) -> None:
    end = datetime.now(UTC)
    start = end - timedelta(minutes=15)
    response = client.get("/api/stats", params={"start": start.isoformat(), "end": end.isoformat()})
    assert response.status_code == 200
    assert response.json()["requests"] == 1
    naive_utc = client.get(
        "/api/stats",
        params={"start": start.replace(tzinfo=None).isoformat(), "end": "2999-01-01T00:00:00Z"},
    )
    assert naive_utc.json()["requests"] == 1


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("window=2h", "window must be one of 1h, 6h, 24h, 7d"),
        ("windw=1h", "unknown query parameter(s): windw"),
        ("start=2025-01-01T00:00:00Z", "start and end go together"),
        ("start=yesterday&end=2025-01-01T00:00:00Z", "start must be an ISO 8601 time"),
        ("start=2025-01-02T00:00:00Z&end=2025-01-01T00:00:00Z", "end must be after its start"),
        ("window=1h&start=2025-01-01T00:00:00Z&end=2025-01-02T00:00:00Z", "either window or start"),
    ],
)
def test_bad_parameters_are_400_with_a_clear_message(
    client: TestClient, query: str, message: str
) -> None:
    for path in ("/api/stats", "/api/requests.csv"):
        response = client.get(f"{path}?{query}")
        assert response.status_code == 400
        assert message in response.json()["error"]


def test_csv_has_a_header_and_one_row_per_request(client: TestClient) -> None:
    response = client.get("/api/requests.csv?window=6h")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/csv")
    assert "attachment" in response.headers["content-disposition"]
    rows = list(csv.reader(io.StringIO(response.text)))
    assert rows[0] == list(CSV_COLUMNS)
    assert len(rows) == 1 + 3
    records = [dict(zip(rows[0], row, strict=True)) for row in rows[1:]]
    assert [r["status"] for r in records] == ["ok", "error", "ok"]  # oldest first
    assert records[1]["error_category"] == "timeout" and records[1]["input_tokens"] == ""
    assert all("input_text" not in r for r in records)


def test_csv_of_an_empty_window_is_just_the_header(client: TestClient) -> None:
    response = client.get("/api/requests.csv?start=2001-01-01T00:00:00Z&end=2001-01-02T00:00:00Z")
    assert response.text.strip() == ",".join(CSV_COLUMNS)


@pytest.mark.parametrize(
    "payload", ['=HYPERLINK("http://evil","x")', "+1+1", "-2+3", "@SUM(A1)", "\tcmd", "\rcmd"]
)
def test_csv_cells_that_a_spreadsheet_would_run_are_neutralised(
    engine: Engine, monkeypatch: pytest.MonkeyPatch, payload: str
) -> None:
    """OWASP CSV injection: a text cell starting with = + - @ tab or CR gets a leading '."""
    monkeypatch.setattr("chatmon.db.get_engine", lambda: engine)
    now = datetime.now(UTC)
    with Session(engine) as session:
        record(
            session,
            make_call(
                at=now - timedelta(minutes=1),
                model=payload,
                prompt_version=payload,
                session_id=payload,
                cost_usd=0.5,
            ),
        )
    response = TestClient(api).get("/api/requests.csv?window=1h")
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 1
    for column in ("model", "prompt_version", "session_id"):
        assert rows[0][column] == "'" + payload
    assert rows[0]["cost_usd"] == "0.5"  # numbers stay numbers


def test_csv_negative_numbers_are_not_touched(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("chatmon.db.get_engine", lambda: engine)
    now = datetime.now(UTC)
    with Session(engine) as session:
        record(session, make_call(at=now - timedelta(minutes=1)))
        row = session.exec(select(LLMRequest)).one()
        row.feedback = -1
        session.add(row)
        session.commit()
    body = TestClient(api).get("/api/requests.csv?window=1h").text
    rows = list(csv.DictReader(io.StringIO(body)))
    assert rows[0]["feedback"] == "-1"
