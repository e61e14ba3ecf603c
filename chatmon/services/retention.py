"""Delete requests older than ``METRICS_RETENTION_DAYS``, in the background.

Runs as a lifespan task (once per worker; pruning is idempotent, so several workers
pruning at once only repeat each other's work). Rows go in small batches, each its
own transaction, so the recorder never waits long for the write lock.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from datetime import UTC, datetime

from sqlalchemy.engine import Engine
from sqlmodel import Session

from chatmon.services import request_log

log = logging.getLogger(__name__)

PRUNE_INTERVAL_SECONDS = 3600.0
BATCH_ROWS = 5000


def prune_once(*, engine: Engine, days: int, now: datetime | None = None) -> int:
    """Delete every request (and rollup hour) older than ``days`` days; return rows deleted."""
    cutoff = request_log.retention_cutoff(now=now or datetime.now(UTC), days=days)
    deleted = 0
    while True:
        with Session(engine) as session:
            batch = request_log.prune_rows(session=session, before=cutoff, limit=BATCH_ROWS)
            if batch == 0:
                request_log.prune_rollups(session=session, before=cutoff)
            session.commit()
        deleted += batch
        if batch == 0:
            return deleted


async def prune_loop(
    *,
    engine: Callable[[], Engine] | None = None,
    days: int | None = None,
    interval: float = PRUNE_INTERVAL_SECONDS,
) -> None:
    """Lifespan task: prune at startup, then every ``interval`` seconds, in a thread.

    One failed run is logged and the loop carries on; cancellation stops it.
    """
    if engine is None:
        from chatmon.db import get_engine

        engine = get_engine
    if days is None:
        from chatmon.settings import get_settings

        days = get_settings().metrics_retention_days
    while True:
        try:
            deleted = await asyncio.to_thread(prune_once, engine=engine(), days=days)
            if deleted:
                log.info("retention: deleted %d requests older than %d days", deleted, days)
        except Exception:
            log.exception("retention: pruning failed")
        await asyncio.sleep(interval)
