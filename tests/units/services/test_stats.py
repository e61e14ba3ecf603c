"""Window aggregates on hand-built requests with known answers (SQLite and PostgreSQL)."""

from __future__ import annotations

import math
import random
from datetime import timedelta

import pytest
from sqlmodel import Session

from chatmon.services import stats
from chatmon.services.request_log import record_feedback
from tests.units.services.stats_factory import T0, make_call, record

H = timedelta(hours=1)
M = timedelta(minutes=1)


def exact_percentile(values: list[float], quantile: float) -> float:
    """Nearest rank: the ceil(q*n)-th smallest value."""
    ordered = sorted(values)
    return ordered[max(1, math.ceil(quantile * len(ordered))) - 1]


def assert_within_1pct(reported: float | None, exact: float) -> None:
    assert reported is not None
    assert abs(reported - exact) <= 0.01 * exact, (reported, exact)


def test_window_summary_empty_window(session: Session) -> None:
    summary = stats.window_summary(session=session, start=T0, end=T0 + H)
    assert summary.requests == 0
    assert summary.errors == 0
    assert summary.error_rate == 0.0
    assert summary.latency_p50 is None and summary.latency_p99 is None
    assert summary.ttft_p95 is None
    assert summary.tokens_input == 0 and summary.tokens_output == 0
    assert summary.cost_usd == 0.0
    assert summary.satisfaction is None
    assert summary.errors_by_category == {}


def test_window_summary_single_row(session: Session) -> None:
    record(
        session,
        make_call(
            at=10 * M,
            total_seconds=2.5,
            first_token_seconds=0.4,
            input_tokens=7,
            output_tokens=11,
            cost_usd=0.0042,
            retries=2,
        ),
    )
    summary = stats.window_summary(session=session, start=T0, end=T0 + H)
    assert (summary.requests, summary.ok, summary.errors) == (1, 1, 0)
    for value in (summary.latency_p50, summary.latency_p95, summary.latency_p99):
        assert_within_1pct(value, 2.5)
    assert_within_1pct(summary.ttft_p95, 0.4)
    assert (summary.tokens_input, summary.tokens_output) == (7, 11)
    assert summary.cost_usd == pytest.approx(0.0042)
    assert summary.retries == 2


def test_window_summary_known_mix(session: Session) -> None:
    calls = [
        make_call(at=i * 30 * timedelta(seconds=1), total_seconds=(i + 1) / 100) for i in range(90)
    ]
    calls += [
        make_call(
            at=50 * M,
            status="error",
            error_category="timeout",
            total_seconds=0.5,
            first_token_seconds=None,
            input_tokens=None,
            output_tokens=None,
            cost_usd=None,
        )
        for _ in range(6)
    ]
    calls += [
        make_call(
            at=51 * M,
            status="error",
            error_category="rate_limit",
            total_seconds=0.5,
            first_token_seconds=None,
            input_tokens=None,
            output_tokens=None,
            cost_usd=None,
        )
        for _ in range(4)
    ]
    record(session, *calls)
    summary = stats.window_summary(session=session, start=T0, end=T0 + H)
    assert (summary.requests, summary.ok, summary.errors, summary.cancelled) == (100, 90, 10, 0)
    assert summary.error_rate == 10.0
    assert summary.errors_by_category == {"timeout": 6, "rate_limit": 4}
    assert summary.tokens_input == 900 and summary.tokens_output == 1800
    assert summary.cost_usd == pytest.approx(0.09)
    latencies = [(i + 1) / 100 for i in range(90)] + [0.5] * 10
    for quantile, reported in (
        (0.5, summary.latency_p50),
        (0.95, summary.latency_p95),
        (0.99, summary.latency_p99),
    ):
        assert_within_1pct(reported, exact_percentile(latencies, quantile))


def test_window_is_start_inclusive_end_exclusive(session: Session) -> None:
    record(
        session,
        make_call(at=timedelta(0)),
        make_call(at=H),
        make_call(at=H - timedelta(microseconds=1)),
    )
    assert stats.window_summary(session=session, start=T0, end=T0 + H).requests == 2
    assert stats.window_summary(session=session, start=T0 + H, end=T0 + 2 * H).requests == 1


