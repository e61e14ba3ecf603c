"""/health reports the database with a real query."""

from __future__ import annotations

import pytest
from starlette.testclient import TestClient

from chatmon import db
from chatmon.api import api


def test_health_ok_with_reachable_database(db_url: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(db, "get_engine", lambda: db.make_engine(db_url))
    monkeypatch.setattr("chatmon.routes.health.get_engine", db.get_engine)
    response = TestClient(api).get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "checks": {"database": "ok"}}


def test_health_down_when_database_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = db.make_engine("postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=1")
    monkeypatch.setattr("chatmon.routes.health.get_engine", lambda: engine)
    response = TestClient(api).get("/health")
    assert response.status_code == 503
    assert response.json()["status"] == "down"
