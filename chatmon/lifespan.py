"""Background tasks that run for the server's life (once per worker)."""

from __future__ import annotations

import asyncio
import logging
import sys
import time

from chatmon import deps
from chatmon.services import llm, pricing, readiness
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
        missing = await asyncio.to_thread(llm.missing_credentials, get_settings())
        if missing:
            log.warning(
                "LLM_MODEL=%s needs a provider key and none is set: set LLM_API_KEY (LiteLLM"
                " also reads %s). Every chat fails as 'auth' until then.",
                get_settings().llm_model,
                " or ".join(missing),
            )
        for warning in await asyncio.to_thread(llm.fallback_credential_warnings, get_settings()):
            log.warning("%s", warning)
        # Loud at startup when the model's price is unknown: cost alerts cannot fire.
        await asyncio.to_thread(pricing.log_startup_warning, get_settings())
    except Exception:
        log.exception("litellm warm-up failed")
    finally:
        readiness.mark_warmed()


ACCESS_REFRESH_SECONDS = 20.0  # the monitor gate (generated password's hash) is re-read
THROTTLE_PRUNE_SECONDS = 3600.0


async def keep_access_fresh() -> None:
    """For the server's life (every worker): the first-start secrets, then the monitor
    gate re-read every 20 s and old login-throttle rows pruned hourly.

    Reading the gate here, in a thread, keeps the database read off the event loop:
    the states' checks find it cached. A removed user or a reset password therefore
    stops counting within ~20 s (and within 30 s even without this loop).
    """
    await asyncio.to_thread(_first_start)
    last_prune = 0.0
    while True:
        try:
            await asyncio.to_thread(deps.refresh_monitor_gate)
            if time.monotonic() - last_prune >= THROTTLE_PRUNE_SECONDS:
                last_prune = time.monotonic()
                await asyncio.to_thread(deps.login_guard().prune)
        except Exception:
            log.exception("refreshing the monitor's credentials failed")
        await asyncio.sleep(ACCESS_REFRESH_SECONDS)


def _first_start() -> None:
    """The instance secret and, if needed, the generated monitor password (printed by
    whichever process creates it; `python -m chatmon migrate` normally did already)."""
    from sqlmodel import Session

    from chatmon.db import get_engine
    from chatmon.services.first_start import announcement, ensure_monitor_password

    try:
        deps.instance_secret()
        with Session(get_engine()) as session:
            password = ensure_monitor_password(session=session, settings=get_settings())
    except Exception:
        log.exception(
            "creating the instance secret / monitor password failed; "
            "run `python -m chatmon migrate`"
        )
        return
    if password is not None:
        print(announcement(password), file=sys.stderr, flush=True)
