"""Lifespan task: LiteLLM warmed up in a thread before this worker says it is ready."""

from __future__ import annotations

import asyncio
import logging

from chatmon import deps
from chatmon.services import llm, llm_credentials, pricing, readiness
from chatmon.settings import get_settings

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
    deps.fallback_model_clients()  # their breakers (and gauges) too, closed
    try:
        await asyncio.to_thread(llm.warm_up)
        missing = await asyncio.to_thread(llm_credentials.missing_credentials, get_settings())
        if missing:
            log.warning(
                "LLM_MODEL=%s needs a provider key and none is set: set LLM_API_KEY (LiteLLM"
                " also reads %s). Every chat fails as 'auth' until then.",
                get_settings().llm_model,
                " or ".join(missing),
            )
        for warning in await asyncio.to_thread(
            llm_credentials.fallback_credential_warnings, get_settings()
        ):
            log.warning("%s", warning)
        # Loud at startup when the model's price is unknown: cost alerts cannot fire.
        await asyncio.to_thread(pricing.log_startup_warning, get_settings())
    except Exception:
        log.exception("litellm warm-up failed")
    finally:
        readiness.mark_warmed()
