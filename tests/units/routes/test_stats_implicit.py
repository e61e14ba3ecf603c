"""GET /api/stats counts the implicit signals of the window beside the thumbs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.testclient import TestClient

from chatmon.api import api
from chatmon.services import implicit_flags, implicit_signals
from tests.units.services.stats_factory import make_call, record


@pytest.fixture
def client(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> TestClient:
    monkeypatch.setattr("chatmon.db.get_engine", lambda: engine)
    now = datetime.now(UTC)
    stopped = make_call(at=now - timedelta(minutes=5), status="cancelled", model="m-a")
    regenerated = make_call(at=now - timedelta(minutes=6), model="m-b")
    both = make_call(at=now - timedelta(minutes=7), status="cancelled", model="m-a")
    old = make_call(at=now - timedelta(hours=3), status="cancelled", model="m-a")
    probe = make_call(at=now - timedelta(minutes=8), status="cancelled", synthetic=True)
    plain = make_call(at=now - timedelta(minutes=9), model="m-b")
    with Session(engine) as session:
        record(session, stopped, regenerated, both, old, probe, plain)
        for call in (regenerated, both, probe):
            implicit_flags.set_flag(
                session=session,
                signal=implicit_signals.REGENERATED,
                correlation_ids=[call.correlation_id],
            )
        session.commit()
    return TestClient(api)


def test_stats_count_each_signal_and_the_flagged_requests(client: TestClient) -> None:
    body = client.get("/api/stats?window=1h").json()
    assert body["requests"] == 4  # the probe is in no figure
    assert body["implicit_flags"] == {
        "stopped": 2,
        "rephrased": 0,
        "regenerated": 2,
        "abandoned_after_error": 0,
    }
    assert body["implicit_flagged"] == 3  # one request stopped and regenerated counts once
    assert body["implicit_flag_rate"] == 75.0


def test_stats_implicit_counts_follow_the_window_and_model(client: TestClient) -> None:
    day = client.get("/api/stats?window=24h").json()
    assert (day["implicit_flags"]["stopped"], day["implicit_flagged"]) == (3, 4)
    model_b = client.get("/api/stats", params={"window": "1h", "model": "m-b"}).json()
    assert model_b["implicit_flags"]["stopped"] == 0
    assert (model_b["implicit_flagged"], model_b["implicit_flag_rate"]) == (1, 50.0)
