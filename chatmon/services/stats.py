"""Dashboard and alert figures for any time window, computed in SQL.

Shared by ``/api/stats``, ``/api/requests.csv``, the monitor page and the alert
rules. Every function takes an explicit session and a ``[start, end)`` window of
aware (or naive-UTC) datetimes and returns plain dataclasses.

How a window stays fast at millions of rows: the whole hours inside it are read
from the hourly rollups (``llm_request_hourly``, ``llm_latency_hourly``), and only
the partial hours at its two edges from ``llm_request`` itself, through the
``started_at`` index. Counts, tokens and cost are exact. Percentiles come from
log-scale histograms and are the nearest-rank percentile to within 1 %
(:mod:`chatmon.services.histogram`). Latency percentiles cover ok and error requests
(not cancelled ones, nor requests chatmon refused itself); time-to-first-token
percentiles cover every request that received a first token.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

from sqlalchemy import and_, case, func, literal_column, or_, select
from sqlalchemy.sql.elements import ColumnElement, SQLCoreOperations
from sqlalchemy.sql.selectable import Select
from sqlmodel import Session, col

from chatmon.models import ALL_MODELS, LLMLatencyHourly, LLMRequest, LLMRequestHourly, table_of
from chatmon.services import histogram
from chatmon.services.sql_time import epoch_of, epoch_seconds, from_epoch, to_utc

HOUR = 3600
# Request statuses that count as failures: a provider or chatmon error, and a reply
# whose worker died while it streamed ("interrupted").
ERROR_STATUSES = ("error", "interrupted")
Histogram = dict[int, int]  # bin -> requests (chatmon.services.histogram)
WINDOWS: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
}
# Chart resolution per window length: (longest window, bucket seconds). Buckets under
# an hour are computed from the rows, so they are only used for short windows.
_BUCKETS: tuple[tuple[timedelta, int], ...] = (
    (timedelta(hours=1), 60),
    (timedelta(hours=6), 300),
    (timedelta(days=8), HOUR),
    (timedelta(days=50), 6 * HOUR),
    (timedelta(days=400), 24 * HOUR),
)
SORTABLE_COLUMNS = (
    "started_at",
    "latency_seconds",
    "ttft_seconds",
    "input_tokens",
    "output_tokens",
    "cost_usd",
    "model",
    "status",
)


class WindowError(ValueError):
    """A window or filter a caller asked for makes no sense; the message says why."""


# ----------------------------------------------------------------------------- windows


def parse_window(name: str) -> timedelta:
    """The length of a named window (``1h``, ``6h``, ``24h``, ``7d``)."""
    try:
        return WINDOWS[name]
    except KeyError:
        raise WindowError(f"window must be one of {', '.join(WINDOWS)} (got {name!r})") from None


def last(duration: timedelta, *, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The window ``[now - duration, now)`` in aware UTC."""
    end = to_utc(now) if now else datetime.now(UTC)
    return end - duration, end


