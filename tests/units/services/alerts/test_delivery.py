"""Delivery between processes that crash, pause and disagree about the time, on SQLite and
PostgreSQL, against a real SMTP server, a real webhook receiver and a server that stalls.

Each "process" is an :class:`AlertEngine` with a connection pool of its own. A process
that dies is a channel that raises :class:`ProcessDied` (a BaseException, as a kill is:
nothing in the engine catches it) right after a real send; a process that pauses (a
stopped VM, a long GC) is a channel that waits after a real send before returning.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import pytest
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from chatmon.db import make_engine
from chatmon.models import AlertAttempt
from chatmon.services.alerts import store
from chatmon.services.alerts.channels import SEND_DEADLINE, Channel, EmailChannel, SlackChannel
from chatmon.services.alerts.engine import SEND_LEASE, AlertEngine, DeliveryOutcome
from chatmon.services.alerts.inputs import now_utc
from chatmon.services.alerts.messages import AlertMessage
from chatmon.settings import load_settings
from tests.peers import SMTPSink, WebhookReceiver, free_port
from tests.units.services.alerts.slow_peers import SMTP_DRIP, StallingServer
from tests.units.services.alerts.test_engine import (
    NOW,
    Clock,
    alert_engine,
    deliver_when_due,
    deliveries,
    failing_half,
)

LEASE = timedelta(seconds=3)  # short, so a test can outlive it
DEADLINE = 2.0  # each test channel's send deadline: shorter than the lease, and ample here
M = timedelta(minutes=1)


class ProcessDied(BaseException):
    """The process is killed here: its message has left, its outcome is not recorded."""


@dataclass
class DiesAfterSending:
    """A real channel in a process that dies as soon as its send returns."""

    inner: Channel

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def deadline(self) -> float:
        return self.inner.deadline

    def send(self, message: AlertMessage, *, key: str) -> None:
        self.inner.send(message, key=key)
        raise ProcessDied


@dataclass
class PausesAfterSending:
    """A real channel in a process that freezes after its send, until ``resume`` is set."""

    inner: Channel
    attempted: threading.Event = field(default_factory=threading.Event)
    resume: threading.Event = field(default_factory=threading.Event)

    @property
    def name(self) -> str:
        return self.inner.name

    @property
    def deadline(self) -> float:
        return self.inner.deadline

    def send(self, message: AlertMessage, *, key: str) -> None:
        try:
            self.inner.send(message, key=key)
        finally:
            self.attempted.set()
            self.resume.wait(60)


def email(port: int, **kwargs: Any) -> EmailChannel:
    values: dict[str, Any] = {
        "host": "127.0.0.1",
        "port": port,
        "sender": "chatmon@example.com",
        "recipients": ["oncall@example.com"],
        "starttls": False,
        "timeout": 5.0,
        "deadline": DEADLINE,
    }
    values.update(kwargs)
    return EmailChannel(**values)


def slack(url: str) -> SlackChannel:
    return SlackChannel(webhook_url=SecretStr(url), timeout=5.0, deadline=DEADLINE)


@pytest.fixture
def sink() -> Iterator[SMTPSink]:
    with SMTPSink() as server:
        yield server


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


Start = Callable[..., AlertEngine]


@pytest.fixture
def processes(db_url: str) -> Iterator[Start]:
    """``start(channels, clock=..., lease=LEASE, **settings)``: a new process's engine."""
    pools: list[Engine] = []

    def start(
        channels: list[Any],
        *,
        clock: Callable[[], datetime],
        lease: timedelta = LEASE,
        **settings: object,
    ) -> AlertEngine:
        pool = make_engine(db_url)
        pools.append(pool)
        return alert_engine(
            pool,
            channels,
            clock,
            lease=lease,
            **settings,  # type: ignore[arg-type]  # fields built in a dict
        )

    yield start
    for pool in pools:
        pool.dispose()


def attempts(session: Session) -> list[AlertAttempt]:
    session.expire_all()
    return list(session.exec(select(AlertAttempt).order_by(AlertAttempt.id)).all())


