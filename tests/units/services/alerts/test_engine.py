"""Alert checks end to end against a real database (SQLite and PostgreSQL), a real SMTP
server and a real webhook receiver: fire once, cooldown, resolve, restarts, several
concurrent checkers, failed deliveries retried without re-sending the others."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from chatmon.db import make_engine
from chatmon.models import AlertAttempt, AlertDelivery, AlertNotification
from chatmon.services.alerts.channels import Channel, EmailChannel, SlackChannel
from chatmon.services.alerts.engine import (
    SEND_LEASE,
    AlertEngine,
    CheckReport,
    DeliveryOutcome,
    retry_delay,
)
from chatmon.services.alerts.lifecycle import Action
from chatmon.services.alerts.rules import Rule, Verdict
from chatmon.settings import load_settings
from tests.peers import SMTPSink, WebhookReceiver, free_port, text_part
from tests.units.services.stats_factory import T0, make_call, record

M = timedelta(minutes=1)
NOW = T0 + 10 * M


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


@pytest.fixture
def sink() -> Iterator[SMTPSink]:
    with SMTPSink() as server:
        yield server


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


def email_to(port: int) -> EmailChannel:
    return EmailChannel(
        host="127.0.0.1",
        port=port,
        sender="chatmon@example.com",
        recipients=["oncall@example.com"],
        starttls=False,
        timeout=5.0,
    )


@pytest.fixture
def channels(sink: SMTPSink, receiver: WebhookReceiver) -> list[Channel]:
    return [email_to(sink.port), SlackChannel(webhook_url=SecretStr(receiver.url))]


@pytest.fixture
def clock() -> Clock:
    return Clock(NOW)


def alert_engine(
    engine: Engine,
    channels: list[Channel],
    clock: Clock,
    *,
    lease: timedelta = SEND_LEASE,
    **settings: object,
) -> AlertEngine:
    values: dict[str, object] = {
        "alert_min_requests": 4,
        "alert_window_minutes": 15,
        "alert_check_interval_seconds": 60,
        "alert_cooldown_hours": 1,
        "public_url": "https://chat.example.com",
    }
    values.update(settings)
    return AlertEngine(
        db_engine=engine,
        settings=load_settings(**values),
        channels=channels,
        clock=clock,
        lease=lease,
    )


def deliver_when_due(
    checker: AlertEngine, *, count: int = 1, timeout: float = 30
) -> list[DeliveryOutcome]:
    """Poll ``deliver_due`` until ``count`` deliveries were attempted: leases and retry
    backoffs run on the database's clock, which a test cannot move by hand."""
    outcomes: list[DeliveryOutcome] = []
    deadline = time.monotonic() + timeout
    while len(outcomes) < count and time.monotonic() < deadline:
        outcomes += checker.deliver_due()
        time.sleep(0.1)
    return outcomes


def failing_half(session: Session, *, start: timedelta = M, count: int = 10) -> list[str]:
    """``count`` requests one every 30 s from ``T0 + start``, every other one a server error."""
    calls = [
        make_call(
            at=start + i * timedelta(seconds=30),
            status="error" if i % 2 else "ok",
            error_category="server_error" if i % 2 else None,
        )
        for i in range(count)
    ]
    record(session, *calls)
    return [call.correlation_id for call in calls if call.status == "error"]


def action_of(report: CheckReport, rule: Rule) -> Action:
    return next(outcome.action for outcome in report.rules if outcome.finding.rule is rule)


def alerts_total(rule: str, channel: str, result: str) -> float:
    labels = {"rule": rule, "channel": channel, "result": result}
    return REGISTRY.get_sample_value("chatmon_alerts_total", labels) or 0.0


def test_error_rate_fires_once_by_email_and_slack_with_the_figures(
    engine: Engine,
    session: Session,
    channels: list[Channel],
    clock: Clock,
    sink: SMTPSink,
    receiver: WebhookReceiver,
) -> None:
    failed_ids = failing_half(session)
    sent_before = alerts_total("error_rate", "email", "sent")
    report = alert_engine(engine, channels, clock).check()

    assert action_of(report, Rule.ERROR_RATE) is Action.FIRE
    assert [(d.channel, d.ok) for d in sorted(report.deliveries, key=lambda d: d.channel)] == [
        ("email", True),
        ("slack", True),
    ]
    assert sink.subjects() == ["[chatmon] FIRING: Error rate 50.0 % (threshold 10 %)"]
    text = text_part(sink.messages[0])
    assert "5 of 10" in text and "last 15 min" in text and "server_error (5)" in text
    assert failed_ids[-1] in text  # the most recent failed request's correlation id
    assert "https://chat.example.com/monitor" in text
    assert receiver.texts() == ["[chatmon] FIRING: Error rate 50.0 % (threshold 10 %)"]
    assert failed_ids[-1] in str(receiver.bodies[0]["blocks"])
    assert alerts_total("error_rate", "email", "sent") == sent_before + 1


