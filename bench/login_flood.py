"""A login flood next to the chat's database calls: do guesses starve them?

    python bench/login_flood.py [--guesses 64] [--calls 200]

In one process, on a fresh migrated SQLite database under /tmp, with a monitor gate of
named users (PBKDF2, 600,000 rounds as shipped):

1. the chat's database work is modelled as ``asyncio.to_thread`` calls (a small query
   each, Starlette's and chatmon's default pool) issued one after another, and their
   latency measured;
2. meanwhile ``--guesses`` wrong sign-ins arrive at once, each from its own address and
   for its own user name (so the throttle refuses none of them), through
   :class:`chatmon.services.login.LoginGuard` with its own two hash threads, as shipped;
3. the reference, in the same run: the same flood with the password checks on the
   default pool (what ``asyncio.to_thread(gate.check, ...)`` per attempt did before);
4. and the calls with no flood at all.

Prints ``name: value (reference: value, ratio)`` lines: the database calls' p95 latency
during a flood, as shipped against the reference.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlalchemy import text
from sqlalchemy.engine import Engine

from chatmon.db import make_engine
from chatmon.migrate import upgrade_head
from chatmon.services import auth
from chatmon.services.login import LoginGuard


def _query(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT count(*) FROM login_failure")).scalar_one()


async def _db_calls(engine: Engine, count: int) -> list[float]:
    latencies = []
    for _ in range(count):
        started = time.perf_counter()
        await asyncio.to_thread(_query, engine)
        latencies.append((time.perf_counter() - started) * 1000)
    return latencies


async def _run(
    engine: Engine, guard: LoginGuard | None, gate: auth.Gate, guesses: int, calls: int
) -> list[float]:
    flood = []
    if guard is not None:
        flood = [
            asyncio.create_task(
                guard.attempt(
                    gates=[("monitor", gate)],
                    user=f"user-{n}",
                    password=f"guess-{n}",
                    client_ip=f"10.{n}.0.1",
                )
            )
            for n in range(guesses)
        ]
        await asyncio.sleep(0.05)  # the flood is under way
    latencies = await _db_calls(engine, calls)
    await asyncio.gather(*flood)
    return latencies


def _p95(values: list[float]) -> float:
    return statistics.quantiles(values, n=20)[-1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--guesses", type=int, default=64)
    parser.add_argument("--calls", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="chatmon-bench-login-") as directory:
        url = f"sqlite:///{Path(directory) / 'bench.db'}"
        upgrade_head(url)
        engine = make_engine(url)
        gate = auth.Gate(users={"alice": auth.hash_password("right")}, closed=True, key=b"k" * 32)
        hash_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="chatmon-login")
        shipped = LoginGuard(
            engine=lambda: engine, key=b"k" * 32, executor=hash_pool, max_pending=args.guesses
        )
        # None: run_in_executor's default pool, the one asyncio.to_thread uses
        naive = LoginGuard(
            engine=lambda: engine,
            key=b"j" * 32,
            executor=None,  # type: ignore[arg-type]  # None: the loop's default pool, the reference
            max_pending=args.guesses,
        )
        quiet = asyncio.run(_run(engine, None, gate, 0, args.calls))
        flood_naive = asyncio.run(_run(engine, naive, gate, args.guesses, args.calls))
        flood_shipped = asyncio.run(_run(engine, shipped, gate, args.guesses, args.calls))
        hash_pool.shutdown()
        engine.dispose()
    shipped_p95, naive_p95 = _p95(flood_shipped), _p95(flood_naive)
    print(
        f"login_flood_db_call_p95_ms[{args.guesses} guesses, own hash pool]: {shipped_p95:.1f} "
        f"(reference: {naive_p95:.1f} on the default pool, ratio {shipped_p95 / naive_p95:.2f})"
    )
    print(
        f"login_flood_db_call_p50_ms[own hash pool]: {statistics.median(flood_shipped):.1f} "
        f"(reference: {statistics.median(quiet):.1f} with no flood)"
    )


if __name__ == "__main__":
    main()
