"""Retention: requests older than METRICS_RETENTION_DAYS go, in the background."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from chatmon.models import LLMRequest, LLMRequestHourly
from chatmon.services import retention, stats
from chatmon.settings import load_settings
from tests.units.services.stats_factory import make_call, record


def seed(engine: Engine, now: datetime) -> None:
    with Session(engine) as session:
        record(
            session,
            *[make_call(at=now - timedelta(days=d, hours=2)) for d in (0, 1, 2, 5, 9)],
        )


def test_prune_once_keeps_exactly_the_retention_window(engine: Engine, monkeypatch) -> None:
    monkeypatch.setattr(retention, "BATCH_ROWS", 1)  # many small transactions
    now = datetime(2025, 5, 20, 12, 30, tzinfo=UTC)
    seed(engine, now)
    assert retention.prune_once(engine=engine, days=3, now=now) == 2
    with Session(engine) as session:
        kept = session.execute(select(func.count()).select_from(LLMRequest)).scalar_one()
        summary = stats.window_summary(session=session, start=now - timedelta(days=30), end=now)
        oldest_hour = session.execute(select(func.min(LLMRequestHourly.hour))).scalar_one()
    assert kept == 3
    assert summary.requests == 3  # rollups pruned with the rows
    assert oldest_hour >= int((now - timedelta(days=3)).timestamp()) // 3600 - 1


async def test_prune_loop_prunes_at_start_and_stops_when_cancelled(engine: Engine) -> None:
    now = datetime.now(UTC)
    seed(engine, now)
    task = asyncio.create_task(retention.prune_loop(engine=lambda: engine, days=1, interval=60))
    try:
        for _ in range(100):
            with Session(engine) as session:
                left = session.execute(select(func.count()).select_from(LLMRequest)).scalar_one()
            if left == 1:  # only the request of 2 hours ago is within a day
                break
            await asyncio.sleep(0.05)
        assert left == 1
    finally:
        task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert task.cancelled()


def test_retention_days_setting_is_validated() -> None:
    assert load_settings().metrics_retention_days == 90
    assert load_settings(metrics_retention_days=7).metrics_retention_days == 7
    import pytest

    from chatmon.settings import SettingsError

    with pytest.raises(SettingsError, match="METRICS_RETENTION_DAYS"):
        load_settings(metrics_retention_days=0)
