"""The monitor page's data, read and shaped for display (plain Python, runs in a thread).

``MonitorState`` calls :func:`load` through ``db.run``: one read of the window
(:func:`chatmon.services.stats.dashboard`) turned into display strings and chart rows,
so the state only copies fields and the page only renders them. Times are shown in
UTC, as everything is stored. The request table's rows are :mod:`.requests`', the
window inputs :mod:`.window_input`'s.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlmodel import Session

from chatmon.presenters import spend
from chatmon.presenters.format import SIGNAL_LABELS, axis_label, count, seconds, usd, utc
from chatmon.presenters.requests import RequestRow, request_row
from chatmon.services import implicit_counts, pricing, stats, usage
from chatmon.services.sql_time import epoch_of, from_epoch, to_utc
from chatmon.settings import get_settings

PAGE_SIZE = 25
ALL = "all"  # the filter value that means "no filter"


@dataclass(frozen=True)
class DashboardQuery:
    """What the page asks for: a window, the table's filters, sort and page."""

    start: datetime
    end: datetime
    status: str = ALL
    model: str = ALL
    category: str = ALL
    sort: str = "started_at"
    descending: bool = True
    page: int = 0
    page_size: int = PAGE_SIZE
    usage_by: str = "model"  # the "Top spenders" grouping
    usage_key: str = ""  # drill-down: the table shows only this key's requests


@dataclass
class Kpis:
    """The KPI cards, formatted."""

    requests: str = "0"
    errors: str = "0"
    error_rate: str = "0 %"
    latency_p50: str = "–"
    latency_p95: str = "–"
    latency_p99: str = "–"
    ttft_p95: str = "–"
    tokens_input: str = "0"
    tokens_output: str = "0"
    cost: str = "$0.00"
    unpriced: str = ""
    feedback_up: str = "0"
    feedback_down: str = "0"
    satisfaction: str = "–"
    # implicit dissatisfaction (chatmon.services.implicit_signals): flagged requests and
    # their share, and the count of each signal
    implicit_flagged: str = "0"
    implicit_detail: str = ""


@dataclass
class DashboardView:
    """Everything the page renders for one window."""

    kpis: Kpis
    series: list[dict[str, Any]]
    errors_by_category: list[dict[str, Any]]
    cost_by_model: list[dict[str, Any]]
    rows: list[RequestRow]
    total_rows: int
    models: list[str]
    has_any_request: bool
    price_warning: str = ""  # the configured model has no price / unpriced requests shown
    spenders: list[spend.SpenderRow] = field(default_factory=list)
    budgets: list[spend.BudgetBar] = field(default_factory=list)
    markers: list[dict[str, str]] = field(default_factory=list)  # change_markers(...)


def implicit_kpi(flags: implicit_counts.FlagCounts, requests: int) -> tuple[str, str]:
    """The implicit-signals card: ``"12 (3.4 %)"`` and ``"8 stopped · 4 rephrased"`` (the
    signals seen in the window; a request may carry several)."""
    share = f" ({100.0 * flags.flagged / requests:.1f} %)" if requests and flags.flagged else ""
    detail = " · ".join(
        f"{number:,} {SIGNAL_LABELS[name]}" for name, number in flags.by_signal().items() if number
    )
    return count(flags.flagged) + share, detail


def kpis(summary: stats.WindowSummary, flags: implicit_counts.FlagCounts | None = None) -> Kpis:
    """The KPI cards of a window summary (and of its implicit signals, when given)."""
    flagged, detail = implicit_kpi(flags or implicit_counts.FlagCounts(), summary.requests)
    return Kpis(
        requests=count(summary.requests),
        errors=count(summary.errors),
        error_rate=f"{summary.error_rate:.1f} %",
        latency_p50=seconds(summary.latency_p50),
        latency_p95=seconds(summary.latency_p95),
        latency_p99=seconds(summary.latency_p99),
        ttft_p95=seconds(summary.ttft_p95),
        tokens_input=count(summary.tokens_input),
        tokens_output=count(summary.tokens_output),
        cost=usd(summary.cost_usd),
        unpriced=(
            f"+ {summary.unpriced_requests:,} requests of models without a known price"
            if summary.unpriced_requests
            else ""
        ),
        feedback_up=count(summary.feedback_up),
        feedback_down=count(summary.feedback_down),
        satisfaction="–" if summary.satisfaction is None else f"{summary.satisfaction:.0f} %",
        implicit_flagged=flagged,
        implicit_detail=detail,
    )


