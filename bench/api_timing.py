"""Timing a read at scale, shared by the dashboard and versions benchmarks: chatmon's API
routes served in this process, the database they read, the median of repeated runs and
the printed ``name: value (reference: value, ratio)`` line."""

from __future__ import annotations

import os
import statistics
import threading
import time
from collections.abc import Callable

import uvicorn

from chatmon.devtools.procs import free_port


def median_ms(action: Callable[[], object], repeat: int) -> tuple[float, float]:
    """Median wall time and median CPU time of this process for ``action``, in ms, after
    one untimed warm-up run. On a shared, busy machine the CPU time shows the work done
    when the wall time is mostly waiting for a core (the API server runs in this
    process, so its CPU time is counted too)."""
    action()
    wall, cpu = [], []
    for _ in range(repeat):
        started, started_cpu = time.perf_counter(), time.process_time()
        action()
        wall.append((time.perf_counter() - started) * 1000)
        cpu.append((time.process_time() - started_cpu) * 1000)
    return statistics.median(wall), statistics.median(cpu)


class ApiServer:
    """chatmon's API routes (``chatmon.api:api``) under uvicorn, in a thread."""

    def __init__(self) -> None:
        from chatmon.api import api

        self.url = f"http://127.0.0.1:{free_port()}"
        port = int(self.url.rsplit(":", 1)[1])
        config = uvicorn.Config(
            api, host="127.0.0.1", port=port, log_level="warning", lifespan="off"
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, daemon=True)

    def __enter__(self) -> ApiServer:
        self._thread.start()
        deadline = time.monotonic() + 20
        while not self._server.started:
            if time.monotonic() > deadline:
                raise RuntimeError("the API server did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *_exc: object) -> None:
        self._server.should_exit = True
        self._thread.join(timeout=10)


def use_database(url: str) -> None:
    """Point chatmon's process-wide settings and engine at ``url``."""
    from chatmon import db, settings

    os.environ["DATABASE_URL"] = url
    settings.get_settings.cache_clear()
    db.get_engine.cache_clear()


def line(name: str, value_ms: float, reference_ms: float) -> str:
    """One printed figure, ratio = reference / value."""
    ratio = reference_ms / value_ms
    return f"{name}: {value_ms:.1f} ms (reference: {reference_ms:.1f} ms, {ratio:.1f}x)"
