"""The window reader: whole hours from the rollups, the two partial edge hours from
``llm_request``, merged into totals and latency histograms.

How a window stays fast at millions of rows: the whole hours inside it are read
from the hourly rollups (``llm_request_hourly``, ``llm_latency_hourly``), and only
the partial hours at its two edges from ``llm_request`` itself, through the
``started_at`` index. Counts, tokens and cost are exact.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import and_, case, func, literal_column, or_, select
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from chatmon.models import ALL_MODELS, LLMLatencyHourly, LLMRequest, LLMRequestHourly
from chatmon.services.sql_time import epoch_of, epoch_seconds, from_epoch
from chatmon.services.stats.filters import ALL_REQUESTS, RequestFilter
from chatmon.services.stats.window import HOUR, check_window

Histogram = dict[int, int]  # bin -> requests (chatmon.services.histogram)


# ----------------------------------------------------------------------------- splitting


@dataclass(frozen=True)
class Split:
    """A window as whole rollup hours ``[first_hour, end_hour)`` plus raw edge ranges."""

    first_hour: int
    end_hour: int
    edges: tuple[tuple[datetime, datetime], ...]

    @property
    def has_hours(self) -> bool:
        return self.end_hour > self.first_hour


def split(start: datetime, end: datetime, *, use_rollups: bool = True) -> Split:
    """``[start, end)`` as rollup hours and edges (all edge when ``use_rollups`` is off)."""
    start, end = check_window(start, end)
    first_hour = math.ceil(epoch_of(start) / HOUR)
    end_hour = math.floor(epoch_of(end) / HOUR)
    if not use_rollups or end_hour <= first_hour:
        return Split(0, 0, ((start, end),))
    edges = (
        (start, from_epoch(first_hour * HOUR)),
        (from_epoch(end_hour * HOUR), end),
    )
    return Split(first_hour, end_hour, tuple((a, b) for a, b in edges if b > a))


def _edge_filter(window: Split) -> ColumnElement[bool] | None:
    if not window.edges:
        return None
    started = col(LLMRequest.started_at)
    edges = or_(*(and_(started >= a, started < b) for a, b in window.edges))
    return and_(col(LLMRequest.synthetic).is_(False), edges)  # probes: in no figure


def _as_int(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return case((condition, 1), else_=0)


def _hour_bucket(hour: Any, bucket_seconds: int) -> Any:
    """The bucket of a rollup hour; plain ``hour`` for hourly buckets, which keeps the
    scan in key order (``hour / 1`` would make the database sort)."""
    hours = bucket_seconds // HOUR
    return hour if hours == 1 else hour // hours


def _rows(session: Session, query: Any) -> Sequence[tuple[Any, ...]]:
    """Run an aggregate query and return the driver's plain tuples.

    The columns are integers, floats and strings that need no type conversion, and
    skipping SQLAlchemy's row objects halves the cost of the tens of thousands of
    histogram rows a long window reads.
    """
    result = session.connection().execute(query)
    try:
        return result.cursor.fetchall()
    finally:
        result.close()


def _named_rows(session: Session, query: Any) -> list[dict[str, Any]]:
    """:func:`_rows` as ``{label: value}``, so no reader depends on the column order."""
    result = session.connection().execute(query)
    try:
        names = list(result.keys())
        return [dict(zip(names, row, strict=True)) for row in result.cursor.fetchall()]
    finally:
        result.close()


# ----------------------------------------------------------------------------- totals


@dataclass
class Totals:
    """Counts and sums of a group of requests."""

    requests: int = 0
    tokens_input: int = 0
    tokens_output: int = 0
    cost_usd: float = 0.0
    unpriced: int = 0
    retries: int = 0
    feedback_up: int = 0
    feedback_down: int = 0

    def add(self, row: Mapping[str, Any]) -> None:
        """Add a row labelled with these field names (SQL sums: ``None`` when empty)."""
        self.requests += int(row["requests"] or 0)
        self.tokens_input += int(row["tokens_input"] or 0)
        self.tokens_output += int(row["tokens_output"] or 0)
        self.cost_usd += float(row["cost_usd"] or 0.0)
        self.unpriced += int(row["unpriced"] or 0)
        self.retries += int(row["retries"] or 0)
        self.feedback_up += int(row["feedback_up"] or 0)
        self.feedback_down += int(row["feedback_down"] or 0)

    def merge(self, other: Totals) -> None:
        self.requests += other.requests
        self.tokens_input += other.tokens_input
        self.tokens_output += other.tokens_output
        self.cost_usd += other.cost_usd
        self.unpriced += other.unpriced
        self.retries += other.retries
        self.feedback_up += other.feedback_up
        self.feedback_down += other.feedback_down


class Group(NamedTuple):
    """What a :class:`Totals` is grouped by; a value not grouped by is 0 or ``""``."""

    bucket: int = 0
    model: str = ""
    status: str = ""
    error_category: str = ""  # "" also for requests without one


GROUPS = Group._fields


def _group_of(row: Mapping[str, Any]) -> Group:
    return Group(
        bucket=int(row.get("bucket") or 0),
        model=row.get("model") or "",
        status=row.get("status") or "",
        error_category=row.get("error_category") or "",
    )


def totals(
    session: Session,
    window: Split,
    *,
    by: Sequence[str],
    where: RequestFilter = ALL_REQUESTS,
    bucket_seconds: int = HOUR,
) -> dict[Group, Totals]:
    """Counts and sums of the window grouped by ``by`` (a subset of :data:`GROUPS`),
    narrowed by ``where``'s filters."""
    results: dict[Group, Totals] = defaultdict(Totals)
    if window.has_hours:
        h = LLMRequestHourly
        keys = {
            "model": h.model,
            "status": h.status,
            "error_category": h.error_category,
            "bucket": _hour_bucket(col(h.hour), bucket_seconds),
        }
        sums: dict[str, Any] = {
            "requests": func.sum(h.requests),
            "tokens_input": func.sum(h.tokens_input),
            "tokens_output": func.sum(h.tokens_output),
            "cost_usd": func.sum(h.cost_usd),
            "unpriced": func.sum(h.unpriced),
            "retries": func.sum(h.retries),
            "feedback_up": func.sum(h.feedback_up),
            "feedback_down": func.sum(h.feedback_down),
        }
        groups = [keys[name].label(name) for name in by]
        query = (
            select(*groups, *(value.label(name) for name, value in sums.items()))
            .where(col(h.hour) >= window.first_hour, col(h.hour) < window.end_hour)
            .group_by(*groups)
        )
        query = where.apply(
            query,
            model=col(h.model),
            status=col(h.status),
            error_category=col(h.error_category),
        )
        for row in _named_rows(session, query):
            results[_group_of(row)].add(row)
    edge = _edge_filter(window)
    if edge is not None:
        r = LLMRequest
        category = func.coalesce(r.error_category, "")
        keys = {
            "model": r.model,
            "status": r.status,
            "error_category": category,
            "bucket": epoch_seconds(r.started_at) // bucket_seconds,
        }
        sums = {
            "requests": func.count(),
            "tokens_input": func.sum(r.input_tokens),
            "tokens_output": func.sum(r.output_tokens),
            "cost_usd": func.sum(r.cost_usd),
            "unpriced": func.sum(_as_int(col(r.priced).is_(False))),
            "retries": func.sum(r.retries),
            "feedback_up": func.sum(_as_int(col(r.feedback) == 1)),
            "feedback_down": func.sum(_as_int(col(r.feedback) == -1)),
        }
        groups = [keys[name].label(name) for name in by]
        query = (
            select(*groups, *(value.label(name) for name, value in sums.items()))
            .where(edge)
            .group_by(*groups)
        )
        query = where.apply(
            query, model=col(r.model), status=col(r.status), error_category=category
        )
        for row in _named_rows(session, query):
            results[_group_of(row)].add(row)
    return dict(results)


