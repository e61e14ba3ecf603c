"""The Alerts panel's rows after real checks: states, messages, attempts, and what
each rule would have fired over the last week."""

from __future__ import annotations

import threading
from collections.abc import Iterator

import pytest
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from sqlmodel import Session

from chatmon.presenters.alerts_panel import REPLAYING, load_panel
from chatmon.services.alerts import last_week
from chatmon.services.alerts.channels import EmailChannel, SlackChannel
from chatmon.services.alerts.engine import AlertEngine
from chatmon.settings import load_settings
from tests.peers import WebhookReceiver, free_port
from tests.units.services.alerts.test_backtest import M, outage
from tests.units.services.alerts.test_engine import NOW, Clock, failing_half
from tests.units.services.stats_factory import T0


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
        db_engine=engine,
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
    checker = AlertEngine(db_engine=engine, settings=load_settings(), channels=[], clock=Clock(NOW))
    panel = load_panel(session=session, engine=checker)
    assert panel.history == [] and panel.attempts == []
    assert {row.status for row in panel.rules} == {"too few requests", "ok", "off"}
    assert panel.channels == "none configured"


# Tests that read the replay's figures wait for it: on a loaded machine it takes seconds
# (the page waits BACKTEST_WAIT_SECONDS, then says "replaying…").
REPLAY_WAIT = 60.0


def test_panel_shows_what_each_rule_would_have_fired_in_the_last_week(
    engine: Engine, session: Session
) -> None:
    outage(session)
    checker = AlertEngine(
        db_engine=engine,
        settings=load_settings(alert_min_requests=10, alert_window_minutes=15),
        channels=[],
        clock=Clock(T0 + 120 * M),
    )
    last_week.forget_last_week()
    rows = {
        row.rule: row
        for row in load_panel(session=session, engine=checker, replay_wait=REPLAY_WAIT).rules
    }
    assert rows["error_rate"].last_week == "1× (28 min), 2 messages"
    assert rows["latency_p95"].last_week == "never"
    assert rows["probe_failed"].last_week == "not replayed"
    assert rows["no_traffic"].last_week == ""  # off


def test_panel_replays_again_when_the_thresholds_change(engine: Engine, session: Session) -> None:
    outage(session)
    last_week.forget_last_week()
    clock = Clock(T0 + 120 * M)
    for threshold, expected in ((10, "1× (28 min), 2 messages"), (60, "never")):
        checker = AlertEngine(
            db_engine=engine,
            settings=load_settings(alert_min_requests=10, alert_error_rate_threshold=threshold),
            channels=[],
            clock=clock,
        )
        rows = {
            r.rule: r
            for r in load_panel(session=session, engine=checker, replay_wait=REPLAY_WAIT).rules
        }
        assert rows["error_rate"].last_week == expected


def test_panel_does_not_wait_for_a_slow_replay(engine: Engine, session: Session) -> None:
    """While the replay thread is busy the panel reads at once, saying "replaying…",
    and shows the figures once the replay is done."""
    outage(session)
    last_week.forget_last_week()
    checker = AlertEngine(
        db_engine=engine,
        settings=load_settings(alert_min_requests=10),
        channels=[],
        clock=Clock(T0 + 120 * M),
    )
    release = threading.Event()
    busy = last_week._replayer.submit(release.wait, 30)  # the one replay thread, held
    try:
        week = last_week.last_week(engine=checker, now=T0 + 120 * M, wait=0.2)
        assert week is None
        rows = {r.rule: r for r in load_panel(session=session, engine=checker).rules}
        assert rows["error_rate"].last_week == REPLAYING
    finally:
        release.set()
        busy.result(timeout=30)
    rows = {
        r.rule: r
        for r in load_panel(session=session, engine=checker, replay_wait=REPLAY_WAIT).rules
    }
    assert rows["error_rate"].last_week == "1× (28 min), 2 messages"