def series_rows(series: list[stats.SeriesPoint], bucket_seconds: int) -> list[dict[str, Any]]:
    """Chart rows: one per bucket, with the running cost total for the cumulative line."""
    rows, cumulative = [], 0.0
    for point in series:
        cumulative += point.cost_usd
        rows.append(
            {
                "time": axis_label(point.start, bucket_seconds),
                "requests": point.requests,
                "errors": point.errors,
                "ok_or_stopped": point.requests - point.errors,
                "p50": point.latency_p50,
                "p95": point.latency_p95,
                "p99": point.latency_p99,
                "ttft_p95": point.ttft_p95,
                "cost": round(point.cost_usd, 6),
                "cost_cumulative": round(cumulative, 6),
                "tokens_input": point.tokens_input,
                "tokens_output": point.tokens_output,
            }
        )
    return rows


def change_markers(
    *, session: Session, start: datetime, end: datetime, bucket_seconds: int
) -> list[dict[str, str]]:
    """What changed in the window (version, model, system prompt, alert configuration:
    ``change_event``), one marker each, placed on the chart bucket it happened in:
    ``time`` (the bucket's axis label), ``kind``, ``label`` and ``at`` (UTC)."""
    from chatmon.services.alerts import changes

    markers = []
    for event in changes.between(session=session, start=start, end=end):
        at = to_utc(event.at)
        bucket = from_epoch(epoch_of(at) // bucket_seconds * bucket_seconds)
        markers.append(
            {
                "time": axis_label(bucket, bucket_seconds),
                "kind": changes.LABELS.get(event.kind, event.kind),
                "label": changes.label(event),
                "at": utc(at),
            }
        )
    return markers


def _filter(value: str) -> str | None:
    return None if value in ("", ALL) else value


def load(session: Session, query: DashboardQuery) -> DashboardView:
    """Read the window once and shape it for the page."""
    where = stats.RequestFilter(
        model=_filter(query.model),
        status=_filter(query.status),
        error_category=_filter(query.category),
        sort=query.sort,
        descending=query.descending,
        limit=query.page_size,
        offset=query.page * query.page_size,
    )
    board = stats.dashboard(session=session, start=query.start, end=query.end, where=where)
    summary = board.summary
    page_rows, total = board.page.rows, board.page.total
    if query.usage_key and query.usage_by != "model":  # model: the model filter does it
        page_rows, total = usage.request_page(
            session=session,
            start=query.start,
            end=query.end,
            by=query.usage_by,
            key=query.usage_key,
            where=where,  # the table's filters narrow the drill-down too
        )
    flags = implicit_counts.flag_counts(session=session, start=query.start, end=query.end)
    return DashboardView(
        kpis=kpis(summary, flags),
        series=series_rows(board.series, board.bucket_seconds),
        errors_by_category=[
            {"category": name, "count": number}
            for name, number in summary.errors_by_category.items()
        ],
        cost_by_model=[
            {"model": m.model, "cost": round(m.cost_usd, 6), "requests": m.requests}
            for m in board.models
        ],
        rows=[request_row(row) for row in page_rows],
        total_rows=total,
        models=sorted(m.model for m in board.models),
        has_any_request=summary.requests > 0 or stats.has_any_request(session=session),
        price_warning=price_warning(summary.unpriced_requests),
        spenders=spend.spenders(
            session=session, start=query.start, end=query.end, by=query.usage_by
        ),
        budgets=spend.budget_bars(session=session, settings=get_settings(), now=datetime.now(UTC)),
        markers=change_markers(
            session=session, start=query.start, end=query.end, bucket_seconds=board.bucket_seconds
        ),
    )


def price_warning(unpriced_requests: int) -> str:
    """The monitor's warning when costs are incomplete: what is wrong, and the fix.

    Shown when the configured model has no known price (cost alerts cannot fire) or
    when the window holds requests that could not be priced (the cost KPI excludes them).
    """
    price = pricing.price_of(get_settings())
    parts = []
    if not price.known:
        parts.append(price.warning()[0].upper() + price.warning()[1:] + ".")
    if unpriced_requests:
        parts.append(
            f"{unpriced_requests:,} requests in this window have no known price: the cost "
            "shown leaves them out."
            + ("" if not price.known else f" Fix: {pricing.FIX_HINT} for their model.")
        )
    return " ".join(parts)
