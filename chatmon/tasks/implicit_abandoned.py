"""The periodic check that flags conversations abandoned right after an error.

A lifespan task, so every worker of every instance runs it; the work itself is claimed
once per ``CHECK_INTERVAL_SECONDS`` across all of them (``chatmon.services.periodic``,
claim ``implicit_abandoned``), so the errors are read once per period, not once per
worker. The read goes through the partial index of errors
(``chatmon.services.implicit_detection.find_abandoned``). It runs in a worker thread; a
failed run is logged, releases its claim, and the loop goes on.
"""

from __future__ import annotations

import asyncio
import logging
import random
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session

from chatmon.services import implicit_detection, implicit_signals, periodic

log = logging.getLogger(__name__)

CLAIM = "implicit_abandoned"
CHECK_INTERVAL_SECONDS = 60.0


def run_once(
    *,
    engine: Engine,
    after: timedelta,
    now: datetime | None = None,
    period: float = CHECK_INTERVAL_SECONDS,
) -> int | None:
    """Flag what was abandoned, if this process wins the period's claim.

    Returns how many requests were newly flagged, or None when another process has
    the claim for this period.
    """
    with Session(engine) as session:
        token = periodic.claim(session=session, name=CLAIM, period=period)
        session.commit()
    if token is None:
        return None
    try:
        with Session(engine) as session:
            flagged = implicit_detection.flag_abandoned(
                session=session, now=now or datetime.now(UTC), after=after
            )
            session.commit()
    except Exception as exc:
        with Session(engine) as session:
            periodic.finish(session=session, name=CLAIM, token=token, error=type(exc).__name__)
            session.commit()
        raise
    implicit_signals.count({implicit_signals.ABANDONED: flagged})
    with Session(engine) as session:
        periodic.finish(session=session, name=CLAIM, token=token, error=None)
        session.commit()
    return flagged


async def abandoned_loop(
    *,
    engine: Callable[[], Engine] | None = None,
    after_minutes: float | None = None,
    interval: float = CHECK_INTERVAL_SECONDS,
) -> None:
    """Lifespan task: the check every ``interval`` seconds until the server stops."""
    if engine is None:
        from chatmon.db import get_engine

        engine = get_engine
    if after_minutes is None:
        from chatmon.settings import get_settings

        after_minutes = get_settings().implicit_abandon_minutes
    after = timedelta(minutes=after_minutes)
    await asyncio.sleep(random.uniform(0, interval))  # workers start together: spread them
    while True:
        try:
            flagged = await asyncio.to_thread(
                run_once, engine=engine(), after=after, period=interval
            )
            if flagged:
                log.info("implicit signals: %d conversations abandoned after an error", flagged)
        except Exception:
            log.exception("implicit signals: the abandoned check failed")
        await asyncio.sleep(interval)