# ----------------------------------------------------------------------------- histograms


def histograms(
    session: Session,
    window: Split,
    *,
    metrics: Sequence[str] = ("latency", "ttft"),
    by_bucket: bool = False,
    model: str | None = None,
    bucket_seconds: int = HOUR,
) -> dict[str, dict[int, Histogram]]:
    """``{metric: {bucket: {bin: count}}}`` ("latency", "ttft"); bucket 0 if unbucketed."""
    results: dict[str, dict[int, Histogram]] = {m: defaultdict(dict) for m in metrics}
    if window.has_hours:
        h = LLMLatencyHourly
        bucket = _hour_bucket(col(h.hour), bucket_seconds) if by_bucket else literal_column("0")
        hourly = by_bucket and bucket_seconds == HOUR
        for metric in metrics:  # one (metric, model) per query: one contiguous key range
            query = (
                select(bucket, col(h.bin), col(h.count) if hourly else func.sum(h.count))
                .where(col(h.metric) == metric, col(h.model) == (model or ALL_MODELS))
                .where(col(h.hour) >= window.first_hour, col(h.hour) < window.end_hour)
            )
            if not hourly:  # (hour, bin) is unique within a (metric, model): nothing to add up
                query = query.group_by(*([bucket] if by_bucket else []), col(h.bin))
            per_bucket = results[metric]
            # (bucket, bin, count) as selected just above; plain tuples for speed
            for bucket_index, bin_index, count in _rows(session, query):
                per_bucket[bucket_index][bin_index] = count  # grouped: each pair once
    edge = _edge_filter(window)
    if edge is not None:
        r = LLMRequest
        bucket = epoch_seconds(r.started_at) // bucket_seconds if by_bucket else literal_column("0")
        for metric in metrics:
            bin_column = col(r.latency_bin) if metric == "latency" else col(r.ttft_bin)
            query = (
                select(bucket, bin_column, func.count())
                .where(edge, bin_column.is_not(None))
                .group_by(*([bucket] if by_bucket else []), bin_column)
            )
            if model is not None:
                query = query.where(col(r.model) == model)
            per_bucket = results[metric]
            for bucket_index, bin_index, count in _rows(session, query):  # as selected
                counts = per_bucket[bucket_index]
                counts[bin_index] = counts.get(bin_index, 0) + count
    return {metric: dict(per_bucket) for metric, per_bucket in results.items()}


