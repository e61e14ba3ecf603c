""" "Did the change help?" at scale: /api/versions and the versions report, from the
prompt-version rollups against the same report from the rows, side by side.

    python -m bench.versions [--rows 200000] [--repeat 5] [--reference-repeat 3]

1. seeds a throw-away SQLite database with ``--rows`` requests spread over the 7 days
   before now (2 models, 3 % errors, 2 % cancelled, 10 % rated, 6 % implicitly
   flagged, 1 % probe requests; log-normal latencies) with 6 prompt changes and 2
   model changes at odd minutes, by bulk insert, then builds every rollup with
   ``request_log.rebuild_rollups`` (what the recorder keeps in step);
2. serves chatmon's API routes with uvicorn and times ``GET /api/versions`` for
   ``window=24h`` and ``7d`` over real HTTP; the reference is the same report read from
   every request of the window (``versions.report(use_rollups=False)``, the way the
   report was computed before the rollups), serialized to JSON;
3. times ``versions.report`` itself, rollups against rows, for both windows;
4. checks that both give the same figures (floats to 1e-9 relative).

Each figure is the median of ``--repeat`` runs (the reference: of ``--reference-repeat``),
printed as ``name: value (reference: value, ratio)``, ratio = reference / value.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import random
import shutil
import sqlite3
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/versions.py` as well as `python -m bench.versions`
    sys.path.insert(0, str(ROOT))

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

import httpx
from sqlmodel import Session

from bench.api_timing import ApiServer, line, median_ms, use_database
from chatmon.db import make_engine
from chatmon.migrate import upgrade_head
from chatmon.services import request_log, versions
from chatmon.services.histogram import bin_of

SPAN = timedelta(days=7)
PROMPT_CHANGES = 6
MODELS = ("openai/gemini-3-flash", "gemini/gemini-2.0-flash")
COLUMNS = (
    "correlation_id", "session_id", "conversation_id", "model", "provider", "started_at",
    "ttft_seconds", "latency_seconds", "input_tokens", "output_tokens", "cost_usd", "priced",
    "status", "error_category", "retries", "temperature", "prompt_version", "feedback",
    "latency_bin", "ttft_bin", "synthetic", "fallback", "implicit_flags",
)  # fmt: skip
INSERT = f"INSERT INTO llm_request ({', '.join(COLUMNS)}) VALUES ({', '.join('?' * len(COLUMNS))})"


def _stamp(moment: datetime) -> str:
    return moment.astimezone(UTC).replace(tzinfo=None).isoformat(sep=" ", timespec="microseconds")


def seed(path: Path, rows: int, now: datetime) -> None:
    """``rows`` requests over the 7 days before ``now``, prompt and model changes among them."""
    url = f"sqlite:///{path}"
    upgrade_head(url)
    rng = random.Random(15)
    first = now - SPAN
    hashes = [f"{rng.getrandbits(48):012x}" for _ in range(PROMPT_CHANGES + 1)]
    # changes at odd minutes and seconds, so every side starts and ends mid-hour
    prompt_at = [
        first + SPAN * (k + 1) / (PROMPT_CHANGES + 1) + timedelta(minutes=17, seconds=k)
        for k in range(PROMPT_CHANGES)
    ]
    model_at = [first + timedelta(days=2, minutes=41), first + timedelta(days=5, minutes=9)]
    step = SPAN.total_seconds() / rows
    batch = []
    for i in range(rows):
        started = first + timedelta(seconds=(i + rng.random()) * step)
        version = hashes[sum(started >= at for at in prompt_at)]
        model = MODELS[sum(started >= at for at in model_at) % 2]
        outcome = rng.random()
        status = "error" if outcome < 0.03 else "cancelled" if outcome < 0.05 else "ok"
        ttft = None if status == "error" else rng.lognormvariate(-0.9, 0.5)
        latency = rng.lognormvariate(0.4 + 0.05 * (hashes.index(version) % 3), 0.6)
        tokens = None if status != "ok" else (rng.randrange(20, 900), rng.randrange(20, 600))
        cost = None if tokens is None else (tokens[0] * 0.075 + tokens[1] * 0.30) / 1e6
        rated = rng.random() < 0.1
        batch.append(
            (
                f"{i:016x}", f"owner-{i % 3000}", f"conv-{i % 20000}", model, model.split("/")[0],
                _stamp(started), ttft, latency, tokens and tokens[0], tokens and tokens[1], cost,
                True, status, "server_error" if status == "error" else None, 0, 0.7, version,
                (1 if rng.random() < 0.8 else -1) if rated else None,
                None if status == "cancelled" else bin_of(latency),
                None if ttft is None else bin_of(ttft),
                rng.random() < 0.01, False,
                1 if status == "cancelled" else 4 if rng.random() < 0.04 else 0,
            )
        )  # fmt: skip
    connection = sqlite3.connect(path, isolation_level=None)
    connection.execute("BEGIN")
    connection.executemany(INSERT, batch)
    events = [
        ("prompt", a[:8], b[:8], at)
        for a, b, at in zip(hashes, hashes[1:], prompt_at, strict=False)
    ]
    events += [("model", MODELS[k % 2], MODELS[(k + 1) % 2], at) for k, at in enumerate(model_at)]
    connection.executemany(
        "INSERT INTO change_event (kind, old, new, at) VALUES (?, ?, ?, ?)",
        [(kind, old, new, _stamp(at)) for kind, old, new, at in events],
    )
    seen = [first, *prompt_at, now]
    connection.executemany(
        "INSERT INTO prompt_version (hash, first_seen, last_seen, text) VALUES (?, ?, ?, ?)",
        [(h, _stamp(seen[k]), _stamp(seen[k + 1]), f"prompt {k}") for k, h in enumerate(hashes)],
    )
    connection.execute("COMMIT")
    connection.execute("ANALYZE")
    connection.close()
    engine = make_engine(url)
    with Session(engine) as session:
        request_log.rebuild_rollups(session=session)
        session.commit()
    engine.dispose()


def same(rolled: Any, raw: Any) -> bool:
    """Equal, floats to within rounding (sums added up in another order)."""
    if isinstance(raw, dict):
        return set(rolled) == set(raw) and all(same(rolled[k], raw[k]) for k in raw)
    if isinstance(raw, list):
        return len(rolled) == len(raw) and all(same(a, b) for a, b in zip(rolled, raw, strict=True))
    if isinstance(raw, float) and isinstance(rolled, float):
        return math.isclose(rolled, raw, rel_tol=1e-9, abs_tol=1e-15)
    return bool(rolled == raw)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=5, help="timed runs (median printed)")
    parser.add_argument("--reference-repeat", type=int, default=3, help="runs of the reference")
    args = parser.parse_args(argv)
    print(f"# {sys.executable} -m bench.versions {' '.join(argv or sys.argv[1:])}")
    now = datetime.now(UTC)
    workdir = Path(tempfile.mkdtemp(prefix="chatmon-bench-versions-"))
    path = workdir / "bench.db"
    started = time.perf_counter()
    seed(path, args.rows, now)
    print(f"# seeded {args.rows:,} rows over 7 days in {time.perf_counter() - started:.0f} s",
          file=sys.stderr, flush=True)  # fmt: skip
    url = f"sqlite:///{path}"
    use_database(url)
    engine = make_engine(url)
    label = f"{args.rows // 1000}k" if args.rows % 1000 == 0 else str(args.rows)
    identical = True
    with ApiServer() as server, httpx.Client(base_url=server.url, timeout=300) as client:
        for window, length in (("24h", timedelta(hours=24)), ("7d", SPAN)):

            def api(window: str = window) -> None:
                client.get("/api/versions", params={"window": window}).raise_for_status()

            end = datetime.now(UTC)  # one window for both (the API's moves on a little)

            def report(
                use_rollups: bool, start: datetime = end - length, end: datetime = end
            ) -> versions.VersionsReport:
                with Session(engine) as session:
                    return versions.report(
                        session=session, start=start, end=end, use_rollups=use_rollups
                    )

            def reference_json() -> None:
                json.dumps(report(False).to_json())

            rolled, raw = report(True), report(False)
            identical &= same(rolled.to_json(), raw.to_json())
            changes = len(raw.changes)
            for name, ours, reference in (
                (f"versions_api_{window}_{label}_rows", api, reference_json),
                (f"versions_report_{window}_{label}_rows", lambda: report(True),
                 lambda: report(False)),
            ):  # fmt: skip
                ours_wall, ours_cpu = median_ms(ours, args.repeat)
                ref_wall, ref_cpu = median_ms(reference, args.reference_repeat)
                print(line(name, ours_wall, ref_wall), flush=True)
                print(line(name + "_cpu", ours_cpu, ref_cpu), flush=True)
            print(f"# {window}: {changes} changes judged, {len(raw.versions)} versions listed")
    engine.dispose()
    shutil.rmtree(workdir, ignore_errors=True)
    print(f"# rollup and row figures identical (floats to 1e-9): {'yes' if identical else 'NO'}")
    print(f"# load average during the run: {', '.join(f'{x:.1f}' for x in os.getloadavg())} "
          f"on {os.cpu_count()} cores")  # fmt: skip
    return 0 if identical else 1


if __name__ == "__main__":
    sys.exit(main())
