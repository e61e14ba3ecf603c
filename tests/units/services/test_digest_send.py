"""The scheduled digest goes out through the real alert channels (an aiosmtpd server and
the local webhook receiver), once per period across processes, and a failed send is
recorded and retried without making the other channel send twice."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from pydantic import SecretStr
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from chatmon.models import PeriodicClaim
from chatmon.observability import series
from chatmon.services import periodic
from chatmon.services.alerts.channels import EmailChannel, SlackChannel
from chatmon.services.digest_send import (
    DigestChannel,
    DigestSender,
    delivery_key,
    digest_channels,
    slots,
)
from chatmon.settings import SettingsError, load_settings
from tests.peers import (
    Certificate,
    SMTPSink,
    WebhookReceiver,
    free_port,
    html_part,
    text_part,
)
from tests.units.services.alerts.slow_peers import SMTP_DRIP, StallingServer

UTC_ZONE = ZoneInfo("UTC")
PARIS = ZoneInfo("Europe/Paris")
PASSWORD = "digest-smtp-password-42"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


@pytest.fixture
def sink() -> Iterator[SMTPSink]:
    with SMTPSink() as server:
        yield server


def email_channel(port: int, **kwargs: object) -> EmailChannel:
    options: dict[str, object] = {"starttls": False, "timeout": 2.0, "deadline": 3.0} | kwargs
    return EmailChannel(
        host="127.0.0.1",
        port=port,
        sender="chatmon@example.com",
        recipients=["ops@example.com"],
        **options,  # type: ignore[arg-type]  # the dataclass's own keyword arguments
    )


def slack_channel(receiver: WebhookReceiver) -> SlackChannel:
    return SlackChannel(webhook_url=SecretStr(receiver.url), timeout=2.0, deadline=3.0)


def sender(engine: Engine, channels: list[DigestChannel], **settings: object) -> DigestSender:
    config = load_settings(
        digest_schedule="daily", slack_webhook_url="https://hooks.example.com/x", **settings
    )
    return DigestSender(settings=config, engine=engine, channels=channels)


def make_due(engine: Engine) -> None:
    """What the passing of the scheduled hour does: every digest claim is due."""
    with Session(engine) as session:
        session.exec(
            update(PeriodicClaim)
            .where(col(PeriodicClaim.name).startswith("digest:"))
            .values(due_at=datetime.now(UTC) - timedelta(minutes=1))
        )
        session.commit()


def claim_row(engine: Engine, name: str) -> PeriodicClaim:
    with Session(engine) as session:
        row = session.get(PeriodicClaim, name)
        assert row is not None
        return row


# ----------------------------------------------------------------------------- schedule


def test_digest_slots_daily_before_and_after_the_hour() -> None:
    before = slots(
        datetime(2026, 12, 2, 7, 59, tzinfo=UTC), schedule="daily", hour=8, zone=UTC_ZONE
    )
    assert before.latest == datetime(2026, 12, 1, 8, tzinfo=UTC)
    assert before.following == datetime(2026, 12, 2, 8, tzinfo=UTC)
    after = slots(datetime(2026, 12, 2, 8, 0, tzinfo=UTC), schedule="daily", hour=8, zone=UTC_ZONE)
    assert after.latest == datetime(2026, 12, 2, 8, tzinfo=UTC)


def test_digest_slots_weekly_are_mondays() -> None:
    # 2026-12-02 is a Wednesday; the Monday before is 2026-11-30
    moments = slots(datetime(2026, 12, 2, 12, tzinfo=UTC), schedule="weekly", hour=8, zone=UTC_ZONE)
    assert moments.latest == datetime(2026, 11, 30, 8, tzinfo=UTC)
    assert moments.following == datetime(2026, 12, 7, 8, tzinfo=UTC)
    monday_early = slots(
        datetime(2026, 11, 30, 7, tzinfo=UTC), schedule="weekly", hour=8, zone=UTC_ZONE
    )
    assert monday_early.latest == datetime(2026, 11, 23, 8, tzinfo=UTC)


def test_digest_slots_keep_local_time_across_daylight_saving() -> None:
    """Paris moves to summer time on 2026-03-29: 08:00 local is 07:00 UTC, then 06:00."""
    moments = slots(datetime(2026, 3, 28, 12, tzinfo=UTC), schedule="daily", hour=8, zone=PARIS)
    assert moments.latest == datetime(2026, 3, 28, 7, tzinfo=UTC)
    assert moments.following == datetime(2026, 3, 29, 6, tzinfo=UTC)


# ----------------------------------------------------------------------------- sending


def test_digest_fresh_install_waits_for_the_scheduled_hour(engine: Engine, sink: SMTPSink) -> None:
    assert sender(engine, [email_channel(sink.port)]).run_due() == []
    assert sink.count() == 0
    row = claim_row(engine, "digest:daily:08:email")
    assert row.due_at.replace(tzinfo=UTC) > datetime.now(UTC)  # the next 08:00 UTC


async def test_digest_two_workers_one_digest(
    engine: Engine, sink: SMTPSink, receiver: WebhookReceiver
) -> None:
    """Both workers ask at once when the hour has passed: each channel gets one digest."""
    workers = [
        sender(engine, [email_channel(sink.port), slack_channel(receiver)]) for _ in range(2)
    ]
    workers[0].run_due()  # the rows, first due at the next scheduled hour
    make_due(engine)
    results = await asyncio.gather(*(worker.run_if_due() for worker in workers))
    sent = [outcome for outcomes in results for outcome in outcomes]
    assert sorted(o.channel for o in sent) == ["email", "slack"] and all(o.ok for o in sent)
    assert sink.count() == 1 and receiver.count() == 1

    moments = slots(datetime.now(UTC), schedule="daily", hour=8, zone=UTC_ZONE)
    key = delivery_key(schedule="daily", slot=moments.latest, channel="email")
    mail = sink.messages[0]
    assert mail["Subject"].startswith("[chatmon] day digest: ")
    assert mail["Message-ID"] == f"<{key}@example.com>"
    assert "## Spend: $0.00" in text_part(mail) and "Monitor: http" in text_part(mail)
    assert "<h3>Budgets</h3>" in html_part(mail) and "Open the monitor" in html_part(mail)
    body = receiver.bodies[0]
    assert body["text"] == mail["Subject"]
    slack_key = delivery_key(schedule="daily", slot=moments.latest, channel="slack")
    assert body["metadata"]["event_payload"]["dedupe_key"] == slack_key
    assert any("*Budgets*" in block.get("text", {}).get("text", "") for block in body["blocks"])

    # sent: due again at the next scheduled hour, not before
    row = claim_row(engine, "digest:daily:08:email")
    assert row.due_at.replace(tzinfo=UTC) == moments.following
    assert row.last_result == periodic.SENT
    assert await workers[1].run_if_due() == []
    assert sink.count() == 1 and receiver.count() == 1


def test_digest_failed_channel_is_recorded_and_retried_alone(
    engine: Engine, receiver: WebhookReceiver
) -> None:
    port = free_port()  # nothing listens: the email fails, Slack does not
    worker = sender(engine, [email_channel(port), slack_channel(receiver)])
    worker.run_due()
    make_due(engine)
    failed_before = series.DIGESTS.labels(channel="email", result="failed")._value.get()
    outcomes = {o.channel: o for o in worker.run_due()}
    assert outcomes["slack"].ok and not outcomes["email"].ok
    assert "Connection refused" in str(outcomes["email"].error)
    row = claim_row(engine, "digest:daily:08:email")
    assert row.last_result == periodic.FAILED and row.last_error == outcomes["email"].error
    assert row.consecutive_failures == 1
    assert series.DIGESTS.labels(channel="email", result="failed")._value.get() == (
        failed_before + 1
    )
    # the lease (5 min) holds the retry back; once it is over, only the email goes again
    assert worker.run_due() == []
    with Session(engine) as session:
        session.exec(
            update(PeriodicClaim)
            .where(col(PeriodicClaim.name) == "digest:daily:08:email")
            .values(due_at=datetime.now(UTC) - timedelta(seconds=1))
        )
        session.commit()
    with SMTPSink(port=port) as sink:
        retried = worker.run_due()
    assert [(o.channel, o.ok) for o in retried] == [("email", True)]
    assert sink.count() == 1 and receiver.count() == 1
    assert claim_row(engine, "digest:daily:08:email").consecutive_failures == 0


def test_digest_stalling_smtp_server_costs_the_deadline_and_is_recorded(
    engine: Engine,
) -> None:
    with StallingServer(drip=SMTP_DRIP) as server:
        worker = sender(engine, [email_channel(server.port, timeout=0.5, deadline=1.0)])
        worker.run_due()
        make_due(engine)
        (outcome,) = worker.run_due()
    assert outcome.error is not None and "1 s send deadline" in outcome.error
    assert claim_row(engine, "digest:daily:08:email").last_result == periodic.FAILED


def test_digest_uses_the_channel_starttls_and_login(engine: Engine, tmp_path) -> None:
    certificate = Certificate.create(tmp_path)
    with SMTPSink(starttls=certificate, credentials=("alerts", PASSWORD)) as sink:
        channel = email_channel(
            sink.port,
            starttls=True,
            username="alerts",
            password=SecretStr(PASSWORD),
            ssl_context=certificate.client_context(),
        )
        worker = sender(engine, [channel])
        worker.run_due()
        make_due(engine)
        (outcome,) = worker.run_due()
    assert outcome.ok and sink.count() == 1 and sink.sessions_authenticated == [True]


def test_digest_send_now_claims_nothing(engine: Engine, receiver: WebhookReceiver) -> None:
    (outcome,) = sender(engine, [slack_channel(receiver)]).send_now(now=datetime.now(UTC))
    assert outcome.ok and outcome.key.startswith("chatmon-digest-manual-")
    assert receiver.count() == 1
    with Session(engine) as session:
        assert periodic.last_run(session=session, name="digest:daily:08:slack") is None


async def test_digest_unmigrated_database_never_raises(tmp_path, receiver: WebhookReceiver) -> None:
    from chatmon.db import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'never-migrated.db'}")
    assert await sender(engine, [slack_channel(receiver)]).run_if_due() == []
    assert receiver.posts() == 0


# ----------------------------------------------------------------------------- settings


def test_digest_settings_bad_values_name_the_variable() -> None:
    with pytest.raises(SettingsError, match="DIGEST_SCHEDULE"):
        load_settings(digest_schedule="hourly", slack_webhook_url="https://hooks.example.com/x")
    with pytest.raises(SettingsError, match="DIGEST_HOUR"):
        load_settings(digest_hour=24)
    with pytest.raises(SettingsError, match="DIGEST_SCHEDULE: is daily, yet neither SMTP_HOST"):
        load_settings(digest_schedule="daily")


def test_digest_channels_are_email_and_slack_only(engine: Engine) -> None:
    settings = load_settings(
        digest_schedule="weekly",
        slack_webhook_url="https://hooks.example.com/x",
        alert_webhook_url="https://hooks.example.com/generic",
    )
    assert [c.name for c in digest_channels(settings)] == ["slack"]
    assert DigestSender.from_settings(load_settings(), engine=engine) is None


def test_digest_new_hour_waits_for_that_hour_instead_of_sending_at_the_old_one(
    engine: Engine, sink: SMTPSink
) -> None:
    sender(engine, [email_channel(sink.port)], digest_hour=8).run_due()
    make_due(engine)  # the 08:00 digest is due...
    (outcome,) = sender(engine, [email_channel(sink.port)], digest_hour=8).run_due()
    assert outcome.ok
    # ...and sent; DIGEST_HOUR=18 now: nothing until the next 18:00
    assert sender(engine, [email_channel(sink.port)], digest_hour=18).run_due() == []
    row = claim_row(engine, "digest:daily:18:email")
    assert row.due_at.replace(tzinfo=UTC).hour == 18
    assert sink.count() == 1


WORKER = """
import sys
from pydantic import SecretStr
from chatmon.db import make_engine
from chatmon.services.alerts.channels import EmailChannel, SlackChannel
from chatmon.services.digest_send import DigestSender
from chatmon.settings import load_settings