def slack_keys(body: dict[str, Any]) -> tuple[str, str]:
    """The dedupe key as a program reads it (metadata) and as people see it (context)."""
    context = next(b for b in reversed(body["blocks"]) if b["type"] == "context")
    return body["metadata"]["event_payload"]["dedupe_key"], context["elements"][0]["text"]


def pending_alert(session: Session, *, channels: list[str]) -> int:
    """A firing message waiting for delivery, created now (by the real clock)."""
    message = AlertMessage(
        kind="firing",
        rule="error_rate",
        title="Error rate",
        summary="50.0 % of requests failed",
        value="50.0 %",
        threshold="10 %",
        window="last 15 min",
        checked_at="now",
        firing_since="now",
        monitor_url="https://chat.example.com/monitor",
    )
    note = store.add_notification(
        session=session,
        message=message,
        value=50.0,
        threshold=10.0,
        channels=channels,
        now=now_utc(),
    )
    session.commit()
    assert note.id is not None
    return note.id


def real_clock(offset: timedelta) -> Callable[[], datetime]:
    """This host's clock, ``offset`` away from the database's."""
    return lambda: now_utc() + offset


# ----------------------------------------------------------------------------- crash after send


def test_a_crash_between_sending_and_recording_resends_the_same_message_once(
    processes: Start, session: Session, sink: SMTPSink, receiver: WebhookReceiver
) -> None:
    failing_half(session)
    channels: list[Channel] = [email(sink.port), slack(receiver.url)]
    doomed = processes([DiesAfterSending(c) for c in channels], clock=Clock(NOW))
    with pytest.raises(ProcessDied):
        doomed.check()
    assert (sink.count(), receiver.count()) == (1, 1)  # the messages went out...
    assert {d.status for d in deliveries(session).values()} == {"sending"}  # ...unrecorded

    survivor = processes(channels, clock=Clock(NOW + M))
    resent = deliver_when_due(survivor, count=2)  # once the dead process's lease is over
    assert sorted((d.channel, d.ok, d.recorded) for d in resent) == [
        ("email", True, True),
        ("slack", True, True),
    ]
    first, second = sink.messages
    assert first["Message-ID"] == second["Message-ID"]  # the mail client can tell it is one
    assert first["Message-ID"].startswith("<chatmon-")
    assert first["Message-ID"].endswith("-email@example.com>")
    key, shown = slack_keys(receiver.bodies[0])
    assert slack_keys(receiver.bodies[1]) == (key, shown)
    assert key in shown
    for stored in deliveries(session).values():
        assert (stored.status, stored.attempts, stored.due_at) == ("sent", 2, None)
    assert sorted((a.channel, a.result) for a in attempts(session)) == [
        ("email", "sent"),
        ("slack", "sent"),
    ]


def test_the_dedupe_key_differs_between_messages_and_channels(
    processes: Start, session: Session, sink: SMTPSink, receiver: WebhookReceiver
) -> None:
    pending_alert(session, channels=["email", "slack"])
    pending_alert(session, channels=["email", "slack"])
    process = processes([email(sink.port), slack(receiver.url)], clock=real_clock(timedelta(0)))
    assert len(deliver_when_due(process, count=4)) == 4
    assert len({m["Message-ID"] for m in sink.messages}) == 2
    email_keys = {m["Message-ID"][1:].partition("@")[0] for m in sink.messages}
    slack_dedupe = {slack_keys(body)[0] for body in receiver.bodies}
    assert len(slack_dedupe) == 2 and not email_keys & slack_dedupe


# ----------------------------------------------------------------------------- late finisher