def test_window_summary_combines_rollup_hours_and_edges(session: Session) -> None:
    rng = random.Random(7)
    calls = []
    for _ in range(600):
        at = timedelta(seconds=rng.uniform(0, 5 * 3600))
        failed = rng.random() < 0.15
        calls.append(
            make_call(
                at=at,
                total_seconds=rng.lognormvariate(0, 0.8),
                first_token_seconds=None if failed else rng.uniform(0.05, 0.8),
                status="error" if failed else "ok",
                error_category="server_error" if failed else None,
                input_tokens=None if failed else rng.randint(1, 500),
                output_tokens=None if failed else rng.randint(1, 900),
                cost_usd=None if failed else rng.uniform(0, 0.01),
                model=rng.choice(["a/one", "b/two"]),
            )
        )
    record(session, *calls)
    for _ in range(12):
        start = T0 + timedelta(seconds=rng.uniform(-600, 3 * 3600))
        end = start + timedelta(seconds=rng.uniform(60, 4 * 3600))
        model = rng.choice([None, "a/one"])
        inside = [
            c for c in calls if start <= c.started_at < end and (model is None or c.model == model)
        ]
        summary = stats.window_summary(session=session, start=start, end=end, model=model)
        assert summary.requests == len(inside)
        assert summary.errors == sum(c.status == "error" for c in inside)
        assert summary.tokens_input == sum(c.input_tokens or 0 for c in inside)
        assert summary.tokens_output == sum(c.output_tokens or 0 for c in inside)
        assert summary.cost_usd == pytest.approx(sum(c.cost_usd or 0 for c in inside))
        if inside:
            latencies = [c.total_seconds for c in inside]
            assert_within_1pct(summary.latency_p50, exact_percentile(latencies, 0.5))
            assert_within_1pct(summary.latency_p95, exact_percentile(latencies, 0.95))
            assert_within_1pct(summary.latency_p99, exact_percentile(latencies, 0.99))
            ttfts = [c.first_token_seconds for c in inside if c.first_token_seconds is not None]
            if ttfts:
                assert_within_1pct(summary.ttft_p95, exact_percentile(ttfts, 0.95))


def test_latency_leaves_out_cancelled_and_locally_refused(session: Session) -> None:
    record(
        session,
        make_call(total_seconds=1.0),
        make_call(total_seconds=30.0, status="cancelled", first_token_seconds=0.3),
        make_call(
            total_seconds=0.0,
            status="error",
            error_category="rate_limited_local",
            first_token_seconds=None,
            input_tokens=None,
            output_tokens=None,
            cost_usd=None,
        ),
    )
    summary = stats.window_summary(session=session, start=T0, end=T0 + H)
    assert (summary.requests, summary.cancelled, summary.errors) == (3, 1, 1)
    assert_within_1pct(summary.latency_p99, 1.0)  # neither the 30 s stop nor the 0 s refusal
    assert_within_1pct(summary.ttft_p95, 0.3)  # the cancelled reply did get a first token


def test_feedback_counts_and_satisfaction(session: Session) -> None:
    calls = [make_call(at=i * M) for i in range(4)]
    record(session, *calls)
    for call, rating in zip(calls, (1, 1, 1, -1), strict=True):
        assert record_feedback(session=session, correlation_id=call.correlation_id, rating=rating)
    session.commit()
    summary = stats.window_summary(session=session, start=T0, end=T0 + H)
    assert (summary.feedback_up, summary.feedback_down, summary.satisfaction) == (3, 1, 75.0)
    # changing and clearing a rating moves the counts, never double-counts
    record_feedback(session=session, correlation_id=calls[0].correlation_id, rating=-1)
    record_feedback(session=session, correlation_id=calls[1].correlation_id, rating=0)
    session.commit()
    summary = stats.window_summary(session=session, start=T0 - H, end=T0 + 2 * H)  # via rollups
    assert (summary.feedback_up, summary.feedback_down, summary.satisfaction) == (
        1,
        2,
        pytest.approx(33.33),
    )


