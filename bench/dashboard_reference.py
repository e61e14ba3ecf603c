"""The dashboard benchmark's naive reference: the same figures computed from the window's
rows loaded into Python (exact percentiles by sorting), and /api/usage's as one
``GROUP BY`` over the rows in SQL, with the check that the API shows what it finds."""

from __future__ import annotations

import math
import sqlite3
from collections import Counter, defaultdict
from datetime import UTC, datetime
from typing import Any

import httpx

from chatmon.db import make_engine
from chatmon.services import stats


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
