"""Lifespan task: on the way out, flush Langfuse, the OTLP exporter and Sentry, bounded in
time (a silent backend cannot hold the server's shutdown)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from chatmon.observability import error_tracking, otel_export
from chatmon.services import tracing
from chatmon.settings import get_settings

log = logging.getLogger(__name__)

SHUTDOWN_SECONDS = 3.0  # the OTLP exporter's and Sentry's last flush, at most


@contextlib.asynccontextmanager
async def observability_lifespan() -> AsyncIterator[None]:
    """For the server's life; on the way out, flush tracing (bounded in time)."""
    try:
        yield
    finally:
        settings = get_settings()
        flushed, exported, _ = await asyncio.gather(
            asyncio.to_thread(tracing.shutdown, 2.0 * settings.langfuse_timeout),
            asyncio.to_thread(otel_export.shutdown, SHUTDOWN_SECONDS),
            asyncio.to_thread(error_tracking.flush, SHUTDOWN_SECONDS),
        )
        if not flushed:
            log.warning("langfuse did not take the last traces before shutdown; they are dropped")
        if not exported:
            log.warning("the OTLP collector did not take the last spans before shutdown")
