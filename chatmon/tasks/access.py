"""Lifespan task: the first-start secrets, then the monitor's credentials kept fresh."""

from __future__ import annotations

import asyncio
import logging
import sys
import time

from chatmon import deps
from chatmon.settings import get_settings

log = logging.getLogger(__name__)


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
