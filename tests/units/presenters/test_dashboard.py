"""The monitor page's data as shown: KPI strings, chart rows, table rows, detail."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session

from chatmon.presenters import dashboard as view
from chatmon.presenters.format import seconds
from chatmon.presenters.requests import load_detail
from chatmon.presenters.window_input import window_bounds
from chatmon.services import stats
from tests.units.services.stats_factory import T0, make_call, record

H = timedelta(hours=1)
M = timedelta(minutes=1)


def query(**overrides: object) -> view.DashboardQuery:
    return view.DashboardQuery(**{"start": T0, "end": T0 + H, **overrides})  # type: ignore[arg-type]  # fields built in a dict


def test_empty_window_of_a_new_install(session: Session) -> None:
    data = view.load(session, query())
    assert data.kpis.requests == "0"
    assert data.kpis.latency_p95 == "–" and data.kpis.satisfaction == "–"
    assert data.rows == [] and data.total_rows == 0
    assert data.has_any_request is False
    assert len(data.series) == 60 and all(p["requests"] == 0 for p in data.series)


def test_empty_window_after_traffic_elsewhere(session: Session) -> None:
    record(session, make_call(at=-5 * H))
    assert view.load(session, query()).has_any_request is True


def test_kpis_rows_and_charts(session: Session) -> None:
    record(
        session,
        make_call(at=timedelta(minutes=1), total_seconds=0.25, cost_usd=0.002, input_tokens=1200),
        make_call(at=timedelta(minutes=2), total_seconds=2.5, cost_usd=0.003),
        make_call(
            at=timedelta(minutes=3),
            status="error",
            error_category="timeout",
            cost_usd=None,
            input_tokens=None,
            output_tokens=None,
            first_token_seconds=None,
        ),
    )
    data = view.load(session, query())
    assert (data.kpis.requests, data.kpis.errors, data.kpis.error_rate) == ("3", "1", "33.3 %")
    assert data.kpis.tokens_input == "1,210"  # 1200 + 10 + none from the failure
    assert data.kpis.cost == "$0.005000"
    assert data.errors_by_category == [{"category": "timeout", "count": 1}]
    assert [r.status for r in data.rows] == ["error", "ok", "ok"]  # newest first
    assert data.rows[0].cost == "–" and data.rows[0].ttft == "–"
    assert data.rows[2].latency == "250 ms" and data.rows[1].latency == "2.50 s"
    assert data.series[2]["cost_cumulative"] == pytest.approx(0.005)
    assert data.cost_by_model == [{"model": "openai/fake", "cost": 0.005, "requests": 3}]


def test_table_filters_and_paging(session: Session) -> None:
    record(session, *[make_call(at=timedelta(minutes=i)) for i in range(30)])
    record(session, make_call(at=timedelta(minutes=40), status="error", error_category="auth"))
    page_two = view.load(session, query(page=1))
    assert len(page_two.rows) == 6 and page_two.total_rows == 31
    errors = view.load(session, query(status="error"))
    assert errors.total_rows == 1 and errors.rows[0].error_category == "auth"
    assert errors.kpis.requests == "31"  # KPIs are the window's, not the table's


def test_detail_has_every_recorded_field(session: Session) -> None:
    call = make_call(
        status="error",
        error_category="rate_limit",
        cost_usd=None,
        input_tokens=None,
        output_tokens=None,
        retries=3,
    )
    record(session, call)
    detail = load_detail(session, call.correlation_id)
    labels = {f.label: f.value for f in detail.fields}
    assert labels["Correlation id"] == call.correlation_id
    assert labels["Error category"] == "rate_limit"
    assert labels["Retries"] == "3"
    assert labels["Conversation"] == "conv-1" == detail.conversation_id
    assert "rate-limiting" in detail.error_message
    assert load_detail(session, "gone") is None


def test_unpriced_model_is_flagged_in_kpis_and_detail(session: Session) -> None:
    call = make_call(cost_usd=None)
    record(session, call)
    data = view.load(session, query())
    assert "without a known price" in data.kpis.unpriced
    assert data.rows[0].cost == "no price"
    detail = {f.label: f.value for f in load_detail(session, call.correlation_id).fields}
    assert detail["Cost"].startswith("unknown")


@pytest.mark.parametrize(("value", "text"), [(None, "–"), (0.0421, "42 ms"), (1.234, "1.23 s")])
def test_seconds_format(value: float | None, text: str) -> None:
    assert seconds(value) == text


def test_custom_range_inputs_are_utc() -> None:
    start, end = window_bounds("custom", "2025-03-10T12:00", "2025-03-10T13:00:30")
    assert (start, end) == (T0, T0 + H + timedelta(seconds=30))
    with pytest.raises(stats.WindowError):
        window_bounds("custom", "yesterday", "2025-03-10T13:00")
    with pytest.raises(stats.WindowError):
        window_bounds("custom", "2025-03-10T13:00", "2025-03-10T12:00")


def test_changes_in_the_window_become_chart_markers(session: Session) -> None:
    """On the bucket each change happened in; baselines, duplicates and changes outside
    the window are left out."""
    from chatmon.models import ChangeEvent

    session.add_all(
        [
            ChangeEvent(kind="prompt", old=None, new="3a1f9c2e", at=T0 - H),  # baseline
            ChangeEvent(kind="prompt", old="3a1f9c2e", new="9c2e11aa", at=T0 + 12.5 * M),
            ChangeEvent(kind="prompt", old="3a1f9c2e", new="9c2e11aa", at=T0 + 12.7 * M),
            ChangeEvent(kind="model", old="openai/a", new="openai/b", at=T0 + 40 * M),
            ChangeEvent(kind="version", old="1.0", new="1.1", at=T0 + 2 * H),  # after
        ]
    )
    session.commit()
    data = view.load(session, query())
    assert data.markers == [
        {
            "time": "12:12",
            "kind": "system prompt",
            "label": "system prompt 3a1f9c2e→9c2e11aa",
            "at": "2025-03-10 12:12:30",
        },
        {
            "time": "12:40",
            "kind": "model",
            "label": "model openai/a→openai/b",
            "at": "2025-03-10 12:40:00",
        },
    ]
    assert {m["time"] for m in data.markers} <= {p["time"] for p in data.series}
    day = view.load(session, query(end=T0 + 24 * H))  # hourly buckets
    assert [m["time"] for m in day.markers] == ["03-10 12:00", "03-10 12:00", "03-10 14:00"]
