"""Recording throughput: requests per second the recorder writes without blocking the loop.

    python bench/recorder.py [--requests 100000]

In one run, on a fresh SQLite database under /tmp:

1. an asyncio loop publishes ``--requests`` finished requests (LLMCall events) to the
   recorder as fast as it can, while a probe task measures how late the loop wakes it
   (event-loop lag); the recorder's writer thread writes them in batches;
2. the references: for throughput, the naive way, each request written on the loop
   itself in its own transaction (what a handler doing ``session.add(row);
   session.commit()`` would do), for a tenth as many requests; for the loop's lag, the
   same publishing loop with nothing recording (the lag the producer causes itself);
3. the loop's lag at a steady 200 requests/s, recorded and not;
4. a clean shutdown with requests still queued: ``close()`` right after publishing, then
   the rows are counted (the target is zero lost).

Prints ``name: value (reference: value, ratio)`` lines (BENCHMARKS.md #4: >= 5,000 rows/s).
"""

from __future__ import annotations

import argparse
import asyncio
import os
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from chatmon.db import make_engine
from chatmon.migrate import upgrade_head
from chatmon.models import LLMRequest
from chatmon.services import request_log
from chatmon.services.events import LLMCall
from chatmon.services.recorder import Recorder

PROBE_INTERVAL = 0.001


def call(i: int) -> LLMCall:
    return LLMCall(
        correlation_id=f"bench{os.getpid()}{i:010d}",
        session_id="bench-session",
        conversation_id="bench-conversation",
        model="openai/gemini-3-flash",
        provider="openai",
        started_at=datetime.now(UTC),
        first_token_seconds=0.2 + (i % 50) / 100,
        total_seconds=1.0 + (i % 300) / 100,
        input_tokens=100 + i % 400,
        output_tokens=50 + i % 300,
        cost_usd=0.0001,
        status="ok" if i % 40 else "error",
        error_category=None if i % 40 else "timeout",
        retries=0,
        temperature=0.7,
        prompt_version="5f1e2d3c4b5a",
    )


def count(engine: Engine) -> int:
    with Session(engine) as session:
        return session.execute(select(func.count()).select_from(LLMRequest)).scalar_one()


async def with_lag_probe(work) -> tuple[float, list[float]]:
    """Run ``work()`` (a coroutine function) and measure the loop's lag meanwhile."""
    lags: list[float] = []
    done = asyncio.Event()

    async def probe() -> None:
        while not done.is_set():
            before = time.perf_counter()
            await asyncio.sleep(PROBE_INTERVAL)
            lags.append(time.perf_counter() - before - PROBE_INTERVAL)

    task = asyncio.create_task(probe())
    started = time.perf_counter()
    await work()
    elapsed = time.perf_counter() - started
    done.set()
    await task
    return elapsed, lags


def p99(values: list[float]) -> float:
    return (
        statistics.quantiles(values, n=100)[98] if len(values) >= 100 else max(values, default=0.0)
    )


async def publish(n: int, submit, offset: int = 0) -> None:
    for i in range(offset, offset + n):
        submit(call(i))
        if i % 100 == 0:
            await asyncio.sleep(0)  # a real loop serves others between requests


async def recorder_run(engine: Engine, n: int) -> tuple[float, list[float]]:
    recorder = Recorder(engine=lambda: engine, price_known=lambda _m: True)

    async def work() -> None:
        await publish(n, recorder.submit_call)
        await asyncio.to_thread(recorder.flush)

    elapsed, lags = await with_lag_probe(work)
    recorder.close()
    return elapsed, lags


async def paced_run(engine: Engine | None, rate: float, seconds: float, offset: int) -> list[float]:
    """Requests at a steady ``rate`` per second (recorded, or to nobody): the loop's lag."""
    recorder = Recorder(engine=lambda: engine, price_known=lambda _m: True) if engine else None
    submit = recorder.submit_call if recorder else (lambda _call: None)

    async def work() -> None:
        for i in range(offset, offset + int(rate * seconds)):
            submit(call(i))
            await asyncio.sleep(1 / rate)

    lags = (await with_lag_probe(work))[1]
    if recorder:
        recorder.close()
    return lags


async def unrecorded_run(n: int, seconds: float) -> list[float]:
    """The same publishing, to nobody, spread over as long as the recorded run took."""

    async def work() -> None:
        deadline = time.perf_counter() + seconds
        await publish(n, lambda _call: None)
        await asyncio.sleep(max(0.0, deadline - time.perf_counter()))

    return (await with_lag_probe(work))[1]


async def naive_run(engine: Engine, n: int, offset: int) -> tuple[float, list[float]]:
    async def work() -> None:
        for i in range(offset, offset + n):
            with Session(engine) as session:  # on the loop, one transaction per request
                request_log.record_calls(
                    session=session, calls=[call(i)], price_known=lambda _m: True
                )
                session.commit()
            await asyncio.sleep(0)

    return await with_lag_probe(work)


def shutdown_run(engine: Engine, n: int, offset: int) -> int:
    recorder = Recorder(engine=lambda: engine, price_known=lambda _m: True)
    for i in range(offset, offset + n):
        recorder.submit_call(call(i))
    recorder.close()  # right away: most of them are still queued
    return recorder.stats.written


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--requests", type=int, default=100_000)
    args = parser.parse_args(argv)
    n = args.requests
    print(f"# {sys.executable} bench/recorder.py --requests {n}")
    with tempfile.TemporaryDirectory(prefix="chatmon-bench-recorder-") as tmp:
        url = f"sqlite:///{tmp}/bench.db"
        upgrade_head(url)
        engine = make_engine(url)
        elapsed, lags = asyncio.run(recorder_run(engine, n))
        assert count(engine) == n, "rows lost"
        naive_n = max(100, n // 10)
        naive_elapsed, naive_lags = asyncio.run(naive_run(engine, naive_n, offset=n))
        ours, naive = n / elapsed, naive_n / naive_elapsed
        print(
            f"recorder_rows_per_second: {ours:,.0f} rows/s "
            f"(reference: {naive:,.0f} rows/s, {ours / naive:.1f}x)"
        )
        quiet_lags = asyncio.run(unrecorded_run(n, elapsed))
        ours_lag, quiet_lag = p99(lags) * 1000, p99(quiet_lags) * 1000
        print(f"recorder_event_loop_lag_p99: {ours_lag:.2f} ms (reference, nothing recording: "
              f"{quiet_lag:.2f} ms, {quiet_lag / max(ours_lag, 1e-3):.2f}x)")  # fmt: skip
        print(f"# on-loop naive writes: event-loop lag p99 {p99(naive_lags) * 1000:.2f} ms")
        rate, seconds = 200.0, 10.0  # far above one company's chatbot, far below a burst
        paced = asyncio.run(paced_run(engine, rate, seconds, offset=n + naive_n))
        quiet = asyncio.run(paced_run(None, rate, seconds, offset=0))
        print(f"recorder_event_loop_lag_p99_at_{rate:.0f}_per_s: {p99(paced) * 1000:.2f} ms "
              f"(reference, nothing recording: {p99(quiet) * 1000:.2f} ms, "
              f"{p99(quiet) / max(p99(paced), 1e-6):.2f}x)")  # fmt: skip
        naive_n += int(rate * seconds)  # ids used by the paced run
        before = count(engine)
        written = shutdown_run(engine, n // 5, offset=n + naive_n)
        lost = n // 5 - (count(engine) - before)
        print(
            f"recorder_rows_lost_on_shutdown: {lost} rows "
            f"(reference: 0 rows, written {written:,} of {n // 5:,})"
        )
        engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
