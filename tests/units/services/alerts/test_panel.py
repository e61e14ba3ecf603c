"""The Alerts panel's rows after real checks: states, messages, attempts."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from sqlmodel import Session

from chatmon.services.alerts.channels import EmailChannel, SlackChannel
from chatmon.services.alerts.engine import AlertEngine
from chatmon.services.alerts.panel import load_panel
from chatmon.settings import load_settings
from tests.peers import WebhookReceiver, free_port
from tests.units.services.alerts.test_engine import NOW, Clock, failing_half


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


def test_panel_shows_firing_rule_messages_and_failed_attempts(
    engine: Engine, session: Session, receiver: WebhookReceiver
) -> None:
    failing_half(session)
    down = EmailChannel(
        host="127.0.0.1",
        port=free_port(),
        sender="a@example.com",
        recipients=["b@example.com"],
        starttls=False,
        timeout=3,
    )
    checker = AlertEngine(
        engine=engine,
        settings=load_settings(alert_min_requests=4),
        channels=[down, SlackChannel(webhook_url=SecretStr(receiver.url))],
        clock=Clock(NOW),
    )
    checker.check()
    panel = load_panel(session=session, engine=checker)

    rows = {row.rule: row for row in panel.rules}
    assert list(rows) == [
        "error_rate",
        "latency_p95",
        "cost_hourly",
        "cost_daily",
        "breaker_open",
        "no_traffic",
        "probe_failed",
        "budget_daily",
        "budget_monthly",
        "budget_forecast",
        "dissatisfaction",
        "fallback_used",
    ]
    assert (rows["error_rate"].status, rows["error_rate"].value, rows["error_rate"].threshold) == (
        "firing",
        "50.0 %",
        "10 %",
    )
    assert rows["error_rate"].since == "2025-03-10 12:10:00"
    assert rows["latency_p95"].status == "ok"
    assert rows["no_traffic"].status == "off"
    assert panel.channels == "email, slack"

    (message,) = panel.history
    assert (message.rule, message.kind) == ("Error rate", "firing")
    assert "email: failed ×1, will retry (ConnectionRefusedError" in message.deliveries
    assert "slack: sent" in message.deliveries
    assert sorted((a.channel, a.result) for a in panel.attempts) == [
        ("email", "failed"),
        ("slack", "sent"),
    ]
    assert receiver.url not in str(panel)


def test_panel_without_history(engine: Engine, session: Session) -> None:
    checker = AlertEngine(engine=engine, settings=load_settings(), channels=[], clock=Clock(NOW))
    panel = load_panel(session=session, engine=checker)
    assert panel.history == [] and panel.attempts == []
    assert {row.status for row in panel.rules} == {"too few requests", "ok", "off"}
    assert panel.channels == "none configured"
