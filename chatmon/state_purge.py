"""Reflex's disk state manager, scanning its states directory at most once a minute.

Reflex 0.10's ``StateManagerDisk`` lists and stats every state file on every pass of
its write loop (each debounce interval, and once per write due while tabs are busy)
to delete those older than the token expiration (an hour). The files are one per
substate per tab seen in that hour, so the scan grows with the traffic: it was ~11 %
of the server's CPU samples with 50 tabs streaming (``bench.concurrency --profile``).
Deleting an hour-old file a minute later changes nothing, so the scan is throttled
here until Reflex's own fix lands (reflex-dev/reflex#7060, "Skip idle disk-state
scans until expiration").
"""

from __future__ import annotations

import functools
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

log = logging.getLogger(__name__)

# Seconds between two scans of the states directory (Reflex: every ~2 s or less).
PURGE_INTERVAL_SECONDS = 60.0


def throttle(purge: Callable[[Any], None], interval: float) -> Callable[[Any], None]:
    """``purge`` run at most once per ``interval`` seconds per state manager (the
    first call always runs: the startup scan)."""
    lock = threading.Lock()  # the write loop runs purges in worker threads

    @functools.wraps(purge)
    def throttled(manager: Any) -> None:
        now = time.monotonic()
        with lock:
            last = manager.__dict__.get("_chatmon_last_purge")
            if last is not None and now - last < interval:
                return
            manager.__dict__["_chatmon_last_purge"] = now
        purge(manager)

    throttled.__chatmon_throttled__ = True  # type: ignore[attr-defined]  # installed once
    return throttled


def install(interval: float = PURGE_INTERVAL_SECONDS) -> bool:
    """Throttle ``StateManagerDisk._purge_expired_states``; False when this Reflex has
    no such method (an upgrade moved it: then Reflex's own behaviour stays)."""
    from reflex.istate.manager.disk import StateManagerDisk

    purge = getattr(StateManagerDisk, "_purge_expired_states", None)
    if purge is None:
        log.info("Reflex's disk state manager has no _purge_expired_states: not throttled")
        return False
    if not getattr(purge, "__chatmon_throttled__", False):
        StateManagerDisk._purge_expired_states = throttle(purge, interval)  # type: ignore[method-assign]
    return True