def test_nothing_more_during_the_cooldown_even_after_a_restart(
    engine: Engine,
    session: Session,
    channels: list[Channel],
    clock: Clock,
    sink: SMTPSink,
    receiver: WebhookReceiver,
) -> None:
    failing_half(session)
    alert_engine(engine, channels, clock).check()
    clock.advance(M)
    assert action_of(alert_engine(engine, channels, clock).check(), Rule.ERROR_RATE) is Action.NONE
    clock.advance(M)
    restarted = alert_engine(engine, channels, clock)  # a new process: state is in the DB
    assert action_of(restarted.check(), Rule.ERROR_RATE) is Action.NONE
    assert (sink.count(), receiver.count()) == (1, 1)


def test_still_firing_after_the_cooldown_repeats_once(
    engine: Engine,
    session: Session,
    channels: list[Channel],
    clock: Clock,
    sink: SMTPSink,
) -> None:
    failing_half(session)
    checker = alert_engine(
        engine, channels, clock, alert_cooldown_hours=0.05, alert_window_minutes=60
    )
    checker.check()
    clock.advance(timedelta(minutes=3))  # the cooldown (3 min) has passed
    assert action_of(checker.check(), Rule.ERROR_RATE) is Action.REPEAT
    assert action_of(checker.check(), Rule.ERROR_RATE) is Action.NONE
    assert sink.subjects()[1].startswith("[chatmon] STILL FIRING: Error rate")


def test_resolved_message_when_the_rule_recovers(
    engine: Engine,
    session: Session,
    channels: list[Channel],
    clock: Clock,
    sink: SMTPSink,
    receiver: WebhookReceiver,
) -> None:
    failing_half(session)
    checker = alert_engine(engine, channels, clock)
    checker.check()
    record(session, *[make_call(at=11 * M + i * timedelta(seconds=5)) for i in range(45)])
    clock.advance(5 * M)  # 5 errors out of 55 requests: 9.1 %
    report = checker.check()
    assert action_of(report, Rule.ERROR_RATE) is Action.RESOLVE
    assert sink.subjects()[1] == "[chatmon] RESOLVED: Error rate is back to 9.1 %"
    assert receiver.texts()[1] == "[chatmon] RESOLVED: Error rate is back to 9.1 %"
    clock.advance(M)
    assert action_of(checker.check(), Rule.ERROR_RATE) is Action.NONE
    assert (sink.count(), receiver.count()) == (2, 2)


def test_concurrent_checkers_send_exactly_one_message(
    db_url: str,
    session: Session,
    channels: list[Channel],
    clock: Clock,
    sink: SMTPSink,
    receiver: WebhookReceiver,
) -> None:
    failing_half(session)
    engines = [make_engine(db_url) for _ in range(4)]  # own pools, like separate processes
    checkers = [alert_engine(e, channels, clock) for e in engines]
    barrier = threading.Barrier(len(checkers))
    reports: list[CheckReport] = []
    errors: list[BaseException] = []

    def run(checker: AlertEngine) -> None:
        barrier.wait()
        try:
            reports.append(checker.check())
        except BaseException as exc:  # noqa: BLE001 - surfaced by the assertion below
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(c,)) for c in checkers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    for e in engines:
        e.dispose()

    assert errors == []
    assert sum(action_of(r, Rule.ERROR_RATE) is Action.FIRE for r in reports) == 1
    assert (sink.count(), receiver.count()) == (1, 1)
    assert len(session.exec(select(AlertNotification)).all()) == 1
    assert len(session.exec(select(AlertAttempt)).all()) == 2


def deliveries(session: Session) -> dict[str, AlertDelivery]:
    session.expire_all()
    return {d.channel: d for d in session.exec(select(AlertDelivery)).all()}


