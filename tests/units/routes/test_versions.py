"""GET /api/versions over the real routes table and database, behind the monitor login."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.testclient import TestClient

from chatmon.api import api
from chatmon.middleware import ApiAccessMiddleware
from chatmon.models import ChangeEvent, PromptVersion
from tests.units.access_config import Configure
from tests.units.services.test_version_compare import NEW, OLD, add


@pytest.fixture
def client(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setattr("chatmon.db.get_engine", lambda: engine)
    now = datetime.now(UTC)
    at = now - timedelta(hours=2)
    with Session(engine) as session:
        session.add(
            PromptVersion(
                hash=OLD,
                first_seen=at - timedelta(days=1),
                last_seen=at,
                text="You are the old assistant.",
            )
        )
        session.add(
            PromptVersion(hash=NEW, first_seen=at, last_seen=now, text="You are the new assistant.")
        )
        session.add(ChangeEvent(kind="prompt", old=OLD[:8], new=NEW[:8], at=at))
        session.commit()
        add(
            session,
            start=at - timedelta(minutes=110),
            count=400,
            ups=324,
            downs=76,
            spread=timedelta(minutes=100),
        )
        add(
            session,
            start=at + timedelta(minutes=1),
            count=400,
            version=NEW,
            ups=288,
            downs=112,
            spread=timedelta(minutes=100),
        )
        add(
            session,
            start=at + timedelta(minutes=1),
            count=50,
            version=NEW,
            downs=50,
            synthetic=True,
        )
    return TestClient(api)


def test_versions_lists_versions_and_the_judged_change(client: TestClient) -> None:
    response = client.get("/api/versions", params={"window": "24h"})
    assert response.status_code == 200
    body = response.json()
    assert body["window"] == "24h"
    assert [v["version"] for v in body["versions"]] == [NEW, OLD]
    newest = body["versions"][0]
    assert newest["text"] == "You are the new assistant."
    assert newest["requests"] == 400  # the probe's rows are in no figure
    assert newest["satisfaction"]["value"] == pytest.approx(0.72)
    low, high = newest["satisfaction"]["low"], newest["satisfaction"]["high"]
    assert low < 0.72 < high
    (change,) = body["changes"]
    assert change["kind"] == "prompt" and change["label"] == f"system prompt {OLD[:8]} → {NEW[:8]}"
    assert change["verdict"] == "worse"
    assert change["summary"] == "worse: satisfaction 81 % → 72 %, interval does not overlap"
    assert change["old_text"] == "You are the old assistant."
    figures = {c["figure"]: c for c in change["comparisons"]}
    assert set(figures) == {
        "satisfaction",
        "error_rate",
        "latency_p50",
        "latency_p95",
        "cost_per_request",
        "implicit_flag_rate",
    }
    assert figures["implicit_flag_rate"]["outcome"] == "same"  # flags recorded, none on either side
    assert change["before"]["requests"] == change["after"]["requests"] == 400


def test_default_window_is_a_week_and_a_short_one_sees_no_change(client: TestClient) -> None:
    assert client.get("/api/versions").json()["window"] == "7d"
    assert client.get("/api/versions", params={"window": "1h"}).json()["changes"] == []


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"window": "2w"}, "window must be one of"),
        ({"model": "x"}, "unknown query parameter(s): model"),
        ({"start": "2026-01-01T00:00:00Z"}, "start and end go together"),
        ({"start": "yesterday", "end": "2026-01-01T00:00:00Z"}, "start must be an ISO 8601"),
        (
            {"window": "1h", "start": "2026-01-01T00:00:00Z", "end": "2026-01-02T00:00:00Z"},
            "either window or start and end",
        ),
    ],
)
def test_bad_parameters_are_a_400_saying_what_to_fix(
    client: TestClient, params: dict[str, str], message: str
) -> None:
    response = client.get("/api/versions", params=params)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_versions_needs_the_monitor_login(client: TestClient, access_config: Configure) -> None:
    access_config(monitor_password="s3cret-shared")
    guarded = TestClient(ApiAccessMiddleware(api))
    assert guarded.get("/api/versions").status_code == 401
    basic = base64.b64encode(b"admin:s3cret-shared").decode()
    response = guarded.get("/api/versions", headers={"authorization": f"Basic {basic}"})
    assert response.status_code == 200 and response.json()["changes"]
