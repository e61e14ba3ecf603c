"""/health reports the database with a real query."""

from __future__ import annotations

import pytest
from sqlalchemy.engine import Engine
from starlette.testclient import TestClient

from chatmon.api import api
from chatmon.db import make_engine


def test_health_ok_with_reachable_database(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("chatmon.routes.health.get_engine", lambda: engine)
    response = TestClient(api).get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok"}}


def test_health_down_when_database_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = make_engine("postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=1")
    monkeypatch.setattr("chatmon.routes.health.get_engine", lambda: engine)
    try:
        response = TestClient(api).get("/health")
    finally:
        engine.dispose()
    assert response.status_code == 503
    assert response.json()["status"] == "down"
