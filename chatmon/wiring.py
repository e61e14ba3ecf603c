"""Observability wiring for the app module: logs, metrics and tracing, once per process.

``install`` runs when a worker imports the app; ``observability_lifespan`` is a
lifespan task: it hands LiteLLM's loggers to ours once LiteLLM is imported, and on
shutdown flushes Langfuse (bounded: a silent Langfuse cannot hold the server).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator

from chatmon import metrics
from chatmon.logging_setup import adopt_library_loggers, configure_logging
from chatmon.services import llm, tracing
from chatmon.settings import Settings, get_settings

log = logging.getLogger(__name__)


def install(settings: Settings) -> None:
    """JSON logs with secret masking, Prometheus series and Langfuse tracing on events."""
    configure_logging(settings)
    metrics.subscribe()
    metrics.init_series(settings.llm_model)
    if tracing.setup(settings) is not None:
        log.info("langfuse tracing on (host %s)", settings.langfuse_host or "Langfuse Cloud")


@contextlib.asynccontextmanager
async def observability_lifespan() -> AsyncIterator[None]:
    """For the server's life: adopt LiteLLM's loggers; on the way out, flush tracing."""
    adopt = asyncio.create_task(_adopt_litellm_loggers())
    try:
        yield
    finally:
        adopt.cancel()
        settings = get_settings()
        flushed = await asyncio.to_thread(tracing.shutdown, 2.0 * settings.langfuse_timeout)
        if not flushed:
            log.warning("langfuse did not take the last traces before shutdown; they are dropped")


async def _adopt_litellm_loggers() -> None:
    # LiteLLM adds a plain-text handler to its loggers when imported (at warm-up, in a
    # thread): wait for that import, then route them through our JSON, masked handlers.
    try:
        await asyncio.to_thread(llm.warm_up)
    except Exception:  # noqa: BLE001 - the warm-up task reports its own failure
        return
    adopt_library_loggers()
