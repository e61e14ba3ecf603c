"""Severity routing, the generic JSON webhook and PagerDuty Events API v2, end to end:
a real database, real checks, and local HTTP receivers (one speaking PagerDuty's
protocol, validating events as PagerDuty does)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from chatmon.models import AlertDelivery
from chatmon.services.alert_routing import Routing
from chatmon.services.alerts.channels import Channel, DeliveryError
from chatmon.services.alerts.channels_http import PagerDutyChannel, WebhookChannel, http_channels
from chatmon.services.alerts.lifecycle import Action
from chatmon.services.alerts.messages import channel_test_message
from chatmon.services.alerts.rules import Rule
from chatmon.settings import load_settings
from tests.peers import PagerDutyReceiver, WebhookReceiver
from tests.units.services.alerts.test_engine import (
    NOW,
    Clock,
    action_of,
    alert_engine,
    deliver_when_due,
    failing_half,
)
from tests.units.services.stats_factory import make_call, record

M = timedelta(minutes=1)
ROUTING_KEY = "R0uting0Key0Of0Thirty0Two0Chars0"


@pytest.fixture
def pagerduty() -> Iterator[PagerDutyReceiver]:
    with PagerDutyReceiver(routing_key=ROUTING_KEY) as server:
        yield server


@pytest.fixture
def webhook() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


def pd(receiver: PagerDutyReceiver, key: str = ROUTING_KEY) -> PagerDutyChannel:
    return PagerDutyChannel(routing_key=SecretStr(key), events_url=receiver.url, timeout=5.0)


def hook(receiver: WebhookReceiver) -> WebhookChannel:
    return WebhookChannel(url=SecretStr(receiver.url), timeout=5.0)


# ----------------------------------------------------------------------------- routing


def test_routing_defaults_keep_every_channel_for_every_severity() -> None:
    routing = Routing()
    assert routing.severity("error_rate") == "critical"
    assert routing.severity("latency_p95") == "warning"
    assert routing.severity("a_rule_added_later") == "warning"
    assert routing.channels_for("latency_p95", ["email", "slack"]) == ["email", "slack"]


def test_routing_sends_each_severity_to_its_channels_and_overrides_per_rule() -> None:
    settings = load_settings(
        smtp_host="smtp.example.com",
        alert_email_from="chatmon@example.com",
        alert_email_to="oncall@example.com",
        slack_webhook_url="https://hooks.slack.com/services/x",
        alert_routes="critical=email,slack;warning=slack",
        alert_severities="cost_daily=critical",
    )
    routing = Routing.from_settings(settings, rules=[rule.value for rule in Rule])
    assert routing.channels_for("error_rate", ["email", "slack"]) == ["email", "slack"]
    assert routing.channels_for("latency_p95", ["email", "slack"]) == ["slack"]
    assert routing.channels_for("cost_daily", ["email", "slack"]) == ["email", "slack"]


def test_routing_an_empty_route_records_and_sends_nowhere() -> None:
    routing = Routing(routes={"warning": ()})
    assert routing.channels_for("latency_p95", ["email", "slack"]) == []
    assert routing.channels_for("error_rate", ["email", "slack"]) == ["email", "slack"]


# ----------------------------------------------------------------------------- end to end


def test_critical_pages_pagerduty_and_webhook_and_resolve_closes_the_incident(
    engine: Engine,
    session: Session,
    clock: Clock,
    pagerduty: PagerDutyReceiver,
    webhook: WebhookReceiver,
) -> None:
    failing_half(session)
    channels: list[Channel] = [pd(pagerduty), hook(webhook)]
    checker = alert_engine(engine, channels, clock)
    report = checker.check()
    assert action_of(report, Rule.ERROR_RATE) is Action.FIRE
    assert sorted((d.channel, d.ok) for d in report.deliveries) == [
        ("pagerduty", True),
        ("webhook", True),
    ]
    [(dedup, incident)] = pagerduty.incidents.items()
    assert incident["status"] == "triggered"
    assert incident["summary"] == "[chatmon] FIRING: Error rate 50.0 % (threshold 10 %)"
    trigger = pagerduty.events[0]
    assert (
        trigger["payload"]["severity"] == "critical" and trigger["payload"]["group"] == "error_rate"
    )
    assert trigger["payload"]["custom_details"]["Top error categories"] == {"server_error": 5}

    body = webhook.bodies[0]
    assert body["version"] == "1" and body["status"] == "firing" and body["severity"] == "critical"
    assert body["rule"] == "error_rate" and body["episode_key"] == dedup
    assert body["dedupe_key"].endswith("-webhook")
    assert webhook.headers[0]["Idempotency-Key"] == body["dedupe_key"]
    assert body["top_error_categories"] == [{"category": "server_error", "count": 5}]
    assert body["checked_at"].endswith("Z")

    record(session, *[make_call(at=11 * M + i * timedelta(seconds=5)) for i in range(45)])
    clock.advance(5 * M)
    assert action_of(checker.check(), Rule.ERROR_RATE) is Action.RESOLVE
    assert pagerduty.incidents[dedup]["status"] == "resolved"  # same dedup_key
    assert pagerduty.events[-1]["event_action"] == "resolve"
    assert webhook.bodies[-1]["status"] == "resolved"
    assert webhook.bodies[-1]["episode_key"] == dedup
    assert webhook.bodies[-1]["dedupe_key"] != body["dedupe_key"]
    assert pagerduty.rejected == []


def test_a_warning_goes_only_where_alert_routes_sends_warnings(
    engine: Engine,
    session: Session,
    clock: Clock,
    pagerduty: PagerDutyReceiver,
    webhook: WebhookReceiver,
) -> None:
    record(
        session,
        *[make_call(at=M + i * timedelta(seconds=20), total_seconds=9.0) for i in range(10)],
    )
    settings = {
        "alert_webhook_url": webhook.url,
        "pagerduty_routing_key": ROUTING_KEY,
        "alert_routes": "critical=pagerduty,webhook;warning=webhook",
    }
    checker = alert_engine(engine, [pd(pagerduty), hook(webhook)], clock, **settings)
    report = checker.check()
    assert action_of(report, Rule.LATENCY_P95) is Action.FIRE
    assert [(d.rule, d.channel) for d in report.deliveries] == [("latency_p95", "webhook")]
    assert pagerduty.events == []
    assert webhook.bodies[0]["severity"] == "warning"
    rows = session.exec(select(AlertDelivery)).all()
    assert [(row.rule, row.channel) for row in rows] == [("latency_p95", "webhook")]


def test_pagerduty_throttling_is_recorded_and_retried_with_the_same_dedup_key(
    engine: Engine, session: Session, clock: Clock, pagerduty: PagerDutyReceiver
) -> None:
    failing_half(session)
    pagerduty.status_override = 429
    checker = alert_engine(engine, [pd(pagerduty)], clock, alert_check_interval_seconds=1)
    [first] = checker.check().deliveries
    assert first.error is not None and first.error.startswith("HTTP 429 from PagerDuty")
    pagerduty.status_override = None
    [retried] = deliver_when_due(checker)
    assert retried.ok
    [(dedup, incident)] = pagerduty.incidents.items()
    assert dedup.startswith("chatmon-error_rate-") and incident["triggers"] == 1


def test_pagerduty_rejection_names_the_problem_never_the_key(
    pagerduty: PagerDutyReceiver, clock: Clock
) -> None:
    wrong = "W" * 32
    message = channel_test_message(checked_at=NOW, monitor_url="https://chat.example.com/monitor")
    with pytest.raises(DeliveryError) as caught:
        pd(pagerduty, key=wrong).send(message, key="k")
    assert "HTTP 400 from PagerDuty" in str(caught.value)
    assert "'routing_key' is invalid" in str(caught.value)
    assert wrong not in str(caught.value)


def test_pagerduty_channel_test_triggers_and_resolves_at_once(
    pagerduty: PagerDutyReceiver,
) -> None:
    message = channel_test_message(checked_at=NOW, monitor_url="https://chat.example.com/monitor")
    pd(pagerduty).send(message, key="chatmon-test-1-pagerduty")
    assert [e["event_action"] for e in pagerduty.events] == ["trigger", "resolve"]
    assert pagerduty.events[0]["payload"]["severity"] == "info"
    assert [i["status"] for i in pagerduty.incidents.values()] == ["resolved"]


def test_webhook_500_and_unreachable_never_show_the_url(webhook: WebhookReceiver) -> None:
    webhook.status = 500
    message = channel_test_message(checked_at=NOW, monitor_url="https://chat.example.com/monitor")
    with pytest.raises(DeliveryError) as caught:
        hook(webhook).send(message, key="k")
    assert str(caught.value).startswith("HTTP 500 from the webhook")
    assert "secret-token-123" not in str(caught.value)


def test_http_channels_follow_the_settings() -> None:
    assert http_channels(load_settings()) == []
    settings = load_settings(
        alert_webhook_url="https://hooks.example.com/x", pagerduty_routing_key=ROUTING_KEY
    )
    assert [channel.name for channel in http_channels(settings)] == ["webhook", "pagerduty"]


def test_every_rule_has_a_default_severity() -> None:
    """ALERT_SEVERITIES accepts the names of DEFAULT_SEVERITY: a new rule must be there."""
    from chatmon.services.alert_routing import DEFAULT_SEVERITY

    assert set(DEFAULT_SEVERITY) == {rule.value for rule in Rule}


def test_validating_settings_imports_no_alerts_module() -> None:
    """Settings are validated before the metrics directory exists (``migrate`` runs
    first): ALERT_SEVERITIES / ALERT_ROUTES validation must not import the alerts
    package, whose modules create Prometheus metrics."""
    import subprocess
    import sys

    code = (
        "import sys; from chatmon.settings import load_settings; "
        "load_settings(alert_severities='latency_p95=critical', alert_routes='warning=');"
        "print(sorted(m for m in sys.modules if m.startswith(('chatmon.services.alerts', "
        "'chatmon.metrics'))))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
