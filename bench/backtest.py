"""Alert backtest at scale: a week of 1M requests replayed minute by minute.

    python bench/backtest.py [--rows 1000000] [--db-dir /tmp] [--repeat 3] [--postgres URL]

Seeds a SQLite database (and, with ``--postgres``, that database) with ``--rows``
synthetic requests spread over the 7 days before now (``bench/dashboard.py``'s rows: 3
models, 2 % errors, 1 % cancelled, log-normal latencies), reused while it ends within
the hour. Then times ``backtest.replay`` over those 7 days (10,080 checks), median of
``--repeat`` runs, against the reference in the same run: the live check's inputs
(``inputs.gather`` + ``rules.evaluate``, what ``AlertEngine.observe`` does) for 100
evenly spaced minutes, extrapolated to 10,080. Target (BENCHMARKS.md #9): <= 10 s.
Prints ``name: value (reference: value, ratio)``, ratio = reference / value.
"""

from __future__ import annotations

import argparse
import random
import sqlite3
import statistics
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from sqlmodel import Session

from bench.dashboard_seed import COLUMNS, INSERT, reusable_seed, synthetic_row
from chatmon.db import make_engine
from chatmon.migrate import upgrade_head
from chatmon.services.alerts import inputs
from chatmon.services.alerts.backtest import replay
from chatmon.services.alerts.catalog import evaluate
from chatmon.services.alerts.rules import Thresholds

SPAN = timedelta(days=7)
SAMPLED_CHECKS = 100


def seed_sqlite(path: Path, rows: int) -> None:
    now = datetime.now(UTC)
    if reusable_seed(path, rows, now):
        return
    path.unlink(missing_ok=True)
    upgrade_head(f"sqlite:///{path}")
    rng = random.Random(20251201)
    ids = [f"{rng.getrandbits(128):032x}" for _ in range(20_000)]
    first, step = (now - SPAN).timestamp(), SPAN.total_seconds() / rows
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=OFF")
    connection.execute("PRAGMA synchronous=OFF")
    started = time.perf_counter()
    for low in range(0, rows, 200_000):
        batch = [
            synthetic_row(i, first + (i + rng.random()) * step, rng, ids)
            for i in range(low, min(rows, low + 200_000))
        ]
        connection.execute("BEGIN")
        connection.executemany(INSERT, batch)
        connection.execute("COMMIT")
    connection.execute("CREATE TABLE bench_meta (rows INTEGER, anchor TEXT)")
    connection.execute("INSERT INTO bench_meta VALUES (?, ?)", (rows, now.isoformat()))
    connection.execute("PRAGMA journal_mode=WAL")
    connection.close()
    print(f"# seeded {rows:,} rows in {time.perf_counter() - started:.0f} s", file=sys.stderr)


def seed_postgres(url: str, rows: int) -> None:
    now = datetime.now(UTC)
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP SCHEMA public CASCADE")
        connection.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()
    upgrade_head(url)
    rng = random.Random(20251201)
    ids = [f"{rng.getrandbits(128):032x}" for _ in range(20_000)]
    first, step = (now - SPAN).timestamp(), SPAN.total_seconds() / rows
    raw = make_engine(url).raw_connection()
    try:
        copy_sql = f"COPY llm_request ({', '.join(COLUMNS)}) FROM STDIN"
        with raw.cursor() as cursor, cursor.copy(copy_sql) as copy:
            for i in range(rows):
                row = list(synthetic_row(i, first + (i + rng.random()) * step, rng, ids))
                row[5] += "+00"
                copy.write_row(row)
        raw.commit()
        raw.driver_connection.autocommit = True
        with raw.cursor() as cursor:
            cursor.execute("VACUUM ANALYZE")
    finally:
        raw.close()


def run(url: str, repeat: int) -> None:
    engine = make_engine(url)
    limits = Thresholds()
    end = datetime.now(UTC)
    start = end - SPAN
    times = []
    for _ in range(repeat):
        with Session(engine) as session:
            began = time.perf_counter()
            result = replay(
                session=session, limits=limits, start=start, end=end, cooldown=timedelta(hours=1)
            )
            times.append(time.perf_counter() - began)
    fired = sum(len(r.episodes) for r in result.rules)
    began = time.perf_counter()
    with Session(engine) as session:
        for k in range(SAMPLED_CHECKS):
            now = start + (end - start) * (k + 0.5) / SAMPLED_CHECKS
            obs = inputs.gather(
                session=session,
                limits=limits,
                now=now,
                open_breakers={},
                breaker_lookback=timedelta(minutes=2),
            )
            evaluate(obs, limits)
    reference = (time.perf_counter() - began) / SAMPLED_CHECKS * result.checks
    value = statistics.median(times)
    name = url.split(":", 1)[0]
    print(
        f"backtest 7d {result.requests:,} requests {result.checks} checks"
        f" ({name}, {fired} episodes): {value:.2f} s"
        f" (reference: {reference:.1f} s, {reference / value:.1f}x)"
    )
    engine.dispose()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--db-dir", type=Path, default=Path("/tmp"))
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--postgres", default=None, help="a database URL the bench may wipe")
    args = parser.parse_args(argv)
    path = args.db_dir / f"chatmon-bench-backtest-{args.rows}.db"
    seed_sqlite(path, args.rows)
    run(f"sqlite:///{path}", args.repeat)
    if args.postgres:
        seed_postgres(args.postgres, args.rows)
        run(args.postgres, args.repeat)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
