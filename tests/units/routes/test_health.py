"""/health: a real database query, the model and its breaker, Langfuse, the alert checker."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from starlette.testclient import TestClient

from chatmon import db
from chatmon.api import api
from chatmon.devtools.langfuse_receiver import LangfuseReceiver
from chatmon.routes import health as health_route
from chatmon.services import alert_clock, breaker, readiness
from chatmon.services.errors import ErrorCategory
from chatmon.settings import Settings, load_settings


@pytest.fixture
def use_db(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """A reachable database (health only runs ``SELECT 1``: no schema needed)."""
    engine = db.make_engine(f"sqlite:///{tmp_path / 'health.db'}")
    monkeypatch.setattr("chatmon.routes.health.get_engine", lambda: engine)
    yield
    engine.dispose()


@pytest.fixture(autouse=True)
def _fresh_state() -> Iterator[None]:
    alert_clock.reset()
    health_route._langfuse_probe = health_route._LangfuseProbe()
    readiness.mark_warmed()  # as after chatmon.tasks.warm_up; tests of "starting" reset it
    yield
    alert_clock.reset()
    readiness.mark_warmed()


def _use_settings(monkeypatch: pytest.MonkeyPatch, **values: object) -> Settings:
    settings = load_settings(**values)
    monkeypatch.setattr("chatmon.routes.health.get_settings", lambda: settings)
    return settings


def test_health_ok_with_reachable_database(use_db, monkeypatch: pytest.MonkeyPatch) -> None:
    _use_settings(
        monkeypatch,
        llm_model="openai/health-ok",
        llm_api_key="sk-health-test-123456",
        llm_price_input_per_1m=0.075,
        llm_price_output_per_1m=0.30,
    )
    response = TestClient(api).get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok", body
    assert body["checks"]["database"]["status"] == "ok"
    assert body["checks"]["llm"] == {
        "status": "ok",
        "model": "openai/health-ok",
        "configured": True,
        "api_base_set": False,
        "api_key_set": True,
        "breaker": "closed",
        "breakers": {"openai/health-ok": "closed"},
        "fallbacks": [],
    }
    assert body["checks"]["langfuse"]["status"] == "disabled"
    assert body["checks"]["alerts"]["status"] == "not_configured"


def test_health_down_when_database_unreachable(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = db.make_engine("postgresql+psycopg://nobody@127.0.0.1:9/none?connect_timeout=1")
    monkeypatch.setattr("chatmon.routes.health.get_engine", lambda: engine)
    response = TestClient(api).get("/health")
    assert response.status_code == 503
    assert response.json()["status"] == "down"
    assert response.json()["checks"]["database"]["status"] == "down"


def test_health_demo_model_is_reported_not_degraded(
    use_db, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use_settings(monkeypatch, llm_model="demo")
    body = TestClient(api).get("/health").json()
    assert body["status"] == "ok", body
    assert body["checks"]["llm"]["status"] == "demo"


def test_health_degraded_when_breaker_is_open(use_db, monkeypatch: pytest.MonkeyPatch) -> None:
    model = f"openai/breaker-{uuid.uuid4().hex[:6]}"
    _use_settings(monkeypatch, llm_model=model)
    model_breaker = breaker.for_model(model, failure_threshold=1, reset_seconds=300)
    model_breaker.record_failure(model_breaker.acquire(), ErrorCategory.SERVER_ERROR)
    response = TestClient(api).get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "degraded"
    assert response.json()["checks"]["llm"]["breaker"] == "open"


def test_health_shows_every_fallback_model_and_its_breaker(
    use_db, monkeypatch: pytest.MonkeyPatch
) -> None:
    suffix = uuid.uuid4().hex[:6]
    primary, first, second = (f"openai/{name}-{suffix}" for name in ("main", "fb1", "fb2"))
    _use_settings(
        monkeypatch,
        llm_model=primary,
        llm_api_key="sk-health-primary-123456",
        llm_fallback_models=f"{first},{second}",
        llm_fallback_1_api_base="http://127.0.0.1:9/v1",
        llm_fallback_1_api_key="sk-health-fallback-secret-987",
    )
    first_breaker = breaker.for_model(first, failure_threshold=1, reset_seconds=300)
    first_breaker.record_failure(first_breaker.acquire(), ErrorCategory.TIMEOUT)
    response = TestClient(api).get("/health")
    llm = response.json()["checks"]["llm"]
    assert llm["breakers"] == {primary: "closed", first: "open", second: "closed"}
    assert llm["fallbacks"] == [
        {"model": first, "api_base_set": True, "api_key_set": True, "breaker": "open"},
        {"model": second, "api_base_set": False, "api_key_set": False, "breaker": "closed"},
    ]
    assert response.json()["status"] == "degraded"  # a fallback failing needs a person too
    assert "sk-health-fallback-secret-987" not in response.text


def test_health_degraded_after_the_recorder_dropped_events(
    use_db, monkeypatch: pytest.MonkeyPatch
) -> None:
    from chatmon.services.recorder import Recorder

    _use_settings(monkeypatch, llm_model="openai/recorder-drops")
    dropping = Recorder(engine=lambda: db.make_engine("sqlite://"), price_known=lambda _m: True)
    monkeypatch.setattr("chatmon.services.recorder.get_recorder", lambda: dropping)
    assert TestClient(api).get("/health").json()["checks"]["recorder"]["status"] == "ok"
    dropping._dropped("backlog_full", 3)
    body = TestClient(api).get("/health").json()
    assert body["status"] == "degraded"
    assert body["checks"]["recorder"] == {"status": "dropping", "pending": 0, "dropped": 3}


def test_health_degraded_when_alert_checks_stopped(use_db, monkeypatch: pytest.MonkeyPatch) -> None:
    _use_settings(
        monkeypatch, slack_webhook_url="https://hooks.slack.com/services/T/B/health-secret"
    )
    alert_clock.record_alert_check(at=datetime.now(UTC) - timedelta(minutes=10))
    body = TestClient(api).get("/health").json()
    assert body["status"] == "degraded"
    assert body["checks"]["alerts"]["status"] == "stale"
    assert body["checks"]["alerts"]["channels"] == ["slack"]


def test_health_alerts_ok_after_a_recent_check(use_db, monkeypatch: pytest.MonkeyPatch) -> None:
    _use_settings(
        monkeypatch, slack_webhook_url="https://hooks.slack.com/services/T/B/health-secret"
    )
    alert_clock.record_alert_check()
    body = TestClient(api).get("/health").json()
    assert body["status"] == "ok", body
    assert body["checks"]["alerts"]["status"] == "ok"
    assert body["checks"]["alerts"]["last_check_age_seconds"] < 5


def test_health_reports_reachable_langfuse(use_db, monkeypatch: pytest.MonkeyPatch) -> None:
    with LangfuseReceiver(public_key="pk-lf-health", secret_key="sk-lf-health") as receiver:
        _use_settings(
            monkeypatch,
            langfuse_public_key="pk-lf-health",
            langfuse_secret_key="sk-lf-health",
            langfuse_host=receiver.url,
        )
        body = TestClient(api).get("/health").json()
    assert body["checks"]["langfuse"]["status"] == "ok"
    assert body["status"] == "ok", body


def test_health_degraded_when_langfuse_unreachable(use_db, monkeypatch: pytest.MonkeyPatch) -> None:
    _use_settings(
        monkeypatch,
        langfuse_public_key="pk-lf-x",
        langfuse_secret_key="sk-lf-x",
        langfuse_host="http://127.0.0.1:9",
        langfuse_timeout=1,
    )
    body = TestClient(api).get("/health").json()
    assert body["checks"]["langfuse"]["status"] == "unreachable"
    assert body["status"] == "degraded"


def test_health_answers_quickly_while_langfuse_hangs(
    use_db, monkeypatch: pytest.MonkeyPatch
) -> None:
    with LangfuseReceiver(public_key="pk-lf-hang", secret_key="sk-lf-hang") as receiver:
        receiver.set_hang(True)
        _use_settings(
            monkeypatch,
            langfuse_public_key="pk-lf-hang",
            langfuse_secret_key="sk-lf-hang",
            langfuse_host=receiver.url,
            langfuse_timeout=5,
        )
        client = TestClient(api)
        started = time.perf_counter()
        body = client.get("/health").json()
        elapsed = time.perf_counter() - started
        receiver.set_hang(False)
    assert elapsed < 2.5
    assert body["checks"]["langfuse"]["status"] == "checking"


def test_health_output_holds_no_secret(use_db, monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = {
        "llm_api_key": "sk-health-secret-key-0001",
        "langfuse_secret_key": "sk-lf-health-secret-0002",
        "metrics_token": "metrics-health-secret-0003",
        "slack_webhook_url": "https://hooks.slack.com/services/T9/B9/health-secret-0004",
        "smtp_password": "smtp-health-secret-0005",
    }
    _use_settings(
        monkeypatch,
        langfuse_public_key="pk-lf-h",
        langfuse_host="http://127.0.0.1:9",
        smtp_host="127.0.0.1",
        smtp_user="ops",
        alert_email_from="a@example.com",
        alert_email_to="b@example.com",
        **secrets,
    )
    text = TestClient(api).get("/health").text
    for value in secrets.values():
        assert value not in text
    assert "health-secret" not in text


def test_health_says_starting_until_warm_up_finished(use_db, monkeypatch) -> None:
    _use_settings(monkeypatch, llm_model="openai/health-ok", llm_api_key="sk-health-test-123456")
    readiness.reset()
    response = TestClient(api).get("/health")
    assert response.status_code == 200  # the /health contract: 503 only when down
    assert response.json()["status"] == "starting"
    readiness.mark_warmed()
    assert TestClient(api).get("/health").json()["status"] in ("ok", "degraded")


def test_ready_is_503_until_warmed_up_then_200(use_db, monkeypatch) -> None:
    _use_settings(monkeypatch)
    readiness.reset()
    response = TestClient(api).get("/health/ready")
    assert response.status_code == 503
    assert response.json()["status"] == "starting"
    readiness.mark_warmed()
    response = TestClient(api).get("/health/ready")
    assert response.status_code == 200
    assert response.json()["checks"]["database"]["status"] == "ok"


def test_ready_is_503_when_the_database_does_not_answer(monkeypatch) -> None:
    _use_settings(monkeypatch)
    engine = db.make_engine("sqlite:////nonexistent-dir/for/health.db")
    monkeypatch.setattr("chatmon.routes.health.get_engine", lambda: engine)
    response = TestClient(api).get("/health/ready")
    assert response.status_code == 503
    assert response.json()["status"] == "down"


def test_live_answers_while_starting_and_without_a_database(monkeypatch) -> None:
    readiness.reset()
    engine = db.make_engine("sqlite:////nonexistent-dir/for/health.db")
    monkeypatch.setattr("chatmon.routes.health.get_engine", lambda: engine)
    response = TestClient(api).get("/health/live")
    assert response.status_code == 200
    assert response.json() == {"status": "alive"}


def test_health_shows_streams_and_connections(use_db, monkeypatch) -> None:
    from chatmon.observability import series

    _use_settings(monkeypatch)
    series.STREAMS_IN_PROGRESS.inc(3)
    series.WEBSOCKET_CONNECTIONS.set(7)
    try:
        capacity = TestClient(api).get("/health").json()["checks"]["capacity"]
    finally:
        series.STREAMS_IN_PROGRESS.dec(3)
        series.WEBSOCKET_CONNECTIONS.set(0)
    assert capacity["streams_in_progress"] == 3
    assert capacity["websocket_connections"] == 7
    assert capacity["workers"] >= 1 and capacity["cpu_cores"] >= 1


def test_health_degraded_when_the_model_has_no_price(
    use_db, monkeypatch: pytest.MonkeyPatch
) -> None:
    _use_settings(monkeypatch, llm_model="openai/gemini-3-flash", llm_api_key="sk-health-1234567")
    body = TestClient(api).get("/health").json()
    assert body["status"] == "degraded"
    pricing = body["checks"]["pricing"]
    assert pricing["status"] == "unpriced"
    assert "cost alerts cannot fire for model openai/gemini-3-flash" in pricing["message"]
    assert "LLM_PRICE_INPUT_PER_1M" in pricing["message"]


def test_health_ok_when_zero_prices_are_explicit(use_db, monkeypatch: pytest.MonkeyPatch) -> None:
    _use_settings(
        monkeypatch, llm_model="ollama/llama3", llm_price_input_per_1m=0, llm_price_output_per_1m=0
    )
    body = TestClient(api).get("/health").json()
    assert body["checks"]["pricing"] == {
        "status": "ok",
        "model": "ollama/llama3",
        "source": "custom",
        "input_per_1m": 0.0,
        "output_per_1m": 0.0,
    }
    # (the overall status depends on the process's other checks, e.g. recorder drops)
