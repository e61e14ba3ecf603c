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

Seeding is :mod:`bench.dashboard_seed`, the naive reference :mod:`bench.dashboard_reference`,
the API server and the timing :mod:`bench.api_timing`; this module runs them per size.
"""

from __future__ import annotations

import argparse
import os
import sys
from datetime import datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/dashboard.py` as well as `python -m bench.dashboard`
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import httpx
from sqlmodel import Session

from bench.api_timing import ApiServer, line, median_ms, use_database
from bench.dashboard_reference import naive_dashboard, naive_stats, naive_usage, usage_matches
from bench.dashboard_seed import ensure_seeded, ensure_seeded_postgres
from chatmon.db import make_engine
from chatmon.presenters import dashboard as dashboard_view
from chatmon.services import stats

SIZES = (1_000_000, 10_000_000)
TARGET_MS = {1_000_000: 200.0, 10_000_000: 1000.0}


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
