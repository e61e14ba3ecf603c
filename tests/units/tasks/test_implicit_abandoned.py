"""The abandoned-after-error check: once per period across workers, flags what it should."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import UTC, datetime, timedelta

from prometheus_client import REGISTRY
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from chatmon.models import LLMRequest
from chatmon.services import implicit_signals, periodic, request_log
from chatmon.tasks import implicit_abandoned
from tests.units.services.stats_factory import make_call

AFTER = timedelta(minutes=10)


def _abandoned_total() -> float:
    labels = {"signal": implicit_signals.ABANDONED}
    return REGISTRY.get_sample_value("chatmon_implicit_feedback_total", labels) or 0.0


def _record_error(engine: Engine, *, minutes_ago: float, conversation: str) -> str:
    call = make_call(
        at=datetime.now(UTC) - timedelta(minutes=minutes_ago),
        status="error",
        error_category="server_error",
        total_seconds=0.5,
        conversation_id=conversation,
    )
    with Session(engine) as session:
        request_log.record_calls(session=session, calls=[call], price_known=lambda _m: True)
        session.commit()
    return call.correlation_id


def _flags(engine: Engine, correlation_id: str) -> list[str]:
    with Session(engine) as session:
        value = session.execute(
            select(col(LLMRequest.implicit_flags)).where(
                col(LLMRequest.correlation_id) == correlation_id
            )
        ).scalar_one()
    return implicit_signals.bits(value)


def test_one_run_per_period_however_many_workers_ask(engine: Engine) -> None:
    gone = _record_error(engine, minutes_ago=12, conversation="c-gone")
    recent = _record_error(engine, minutes_ago=2, conversation="c-recent")
    before = _abandoned_total()
    assert implicit_abandoned.run_once(engine=engine, after=AFTER, period=600) == 1
    assert implicit_abandoned.run_once(engine=engine, after=AFTER, period=600) is None  # claimed
    assert _flags(engine, gone) == [implicit_signals.ABANDONED]
    assert _flags(engine, recent) == []
    assert _abandoned_total() == before + 1
    with Session(engine) as session:
        last = periodic.last_run(session=session, name=implicit_abandoned.CLAIM)
    assert last is not None and last.result == periodic.SENT


async def test_the_lifespan_loop_flags_abandoned_conversations(engine: Engine) -> None:
    gone = _record_error(engine, minutes_ago=15, conversation="c-loop")
    task = asyncio.create_task(
        implicit_abandoned.abandoned_loop(engine=lambda: engine, after_minutes=10, interval=0.05)
    )
    try:
        for _ in range(200):
            if _flags(engine, gone):
                break
            await asyncio.sleep(0.05)
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
    assert _flags(engine, gone) == [implicit_signals.ABANDONED]
