"""Asks a server's ``/ping`` at a steady pace, from a process of its own, until stdin closes.

Run as ``python -m tests.integration.ping_prober URL INTERVAL_SECONDS``; prints one JSON
list when stdin closes: ``[[sent_at, latency_seconds_or_null], ...]`` (``sent_at`` is
``time.perf_counter()``, the system's monotonic clock, comparable with the caller's;
null: no answer within the timeout, or an error). A process of its own, so the test process's
work (encoding megabytes of payload, the fake upstream) never delays a probe and every
millisecond measured is the server's.
"""

from __future__ import annotations

import json
import sys
import threading
import time

import httpx

TIMEOUT_SECONDS = 5.0


def probe(url: str, interval: float, stop: threading.Event) -> list[tuple[float, float | None]]:
    """Probe ``url`` + ``/ping`` every ``interval`` seconds until ``stop`` is set."""
    results: list[tuple[float, float | None]] = []
    started = time.perf_counter()
    with httpx.Client(timeout=TIMEOUT_SECONDS) as client:
        next_at = started
        while not stop.is_set():
            sent = time.perf_counter()
            try:
                ok = client.get(url + "/ping").status_code == 200
                latency: float | None = time.perf_counter() - sent if ok else None
            except httpx.HTTPError:
                latency = None
            results.append((sent, latency))
            next_at += interval
            stop.wait(max(0.0, next_at - time.perf_counter()))
    return results


def main() -> None:
    url, interval = sys.argv[1], float(sys.argv[2])
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    print(json.dumps(probe(url, interval, stop)), flush=True)


if __name__ == "__main__":
    main()
