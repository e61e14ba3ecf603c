"""Budget periods, spend, decisions and the request path's actions, on a real database."""

from __future__ import annotations

import zoneinfo
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy.engine import Engine
from sqlmodel import Session

from chatmon.devtools.fake_llm_server import FakeLLMServer
from chatmon.services import budget, events
from chatmon.services.budget import BudgetConfig, BudgetGate, period_bounds
from chatmon.services.errors import ErrorCategory, user_message
from chatmon.services.events import LLMCall
from chatmon.services.history import ModelMessage
from chatmon.services.llm import LLMClient, warm_up
from chatmon.services.prompts import SystemPromptSource
from chatmon.services.turn import TurnRequest, TurnService
from chatmon.settings import load_settings
from tests.units.services.stats_factory import make_call, record

PARIS = zoneinfo.ZoneInfo("Europe/Paris")
NOON = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)


def test_daily_period_follows_the_time_zone() -> None:
    start, end = period_bounds("daily", datetime(2026, 7, 1, 23, 30, tzinfo=UTC), PARIS)
    assert start == datetime(2026, 7, 1, 22, 0, tzinfo=UTC)  # 2 July 00:00 in Paris (UTC+2)
    assert end - start == timedelta(hours=24)


def test_a_dst_day_is_23_hours_long() -> None:
    start, end = period_bounds("daily", datetime(2026, 3, 29, 12, 0, tzinfo=UTC), PARIS)
    assert end - start == timedelta(hours=23)


def test_monthly_period_ends_on_the_first_of_next_month() -> None:
    start, end = period_bounds(
        "monthly", datetime(2026, 12, 15, tzinfo=UTC), zoneinfo.ZoneInfo("UTC")
    )
    assert (start, end) == (datetime(2026, 12, 1, tzinfo=UTC), datetime(2027, 1, 1, tzinfo=UTC))


def _spend(session: Session, now: datetime, usd: float, count: int = 10) -> None:
    record(
        session,
        *[
            make_call(at=now - timedelta(minutes=5 * (i + 1)), cost_usd=usd / count)
            for i in range(count)
        ],
    )


def test_status_reports_spend_percent_level_and_action(session: Session) -> None:
    now = NOON
    _spend(session, now, 45.0)
    config = BudgetConfig(daily_usd=50.0, action="refuse")
    (status,) = budget.statuses(session=session, config=config, now=now)
    assert status.spent_usd == pytest.approx(45.0)
    assert status.percent == pytest.approx(90.0)
    assert status.level == 80.0
    assert status.action == "serve"  # not reached yet
    assert status.reached_at is not None and status.reached_at > now  # at $~54/h
    body = status.to_json()
    assert body["resets_at"].endswith("Z") and body["limit_usd"] == 50.0


def test_budget_statuses_reach_metrics_with_the_warn_levels(session: Session) -> None:
    _spend(session, NOON, 45.0)
    config = BudgetConfig(daily_usd=50.0, monthly_usd=900.0, warn_levels=(60.0, 90.0))
    budget.statuses(session=session, config=config, now=NOON)

    def value(name: str, **labels: str) -> float | None:
        return REGISTRY.get_sample_value(name, labels)

    assert value("chatmon_budget_used_ratio", period="daily") == pytest.approx(0.9)
    assert value("chatmon_budget_used_ratio", period="monthly") == pytest.approx(0.05)
    assert value("chatmon_budget_limit_usd", period="daily") == 50.0
    assert value("chatmon_budget_warn_ratio", level="60") == pytest.approx(0.6)
    assert value("chatmon_budget_warn_ratio", level="90") == pytest.approx(0.9)
    _spend(session, NOON - timedelta(minutes=30), 5.0)
    budget.statuses(session=session, config=config, now=NOON)  # the next reading wins
    assert value("chatmon_budget_used_ratio", period="daily") == pytest.approx(1.0)


