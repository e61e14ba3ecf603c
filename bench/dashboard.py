"""Dashboard at scale: /api/stats and the monitor page's data load at 1M and 10M requests.

    python bench/dashboard.py [--rows 1000000] [--db-dir /tmp] [--repeat 5] [--postgres URL]

For each size (default: 1M, then 10M) in one run:

1. seeds a SQLite database under ``--db-dir`` with that many synthetic requests spread
   evenly over the 30 days before now (3 models, one without a price; 2 % errors, 1 %
   cancelled; log-normal latencies), by bulk insert, then builds the hourly rollups
   with the same SQL as ``request_log.rebuild_rollups``. The file is kept and reused by
   the next run while its data still ends within ``--max-seed-age`` hours (default 1;
   otherwise re-seeded: 10M rows take tens of minutes). An older seed leaves the last
   hours of each window empty, which changes the figures a little but not the work:
   the rollup rows read are the same;
2. serves chatmon's API routes (``chatmon.api``) with uvicorn on a free port and
   times ``GET /api/stats?window=24h`` and ``window=7d`` over real HTTP;
3. times the monitor page's data load (``presenters.dashboard.load``, what ``MonitorState``
   runs in its worker thread: KPIs, every chart, cost by model and the first page of the
   request table) for the same windows;
4. times the naive reference for each: load the window's rows into Python and compute
   the same figures there (exact percentiles by sorting);
5. times ``GET /api/usage`` by user and by conversation (reference: one ``GROUP BY`` over
   the window's rows in SQL) and ``GET /api/budget`` (default daily budget; reference:
   the 7-day group-by by model). The budget figure is printed once per window loop.
   Before timing /api/usage, its rows (keys in order, requests, cost) are checked
   against the reference's for the same window: a "# ... MISMATCH" line says they differ.

Each figure is the median of ``--repeat`` runs (the reference: of ``--reference-repeat``)
and printed as ``name: value (reference: value, ratio)``, ratio = reference / value.
Targets (BENCHMARKS.md #3): <= 200 ms at 1M rows, <= 1 s at 10M.
"""

from __future__ import annotations