def test_smtp_down_is_recorded_and_retried_without_resending_slack(
    engine: Engine,
    session: Session,
    clock: Clock,
    receiver: WebhookReceiver,
) -> None:
    failing_half(session)
    port = free_port()  # nobody listens yet: the SMTP server is down
    channels: list[Channel] = [email_to(port), SlackChannel(webhook_url=SecretStr(receiver.url))]
    checker = alert_engine(engine, channels, clock, alert_check_interval_seconds=1)

    report = checker.check()
    assert {d.channel: d.ok for d in report.deliveries} == {"email": False, "slack": True}
    stored = deliveries(session)
    assert stored["email"].status == "failed" and stored["email"].attempts == 1
    assert "Connection refused" in (stored["email"].last_error or "")
    assert stored["slack"].status == "sent"

    with SMTPSink(port=port) as sink:
        retried = deliver_when_due(checker)  # one check interval later (database clock)
        assert [(d.channel, d.ok) for d in retried] == [("email", True)]
    assert sink.subjects() == ["[chatmon] FIRING: Error rate 50.0 % (threshold 10 %)"]
    assert receiver.count() == 1
    attempts = session.exec(select(AlertAttempt).order_by(AlertAttempt.id)).all()
    assert [(a.channel, a.result) for a in attempts if a.channel == "email"] == [
        ("email", "failed"),
        ("email", "sent"),
    ]


def test_webhook_500_is_recorded_and_retried_without_resending_email(
    engine: Engine,
    session: Session,
    channels: list[Channel],
    clock: Clock,
    sink: SMTPSink,
    receiver: WebhookReceiver,
) -> None:
    failing_half(session)
    receiver.status = 500
    checker = alert_engine(engine, channels, clock, alert_check_interval_seconds=3)
    report = checker.check()
    failed = [d for d in report.deliveries if not d.ok]
    assert [(d.channel, d.error) for d in failed] == [
        ("slack", "HTTP 500 from the webhook: internal_error")
    ]
    assert deliveries(session)["slack"].last_error == "HTTP 500 from the webhook: internal_error"

    assert checker.check().deliveries == []  # not due yet: the backoff is one check interval
    receiver.status = 200
    assert [(d.channel, d.ok) for d in deliver_when_due(checker)] == [("slack", True)]
    assert (sink.count(), receiver.count()) == (1, 1)
    assert receiver.posts() == 2


def test_a_broken_channel_never_stops_the_other_and_secrets_stay_out_of_the_db(
    engine: Engine,
    session: Session,
    clock: Clock,
    sink: SMTPSink,
) -> None:
    failing_half(session)
    secret_url = f"http://127.0.0.1:{free_port()}/services/T9/B9/super-secret-token"
    channels: list[Channel] = [
        email_to(sink.port),
        SlackChannel(webhook_url=SecretStr(secret_url), timeout=2),
    ]
    alert_engine(engine, channels, clock).check()
    assert sink.count() == 1
    stored = deliveries(session)
    assert stored["slack"].status == "failed"
    for row in session.exec(select(AlertAttempt)).all():
        assert "super-secret-token" not in (row.error or "")
    for note in session.exec(select(AlertNotification)).all():
        assert "super-secret-token" not in note.message


def test_without_channels_the_firing_is_still_recorded(
    engine: Engine, session: Session, clock: Clock
) -> None:
    failing_half(session)
    report = alert_engine(engine, [], clock).check()
    assert action_of(report, Rule.ERROR_RATE) is Action.FIRE
    notes = session.exec(select(AlertNotification)).all()
    assert [(n.rule, n.kind, n.value) for n in notes] == [("error_rate", "firing", 50.0)]
    assert session.exec(select(AlertDelivery)).all() == []


def test_costs_last_hour_and_since_utc_midnight(
    engine: Engine, session: Session, clock: Clock
) -> None:
    midnight = T0.replace(hour=0)
    record(
        session,
        make_call(at=midnight - 30 * M, cost_usd=100.0),  # yesterday: counts nowhere
        make_call(at=-3 * 60 * M, cost_usd=0.75),  # today, not in the last hour
        make_call(at=-20 * M, cost_usd=0.5),
        make_call(at=5 * M, cost_usd=0.6),
    )
    checker = alert_engine(engine, [], clock, alert_cost_threshold=1.0, daily_cost_threshold=1.5)
    obs, findings = checker.observe()
    assert obs.cost_last_hour == pytest.approx(1.1)
    assert obs.cost_today == pytest.approx(1.85)
    verdicts = {f.rule: f.verdict for f in findings}
    assert verdicts[Rule.COST_HOURLY] is Verdict.FIRING
    assert verdicts[Rule.COST_DAILY] is Verdict.FIRING


