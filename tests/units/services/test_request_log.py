"""Rows and rollups: one row per request, idempotent, and the rollups always agree."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from sqlalchemy import func, select, text
from sqlmodel import Session

from chatmon.models import LLMLatencyHourly, LLMRequest, LLMRequestHourly
from chatmon.services import request_log
from tests.units.services.stats_factory import T0, make_call, record

H = timedelta(hours=1)


def rollups(session: Session) -> tuple[list, list]:
    hourly = session.execute(
        text(
            "SELECT hour, model, status, error_category, requests, tokens_input, tokens_output,"
            " ROUND(CAST(cost_usd AS NUMERIC), 9), unpriced, retries, feedback_up, feedback_down"
            " FROM llm_request_hourly ORDER BY 1, 2, 3, 4"
        )
    ).all()
    latency = session.execute(
        text("SELECT hour, model, metric, bin, count FROM llm_latency_hourly ORDER BY 1, 2, 3, 4")
    ).all()
    return [tuple(r) for r in hourly], [tuple(r) for r in latency]


def row_count(session: Session) -> int:
    return session.execute(select(func.count()).select_from(LLMRequest)).scalar_one()


def test_a_request_recorded_twice_is_one_row(session: Session) -> None:
    call = make_call()
    record(session, call, call)
    record(session, call)
    assert row_count(session) == 1
    total = session.execute(select(func.sum(LLMRequestHourly.requests))).scalar_one()
    assert total == 1


def test_row_holds_no_text_and_the_provider_usage(session: Session) -> None:
    call = make_call(
        input_tokens=123, output_tokens=45, retries=2, temperature=1.3, prompt_version="v9"
    )
    record(session, call)
    row = session.execute(select(LLMRequest)).scalar_one()
    assert (row.input_tokens, row.output_tokens, row.retries) == (123, 45, 2)
    assert (row.temperature, row.prompt_version, row.status) == (1.3, "v9", "ok")
    assert row.started_at == T0
    assert not hasattr(row, "input_text") and not hasattr(row, "output_text")


def test_unknown_price_is_flagged_not_zero(session: Session) -> None:
    record(session, make_call(cost_usd=None, input_tokens=3, output_tokens=4))
    row = session.execute(select(LLMRequest)).scalar_one()
    assert row.cost_usd is None and row.priced is False


def test_failed_call_without_usage_keeps_cost_unknown_but_priced(session: Session) -> None:
    record(
        session,
        make_call(
            status="error",
            error_category="timeout",
            cost_usd=None,
            input_tokens=None,
            output_tokens=None,
        ),
    )
    row = session.execute(select(LLMRequest)).scalar_one()
    assert (row.cost_usd, row.priced, row.input_tokens) == (None, True, None)


def test_failed_call_of_unpriced_model_is_flagged(session: Session) -> None:
    record(
        session,
        make_call(
            status="error",
            error_category="auth",
            cost_usd=None,
            input_tokens=None,
            output_tokens=None,
        ),
        price_known=False,
    )
    assert session.execute(select(LLMRequest.priced)).scalar_one() is False


def test_feedback_for_unknown_request_changes_nothing(session: Session) -> None:
    assert request_log.record_feedback(session=session, correlation_id="nope", rating=1) is False


def test_incremental_rollups_equal_a_rebuild_from_rows(session: Session) -> None:
    rng = random.Random(11)
    calls = []
    for _ in range(400):
        failed = rng.random() < 0.2
        calls.append(
            make_call(
                at=timedelta(seconds=rng.uniform(0, 6 * 3600)),
                model=rng.choice(["m1", "m2"]),
                status=rng.choice(["error", "cancelled"]) if failed else "ok",
                error_category="timeout" if failed else None,
                total_seconds=rng.uniform(0.01, 9),
                first_token_seconds=None if failed else rng.uniform(0.01, 1),
                cost_usd=rng.choice([None, rng.uniform(0, 0.01)]),
                retries=rng.randint(0, 2),
            )
        )
    for i in range(0, len(calls), 37):
        record(session, *calls[i : i + 37])
    for call in rng.sample(calls, 50):
        request_log.record_feedback(
            session=session, correlation_id=call.correlation_id, rating=rng.choice([1, -1, 0])
        )
    session.commit()
    incremental = rollups(session)
    request_log.rebuild_rollups(session=session)
    session.commit()
    assert rollups(session) == incremental
    assert incremental[0] and incremental[1]


def test_prune_deletes_old_rows_and_their_rollups(session: Session) -> None:
    record(
        session,
        make_call(at=-3 * H),
        make_call(at=-2 * H + timedelta(minutes=5)),
        make_call(at=timedelta(0)),
    )
    cutoff = T0 - H
    deleted = request_log.prune_rows(session=session, before=cutoff, limit=1)
    deleted += request_log.prune_rows(session=session, before=cutoff, limit=1)
    deleted += request_log.prune_rows(session=session, before=cutoff, limit=1)
    request_log.prune_rollups(session=session, before=cutoff)
    session.commit()
    assert deleted == 2
    assert row_count(session) == 1
    hours = session.execute(select(LLMRequestHourly.hour)).scalars().all()
    assert hours == [int(T0.timestamp()) // 3600]
    assert set(session.execute(select(LLMLatencyHourly.hour)).scalars()) == set(hours)


@pytest.mark.parametrize("days", [1, 90])
def test_retention_cutoff_is_an_hour_boundary(days: int) -> None:
    now = T0 + timedelta(minutes=37, seconds=5)
    cutoff = request_log.retention_cutoff(now=now, days=days)
    assert cutoff == T0 - timedelta(days=days)
