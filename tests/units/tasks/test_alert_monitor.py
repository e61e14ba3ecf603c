"""The alert loop keeps going when a check fails, and tells /health how its checks go."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from pathlib import Path

import pytest

from chatmon.db import make_engine
from chatmon.migrate import upgrade_head
from chatmon.services import alert_clock
from chatmon.services.alerts import AlertEngine
from chatmon.settings import load_settings
from chatmon.tasks import alert_monitor as monitor


async def eventually(condition: Callable[[], object], timeout: float = 10.0) -> bool:  # noqa: ASYNC109 - polls a plain predicate: nothing to await
    for _ in range(int(timeout / 0.05)):
        if condition():
            return True
        await asyncio.sleep(0.05)
    return condition()


async def test_alert_loop_survives_a_failed_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"sqlite:///{tmp_path / 'not-migrated-yet.db'}"
    settings = load_settings(alert_check_interval_seconds=1)
    engine = AlertEngine(db_engine=make_engine(url), settings=settings, channels=[])
    monkeypatch.setattr(monitor, "get_settings", lambda: settings)
    monkeypatch.setattr(monitor, "build_engine", lambda _settings: engine)
    alert_clock.reset()
    caplog.set_level(logging.ERROR, logger=monitor.__name__)

    task = asyncio.create_task(monitor.alert_monitor())
    try:
        # no tables yet: the check fails, is logged, and the loop carries on
        assert await eventually(lambda: "alert check failed" in caplog.text)
        failed = alert_clock.last_alert_check()
        assert failed is not None and not failed.ok  # /health reports the checker failing
        await asyncio.to_thread(upgrade_head, url)
        assert await eventually(lambda: alert_clock.last_alert_check().ok)  # type: ignore[union-attr]  # a None check fails the test
        assert not task.done()
    finally:
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task


async def test_alert_loop_pings_the_heartbeat_after_each_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A failed check (no tables yet) pings HEARTBEAT_URL/fail; once the database is
    there, a good check pings HEARTBEAT_URL itself."""
    from tests.peers import WebhookReceiver

    url = f"sqlite:///{tmp_path / 'not-migrated-yet.db'}"
    with WebhookReceiver() as receiver:
        ping = receiver.url.split("/services/")[0] + "/ping/abc"
        settings = load_settings(
            alert_check_interval_seconds=1, heartbeat_url=ping, heartbeat_interval_seconds=1
        )
        engine = AlertEngine(db_engine=make_engine(url), settings=settings, channels=[])
        monkeypatch.setattr(monitor, "get_settings", lambda: settings)
        monkeypatch.setattr(monitor, "build_engine", lambda _settings: engine)
        task = asyncio.create_task(monitor.alert_monitor())
        try:
            assert await eventually(lambda: "/ping/abc/fail" in receiver.pings())
            await asyncio.to_thread(upgrade_head, url)
            assert await eventually(lambda: "/ping/abc" in receiver.pings())
            assert not task.done()
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task


async def test_alert_loop_sends_the_digest_when_it_is_due(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """DIGEST_SCHEDULE set: the loop asks after a check, and the due digest reaches Slack."""
    from datetime import UTC, datetime, timedelta

    from sqlmodel import Session

    from chatmon.models import PeriodicClaim
    from tests.peers import WebhookReceiver

    url = f"sqlite:///{tmp_path / 'chatmon.db'}"
    await asyncio.to_thread(upgrade_head, url)
    database = make_engine(url)
    with Session(database) as session:  # the scheduled hour has just passed
        due = datetime.now(UTC) - timedelta(minutes=1)
        session.add(PeriodicClaim(name="digest:daily:08:slack", due_at=due))
        session.commit()
    with WebhookReceiver() as receiver:
        settings = load_settings(
            alert_check_interval_seconds=1, digest_schedule="daily", slack_webhook_url=receiver.url
        )
        engine = AlertEngine(db_engine=database, settings=settings, channels=[])
        monkeypatch.setattr(monitor, "get_settings", lambda: settings)
        monkeypatch.setattr(monitor, "build_engine", lambda _settings: engine)
        task = asyncio.create_task(monitor.alert_monitor())
        try:
            assert await eventually(lambda: receiver.count() == 1)
            assert receiver.texts()[0].startswith("[chatmon] day digest: ")
            await asyncio.sleep(2.5)  # more checks: the digest is not due again
            assert receiver.count() == 1 and not task.done()
        finally:
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
