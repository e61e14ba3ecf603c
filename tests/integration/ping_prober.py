"""Asks two servers' ``/ping`` at the same moments, from a process of its own, until stdin closes.

Run as ``python -m tests.integration.ping_prober URL CONTROL_URL INTERVAL_SECONDS``. Prints
``ready`` once both answer, then, when stdin closes, one JSON list
``[[sent_at, latency_seconds_or_null, control_latency_seconds_or_null], ...]`` (``sent_at``
is ``time.perf_counter()``, the system's monotonic clock, comparable with the caller's;
null: no answer within the timeout, or an error). Each pair of probes is sent at the same
instant from two threads, so a stall of the machine shows in both and a stall of the app
only in the first. A process of its own, so the test process's work (encoding megabytes
of payload, the fake upstream) never delays a probe.
"""

from __future__ import annotations

import json
import sys
import threading
import time

import httpx

TIMEOUT_SECONDS = 5.0


def _ask(client: httpx.Client, url: str) -> float | None:
    sent = time.perf_counter()
    try:
        ok = client.get(url + "/ping").status_code == 200
    except httpx.HTTPError:
        return None
    return time.perf_counter() - sent if ok else None


def _wait_until_answering(client: httpx.Client, url: str) -> None:
    deadline = time.monotonic() + 30
    while _ask(client, url) is None:
        if time.monotonic() > deadline:
            raise SystemExit(f"{url} does not answer /ping")
        time.sleep(0.1)


def probe(
    url: str, control_url: str, interval: float, stop: threading.Event
) -> list[tuple[float, float | None, float | None]]:
    """Probe both servers every ``interval`` seconds until ``stop`` is set."""
    results: list[tuple[float, float | None, float | None]] = []
    with (
        httpx.Client(timeout=TIMEOUT_SECONDS) as app,
        httpx.Client(timeout=TIMEOUT_SECONDS) as control,
    ):
        _wait_until_answering(app, url)
        _wait_until_answering(control, control_url)
        print("ready", flush=True)
        next_at = time.perf_counter()
        while not stop.is_set():
            sent = time.perf_counter()
            control_latency: list[float | None] = [None]

            def ask_control(into: list[float | None] = control_latency) -> None:
                into[0] = _ask(control, control_url)

            other = threading.Thread(target=ask_control)
            other.start()
            latency = _ask(app, url)
            other.join()
            results.append((sent, latency, control_latency[0]))
            next_at = max(next_at + interval, time.perf_counter())
            stop.wait(max(0.0, next_at - time.perf_counter()))
    return results


def main() -> None:
    url, control_url, interval = sys.argv[1], sys.argv[2], float(sys.argv[3])
    stop = threading.Event()
    threading.Thread(target=lambda: (sys.stdin.read(), stop.set()), daemon=True).start()
    print(json.dumps(probe(url, control_url, interval, stop)), flush=True)


if __name__ == "__main__":
    main()
