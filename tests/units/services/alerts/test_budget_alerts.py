"""Budget alerts through the real engine, database and a local Slack webhook receiver."""

from __future__ import annotations

import json
from datetime import timedelta

from pydantic import SecretStr
from sqlalchemy.engine import Engine
from sqlmodel import Session

from chatmon.services.alerts.channels import SlackChannel
from chatmon.services.alerts.engine import AlertEngine
from chatmon.services.alerts.lifecycle import Action
from chatmon.services.alerts.rules import Rule
from chatmon.settings import load_settings
from tests.peers import WebhookReceiver
from tests.units.services.stats_factory import T0, make_call, record

M = timedelta(minutes=1)


class _Clock:
    def __init__(self) -> None:
        self.now = T0 + 10 * M

    def __call__(self):
        return self.now


def _checker(engine: Engine, receiver: WebhookReceiver, clock: _Clock) -> AlertEngine:
    settings = load_settings(
        daily_budget_usd=10.0,
        budget_action="refuse",
        alert_cost_threshold=1000.0,
        alert_min_requests=1000,
        public_url="https://chat.example.com",
    )
    channel = SlackChannel(webhook_url=SecretStr(receiver.url))
    return AlertEngine(db_engine=engine, settings=settings, channels=[channel], clock=clock)


def _action(report, rule: Rule) -> Action:
    return next(o.action for o in report.rules if o.finding.rule is rule)


def test_warning_level_alerts_once_through_slack(engine: Engine, session: Session) -> None:
    clock = _Clock()
    record(session, *[make_call(at=i * M, cost_usd=0.6) for i in range(10)])  # $6: 60 %
    with WebhookReceiver() as receiver:
        checker = _checker(engine, receiver, clock)
        first = checker.check()
        assert _action(first, Rule.BUDGET_DAILY) is Action.FIRE
        clock.now += 2 * M
        assert _action(checker.check(), Rule.BUDGET_DAILY) is Action.NONE  # once
        clock.now += 61 * M  # past the cooldown: the 50 % level is still not told again
        assert _action(checker.check(), Rule.BUDGET_DAILY) is Action.NONE
        record(session, make_call(at=clock.now - M, cost_usd=2.5))  # $8.50: 85 %
        assert _action(checker.check(), Rule.BUDGET_DAILY) is Action.REPEAT  # 80 % is new
        clock.now += 61 * M
        assert _action(checker.check(), Rule.BUDGET_DAILY) is Action.NONE
        texts = json.dumps(receiver.bodies)
    assert "60 % of the daily budget of $10.00 spent" in texts
    assert "past the 50 % warning level" in texts
    assert "past the 80 % warning level" in texts


def test_forecast_fires_before_the_limit_from_a_spike(engine: Engine, session: Session) -> None:
    clock = _Clock()
    clock.now = T0 + 60 * M
    # the last hour: $0.5 every 5 minutes ($6/h), $5.50 spent: $10 is 45 minutes away
    record(
        session,
        *[
            make_call(at=5 * (i + 1) * M, cost_usd=0.5, conversation_id="conv-hot")
            for i in range(11)
        ],
    )
    with WebhookReceiver() as receiver:
        report = _checker(engine, receiver, clock).check()
        finding = next(o.finding for o in report.rules if o.finding.rule is Rule.BUDGET_FORECAST)
        assert _action(report, Rule.BUDGET_FORECAST) is Action.FIRE, finding.summary
        texts = json.dumps(receiver.bodies)
    assert "at the current pace the daily budget of $10.00 is reached at" in finding.summary
    assert "conversation conv-hot" in finding.summary
    assert "at the current pace" in texts
