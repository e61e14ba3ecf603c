"""Spend by user, conversation, model and prompt version, from rollups and edge rows."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, select

from chatmon.models import LLMUsageHourly
from chatmon.services import request_log, usage
from tests.units.services.stats_factory import T0, make_call, record


def _snapshot(session: Session) -> set[tuple]:
    rows = session.exec(select(LLMUsageHourly)).all()
    return {
        (
            r.dimension,
            r.hour,
            r.key,
            r.requests,
            r.errors,
            r.tokens_input,
            r.tokens_output,
            round(r.cost_usd, 9),
            r.unpriced,
            r.feedback_up,
            r.feedback_down,
        )
        for r in rows
    }


def _history(session: Session) -> None:
    record(
        session,
        make_call(at=timedelta(minutes=5), session_id="u-a", conversation_id="c1", cost_usd=0.5),
        make_call(at=timedelta(minutes=65), session_id="u-a", conversation_id="c1", cost_usd=0.25),
        make_call(at=timedelta(minutes=70), session_id="u-b", conversation_id="c2", cost_usd=2.0),
        make_call(
            at=timedelta(minutes=130),
            session_id="u-c",
            conversation_id="c3",
            status="error",
            error_category="timeout",
            input_tokens=None,
            output_tokens=None,
            cost_usd=None,
        ),
    )


def test_top_users_sorted_by_cost(session: Session) -> None:
    _history(session)
    rows = usage.top(session=session, start=T0, end=T0 + timedelta(hours=3), by="user")
    assert [(r.key, r.requests, round(r.cost_usd, 6)) for r in rows] == [
        ("u-b", 1, 2.0),
        ("u-a", 2, 0.75),
        ("u-c", 1, 0.0),
    ]
    assert rows[2].errors == 1


def test_partial_hours_come_from_the_rows(session: Session) -> None:
    _history(session)
    # 00:30 -> 02:15: the 01:00-02:00 hour from the rollup, both edges from rows
    rows = usage.top(
        session=session,
        start=T0 + timedelta(minutes=30),
        end=T0 + timedelta(minutes=135),
        by="conversation",
    )
    assert {r.key: r.requests for r in rows} == {"c1": 1, "c2": 1, "c3": 1}


def test_unpriced_requests_are_counted_not_costed(session: Session) -> None:
    record(session, make_call(cost_usd=None, model="openai/gemini-3-flash"))
    (row,) = usage.top(session=session, start=T0, end=T0 + timedelta(hours=1), by="model")
    assert (row.key, row.unpriced_requests, row.cost_usd) == ("openai/gemini-3-flash", 1, 0.0)


def test_feedback_reaches_every_dimension(session: Session) -> None:
    call = make_call(at=timedelta(minutes=1))
    record(session, call)
    request_log.record_feedback(session=session, correlation_id=call.correlation_id, rating=-1)
    session.commit()
    for by in usage.DIMENSIONS:
        (row,) = usage.top(session=session, start=T0, end=T0 + timedelta(hours=2), by=by)
        assert (row.feedback_up, row.feedback_down) == (0, 1)


def test_incremental_rollup_equals_a_rebuild(session: Session) -> None:
    _history(session)
    incremental = _snapshot(session)
    request_log.rebuild_rollups(session=session)
    session.commit()
    assert _snapshot(session) == incremental and incremental


def test_unknown_dimension_is_refused(session: Session) -> None:
    with pytest.raises(ValueError, match="by must be one of"):
        usage.top(session=session, start=T0, end=T0 + timedelta(hours=1), by="session")


def test_monitor_drill_down_shows_one_users_requests(session: Session) -> None:
    from chatmon.presenters import dashboard as dashboard_view

    _history(session)
    query = dashboard_view.DashboardQuery(
        start=T0, end=T0 + timedelta(hours=3), usage_by="user", usage_key="u-a"
    )
    data = dashboard_view.load(session, query)
    assert data.total_rows == 2 and len(data.rows) == 2
    assert [row.label for row in data.spenders] == ["u-b", "u-a", "u-c"]
    assert data.spenders[0].cost == "$2.00"


def test_spender_labels_shorten_long_ids_only() -> None:
    from chatmon.services.usage_keys import short_key as short

    assert short("a" * 64, "user") == "a" * 12 + "…"
    assert short("openai/a-very-long-model-name", "model") == "openai/a-very-long-model-name"
    assert short("", "conversation") == "(none)"


def test_budget_bar_shows_spend_forecast_and_action(session: Session) -> None:
    from chatmon.presenters.spend import budget_bars
    from chatmon.settings import load_settings

    record(
        session, *[make_call(at=-(i + 1) * timedelta(minutes=1), cost_usd=1.0) for i in range(9)]
    )
    settings = load_settings(daily_budget_usd=10, budget_action="refuse")
    (bar,) = budget_bars(session=session, settings=settings, now=T0)
    assert bar.spent == "$9.00 of $10.00 (90 %)"
    assert bar.color == "amber"
    assert "the limit is reached at 12:0" in bar.forecast
    assert bar.action == "at 100 %: refuse new requests"


def test_drill_down_page_takes_the_request_tables_filter(session: Session) -> None:
    from chatmon.services.stats import RequestFilter

    _history(session)
    record(session, make_call(at=timedelta(minutes=80), session_id="u-a", cost_usd=0.1))
    window = {"session": session, "start": T0, "end": T0 + timedelta(hours=3), "by": "user"}
    by_cost = RequestFilter(sort="cost_usd", descending=True, limit=2)
    rows, total = usage.request_page(**window, key="u-a", where=by_cost)
    assert total == 3 and [r.cost_usd for r in rows] == [0.5, 0.25]
    second = RequestFilter(sort="cost_usd", descending=True, limit=2, offset=2)
    rows, total = usage.request_page(**window, key="u-a", where=second)
    assert total == 3 and [r.cost_usd for r in rows] == [0.1]
    errors = RequestFilter(status="error")
    assert usage.request_page(**window, key="u-a", where=errors) == ([], 0)
    rows, total = usage.request_page(**window, key="u-c", where=errors)
    assert total == 1 and rows[0].error_category == "timeout"