@pytest.mark.parametrize("taker_done_first", [True, False], ids=["taker-done", "taker-sending"])
def test_a_late_finisher_does_not_overwrite_the_process_that_took_over(
    processes: Start, session: Session, sink: SMTPSink, taker_done_first: bool
) -> None:
    failing_half(session)
    frozen = PausesAfterSending(email(free_port()))  # its send fails, then it freezes
    slow = processes([frozen], clock=Clock(NOW))
    taker = PausesAfterSending(email(sink.port))  # sends, then waits to be let go
    other = processes([taker], clock=Clock(NOW))
    if taker_done_first:
        taker.resume.set()
    reports: list[Any] = []
    taken: list[DeliveryOutcome] = []
    threads = [
        threading.Thread(target=lambda: reports.append(slow.check())),
        threading.Thread(target=lambda: taken.extend(deliver_when_due(other))),
    ]
    threads[0].start()
    try:
        assert frozen.attempted.wait(30)
        threads[1].start()  # it takes over once the frozen process's lease has run out
        assert taker.attempted.wait(30)
        if taker_done_first:
            threads[1].join(30)
            assert [(t.ok, t.recorded) for t in taken] == [(True, True)]
        frozen.resume.set()  # the frozen process wakes up and records its failure...
        threads[0].join(30)
        (late,) = reports[0].deliveries
        assert (late.ok, late.recorded) == (False, False)  # ...or rather, does not
        stored = deliveries(session)["email"]
        assert stored.status == ("sent" if taker_done_first else "sending")
        assert stored.attempts == 2
    finally:
        frozen.resume.set()
        taker.resume.set()
        for thread in threads:
            if thread.ident is not None:  # started
                thread.join(30)

    assert [(t.ok, t.recorded) for t in taken] == [(True, True)]
    stored = deliveries(session)["email"]
    assert (stored.status, stored.attempts, stored.last_error) == ("sent", 2, None)
    assert stored.due_at is None
    rows = attempts(session)
    assert sorted(a.result for a in rows) == ["failed", "sent"]  # the late failure: history only
    assert "not recorded" in (next(a for a in rows if a.result == "failed").error or "")
    assert other.deliver_due() == []  # nothing was rescheduled by the late failure
    assert sink.count() == 1


def test_finish_records_only_the_claim_it_holds(session: Session) -> None:
    note_id = pending_alert(session, channels=["email"])

    def claim(lease: timedelta) -> store.Claim:
        found = store.claim_delivery(
            session=session, notification_id=note_id, channel="email", lease=lease, now=NOW
        )
        session.commit()
        assert found is not None
        return found

    first = claim(timedelta(0))  # a lease that is over at once: anyone may take it over
    second = claim(SEND_LEASE)
    assert (first.attempt, second.attempt) == (1, 2) and first.token != second.token
    assert (
        store.claim_delivery(
            session=session, notification_id=note_id, channel="email", lease=SEND_LEASE, now=NOW
        )
        is None
    )  # the second claim's lease is live
    assert (
        store.finish_delivery(
            session=session, claim=first, error="late failure", retry_after=M, now=NOW
        )
        is False
    )
    assert (
        store.finish_delivery(session=session, claim=second, error=None, retry_after=None, now=NOW)
        is True
    )
    assert (
        store.finish_delivery(session=session, claim=second, error="twice", retry_after=M, now=NOW)
        is False
    )  # a claim records one outcome
    session.commit()
    stored = deliveries(session)["email"]
    assert (stored.status, stored.last_error, stored.due_at) == ("sent", None, None)


# ----------------------------------------------------------------------------- clock skew


def test_a_host_whose_clock_runs_ahead_cannot_take_a_live_lease(
    processes: Start, session: Session, sink: SMTPSink
) -> None:
    pending_alert(session, channels=["email"])
    frozen = PausesAfterSending(email(sink.port))
    holder = processes([frozen], clock=real_clock(timedelta(0)), lease=timedelta(seconds=30))
    thread = threading.Thread(target=holder.deliver_due)
    thread.start()
    try:
        assert frozen.attempted.wait(30)  # sent; the 30 s lease is live on the database's clock
        ahead = processes([email(sink.port)], clock=real_clock(timedelta(minutes=10)))
        assert ahead.deliver_due() == []
        assert ahead.check().deliveries == []
    finally:
        frozen.resume.set()
        thread.join(30)
    assert sink.count() == 1
    stored = deliveries(session)["email"]
    assert (stored.status, stored.attempts) == ("sent", 1)