def test_breaker_rule_sees_this_process_and_refusals_anywhere(
    engine: Engine, session: Session, clock: Clock
) -> None:
    here = AlertEngine(
        db_engine=engine,
        settings=load_settings(),
        channels=[],
        clock=clock,
        breaker_snapshot=lambda: {"openai/a": "open", "openai/b": "half_open"},
    )
    assert here.observe()[0].open_breakers == ("openai/a",)
    record(
        session,
        make_call(at=9 * M, model="openai/c", status="error", error_category="circuit_open"),
    )
    elsewhere = AlertEngine(db_engine=engine, settings=load_settings(), channels=[], clock=clock)
    obs, findings = elsewhere.observe()
    assert obs.open_breakers == ("openai/c",)
    assert next(f for f in findings if f.rule is Rule.BREAKER_OPEN).firing
    clock.advance(5 * M)  # refusals older than the lookback no longer count
    assert elsewhere.observe()[0].open_breakers == ()


def test_no_traffic_counts_from_the_last_request(
    engine: Engine, session: Session, clock: Clock
) -> None:
    record(session, make_call(at=-45 * M))
    checker = alert_engine(engine, [], clock, alert_no_traffic_minutes=30)
    report = checker.check()
    assert action_of(report, Rule.NO_TRAFFIC) is Action.FIRE
    record(session, make_call(at=10 * M - timedelta(seconds=1)))
    clock.advance(M)
    assert action_of(checker.check(), Rule.NO_TRAFFIC) is Action.RESOLVE


def test_send_test_reports_each_channel_and_is_never_retried(
    engine: Engine,
    session: Session,
    channels: list[Channel],
    clock: Clock,
    sink: SMTPSink,
    receiver: WebhookReceiver,
) -> None:
    receiver.status = 500
    checker = alert_engine(engine, channels, clock)
    outcomes = {o.channel: o for o in checker.send_test()}
    assert outcomes["email"].ok and not outcomes["slack"].ok
    assert "HTTP 500" in (outcomes["slack"].error or "")
    assert sink.subjects() == ["[chatmon] Test message: alerts reach this channel"]
    receiver.status = 200
    clock.advance(timedelta(minutes=10))
    assert checker.check().deliveries == []  # a failed test is reported, not retried
    kinds = [(n.rule, n.kind) for n in session.exec(select(AlertNotification)).all()]
    assert kinds == [("test", "test")]


@pytest.mark.parametrize(
    ("attempts", "interval", "seconds"),
    [(1, 60, 60), (2, 60, 120), (3, 60, 240), (4, 60, 300), (9, 60, 300), (1, 1, 1), (3, 600, 600)],
)
def test_retry_delay_doubles_up_to_five_minutes(
    attempts: int, interval: float, seconds: float
) -> None:
    assert retry_delay(attempts=attempts, interval=interval) == timedelta(seconds=seconds)


def test_firing_again_within_the_cooldown_is_suppressed_and_counted(
    engine: Engine,
    session: Session,
    channels: list[Channel],
    clock: Clock,
    sink: SMTPSink,
    receiver: WebhookReceiver,
) -> None:
    failing_half(session)
    checker = alert_engine(engine, channels, clock)
    checker.check()
    record(session, *[make_call(at=11 * M + i * timedelta(seconds=5)) for i in range(45)])
    clock.advance(5 * M)
    assert action_of(checker.check(), Rule.ERROR_RATE) is Action.RESOLVE
    suppressed_before = alerts_total("error_rate", "slack", "suppressed")
    record(
        session,
        *[
            make_call(
                at=15 * M + i * timedelta(seconds=1), status="error", error_category="timeout"
            )
            for i in range(20)
        ],
    )
    clock.advance(M)  # 25 of 75 failed: firing again, 7 minutes after the first message
    assert action_of(checker.check(), Rule.ERROR_RATE) is Action.SUPPRESS
    assert alerts_total("error_rate", "slack", "suppressed") == suppressed_before + 1
    assert (sink.count(), receiver.count()) == (2, 2)  # the firing and the resolved only
