"""Observability wiring for the app module: logs, metrics and tracing, once per process.

``install`` runs when a worker imports the app; ``observability_lifespan`` is a
lifespan task that flushes Langfuse on shutdown (bounded: a silent Langfuse cannot
hold the server). LiteLLM's loggers are taken over where it is imported
(``services.litellm_import``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from chatmon import metrics
from chatmon.logging_setup import configure_logging
from chatmon.observability import series
from chatmon.services import recorder, tracing
from chatmon.settings import Settings, get_settings

log = logging.getLogger(__name__)


def install(settings: Settings) -> None:
    """JSON logs with secret masking, Prometheus series and Langfuse tracing on events."""
    configure_logging(settings)
    for notice in settings.startup_notices():
        log.info("%s", notice)
    metrics.subscribe()
    for model in [settings.llm_model, *(f.model for f in settings.fallback_models)]:
        metrics.init_series(model)
    recorder.get_recorder().on_drop = lambda reason, count: series.RECORDER_DROPPED.labels(
        reason=reason
    ).inc(count)
    if tracing.setup(settings) is not None:
        log.info("langfuse tracing on (host %s)", settings.langfuse_host or "Langfuse Cloud")


@contextlib.asynccontextmanager
async def observability_lifespan() -> AsyncIterator[None]:
    """For the server's life; on the way out, flush tracing (bounded in time)."""
    try:
        yield
    finally:
        settings = get_settings()
        flushed = await asyncio.to_thread(tracing.shutdown, 2.0 * settings.langfuse_timeout)
        if not flushed:
            log.warning("langfuse did not take the last traces before shutdown; they are dropped")