def test_unpriced_requests_are_counted_not_costed(session: Session) -> None:
    record(
        session, make_call(cost_usd=None, input_tokens=5, output_tokens=5), make_call(cost_usd=0.5)
    )
    summary = stats.window_summary(session=session, start=T0 - H, end=T0 + H)
    assert summary.unpriced_requests == 1
    assert summary.cost_usd == pytest.approx(0.5)


def test_time_series_has_every_bucket(session: Session) -> None:
    record(
        session,
        make_call(at=5 * M, total_seconds=1.0),
        make_call(
            at=5 * M + timedelta(seconds=10),
            status="error",
            error_category="auth",
            total_seconds=0.1,
        ),
        make_call(at=2 * H + 7 * M, total_seconds=3.0, cost_usd=0.25),
    )
    points = stats.time_series(session=session, start=T0, end=T0 + 3 * H, bucket_seconds=3600)
    assert [p.start for p in points] == [T0, T0 + H, T0 + 2 * H]
    assert [p.requests for p in points] == [2, 0, 1]
    assert [p.errors for p in points] == [1, 0, 0]
    assert points[1].latency_p50 is None
    assert_within_1pct(points[2].latency_p95, 3.0)
    assert points[2].cost_usd == pytest.approx(0.25)


def test_time_series_minute_buckets_for_a_short_window(session: Session) -> None:
    record(
        session, make_call(at=90 * timedelta(seconds=1)), make_call(at=150 * timedelta(seconds=1))
    )
    points = stats.time_series(session=session, start=T0, end=T0 + H)
    assert len(points) == 60
    assert [p.requests for p in points[:4]] == [0, 1, 1, 0]


def test_time_series_matches_summary_over_whole_window(session: Session) -> None:
    rng = random.Random(3)
    record(
        session, *[make_call(at=timedelta(seconds=rng.uniform(0, 20 * 3600))) for _ in range(300)]
    )
    start, end = T0 + 17 * M, T0 + 19 * H + 3 * M
    points = stats.time_series(session=session, start=start, end=end)
    summary = stats.window_summary(session=session, start=start, end=end)
    assert sum(p.requests for p in points) == summary.requests
    assert sum(p.tokens_output for p in points) == summary.tokens_output


def test_time_series_rejects_odd_buckets(session: Session) -> None:
    with pytest.raises(stats.WindowError):
        stats.time_series(session=session, start=T0, end=T0 + H, bucket_seconds=7 * 60 + 1)


def test_by_model_most_expensive_first(session: Session) -> None:
    record(
        session,
        make_call(model="cheap", cost_usd=0.01),
        make_call(model="dear", cost_usd=0.5),
        make_call(
            model="dear",
            status="error",
            error_category="timeout",
            cost_usd=None,
            input_tokens=None,
            output_tokens=None,
        ),
    )
    rows = stats.by_model(session=session, start=T0 - H, end=T0 + H)
    assert [(r.model, r.requests, r.errors) for r in rows] == [("dear", 2, 1), ("cheap", 1, 0)]
    assert rows[0].cost_usd == pytest.approx(0.5)


def test_request_page_filters_sorts_and_pages(session: Session) -> None:
    calls = [make_call(at=i * M, total_seconds=float(i)) for i in range(1, 8)]
    calls.append(make_call(at=9 * M, status="error", error_category="timeout", total_seconds=0.5))
    record(session, *calls)
    page = stats.request_page(
        session=session, start=T0, end=T0 + H, where=stats.RequestFilter(limit=3)
    )
    assert page.total == 8
    assert [r.correlation_id for r in page.rows] == [
        calls[7].correlation_id,
        calls[6].correlation_id,
        calls[5].correlation_id,
    ]
    page = stats.request_page(
        session=session,
        start=T0,
        end=T0 + H,
        where=stats.RequestFilter(sort="latency_seconds", descending=False, limit=2, offset=1),
    )
    assert [r.latency_seconds for r in page.rows] == [1.0, 2.0]
    page = stats.request_page(
        session=session, start=T0, end=T0 + H, where=stats.RequestFilter(status="error")
    )
    assert page.total == 1 and page.rows[0].error_category == "timeout"
    page = stats.request_page(
        session=session, start=T0, end=T0 + H, where=stats.RequestFilter(error_category="timeout")
    )
    assert page.total == 1
    page = stats.request_page(
        session=session, start=T0, end=T0 + H, where=stats.RequestFilter(model="other")
    )
    assert (page.total, page.rows) == (0, [])