import argparse
import math
import os
import random
import sqlite3
import statistics
import sys
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/dashboard.py` as well as `python -m bench.dashboard`
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import httpx
import uvicorn
from sqlmodel import Session

from chatmon.db import make_engine
from chatmon.devtools.procs import free_port
from chatmon.migrate import upgrade_head
from chatmon.presenters import dashboard as dashboard_view
from chatmon.services import request_log, stats
from chatmon.services.histogram import bin_of

SIZES = (1_000_000, 10_000_000)
SPAN = timedelta(days=30)
TARGET_MS = {1_000_000: 200.0, 10_000_000: 1000.0}
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


def _synthetic_row(i: int, ts: float, rng: random.Random, ids: list[str]) -> tuple:
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
            _synthetic_row(i, first + (i + rng.random()) * step, rng, ids)
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
                    row = list(_synthetic_row(i, first + (i + rng.random()) * step, rng, ids))
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


# ----------------------------------------------------------------------------- naive reference


def _exact(sorted_values: list[float], q: float) -> float | None:
    if not sorted_values:
        return None
    return sorted_values[max(1, math.ceil(q * len(sorted_values))) - 1]


_NAIVE_SELECT = (
    "SELECT started_at, model, status, error_category, latency_seconds, ttft_seconds,"
    " input_tokens, output_tokens, cost_usd, priced, feedback, retries, correlation_id"
    " FROM llm_request WHERE started_at >= {p} AND started_at < {p}"
)


def _load_rows(url: str, start: datetime, end: datetime) -> list[tuple]:
    """Every row of the window, through the driver itself (no ORM cost on the reference)."""
    if url.startswith("sqlite"):

        def fmt(moment: datetime) -> str:
            return moment.replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")

        with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
            return connection.execute(
                _NAIVE_SELECT.format(p="?"), (fmt(start), fmt(end))
            ).fetchall()
    raw = make_engine(url).raw_connection()
    try:
        with raw.cursor() as cursor:
            cursor.execute(_NAIVE_SELECT.format(p="%s"), (start, end))
            return [(r[0].isoformat(), *r[1:]) for r in cursor.fetchall()]
    finally:
        raw.close()


def _naive_figures(rows: list[tuple]) -> dict:
    latencies = sorted(r[4] for r in rows if r[2] != "cancelled")
    ttfts = sorted(r[5] for r in rows if r[5] is not None)
    errors = Counter(r[3] for r in rows if r[2] == "error")
    return {
        "requests": len(rows),
        "errors": sum(errors.values()),
        "latency_p50": _exact(latencies, 0.5),
        "latency_p95": _exact(latencies, 0.95),
        "latency_p99": _exact(latencies, 0.99),
        "ttft_p95": _exact(ttfts, 0.95),
        "tokens_input": sum(r[6] or 0 for r in rows),
        "tokens_output": sum(r[7] or 0 for r in rows),
        "cost_usd": sum(r[8] or 0.0 for r in rows),
        "feedback_up": sum(1 for r in rows if r[10] == 1),
        "feedback_down": sum(1 for r in rows if r[10] == -1),
        "errors_by_category": dict(errors),
    }


def naive_stats(url: str, start: datetime, end: datetime) -> dict:
    """/api/stats the naive way: every row of the window into Python."""
    return _naive_figures(_load_rows(url, start, end))


def naive_dashboard(url: str, start: datetime, end: datetime) -> dict:
    """The monitor page's data the naive way: rows into Python, grouped and sorted there."""
    rows = _load_rows(url, start, end)
    width = stats.bucket_seconds_for(end - start)
    buckets: dict[int, list[tuple]] = defaultdict(list)
    by_model: dict[str, list[tuple]] = defaultdict(list)
    for row in rows:
        moment = datetime.fromisoformat(row[0]).replace(tzinfo=UTC)
        buckets[int(moment.timestamp()) // width].append(row)
        by_model[row[1]].append(row)
    return {
        "summary": _naive_figures(rows),
        "series": {b: _naive_figures(bucket_rows) for b, bucket_rows in buckets.items()},
        "models": {m: sum(r[8] or 0.0 for r in model_rows) for m, model_rows in by_model.items()},
        "page": sorted(rows, key=lambda r: r[0], reverse=True)[:25],
    }


# ----------------------------------------------------------------------------- timing


def naive_usage(url: str, start: datetime, end: datetime, column: str) -> list[tuple]:
    """The reference for /api/usage: one GROUP BY over the window's rows, in SQL."""
    query = (
        f"SELECT {column}, COUNT(*), COALESCE(SUM(cost_usd), 0) FROM llm_request "
        "WHERE started_at >= {p} AND started_at < {p} GROUP BY 1 ORDER BY 3 DESC, 2 DESC, 1 "
        "LIMIT 50"
    )
    if url.startswith("sqlite"):
        with sqlite3.connect(url.removeprefix("sqlite:///")) as connection:
            return connection.execute(
                query.format(p="?"), (_sqlite_time(start), _sqlite_time(end))
            ).fetchall()
    raw = make_engine(url).raw_connection()
    try:
        with raw.cursor() as cursor:
            cursor.execute(query.format(p="%s"), (start, end))
            return [tuple(row) for row in cursor.fetchall()]
    finally:
        raw.close()


def usage_matches(client: httpx.Client, url: str, window: str, by: str, column: str) -> str:
    """Whether ``/api/usage`` shows what the reference GROUP BY finds (keys in order,
    requests, cost to the micro-dollar the API rounds to), as a line to print."""
    start, end = stats.last(stats.WINDOWS[window])  # the same window for both
    params = {"start": start.isoformat(), "end": end.isoformat(), "by": by}
    response = client.get("/api/usage", params=params)
    response.raise_for_status()
    ours = [(r["key"], r["requests"], r["cost_usd"]) for r in response.json()["rows"]]
    naive = naive_usage(url, start, end, column)

    def same(
        a: tuple[Any, ...], b: tuple[Any, ...]
    ) -> bool:  # the API rounds cost to 6 decimals; sums in
        # another order differ in the last bit (0.0009675 vs 0.0009674999999999999)
        return a[:2] == b[:2] and abs(a[2] - (b[2] or 0.0)) <= 5e-7 + 1e-12

    differing = sum(not same(a, b) for a, b in zip(ours, naive, strict=False))
    differing += abs(len(ours) - len(naive))
    if not differing:
        return "matches the GROUP BY over the rows"
    return f"MISMATCH with the GROUP BY over the rows ({differing} of {len(naive)} rows differ)"


def _sqlite_time(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


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
    ratio = reference_ms / value_ms
    return f"{name}: {value_ms:.1f} ms (reference: {reference_ms:.1f} ms, {ratio:.1f}x)"


def run_size(
    rows: int,
    db_dir: Path,
    repeat: int,
    reference_repeat: int,
    postgres: str | None = None,
    max_seed_age: timedelta = timedelta(hours=1),
) -> list[tuple[str, float]]:
    if postgres:
        url = postgres
        ensure_seeded_postgres(url, rows)
    else:
        path = db_dir / f"chatmon-bench-dashboard-{rows}.db"
        ensure_seeded(path, rows, max_seed_age)
        url = f"sqlite:///{path}"
    use_database(url)
    label = f"{rows // 1_000_000}M" if rows % 1_000_000 == 0 else f"{rows}"
    label += "_postgres" if postgres else ""
    figures: list[tuple[str, float]] = []
    engine = make_engine(url)
    with ApiServer() as server, httpx.Client(base_url=server.url, timeout=120) as client:
        for window in ("24h", "7d"):
            start, end = stats.last(stats.WINDOWS[window])

            def api_call(window: str = window) -> None:
                response = client.get("/api/stats", params={"window": window})
                response.raise_for_status()

            def dashboard(start: datetime = start, end: datetime = end) -> None:
                with Session(engine) as session:  # what MonitorState runs in its thread
                    dashboard_view.load(
                        session, dashboard_view.DashboardQuery(start=start, end=end)
                    )

            def usage_call(window: str = window, by: str = "user") -> None:
                response = client.get("/api/usage", params={"window": window, "by": by})
                response.raise_for_status()

            def budget_call() -> None:
                client.get("/api/budget").raise_for_status()

            for name, ours_action, naive_action in (
                (f"dashboard_api_stats_{window}_{label}_rows", api_call,
                 lambda start=start, end=end: naive_stats(url, start, end)),
                (f"dashboard_monitor_load_{window}_{label}_rows", dashboard,
                 lambda start=start, end=end: naive_dashboard(url, start, end)),
                (f"usage_api_by_user_{window}_{label}_rows", usage_call,
                 lambda start=start, end=end: naive_usage(url, start, end, "session_id")),
                (f"usage_api_by_conversation_{window}_{label}_rows",
                 lambda window=window: usage_call(window, "conversation"),
                 lambda start=start, end=end: naive_usage(url, start, end, "conversation_id")),
                (f"budget_api_{label}_rows", budget_call,
                 lambda start=start, end=end: naive_usage(url, start, end, "model")),
            ):  # fmt: skip
                if name.startswith("usage_api_by_"):
                    by = "user" if "_by_user_" in name else "conversation"
                    column = "session_id" if by == "user" else "conversation_id"
                    print(f"# {name}: {usage_matches(client, url, window, by, column)}")
                ours_wall, ours_cpu = median_ms(ours_action, repeat)
                naive_wall, naive_cpu = median_ms(naive_action, reference_repeat)
                print(line(name, ours_wall, naive_wall), flush=True)
                print(line(name + "_cpu", ours_cpu, naive_cpu), flush=True)
                figures.append((name, ours_wall))
    engine.dispose()
    return figures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--rows", type=int, action="append", help="rows to seed (repeatable); default 1M and 10M"
    )
    parser.add_argument("--db-dir", type=Path, default=Path(os.environ.get("TMPDIR", "/tmp")))
    parser.add_argument(
        "--repeat", type=int, default=5, help="timed runs per figure (median printed)"
    )
    parser.add_argument(
        "--reference-repeat", type=int, default=3, help="timed runs of the naive reference"
    )
    parser.add_argument(
        "--postgres",
        metavar="URL",
        help="also time PostgreSQL: a database the bench may wipe, e.g. "
        "postgresql+psycopg://postgres@127.0.0.1:5432/chatmon_bench (default sizes: 1M)",
    )
    parser.add_argument(
        "--max-seed-age",
        type=float,
        default=1.0,
        metavar="HOURS",
        help="reuse a SQLite seed whose data ends at most this many hours ago (default 1)",
    )
    args = parser.parse_args(argv)
    sizes = tuple(args.rows) if args.rows else SIZES
    print(
        f"# {sys.executable} bench/dashboard.py "
        f"{' '.join(argv if argv is not None else sys.argv[1:])}"
    )
    failed = []
    runs = [(rows, None) for rows in sizes]
    if args.postgres:
        runs += [(rows, args.postgres) for rows in (tuple(args.rows) if args.rows else SIZES[:1])]
    for rows, postgres in runs:
        for name, value in run_size(
            rows,
            args.db_dir,
            args.repeat,
            args.reference_repeat,
            postgres,
            timedelta(hours=args.max_seed_age),
        ):
            target = None if postgres else TARGET_MS.get(rows)  # the targets are SQLite's
            if target is not None and value > target:
                failed.append(f"{name} {value:.0f} ms > {target:.0f} ms")
    print("# targets (wall time): " + ("all met" if not failed else "MISSED: " + "; ".join(failed)))
    print(f"# load average during the run: {', '.join(f'{x:.1f}' for x in os.getloadavg())} "
          f"on {os.cpu_count()} cores")  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