db_url, smtp_port, webhook = sys.argv[1], int(sys.argv[2]), sys.argv[3]
settings = load_settings(digest_schedule="daily", slack_webhook_url=webhook)
channels = [
    EmailChannel(host="127.0.0.1", port=smtp_port, sender="chatmon@example.com",
                 recipients=["ops@example.com"], starttls=False),
    SlackChannel(webhook_url=SecretStr(webhook)),
]
sender = DigestSender(settings=settings, engine=make_engine(db_url), channels=channels)
sys.stdin.readline()  # start together
print(",".join(o.channel + ":" + ("sent" if o.ok else "failed") for o in sender.run_due()))
"""


def test_digest_two_worker_processes_one_digest(
    db_url: str, engine: Engine, sink: SMTPSink, receiver: WebhookReceiver
) -> None:
    """The same as two workers of one instance, as separate processes on one database."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[3]
    sender(engine, [email_channel(sink.port), slack_channel(receiver)]).run_due()
    make_due(engine)
    workers = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, db_url, str(sink.port), receiver.url],
            cwd=root,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [worker.communicate("go\n", timeout=120) for worker in workers]
    assert all(worker.returncode == 0 for worker in workers), outputs
    sent = sorted(part for out, _ in outputs for part in out.strip().split(",") if part)
    assert sent == ["email:sent", "slack:sent"]
    assert sink.count() == 1 and receiver.count() == 1