def test_request_page_total_uses_rollups_for_long_windows(session: Session) -> None:
    record(
        session,
        *[
            make_call(
                at=i * 20 * M,
                status="error" if i % 3 == 0 else "ok",
                error_category="timeout" if i % 3 == 0 else None,
            )
            for i in range(30)
        ],
    )
    page = stats.request_page(
        session=session,
        start=T0 - 10 * M,
        end=T0 + 11 * H,
        where=stats.RequestFilter(status="error", limit=1),
    )
    assert page.total == 10


def test_request_page_rejects_unknown_sort(session: Session) -> None:
    with pytest.raises(stats.WindowError):
        stats.request_page(
            session=session,
            start=T0,
            end=T0 + H,
            where=stats.RequestFilter(sort="prompt; DROP TABLE"),
        )


def test_iter_requests_oldest_first(session: Session) -> None:
    calls = [make_call(at=i * M) for i in (3, 1, 2)]
    record(session, *calls)
    rows = list(stats.iter_requests(session=session, start=T0, end=T0 + H, batch_size=2))
    assert [r.started_at for r in rows] == sorted(r.started_at for r in rows)
    assert len(rows) == 3


def test_get_request_and_models_seen(session: Session) -> None:
    call = make_call(model="z/last")
    record(session, call, make_call(model="a/first"))
    assert stats.get_request(session=session, correlation_id=call.correlation_id).model == "z/last"
    assert stats.get_request(session=session, correlation_id="missing") is None
    assert stats.models_seen(session=session, start=T0, end=T0 + H) == ["a/first", "z/last"]


def test_parse_window_and_errors() -> None:
    assert stats.parse_window("24h") == timedelta(hours=24)
    with pytest.raises(stats.WindowError, match="window must be one of"):
        stats.parse_window("2h")
    with pytest.raises(stats.WindowError):
        stats.check_window(T0, T0)


def test_bucket_width_per_window() -> None:
    assert stats.bucket_seconds_for(timedelta(hours=1)) == 60
    assert stats.bucket_seconds_for(timedelta(hours=6)) == 300
    assert stats.bucket_seconds_for(timedelta(days=7)) == 3600
    assert stats.bucket_seconds_for(timedelta(days=30)) == 6 * 3600


@pytest.mark.parametrize("length", [timedelta(minutes=50), timedelta(hours=30)])
def test_dashboard_agrees_with_the_separate_queries(session: Session, length: timedelta) -> None:
    rng = random.Random(5)
    record(
        session,
        *[
            make_call(
                at=timedelta(seconds=rng.uniform(0, 30 * 3600)),
                model=rng.choice(["m1", "m2"]),
                status=rng.choice(["ok", "ok", "ok", "error", "cancelled"]),
                error_category=None,
                total_seconds=rng.uniform(0.1, 5),
            )
            for _ in range(400)
        ],
    )
    start, end = T0 + 13 * M, T0 + 13 * M + length
    ok_page = stats.RequestFilter(status="ok", limit=5)
    board = stats.dashboard(session=session, start=start, end=end, where=ok_page)
    assert board.summary == stats.window_summary(session=session, start=start, end=end)
    assert board.series == stats.time_series(session=session, start=start, end=end)
    assert board.models == stats.by_model(session=session, start=start, end=end)
    page = stats.request_page(session=session, start=start, end=end, where=ok_page)
    assert board.page.total == page.total > 0
    assert [r.id for r in board.page.rows] == [r.id for r in page.rows]
