"""Capacity figures of this worker, sampled every few seconds for ``/metrics``.

prometheus-client's multiprocess mode has no process collector, so without this an
operator would not see how busy each worker is. Every worker runs this loop (a lifespan
task) and sets, for its own pid: CPU seconds and resident memory (``liveall`` gauges,
one series per live worker) and the websocket connections it holds (``livesum``: summed
over workers). ``chatmon_streams_in_progress`` is kept exactly by the live streams
themselves (``chatmon.states.live``).

A worker that dies leaves its gauge files behind; the loop removes those of pids that
are gone, so "live" gauges really only sum live workers.
"""

from __future__ import annotations

import asyncio
import logging
import os
import re
from pathlib import Path
from typing import Any

from chatmon import metrics
from chatmon.observability import series

log = logging.getLogger(__name__)

SAMPLE_SECONDS = 2.0
_GAUGE_FILE = re.compile(r"^gauge_live\w+?_(\d+)\.db$")


def websocket_connections(app: Any) -> int:
    """Websocket (engine.io) connections held by this worker."""
    namespace = getattr(app, "event_namespace", None)
    server = getattr(namespace, "server", None)
    eio = getattr(server, "eio", None)
    return len(getattr(eio, "sockets", {}) or {})


def resident_bytes() -> int:
    """This process's resident memory now (``/proc/self/statm``; 0 where there is none)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except (OSError, IndexError, ValueError):
        return 0
    return pages * os.sysconf("SC_PAGE_SIZE")


def sample(app: Any) -> None:
    """Set this worker's gauges once."""
    times = os.times()
    series.PROCESS_CPU_SECONDS.set(times.user + times.system)
    series.PROCESS_RESIDENT_MEMORY.set(resident_bytes())
    series.WEBSOCKET_CONNECTIONS.set(websocket_connections(app))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process with that pid: alive
        return True
    return True


def forget_dead_workers(directory: str | None) -> list[int]:
    """Remove the live-gauge files of processes that no longer run; returns their pids."""
    if not directory:
        return []
    from prometheus_client.multiprocess import mark_process_dead

    gone = set()
    for path in Path(directory).glob("gauge_live*_*.db"):
        match = _GAUGE_FILE.match(path.name)
        if match and not _alive(pid := int(match.group(1))):
            gone.add(pid)
    for pid in gone:
        mark_process_dead(pid, directory)
    return sorted(gone)


async def capacity_loop() -> None:
    """Sample until the server stops (the lifespan task is then cancelled)."""
    from reflex_base.registry import RegistrationContext

    directory = metrics.multiprocess_dir()
    while True:
        try:
            app = RegistrationContext.get().app
            sample(app)
            if gone := await asyncio.to_thread(forget_dead_workers, directory):
                log.info("gauges of exited workers removed: pids %s", gone)
        except Exception:
            log.exception("capacity sample failed")
        await asyncio.sleep(SAMPLE_SECONDS)
