"""A window's figures (summary, chart series, per-model breakdown, counts) and the
monitor page's one-read :func:`dashboard`, shaped from one :class:`WindowData`."""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from datetime import datetime

from sqlmodel import Session

from chatmon.observability.call_status import ERROR_STATUSES, CallStatus
from chatmon.services.histogram import percentiles
from chatmon.services.sql_time import epoch_of, from_epoch
from chatmon.services.stats.filters import ALL_REQUESTS, RequestFilter
from chatmon.services.stats.requests import page_rows
from chatmon.services.stats.results import (
    Dashboard,
    ModelBreakdown,
    RequestPage,
    SeriesPoint,
    WindowSummary,
)
from chatmon.services.stats.rollups import (
    Histogram,
    Totals,
    WindowData,
    split,
    totals,
    window_data,
)
from chatmon.services.stats.window import bucket_seconds_for, check_bucket, check_window


def _summary_of(data: WindowData, start: datetime, end: datetime) -> WindowSummary:
    total = Totals()
    by_status: Counter[str] = Counter()
    by_category: Counter[str] = Counter()
    for group, values in data.totals.items():
        total.merge(values)
        by_status[group.status] += values.requests
        if group.status in ERROR_STATUSES:
            unnamed = "unknown" if group.status == CallStatus.ERROR else group.status
            by_category[group.error_category or unnamed] += values.requests
    latency_p50, latency_p95, latency_p99 = percentiles(data.latency_all, 0.50, 0.95, 0.99)
    ttft_p50, ttft_p95 = percentiles(data.ttft_all, 0.50, 0.95)
    rated = total.feedback_up + total.feedback_down
    errors = sum(by_status[status] for status in ERROR_STATUSES)
    return WindowSummary(
        start=start,
        end=end,
        requests=total.requests,
        ok=by_status[CallStatus.OK],
        errors=errors,
        cancelled=by_status[CallStatus.CANCELLED],
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


def _series_of(data: WindowData, start: datetime, end: datetime, width: int) -> list[SeriesPoint]:
    per_bucket: dict[int, Totals] = defaultdict(Totals)
    errors: Counter[int] = Counter()
    for group, values in data.totals.items():
        per_bucket[group.bucket].merge(values)
        if group.status in ERROR_STATUSES:
            errors[group.bucket] += values.requests
    empty: Histogram = {}
    points = []
    for bucket in range(int(epoch_of(start) // width), math.ceil(epoch_of(end) / width)):
        values = per_bucket.get(bucket, Totals())
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


def _models_of(data: WindowData) -> list[ModelBreakdown]:
    per_model: dict[str, Totals] = defaultdict(Totals)
    errors: Counter[str] = Counter()
    for group, values in data.totals.items():
        per_model[group.model].merge(values)
        if group.status in ERROR_STATUSES:
            errors[group.model] += values.requests
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
        for model, values in per_model.items()
    ]
    return sorted(rows, key=lambda row: (-row.cost_usd, -row.requests, row.model))


def _count_of(data: WindowData, where: RequestFilter) -> int:
    return sum(
        values.requests
        for group, values in data.totals.items()
        if where.matches(
            model=group.model, status=group.status, error_category=group.error_category
        )
    )


# ----------------------------------------------------------------------------- public API


def window_summary(
    *, session: Session, start: datetime, end: datetime, model: str | None = None
) -> WindowSummary:
    """Requests, errors, latency, tokens, cost and feedback of ``[start, end)``.

    Percentiles come from log-scale histograms and are the nearest-rank percentile to
    within 1 % (:mod:`chatmon.services.histogram`). Latency percentiles cover ok and
    error requests (not cancelled ones, nor requests chatmon refused itself);
    time-to-first-token percentiles cover every request that received a first token.
    """
    start, end = check_window(start, end)
    return _summary_of(window_data(session, start, end, model=model), start, end)


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
    check_bucket(width)
    return _series_of(window_data(session, start, end, width=width, model=model), start, end, width)


def by_model(*, session: Session, start: datetime, end: datetime) -> list[ModelBreakdown]:
    """Requests, errors, tokens and cost per model, most expensive first."""
    start, end = check_window(start, end)
    return _models_of(window_data(session, start, end, by_model=True, with_histograms=False))


def count_requests(
    *, session: Session, start: datetime, end: datetime, where: RequestFilter = ALL_REQUESTS
) -> int:
    """How many requests of the window pass ``where``'s filters (its page is ignored)."""
    grouped = totals(session, split(start, end), by=(), where=where)
    return sum(values.requests for values in grouped.values())


def models_seen(*, session: Session, start: datetime, end: datetime) -> list[str]:
    """The models that served requests in the window, alphabetically."""
    return sorted({group.model for group in totals(session, split(start, end), by=("model",))})


def request_page(
    *, session: Session, start: datetime, end: datetime, where: RequestFilter = ALL_REQUESTS
) -> RequestPage:
    """``where``'s page of the window's requests, with how many pass its filters."""
    start, end = check_window(start, end)
    return RequestPage(
        rows=page_rows(session, start, end, where),
        total=count_requests(session=session, start=start, end=end, where=where),
    )


def dashboard(
    *, session: Session, start: datetime, end: datetime, where: RequestFilter = ALL_REQUESTS
) -> Dashboard:
    """The monitor page's data: KPIs, charts and per-model figures over the whole window,
    and ``where``'s page of the request table (the filters apply to the table only).

    One read of the window serves the KPIs, every chart, the per-model figures and the
    table's total, so the rollups and the edge rows are each scanned once.
    """
    start, end = check_window(start, end)
    width = bucket_seconds_for(end - start)
    data = window_data(session, start, end, width=width, by_model=True)
    return Dashboard(
        summary=_summary_of(data, start, end),
        series=_series_of(data, start, end, width),
        bucket_seconds=width,
        models=_models_of(data),
        page=RequestPage(rows=page_rows(session, start, end, where), total=_count_of(data, where)),
    )