def check_window(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """``start`` and ``end`` in aware UTC; raises :class:`WindowError` if end <= start."""
    start, end = to_utc(start), to_utc(end)
    if end <= start:
        raise WindowError("the window's end must be after its start")
    return start, end


def bucket_seconds_for(duration: timedelta) -> int:
    """Chart bucket width for a window: at most a few hundred points per chart."""
    for longest, seconds in _BUCKETS:
        if duration <= longest:
            return seconds
    return 7 * 24 * HOUR


# ----------------------------------------------------------------------------- results


@dataclass(frozen=True)
class WindowSummary:
    """The headline figures of one window (seconds, USD, percent as 0-100)."""

    start: datetime
    end: datetime
    requests: int
    ok: int
    errors: int
    cancelled: int
    error_rate: float
    latency_p50: float | None
    latency_p95: float | None
    latency_p99: float | None
    ttft_p50: float | None
    ttft_p95: float | None
    tokens_input: int
    tokens_output: int
    cost_usd: float
    unpriced_requests: int
    retries: int
    feedback_up: int
    feedback_down: int
    satisfaction: float | None
    errors_by_category: dict[str, int] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        """The ``/api/stats`` body: every field, datetimes as ISO 8601 UTC."""
        data = asdict(self)
        data["start"] = self.start.isoformat()
        data["end"] = self.end.isoformat()
        return data


@dataclass(frozen=True)
class SeriesPoint:
    """One chart bucket ``[start, start + bucket)``."""

    start: datetime
    requests: int
    errors: int
    latency_p50: float | None
    latency_p95: float | None
    latency_p99: float | None
    ttft_p95: float | None
    tokens_input: int
    tokens_output: int
    cost_usd: float


@dataclass(frozen=True)
class ModelBreakdown:
    """One model's share of a window."""

    model: str
    requests: int
    errors: int
    tokens_input: int
    tokens_output: int
    cost_usd: float
    unpriced_requests: int


@dataclass(frozen=True)
class RequestPage:
    """One page of the request log and how many rows match in total."""

    rows: list[LLMRequest]
    total: int


@dataclass
class _Totals:
    requests: int = 0
    tokens_input: int = 0
    tokens_output: int = 0
    cost_usd: float = 0.0
    unpriced: int = 0
    retries: int = 0
    feedback_up: int = 0
    feedback_down: int = 0

    def add(self, values: Sequence[Any]) -> None:
        self.requests += int(values[0] or 0)
        self.tokens_input += int(values[1] or 0)
        self.tokens_output += int(values[2] or 0)
        self.cost_usd += float(values[3] or 0.0)
        self.unpriced += int(values[4] or 0)
        self.retries += int(values[5] or 0)
        self.feedback_up += int(values[6] or 0)
        self.feedback_down += int(values[7] or 0)

    def merge(self, other: _Totals) -> None:
        self.requests += other.requests
        self.tokens_input += other.tokens_input
        self.tokens_output += other.tokens_output
        self.cost_usd += other.cost_usd
        self.unpriced += other.unpriced
        self.retries += other.retries
        self.feedback_up += other.feedback_up
        self.feedback_down += other.feedback_down


# ----------------------------------------------------------------------------- splitting


@dataclass(frozen=True)
class _Split:
    """A window as whole rollup hours ``[first_hour, end_hour)`` plus raw edge ranges."""

    first_hour: int
    end_hour: int
    edges: tuple[tuple[datetime, datetime], ...]

    @property
    def has_hours(self) -> bool:
        return self.end_hour > self.first_hour


def _split(start: datetime, end: datetime, *, use_rollups: bool = True) -> _Split:
    start, end = check_window(start, end)
    first_hour = math.ceil(epoch_of(start) / HOUR)
    end_hour = math.floor(epoch_of(end) / HOUR)
    if not use_rollups or end_hour <= first_hour:
        return _Split(0, 0, ((start, end),))
    edges = (
        (start, from_epoch(first_hour * HOUR)),
        (from_epoch(end_hour * HOUR), end),
    )
    return _Split(first_hour, end_hour, tuple((a, b) for a, b in edges if b > a))


def _edge_filter(split: _Split) -> ColumnElement[bool] | None:
    if not split.edges:
        return None
    started = col(LLMRequest.started_at)
    edges = or_(*(and_(started >= a, started < b) for a, b in split.edges))
    return and_(col(LLMRequest.synthetic).is_(False), edges)  # probes: in no figure


def percentiles(counts: Histogram, *quantiles: float) -> list[float | None]:
    """A histogram's nearest-rank percentiles (within 1 %), rounded to the microsecond."""
    return [None if v is None else round(v, 6) for v in histogram.percentiles(counts, quantiles)]


def _as_int(condition: ColumnElement[bool]) -> ColumnElement[int]:
    return case((condition, 1), else_=0)


# ----------------------------------------------------------------------------- totals


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


_GROUPS = ("model", "status", "error_category", "bucket")


def _totals(
    session: Session,
    split: _Split,
    *,
    by: Sequence[str],
    model: str | None = None,
    status: str | None = None,
    error_category: str | None = None,
    bucket_seconds: int = HOUR,
) -> dict[tuple[Any, ...], _Totals]:
    """Counts and sums of the window grouped by ``by`` (a subset of ``_GROUPS``)."""
    results: dict[tuple[Any, ...], _Totals] = defaultdict(_Totals)
    if split.has_hours:
        h = LLMRequestHourly
        keys = {
            "model": h.model,
            "status": h.status,
            "error_category": h.error_category,
            "bucket": _hour_bucket(col(h.hour), bucket_seconds),
        }
        groups = [keys[name].label(name) for name in by]
        query = (
            select(
                *groups,
                func.sum(h.requests),
                func.sum(h.tokens_input),
                func.sum(h.tokens_output),
                func.sum(h.cost_usd),
                func.sum(h.unpriced),
                func.sum(h.retries),
                func.sum(h.feedback_up),
                func.sum(h.feedback_down),
            )
            .where(col(h.hour) >= split.first_hour, col(h.hour) < split.end_hour)
            .group_by(*groups)
        )
        query = _filtered(
            query, col(h.model), col(h.status), col(h.error_category), model, status, error_category
        )
        for row in _rows(session, query):
            results[tuple(row[: len(by)])].add(row[len(by) :])
    edge = _edge_filter(split)
    if edge is not None:
        r = LLMRequest
        category = func.coalesce(r.error_category, "")
        keys = {
            "model": r.model,
            "status": r.status,
            "error_category": category,
            "bucket": epoch_seconds(r.started_at) // bucket_seconds,
        }
        groups = [keys[name].label(name) for name in by]
        query = (
            select(
                *groups,
                func.count(),
                func.sum(r.input_tokens),
                func.sum(r.output_tokens),
                func.sum(r.cost_usd),
                func.sum(_as_int(col(r.priced).is_(False))),
                func.sum(r.retries),
                func.sum(_as_int(col(r.feedback) == 1)),
                func.sum(_as_int(col(r.feedback) == -1)),
            )
            .where(edge)
            .group_by(*groups)
        )
        query = _filtered(
            query, col(r.model), col(r.status), category, model, status, error_category
        )
        for row in _rows(session, query):
            results[tuple(row[: len(by)])].add(row[len(by) :])
    return dict(results)


_Query = TypeVar("_Query", bound="Select[*tuple[Any, ...]]")


def _filtered(
    query: _Query,
    model_col: SQLCoreOperations[str],
    status_col: SQLCoreOperations[str],
    category_col: SQLCoreOperations[str],
    model: str | None,
    status: str | None,
    error_category: str | None,
) -> _Query:
    if model is not None:
        query = query.where(model_col == model)
    if status is not None:
        query = query.where(status_col == status)
    if error_category is not None:
        query = query.where(category_col == error_category)
    return query


# ----------------------------------------------------------------------------- histograms


def _histograms(
    session: Session,
    split: _Split,
    *,
    metrics: Sequence[str] = ("latency", "ttft"),
    by_bucket: bool = False,
    model: str | None = None,
    bucket_seconds: int = HOUR,
) -> dict[str, dict[int, Histogram]]:
    """``{metric: {bucket: {bin: count}}}`` ("latency", "ttft"); bucket 0 if unbucketed."""
    results: dict[str, dict[int, Histogram]] = {m: defaultdict(dict) for m in metrics}
    if split.has_hours:
        h = LLMLatencyHourly
        bucket = _hour_bucket(col(h.hour), bucket_seconds) if by_bucket else literal_column("0")
        hourly = by_bucket and bucket_seconds == HOUR
        for metric in metrics:  # one (metric, model) per query: one contiguous key range
            query = (
                select(bucket, col(h.bin), col(h.count) if hourly else func.sum(h.count))
                .where(col(h.metric) == metric, col(h.model) == (model or ALL_MODELS))
                .where(col(h.hour) >= split.first_hour, col(h.hour) < split.end_hour)
            )
            if not hourly:  # (hour, bin) is unique within a (metric, model): nothing to add up
                query = query.group_by(*([bucket] if by_bucket else []), col(h.bin))
            per_bucket = results[metric]
            for bucket_index, bin_index, count in _rows(session, query):
                per_bucket[bucket_index][bin_index] = count  # grouped: each pair once
    edge = _edge_filter(split)
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
            for bucket_index, bin_index, count in _rows(session, query):
                counts = per_bucket[bucket_index]
                counts[bin_index] = counts.get(bin_index, 0) + count
    return {metric: dict(per_bucket) for metric, per_bucket in results.items()}


# ----------------------------------------------------------------------------- one pass


@dataclass
class _WindowData:
    """One read of a window: totals keyed ``(bucket, model, status, category)`` (bucket
    0 / model None when not grouped by them) and histograms per bucket."""

    totals: dict[tuple[Any, ...], _Totals]
    latency: dict[int, Histogram]
    ttft: dict[int, Histogram]
    latency_all: Histogram  # the whole window
    ttft_all: Histogram


def _window_data(
    session: Session,
    start: datetime,
    end: datetime,
    *,
    width: int | None = None,
    model: str | None = None,
    by_model: bool = False,
    histograms: bool = True,
) -> _WindowData:
    split = _split(start, end, use_rollups=width is None or width % HOUR == 0)
    by = [
        *(["bucket"] if width else []),
        *(["model"] if by_model else []),
        "status",
        "error_category",
    ]
    grouped = _totals(session, split, by=by, model=model, bucket_seconds=width or HOUR)
    at = {name: position for position, name in enumerate(by)}
    bucket_at, model_at = at.get("bucket"), at.get("model")
    status_at, category_at = at["status"], at["error_category"]
    totals = {
        (
            0 if bucket_at is None else int(key[bucket_at]),
            None if model_at is None else key[model_at],
            key[status_at],
            key[category_at] or "",
        ): values
        for key, values in grouped.items()
    }
    hists: dict[str, dict[int, Histogram]] = {"latency": {}, "ttft": {}}
    if histograms:
        hists = _histograms(
            session, split, by_bucket=bool(width), model=model, bucket_seconds=width or HOUR
        )
    return _WindowData(
        totals=totals,
        latency=hists["latency"],
        ttft=hists["ttft"],
        latency_all=_merged(hists["latency"]),
        ttft_all=_merged(hists["ttft"]),
    )


def _merged(histograms: dict[int, Histogram]) -> Histogram:
    if len(histograms) == 1:
        return next(iter(histograms.values()))
    merged: Histogram = {}
    get = merged.get
    for counts in histograms.values():
        for bin_index, count in counts.items():
            merged[bin_index] = get(bin_index, 0) + count
    return merged


def _summary_of(data: _WindowData, start: datetime, end: datetime) -> WindowSummary:
    total = _Totals()
    by_status: Counter[str] = Counter()
    by_category: Counter[str] = Counter()
    for (_bucket, _model, status, category), values in data.totals.items():
        total.merge(values)
        by_status[status] += values.requests
        if status in ERROR_STATUSES:
            by_category[category or ("unknown" if status == "error" else status)] += values.requests
    latency_p50, latency_p95, latency_p99 = percentiles(data.latency_all, 0.50, 0.95, 0.99)
    ttft_p50, ttft_p95 = percentiles(data.ttft_all, 0.50, 0.95)
    rated = total.feedback_up + total.feedback_down
    errors = sum(by_status[status] for status in ERROR_STATUSES)
    return WindowSummary(
        start=start,
        end=end,
        requests=total.requests,
        ok=by_status["ok"],
        errors=errors,
        cancelled=by_status["cancelled"],
        error_rate=round(100.0 * errors / total.requests, 4) if total.requests else 0.0,
        latency_p50=latency_p50,
        latency_p95=latency_p95,
        latency_p99=latency_p99,
        ttft_p50=ttft_p50,
        ttft_p95=ttft_p95,
        tokens_input=total.tokens_input,
        tokens_output=total.tokens_output,
        cost_usd=round(total.cost_usd, 10),
        unpriced_requests=total.unpriced,
        retries=total.retries,
        feedback_up=total.feedback_up,
        feedback_down=total.feedback_down,
        satisfaction=round(100.0 * total.feedback_up / rated, 2) if rated else None,
        errors_by_category=dict(by_category.most_common()),
    )


def _series_of(data: _WindowData, start: datetime, end: datetime, width: int) -> list[SeriesPoint]:
    per_bucket: dict[int, _Totals] = defaultdict(_Totals)
    errors: Counter[int] = Counter()
    for (bucket, _model, status, _category), values in data.totals.items():
        per_bucket[bucket].merge(values)
        if status in ERROR_STATUSES:
            errors[bucket] += values.requests
    empty: Histogram = {}
    points = []
    for bucket in range(int(epoch_of(start) // width), math.ceil(epoch_of(end) / width)):
        values = per_bucket.get(bucket, _Totals())
        p50, p95, p99 = percentiles(data.latency.get(bucket, empty), 0.50, 0.95, 0.99)
        (ttft_p95,) = percentiles(data.ttft.get(bucket, empty), 0.95)
        points.append(
            SeriesPoint(
                start=from_epoch(bucket * width),
                requests=values.requests,
                errors=errors[bucket],
                latency_p50=p50,
                latency_p95=p95,
                latency_p99=p99,
                ttft_p95=ttft_p95,
                tokens_input=values.tokens_input,
                tokens_output=values.tokens_output,
                cost_usd=round(values.cost_usd, 10),
            )
        )
    return points


def _models_of(data: _WindowData) -> list[ModelBreakdown]:
    merged: dict[str, _Totals] = defaultdict(_Totals)
    errors: Counter[str] = Counter()
    for (_bucket, model, status, _category), values in data.totals.items():
        merged[model].merge(values)
        if status in ERROR_STATUSES:
            errors[model] += values.requests
    rows = [
        ModelBreakdown(
            model=model,
            requests=values.requests,
            errors=errors[model],
            tokens_input=values.tokens_input,
            tokens_output=values.tokens_output,
            cost_usd=round(values.cost_usd, 10),
            unpriced_requests=values.unpriced,
        )
        for model, values in merged.items()
    ]
    return sorted(rows, key=lambda row: (-row.cost_usd, -row.requests, row.model))


def _count_of(
    data: _WindowData, *, model: str | None, status: str | None, error_category: str | None
) -> int:
    return sum(
        values.requests
        for (_bucket, row_model, row_status, category), values in data.totals.items()
        if (model is None or row_model == model)
        and (status is None or row_status == status)
        and (error_category is None or category == error_category)
    )


# ----------------------------------------------------------------------------- public API


def window_summary(
    *, session: Session, start: datetime, end: datetime, model: str | None = None
) -> WindowSummary:
    """Requests, errors, latency, tokens, cost and feedback of ``[start, end)``."""
    start, end = check_window(start, end)
    return _summary_of(_window_data(session, start, end, model=model), start, end)


def _check_bucket(width: int) -> None:
    if width < 60 or (width >= HOUR and width % HOUR) or (width < HOUR and HOUR % width):
        raise WindowError("bucket_seconds must divide an hour, or be whole hours")


def time_series(
    *,
    session: Session,
    start: datetime,
    end: datetime,
    bucket_seconds: int | None = None,
    model: str | None = None,
) -> list[SeriesPoint]:
    """The window in epoch-aligned buckets, every bucket present (zeros when idle).

    ``bucket_seconds`` defaults to :func:`bucket_seconds_for` the window; a width that
    is not a whole number of hours reads rows, so keep such windows short.
    """
    start, end = check_window(start, end)
    width = bucket_seconds or bucket_seconds_for(end - start)
    _check_bucket(width)
    return _series_of(
        _window_data(session, start, end, width=width, model=model), start, end, width
    )


def by_model(*, session: Session, start: datetime, end: datetime) -> list[ModelBreakdown]:
    """Requests, errors, tokens and cost per model, most expensive first."""
    start, end = check_window(start, end)
    return _models_of(_window_data(session, start, end, by_model=True, histograms=False))


def count_requests(
    *,
    session: Session,
    start: datetime,
    end: datetime,
    model: str | None = None,
    status: str | None = None,
    error_category: str | None = None,
) -> int:
    """How many requests of the window match the filters (``error_category`` "" = none)."""
    totals = _totals(
        session,
        _split(start, end),
        by=(),
        model=model,
        status=status,
        error_category=error_category,
    )
    return sum(values.requests for values in totals.values())


def _page_rows(
    session: Session,
    start: datetime,
    end: datetime,
    *,
    model: str | None,
    status: str | None,
    error_category: str | None,
    sort: str,
    descending: bool,
    limit: int,
    offset: int,
) -> list[LLMRequest]:
    if sort not in SORTABLE_COLUMNS:
        raise WindowError(f"sort must be one of {', '.join(SORTABLE_COLUMNS)}")
    if not 1 <= limit <= 1000 or offset < 0:
        raise WindowError("limit must be 1-1000 and offset >= 0")
    query = _request_query(start, end, model, status, error_category)
    column = col(getattr(LLMRequest, sort))
    order = column.desc() if descending else column.asc()
    if table_of(LLMRequest).c[sort].nullable:  # requests without a value go last, everywhere
        order = order.nulls_last()  # (never on NOT NULL columns: it would stop PostgreSQL
        # from reading started_at's index backwards, and sort the whole window instead)
    tiebreak = col(LLMRequest.id).desc() if descending else col(LLMRequest.id).asc()
    query = query.order_by(order, tiebreak).limit(limit).offset(offset)
    return list(session.execute(query).scalars())


def request_page(
    *,
    session: Session,
    start: datetime,
    end: datetime,
    model: str | None = None,
    status: str | None = None,
    error_category: str | None = None,
    sort: str = "started_at",
    descending: bool = True,
    limit: int = 25,
    offset: int = 0,
) -> RequestPage:
    """One page of the window's requests, filtered and sorted, with the total count."""
    start, end = check_window(start, end)
    filters = {"model": model, "status": status, "error_category": error_category}
    rows = _page_rows(
        session, start, end, **filters, sort=sort, descending=descending, limit=limit, offset=offset
    )
    return RequestPage(
        rows=rows, total=count_requests(session=session, start=start, end=end, **filters)
    )


def _request_query(
    start: datetime,
    end: datetime,
    model: str | None,
    status: str | None,
    error_category: str | None,
) -> Any:
    r = LLMRequest
    query = select(r).where(col(r.started_at) >= start, col(r.started_at) < end)
    query = query.where(col(r.synthetic).is_(False))  # the probe's requests: not in the table
    category = func.coalesce(r.error_category, "")
    return _filtered(query, col(r.model), col(r.status), category, model, status, error_category)


def iter_requests(
    *,
    session: Session,
    start: datetime,
    end: datetime,
    model: str | None = None,
    batch_size: int = 2000,
) -> Iterator[LLMRequest]:
    """Every request of the window, oldest first, read in batches (for CSV export)."""
    start, end = check_window(start, end)
    query = (
        _request_query(start, end, model, None, None)
        .order_by(col(LLMRequest.started_at), col(LLMRequest.id))
        .execution_options(yield_per=batch_size)
    )
    yield from session.execute(query).scalars()


def get_request(*, session: Session, correlation_id: str) -> LLMRequest | None:
    """The request with this correlation id, if it was recorded."""
    query = select(LLMRequest).where(col(LLMRequest.correlation_id) == correlation_id)
    return session.execute(query).scalar_one_or_none()


def models_seen(*, session: Session, start: datetime, end: datetime) -> list[str]:
    """The models that served requests in the window, alphabetically."""
    return sorted({key[0] for key in _totals(session, _split(start, end), by=("model",))})


@dataclass(frozen=True)
class Dashboard:
    """Everything the monitor page shows for one window, read in one go."""

    summary: WindowSummary
    series: list[SeriesPoint]
    bucket_seconds: int
    models: list[ModelBreakdown]
    page: RequestPage


def dashboard(
    *,
    session: Session,
    start: datetime,
    end: datetime,
    model: str | None = None,
    status: str | None = None,
    error_category: str | None = None,
    sort: str = "started_at",
    descending: bool = True,
    limit: int = 25,
    offset: int = 0,
) -> Dashboard:
    """The monitor page's data: KPIs, charts and per-model figures over the whole window,
    and one page of the request table (the filters apply to the table only).

    One read of the window serves the KPIs, every chart, the per-model figures and the
    table's total, so the rollups and the edge rows are each scanned once.
    """
    start, end = check_window(start, end)
    width = bucket_seconds_for(end - start)
    data = _window_data(session, start, end, width=width, by_model=True)
    filters = {"model": model, "status": status, "error_category": error_category}
    rows = _page_rows(
        session, start, end, **filters, sort=sort, descending=descending, limit=limit, offset=offset
    )
    return Dashboard(
        summary=_summary_of(data, start, end),
        series=_series_of(data, start, end, width),
        bucket_seconds=width,
        models=_models_of(data),
        page=RequestPage(rows=rows, total=_count_of(data, **filters)),
    )
