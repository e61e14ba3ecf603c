"""The dashboard benchmarks' synthetic request log: seeding a SQLite (bulk insert) or
PostgreSQL (COPY) database with requests spread evenly over the 30 days before now, the
hourly rollups built after, and reusing a seed that is still recent enough.

3 models, one without a price; 2 % errors, 1 % cancelled; log-normal latencies. Used by
``bench.dashboard`` and ``bench.backtest`` (which spreads the same rows over 7 days).
"""

from __future__ import annotations

import os
import random
import sqlite3
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from sqlmodel import Session

from chatmon.db import make_engine
from chatmon.migrate import upgrade_head
from chatmon.services import request_log
from chatmon.services.histogram import bin_of

SPAN = timedelta(days=30)
# model, share of requests, USD per 1M input / output tokens (None: no known price)
MODELS = (
    ("openai/gemini-3-flash", 0.7, (0.075, 0.30)),
    ("gemini/gemini-2.0-flash", 0.2, (0.10, 0.40)),
    ("ollama/llama3", 0.1, None),
)
ERROR_CATEGORIES = (
    "rate_limit",
    "timeout",
    "server_error",
    "connection",
    "bad_request",
    "context_length",
)
COLUMNS = (
    "correlation_id", "session_id", "conversation_id", "model", "provider", "started_at",
    "ttft_seconds", "latency_seconds", "input_tokens", "output_tokens", "cost_usd", "priced",
    "status", "error_category", "retries", "temperature", "prompt_version", "feedback",
    "latency_bin", "ttft_bin",
)  # fmt: skip
INSERT = f"INSERT INTO llm_request ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"


# ----------------------------------------------------------------------------- seeding


def synthetic_row(i: int, ts: float, rng: random.Random, ids: list[str]) -> tuple:
    """Request ``i`` of the synthetic log, started at ``ts`` (a Unix time), as ``COLUMNS``."""
    pick = rng.random()
    model, _, price = MODELS[0] if pick < 0.7 else MODELS[1] if pick < 0.9 else MODELS[2]
    outcome = rng.random()
    ttft: float | None = rng.lognormvariate(-0.9, 0.5)
    tokens_in: int | None = int(rng.lognormvariate(6.0, 0.8)) + 1
    tokens_out: int | None = int(rng.lognormvariate(5.5, 0.7)) + 1
    status, category, feedback = "ok", None, None
    if outcome < 0.02:
        status, category = "error", rng.choice(ERROR_CATEGORIES)
        ttft, tokens_in, tokens_out = None, None, None
        latency = rng.lognormvariate(0.7, 1.0)
    elif outcome < 0.03:
        status, tokens_in, tokens_out = "cancelled", None, None
        latency = ttft + rng.uniform(0.2, 5.0)
    else:
        latency = ttft + rng.lognormvariate(0.4, 0.6)
        if rng.random() < 0.04:
            feedback = 1 if rng.random() < 0.8 else -1
    cost = None
    if price is not None and tokens_in is not None:
        cost = (tokens_in * price[0] + tokens_out * price[1]) / 1_000_000
    priced = price is not None
    started = datetime.fromtimestamp(ts, tz=UTC).replace(tzinfo=None)
    retries = 0 if rng.random() < 0.95 else rng.choice((1, 1, 2))
    return (
        f"{i:016x}", ids[i % len(ids)], ids[(i * 7) % len(ids)], model, model.split("/")[0],
        started.isoformat(sep=" ", timespec="microseconds"), ttft, latency, tokens_in, tokens_out,
        cost, priced, status, category, retries, 0.7, "5f1e2d3c4b5a", feedback,
        None if status == "cancelled" else bin_of(latency),
        None if ttft is None else bin_of(ttft),
    )  # fmt: skip


def seed(path: Path, rows: int, anchor: datetime) -> None:
    """Bulk-insert ``rows`` requests evenly over the 30 days before ``anchor``."""
    if path.exists():
        path.unlink()
    for suffix in ("-wal", "-shm"):
        Path(str(path) + suffix).unlink(missing_ok=True)
    upgrade_head(f"sqlite:///{path}")
    rng = random.Random(20250101)
    ids = [f"{rng.getrandbits(128):032x}" for _ in range(20_000)]
    first = (anchor - SPAN).timestamp()
    step = SPAN.total_seconds() / rows
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("PRAGMA journal_mode=OFF")
    connection.execute("PRAGMA synchronous=OFF")
    connection.execute("PRAGMA cache_size=-1000000")
    chunk = 200_000
    started = time.perf_counter()
    for low in range(0, rows, chunk):
        batch = [
            synthetic_row(i, first + (i + rng.random()) * step, rng, ids)
            for i in range(low, min(rows, low + chunk))
        ]
        connection.execute("BEGIN")
        connection.executemany(INSERT, batch)
        connection.execute("COMMIT")
        done = min(rows, low + chunk)
        took = time.perf_counter() - started
        print(
            f"# seeding {path.name}: {done:,}/{rows:,} rows ({took:.0f} s)",
            file=sys.stderr,
            flush=True,
        )
    connection.execute("CREATE TABLE bench_meta (rows INTEGER, anchor TEXT)")
    connection.execute("INSERT INTO bench_meta VALUES (?, ?)", (rows, anchor.isoformat()))
    connection.execute("PRAGMA journal_mode=WAL")
    connection.close()
    engine = make_engine(f"sqlite:///{path}")
    with Session(engine) as session:
        request_log.rebuild_rollups(session=session)
        session.commit()
    engine.dispose()
    print(f"# seeded {rows:,} rows in {time.perf_counter() - started:.0f} s (rollups included)",
          file=sys.stderr, flush=True)  # fmt: skip