def merged(per_bucket: dict[int, Histogram]) -> Histogram:
    """The buckets' histograms added up."""
    if len(per_bucket) == 1:
        return next(iter(per_bucket.values()))
    total: Histogram = {}
    get = total.get
    for counts in per_bucket.values():
        for bin_index, count in counts.items():
            total[bin_index] = get(bin_index, 0) + count
    return total


# ----------------------------------------------------------------------------- one pass


@dataclass
class WindowData:
    """One read of a window: totals per :class:`Group` (bucket 0 / model "" when not
    grouped by them) and histograms per bucket."""

    totals: dict[Group, Totals]
    latency: dict[int, Histogram]
    ttft: dict[int, Histogram]
    latency_all: Histogram  # the whole window
    ttft_all: Histogram


def window_data(
    session: Session,
    start: datetime,
    end: datetime,
    *,
    width: int | None = None,
    model: str | None = None,
    by_model: bool = False,
    with_histograms: bool = True,
) -> WindowData:
    """Totals by status and error category (and chart bucket of ``width`` seconds, and
    model, when asked) and the latency/TTFT histograms of ``[start, end)``."""
    window = split(start, end, use_rollups=width is None or width % HOUR == 0)
    by = [
        *(["bucket"] if width else []),
        *(["model"] if by_model else []),
        "status",
        "error_category",
    ]
    grouped = totals(
        session, window, by=by, where=RequestFilter(model=model), bucket_seconds=width or HOUR
    )
    hists: dict[str, dict[int, Histogram]] = {"latency": {}, "ttft": {}}
    if with_histograms:
        hists = histograms(
            session, window, by_bucket=bool(width), model=model, bucket_seconds=width or HOUR
        )
    return WindowData(
        totals=grouped,
        latency=hists["latency"],
        ttft=hists["ttft"],
        latency_all=merged(hists["latency"]),
        ttft_all=merged(hists["ttft"]),
    )
