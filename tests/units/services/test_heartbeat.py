"""The dead-man's switch pings a real HTTP receiver: once per interval across processes,
its failure URL after a failed check, and a failed ping is recorded and retried."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator

import pytest
from pydantic import SecretStr
from sqlalchemy.engine import Engine
from sqlmodel import Session

from chatmon.db import make_engine
from chatmon.observability import series
from chatmon.services import periodic
from chatmon.services.heartbeat import CLAIM_NAME, Heartbeat
from chatmon.settings import load_settings
from tests.peers import WebhookReceiver, free_port

PING_PATH = "/ping/8f2b0c4e-secret-uuid"


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


def ping_url(receiver: WebhookReceiver) -> SecretStr:
    return SecretStr(receiver.url.split("/services/")[0] + PING_PATH)


def beat(engine: Engine, url: SecretStr, *, interval: float = 3600.0) -> Heartbeat:
    return Heartbeat(url=url, interval=interval, engine=engine)


def last_run(engine: Engine) -> periodic.LastRun | None:
    with Session(engine) as session:
        return periodic.last_run(session=session, name=CLAIM_NAME)


async def test_heartbeat_one_ping_per_interval_across_processes(
    engine: Engine, receiver: WebhookReceiver
) -> None:
    """Every worker's loop asks after its check; only the first one in the interval pings."""
    workers = [beat(engine, ping_url(receiver)) for _ in range(4)]
    outcomes = await asyncio.gather(*(w.after_check(ok=True) for w in workers))
    assert receiver.pings() == [PING_PATH]
    assert [o.ok for o in outcomes if o is not None] == [True]
    run = last_run(engine)
    assert run is not None and run.result == "sent" and run.error is None


async def test_heartbeat_pings_again_once_the_interval_has_passed(
    engine: Engine, receiver: WebhookReceiver
) -> None:
    heartbeat = beat(engine, ping_url(receiver), interval=1.0)
    await heartbeat.after_check(ok=True)
    assert await heartbeat.after_check(ok=True) is None  # within the interval: not due
    await asyncio.sleep(1.2)
    await heartbeat.after_check(ok=True)
    assert receiver.pings() == [PING_PATH, PING_PATH]


async def test_heartbeat_failed_check_pings_the_fail_url_once_per_interval(
    engine: Engine, receiver: WebhookReceiver
) -> None:
    heartbeat = beat(engine, ping_url(receiver))
    outcome = await heartbeat.after_check(ok=False)
    assert outcome is not None and outcome.kind == "fail" and outcome.ok
    assert await heartbeat.after_check(ok=False) is None
    assert receiver.pings() == [PING_PATH + "/fail"]


async def test_heartbeat_failed_ping_is_recorded_and_retried_at_the_next_check(
    engine: Engine, receiver: WebhookReceiver, caplog: pytest.LogCaptureFixture
) -> None:
    receiver.status = 500
    heartbeat = beat(engine, ping_url(receiver))
    before = series.HEARTBEATS.labels(kind="success", result="failed")._value.get()
    outcome = await heartbeat.after_check(ok=True)
    assert outcome is not None and outcome.error == "HTTP 500 from the heartbeat URL"
    run = last_run(engine)
    assert run is not None and run.result == "failed" and run.error == outcome.error
    assert series.HEARTBEATS.labels(kind="success", result="failed")._value.get() == before + 1
    receiver.status = 200
    retried = await heartbeat.after_check(ok=True)  # the failure released the claim
    assert retried is not None and retried.ok
    assert receiver.pings() == [PING_PATH, PING_PATH]
    assert "secret-uuid" not in caplog.text


async def test_heartbeat_unreachable_watcher_never_raises_nor_logs_the_url(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    url = SecretStr(f"http://127.0.0.1:{free_port()}{PING_PATH}")
    outcome = await beat(engine, url).after_check(ok=True)
    assert outcome is not None and outcome.error == "ConnectError from the heartbeat URL"
    assert "heartbeat success ping failed" in caplog.text
    assert "secret-uuid" not in caplog.text


async def test_heartbeat_database_gone_after_the_check_pings_the_fail_url(
    tmp_path, receiver: WebhookReceiver
) -> None:
    """The claim needs the database; when it is gone the cycle counts as failed."""
    engine = make_engine(f"sqlite:///{tmp_path / 'never-migrated.db'}")
    outcome = await beat(engine, ping_url(receiver)).after_check(ok=True)
    assert outcome is not None and outcome.kind == "fail"
    assert receiver.pings() == [PING_PATH + "/fail"]


def test_heartbeat_from_settings_is_off_without_a_url(engine: Engine) -> None:
    assert Heartbeat.from_settings(load_settings(), engine=engine) is None
    settings = load_settings(heartbeat_url="https://hc-ping.com/abc", heartbeat_fail_suffix="")
    assert Heartbeat.from_settings(settings, engine=engine) is not None