def test_decision_at_the_limit_is_the_configured_action(session: Session) -> None:
    now = NOON
    _spend(session, now, 12.0)
    refuse = budget.decide(
        session=session, config=BudgetConfig(daily_usd=10, action="refuse"), now=now
    )
    assert (refuse.action, refuse.period) == ("refuse", "daily")
    assert refuse.seconds_to_reset(now) == pytest.approx(12 * 3600)
    warn = budget.decide(session=session, config=BudgetConfig(daily_usd=10), now=now)
    assert warn.action == "warn"
    under = budget.decide(session=session, config=BudgetConfig(monthly_usd=100), now=now)
    assert under.action == "serve"


def test_refusal_message_says_when_it_resets() -> None:
    text = user_message(ErrorCategory.BUDGET_EXCEEDED, retry_after=3 * 3600 + 600)
    assert "budget is used up" in text and "resets in 3 h 10 min" in text


# ----------------------------------------------------------------------------- request path


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeLLMServer]:
    warm_up()
    with FakeLLMServer() as server:
        yield server


@pytest.fixture
def calls() -> Iterator[list[LLMCall]]:
    seen: list[LLMCall] = []
    events.on_call(seen.append)
    yield seen
    events.off_call(seen.append)


def _service(engine: Engine, upstream: FakeLLMServer, tmp_path, action: str) -> TurnService:
    settings = load_settings(
        llm_model="openai/primary",
        llm_api_base=upstream.url,
        llm_api_key="sk-unit-test",
        llm_max_retries=0,
        llm_price_input_per_1m=1.0,
        llm_price_output_per_1m=1.0,
    )
    prompt = tmp_path / "prompt.txt"
    prompt.write_text("be brief")
    gate = BudgetGate(
        config=BudgetConfig(daily_usd=1.0, action=action), engine=lambda: engine, clock=lambda: NOON
    )
    with Session(engine) as session:
        _spend(session, NOON, 2.0, count=2)
    gate.refresh()
    return TurnService(
        settings=settings,
        client=LLMClient(settings),
        prompts=SystemPromptSource(prompt),
        budget=gate,
        fallback=LLMClient(settings, model="openai/cheaper"),
    )


def _request() -> TurnRequest:
    return TurnRequest(
        session_id="owner-1",
        conversation_id="c1",
        history=[ModelMessage("user", "hi")],
        temperature=0.0,
    )


async def test_refuse_sends_nothing_and_records_budget_exceeded(
    engine: Engine,
    upstream: FakeLLMServer,
    tmp_path,
    calls: list[LLMCall],
) -> None:
    service = _service(engine, upstream, tmp_path, "refuse")
    hits = upstream.hits
    refusal = service.admit(_request())
    assert refusal is not None and refusal.category is ErrorCategory.BUDGET_EXCEEDED
    assert upstream.hits == hits
    assert calls[-1].error_category == "budget_exceeded" and calls[-1].status == "error"


async def test_fallback_answers_with_the_cheaper_model_and_records_it(
    engine: Engine,
    upstream: FakeLLMServer,
    tmp_path,
    calls: list[LLMCall],
) -> None:
    service = _service(engine, upstream, tmp_path, "fallback")
    request = _request()
    assert service.admit(request) is None
    async with service.reply(request) as reply:
        text = "".join([t async for t in reply])
    assert text.startswith("Echo: hi")
    assert upstream.requests[-1]["model"] == "cheaper"
    assert "openai/cheaper" in reply.result.notice
    assert calls[-1].model == "openai/cheaper"
    assert calls[-1].cost_usd is None  # LLM_PRICE_* price LLM_MODEL only; cheaper is unmapped


async def test_warn_keeps_serving_the_configured_model(
    engine: Engine,
    upstream: FakeLLMServer,
    tmp_path,
    calls: list[LLMCall],
) -> None:
    service = _service(engine, upstream, tmp_path, "warn")
    request = _request()
    assert service.admit(request) is None
    async with service.reply(request) as reply:
        assert "".join([t async for t in reply])
    assert calls[-1].model == "openai/primary" and reply.result.notice == ""