def seed_postgres(url: str, rows: int, anchor: datetime) -> None:
    """The same synthetic requests in PostgreSQL (COPY), in a database the bench owns."""
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.exec_driver_sql("DROP SCHEMA public CASCADE")
        connection.exec_driver_sql("CREATE SCHEMA public")
    engine.dispose()
    upgrade_head(url)
    rng = random.Random(20250101)
    ids = [f"{rng.getrandbits(128):032x}" for _ in range(20_000)]
    first = (anchor - SPAN).timestamp()
    step = SPAN.total_seconds() / rows
    started = time.perf_counter()
    raw = make_engine(url).raw_connection()
    try:
        with raw.cursor() as cursor:
            with cursor.copy(f"COPY llm_request ({', '.join(COLUMNS)}) FROM STDIN") as copy:
                for i in range(rows):
                    row = list(synthetic_row(i, first + (i + rng.random()) * step, rng, ids))
                    row[5] += "+00"  # timestamptz
                    copy.write_row(row)
                    if (i + 1) % 500_000 == 0:
                        print(
                            f"# seeding postgres: {i + 1:,}/{rows:,} rows",
                            file=sys.stderr,
                            flush=True,
                        )
            cursor.execute("CREATE TABLE bench_meta (rows INTEGER, anchor TEXT)")
            cursor.execute("INSERT INTO bench_meta VALUES (%s, %s)", (rows, anchor.isoformat()))
        raw.commit()
    finally:
        raw.close()
    engine = make_engine(url)
    with Session(engine) as session:
        request_log.rebuild_rollups(session=session)
        session.commit()
    engine.dispose()
    raw = make_engine(url).raw_connection()
    raw.driver_connection.autocommit = True
    with raw.cursor() as cursor:
        cursor.execute("VACUUM ANALYZE")  # what autovacuum would do after a bulk load
    raw.close()
    print(f"# seeded postgres with {rows:,} rows in {time.perf_counter() - started:.0f} s",
          file=sys.stderr, flush=True)  # fmt: skip


def ensure_seeded_postgres(url: str, rows: int) -> None:
    """Reuse the PostgreSQL database when it holds ``rows`` rows ending within the hour."""
    now = datetime.now(UTC)
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            stored, anchor = connection.exec_driver_sql("SELECT rows, anchor FROM bench_meta").one()
        if stored == rows and now - datetime.fromisoformat(anchor) < timedelta(hours=1):
            print(
                f"# reusing {url.rsplit('/', 1)[-1]} ({rows:,} rows, seeded {anchor})",
                file=sys.stderr,
            )
            upgrade_head(url)
            return
    except Exception:  # noqa: BLE001 - not seeded yet
        pass
    finally:
        engine.dispose()
    seed_postgres(url, rows, now)


def reusable_seed(
    path: Path, rows: int, now: datetime, max_age: timedelta = timedelta(hours=1)
) -> bool:
    """Whether ``path`` holds ``rows`` seeded rows ending within ``max_age`` (then it is
    brought to the current schema and can be used as it is)."""
    if not path.exists():
        return False
    try:
        with sqlite3.connect(path) as connection:
            stored, anchor = connection.execute("SELECT rows, anchor FROM bench_meta").fetchone()
    except sqlite3.Error:
        return False
    if stored != rows or now - datetime.fromisoformat(anchor) >= max_age:
        return False
    print(f"# reusing {path} ({rows:,} rows, seeded {anchor})", file=sys.stderr)
    upgrade_head(f"sqlite:///{path}")  # a schema change since the seed
    return True


def ensure_seeded(path: Path, rows: int, max_age: timedelta = timedelta(hours=1)) -> None:
    """Reuse ``path`` when it holds ``rows`` rows ending within ``max_age``, else seed it."""
    now = datetime.now(UTC)
    if not reusable_seed(path, rows, now, max_age):
        seed(path, rows, now)