def test_a_host_whose_clock_runs_behind_takes_over_when_the_lease_ends(
    processes: Start, session: Session, sink: SMTPSink
) -> None:
    pending_alert(session, channels=["email"])
    doomed = processes([DiesAfterSending(email(sink.port))], clock=real_clock(timedelta(0)))
    with pytest.raises(ProcessDied):
        doomed.deliver_due()
    behind = processes([email(sink.port)], clock=real_clock(-timedelta(minutes=10)))
    (taken,) = deliver_when_due(behind)  # 3 s of the database's time, not 10 min of its own
    assert taken.ok
    assert sink.count() == 2
    stored = deliveries(session)["email"]
    assert (stored.status, stored.attempts) == ("sent", 2)


def test_a_backoff_set_by_a_host_running_ahead_holds_for_a_host_on_time(
    processes: Start, session: Session
) -> None:
    pending_alert(session, channels=["email"])
    port = free_port()  # nobody listens: the first attempt fails
    ahead = processes(
        [email(port)], clock=real_clock(timedelta(minutes=10)), alert_check_interval_seconds=3
    )
    (failed,) = ahead.deliver_due()
    assert not failed.ok
    on_time = processes([email(port)], clock=real_clock(timedelta(0)))
    assert on_time.deliver_due() == []  # 3 s of backoff for everyone...
    with SMTPSink(port=port) as back:
        (retried,) = deliver_when_due(on_time)  # ...and not 10 min more for the host on time
        assert retried.ok and back.count() == 1


# ----------------------------------------------------------------------------- send deadline


def test_an_smtp_server_that_stalls_fails_at_the_deadline_and_is_retried_later(
    processes: Start, session: Session
) -> None:
    failing_half(session)
    with StallingServer(drip=SMTP_DRIP) as stalled:  # accepts, then greets forever
        port = stalled.port
        checker = processes(
            [email(port, timeout=30.0)],
            clock=Clock(NOW),
            alert_check_interval_seconds=1,
        )
        started = time.monotonic()
        report = checker.check()
        elapsed = time.monotonic() - started
    (failed,) = report.deliveries
    assert not failed.ok and failed.recorded
    assert f"{DEADLINE:g} s send deadline" in (failed.error or "")
    assert elapsed < 15  # the deadline, not the 30 s read timeout (which a trickle never hits)
    stored = deliveries(session)["email"]
    assert (stored.status, stored.attempts) == ("failed", 1)
    assert stored.due_at is not None and "deadline" in (stored.last_error or "")

    with SMTPSink(port=port) as sink:  # the server recovers
        (retried,) = deliver_when_due(checker)
        assert retried.ok
    assert sink.count() == 1
    assert deliveries(session)["email"].status == "sent"


# ----------------------------------------------------------------------------- lease > deadline


def test_the_default_lease_outlasts_the_default_send_deadline() -> None:
    assert SEND_LEASE.total_seconds() > SEND_DEADLINE
    engine = AlertEngine(
        db_engine=make_engine("sqlite://"),
        settings=load_settings(),
        channels=[
            EmailChannel(host="h", port=25, sender="a@example.com", recipients=["b@x.y"]),
            SlackChannel(webhook_url=SecretStr("https://hooks.example.com/x")),
        ],
    )
    assert engine.channel_names == ["email", "slack"]


def test_an_engine_refuses_a_lease_no_longer_than_a_send_deadline() -> None:
    channel = SlackChannel(webhook_url=SecretStr("https://hooks.example.com/x"), deadline=5.0)
    with pytest.raises(ValueError, match="slack.*5 s.*lease.*5 s"):
        AlertEngine(
            db_engine=make_engine("sqlite://"),
            settings=load_settings(),
            channels=[channel],
            lease=timedelta(seconds=5),
        )
