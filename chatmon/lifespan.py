"""Background tasks that run for the server's life (once per worker)."""

from __future__ import annotations

import asyncio
import logging

from chatmon import deps
from chatmon.services import llm, readiness

log = logging.getLogger(__name__)


async def warm_up_llm() -> None:
    """Import litellm in a thread at startup so the first chat does not pay for it.

    Also creates the model's client and circuit breaker now, so ``/health``,
    ``chatmon_circuit_breaker_state`` and ``breaker.snapshot()`` show the model
    (closed) before its first request.

    Until it has finished, this worker is not ready (``/health/ready`` answers 503 and
    ``/health`` says "starting"): on a busy machine warming takes seconds of CPU, and a
    reply sent meanwhile would wait for it.
    """
    deps.llm_client()
    try:
        await asyncio.to_thread(llm.warm_up)
    except Exception:  # noqa: BLE001 - a failed warm-up only costs the first request time
        log.exception("litellm warm-up failed")
    finally:
        readiness.mark_warmed()
