"""/health's watchers check reads what the heartbeat and the probe recorded, and a
failing one degrades /health."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session
from starlette.testclient import TestClient

from chatmon.api import api
from chatmon.models import PeriodicClaim
from chatmon.routes.health import overall_status
from chatmon.services import periodic, readiness
from chatmon.services.watchers import watchers_check
from chatmon.settings import load_settings


def record_run(engine: Engine, name: str, error: str | None) -> None:
    with Session(engine) as session:
        token = periodic.claim(session=session, name=name, period=60)
        assert token is not None
        periodic.finish(session=session, name=name, token=token, error=error, retry_now=False)
        session.commit()


def test_watchers_not_configured_are_ok(engine: Engine) -> None:
    check = watchers_check(load_settings(), engine=engine)
    assert check == {
        "heartbeat": {"status": "not_configured"},
        "probe": {"status": "not_configured"},
        "digest": {"status": "not_configured"},
        "status": "ok",
    }


def test_a_failing_probe_shows_its_category_and_degrades_health(engine: Engine) -> None:
    settings = load_settings(probe_interval_seconds=60, heartbeat_url="https://hc-ping.com/x")
    record_run(engine, "probe", "auth")
    record_run(engine, "heartbeat", None)
    check = watchers_check(settings, engine=engine)
    assert check["status"] == "failing"
    assert check["probe"]["error"] == "auth" and check["probe"]["consecutive_failures"] == 1
    assert check["heartbeat"]["status"] == "ok"
    healthy = {"status": "ok"}
    checks = {
        "database": healthy,
        "llm": healthy,
        "langfuse": healthy,
        "alerts": healthy,
        "watchers": check,
    }
    assert overall_status(checks) == "degraded"


def test_a_failed_digest_send_names_its_channel_and_degrades_health(engine: Engine) -> None:
    settings = load_settings(
        digest_schedule="daily", slack_webhook_url="https://hooks.example.com/x"
    )
    assert watchers_check(settings, engine=engine)["digest"]["status"] == "waiting"
    record_run(engine, "digest:daily:08:slack", "HTTP 500 from the webhook: internal_error")
    check = watchers_check(settings, engine=engine)
    assert check["status"] == "failing"
    slack = check["digest"]["channels"]["slack"]
    assert slack["status"] == "failing" and slack["error"].startswith("HTTP 500")
    with Session(engine) as session:  # the retry's lease is over
        session.exec(update(PeriodicClaim).values(due_at=datetime(2000, 1, 1, tzinfo=UTC)))
        session.commit()
    record_run(engine, "digest:daily:08:slack", None)
    assert watchers_check(settings, engine=engine)["digest"]["status"] == "ok"


def test_ready_shows_a_failing_probe_and_stays_ready(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A revoked key fails every instance's probe alike: readiness says so but stays 200,
    so the balancer keeps sending users, who are told what is wrong."""
    settings = load_settings(probe_interval_seconds=60)
    monkeypatch.setattr("chatmon.routes.health.get_settings", lambda: settings)
    monkeypatch.setattr("chatmon.routes.health.get_engine", lambda: engine)
    record_run(engine, "probe", "auth")
    readiness.mark_warmed()
    response = TestClient(api).get("/health/ready")
    assert response.status_code == 200
    probe = response.json()["checks"]["probe"]
    assert probe["status"] == "failing" and probe["error"] == "auth"
