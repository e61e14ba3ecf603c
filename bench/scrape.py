"""Scrape cost: /metrics response time and size at steady state (BENCHMARKS.md #6).

    python -m bench.scrape [--workers 5] [--scrapes 300]

1. Fills a fresh ``PROMETHEUS_MULTIPROC_DIR`` the way ``--workers`` chat workers would
   at steady state: each worker process records requests of two models with every
   status and error category, time-to-first-token and duration histograms, tokens,
   cost, retries, feedback, breaker states, local rate limits and alert deliveries
   (every label combination a busy production instance shows).
2. Serves chatmon's routes (``chatmon.api``) from one more process with uvicorn in
   multiprocess mode, as a worker of ``make run`` does, and scrapes ``GET /metrics``
   over real HTTP ``--scrapes`` times (keep-alive, like Prometheus).
3. Does the same with a single-process server (no multiprocess directory) holding the
   same series, for comparison.

Prints ``name: value (reference: value, ratio)``; the reference is the 10 ms target,
ratio = reference / value (above 1: within target). The render overhead line compares
side by side, in the same server, with serving the same bytes already rendered: what
remains is HTTP and the machine's load, not chatmon.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import httpx

from chatmon.devtools.procs import free_port, stop

TARGET_MS = 10.0

# Records one busy worker's worth of every series (run in a fresh process).
_FILL = textwrap.dedent(
    """
    import random
    from datetime import UTC, datetime
    from chatmon import metrics
    from chatmon.observability import series
    from chatmon.services.errors import ErrorCategory
    from chatmon.services.events import Feedback, LLMCall

    rng = random.Random({seed})
    models = ["openai/gemini-3-flash", "ollama/llama3"]
    categories = [c.value for c in ErrorCategory]
    for index in range({calls}):
        status = "error" if index % 10 == 0 else ("cancelled" if index % 33 == 0 else "ok")
        metrics.record_call(LLMCall(
            correlation_id=str(index), session_id="s", conversation_id="c",
            model=models[index % 2], provider="openai", started_at=datetime.now(UTC),
            first_token_seconds=rng.lognormvariate(-1, 0.7),
            total_seconds=rng.lognormvariate(0.5, 0.8), input_tokens=rng.randint(20, 2000),
            output_tokens=rng.randint(10, 800), cost_usd=rng.random() / 1000,
            status=status,
            error_category=categories[index % len(categories)] if status == "error" else None,
            retries=index % 3, temperature=0.7, prompt_version="p"))
        metrics.record_feedback(
            Feedback(correlation_id=str(index), session_id="s", rating=(-1, 1)[index % 2])
        )
    for model in models:
        series.CIRCUIT_BREAKER_STATE.labels(model=model).set(0)
    series.RATE_LIMITED.inc(7)
    rules = ["error_rate", "latency_p95", "cost_hourly", "cost_daily", "breaker_open", "no_traffic"]
    for rule in rules:
        for channel in ["email", "slack"]:
            for result in ["sent", "failed", "suppressed"]:
                series.ALERTS.labels(rule=rule, channel=channel, result=result).inc()
    """
)

# Serves chatmon's routes; in single-process mode it first records the same series itself.
_SERVE = textwrap.dedent(
    """
    import socket, sys
    import uvicorn
    if {fill_in_process}:
        exec(sys.argv[1])
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Mount, Route
    from chatmon import metrics
    from chatmon.api import api
    body, content_type = metrics.render()

    async def prerendered(_request):  # the same bytes, no rendering: HTTP cost alone
        return Response(body, media_type=content_type)

    api = Starlette(routes=[Route("/prerendered", prerendered), Mount("/", api)])
    # IPPROTO_TCP explicitly: asyncio only sets TCP_NODELAY on such sockets (else
    # every response pays ~40 ms of delayed ACK, which would measure TCP, not us).
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.bind(("127.0.0.1", {port}))
    sock.listen(128)
    config = uvicorn.Config(api, log_level="warning", access_log=False, lifespan="off")
    uvicorn.Server(config).run(sockets=[sock])
    """
)


# Times metrics.render() alone (no HTTP, no thread hop): the merge of every worker's files.
_RENDER_IN_PROCESS = textwrap.dedent(
    """
    import statistics, time
    from chatmon import metrics
    metrics.render()
    timings = []
    for _ in range({count}):
        started = time.perf_counter()
        metrics.render()
        timings.append((time.perf_counter() - started) * 1000)
    print(statistics.median(timings), min(timings))
    """
)


def _measure(
    env: dict[str, str], *, fill_in_process: bool, fill: str, scrapes: int
) -> tuple[list[float], list[float], int]:
    """Scrape timings of /metrics and of the same bytes prerendered (interleaved), and the size."""
    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVE.format(port=port, fill_in_process=fill_in_process), fill],
        env=env,
    )
    url = f"http://127.0.0.1:{port}/metrics"
    try:
        deadline = time.monotonic() + 60
        with httpx.Client(timeout=10) as client:
            while True:
                try:
                    client.get(url)
                    break
                except httpx.HTTPError:
                    if time.monotonic() > deadline or server.poll() is not None:
                        raise RuntimeError("metrics server did not start") from None
                    time.sleep(0.2)
            for _ in range(20):  # warm up: connection, imports, first renders
                client.get(url)
            timings, bare, size = [], [], 0
            for _ in range(scrapes):
                started = time.perf_counter()
                response = client.get(url)
                timings.append((time.perf_counter() - started) * 1000)
                size = len(response.content)
                assert response.status_code == 200
                started = time.perf_counter()
                client.get(url.replace("/metrics", "/prerendered"))
                bare.append((time.perf_counter() - started) * 1000)
        return timings, bare, size
    finally:
        stop(server)


def _line(name: str, value: float, reference: float) -> str:
    return f"{name}: {value:.2f} (reference: {reference:.2f}, ratio {reference / value:.2f})"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workers", type=int, default=5, help="worker processes whose files are summed"
    )
    parser.add_argument("--scrapes", type=int, default=300)
    parser.add_argument("--calls", type=int, default=2000, help="requests recorded per worker")
    args = parser.parse_args(argv)
    print(
        f"# {sys.executable} -m bench.scrape {' '.join(argv if argv is not None else sys.argv[1:])}"
    )
    root = Path(__file__).resolve().parents[1]
    base_env = {**os.environ, "PYTHONPATH": str(root)}
    base_env.pop("PROMETHEUS_MULTIPROC_DIR", None)

    with tempfile.TemporaryDirectory(prefix="chatmon-bench-metrics-") as directory:
        env = {**base_env, "PROMETHEUS_MULTIPROC_DIR": directory}
        for seed in range(args.workers):
            fill = _FILL.format(seed=seed, calls=args.calls)
            subprocess.run([sys.executable, "-c", fill], env=env, check=True, timeout=300)
        files = len(list(Path(directory).glob("*.db")))
        in_process = subprocess.run(
            [sys.executable, "-c", _RENDER_IN_PROCESS.format(count=args.scrapes)],
            env=env,
            check=True,
            timeout=300,
            capture_output=True,
            text=True,
        ).stdout.split()
        multi, multi_bare, multi_size = _measure(
            env, fill_in_process=False, fill="", scrapes=args.scrapes
        )
    single, _, single_size = _measure(
        base_env,
        fill_in_process=True,
        fill=_FILL.format(seed=0, calls=args.calls),
        scrapes=args.scrapes,
    )

    p50 = statistics.median(multi)
    p95 = statistics.quantiles(multi, n=20)[-1]
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    print(
        f"# multiprocess: {args.workers} workers, {files} files; {args.scrapes} scrapes each; "
        f"load average {load} on {os.cpu_count()} cores"
    )
    print(_line(f"metrics_scrape_p50_ms[multiprocess, {args.workers} workers]", p50, TARGET_MS))
    print(_line(f"metrics_scrape_p95_ms[multiprocess, {args.workers} workers]", p95, TARGET_MS))
    print(_line("metrics_scrape_p50_ms[single process]", statistics.median(single), TARGET_MS))
    render_p50, render_min = (float(value) for value in in_process)
    print(
        _line(
            f"metrics_render_p50_ms[in process, {args.workers} workers' files]",
            render_p50,
            TARGET_MS,
        )
        + f"  # fastest {render_min:.2f} ms"
    )
    bare_p50 = statistics.median(multi_bare)
    print(
        f"metrics_render_overhead_p50_ms[multiprocess]: {p50 - bare_p50:.2f} "
        f"(reference: {bare_p50:.2f} ms to serve the same bytes prerendered, "
        f"ratio {p50 / bare_p50:.2f})"
    )
    print(
        f"metrics_body_kb[multiprocess]: {multi_size / 1024:.1f} "
        f"(reference: {single_size / 1024:.1f} single process, "
        f"ratio {single_size / multi_size:.2f})"
    )
    met = p50 <= TARGET_MS
    print(f"# target (p50 <= {TARGET_MS:g} ms in multiprocess mode): {'met' if met else 'MISSED'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
