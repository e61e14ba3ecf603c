"""The budget rules, table-driven on hand-made budget statuses (no database)."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

from chatmon.services.alerts.budget_rules import budget_daily, budget_forecast, budget_monthly
from chatmon.services.alerts.rules import Observations, Thresholds, Verdict
from chatmon.services.budget import BudgetConfig, PeriodStatus

NOW = datetime(2026, 3, 10, 14, 5, tzinfo=UTC)
CONFIG = BudgetConfig(daily_usd=50.0, action="refuse")
LIMITS = Thresholds(budget=CONFIG)


def _daily(**changes: object) -> PeriodStatus:
    status = PeriodStatus(
        period="daily",
        limit_usd=50.0,
        spent_usd=20.0,
        requests=400,
        percent=40.0,
        forecast_usd=45.0,
        reached_at=None,
        resets_at=datetime(2026, 3, 11, tzinfo=UTC),
        action="serve",
        level=None,
        method="recent+usual",
    )
    return replace(status, **changes)


def _obs(*statuses: PeriodStatus, drivers: str = "") -> Observations:
    return Observations(now=NOW, budget=statuses, budget_drivers=drivers)


def test_below_the_first_level_is_ok() -> None:
    assert budget_daily(_obs(_daily()), LIMITS).verdict is Verdict.OK


def test_a_warning_level_fires_and_says_what_happens_at_100() -> None:
    finding = budget_daily(_obs(_daily(spent_usd=41.0, percent=82.0, level=80.0)), LIMITS)
    assert finding.verdict is Verdict.FIRING
    assert "82 % of the daily budget of $50.00 spent ($41.00)" in finding.summary
    assert "80 % warning level" in finding.summary
    assert "at 100 % the chat refuses new requests" in finding.summary


def test_no_monthly_budget_is_off() -> None:
    assert budget_monthly(_obs(_daily()), LIMITS).verdict is Verdict.OFF


def test_forecast_fires_before_the_limit_is_crossed() -> None:
    reached = NOW + timedelta(hours=1, minutes=35)
    obs = _obs(_daily(reached_at=reached), drivers="conversation 3f2a… ($4.10 in the last hour)")
    finding = budget_forecast(obs, LIMITS)
    assert finding.verdict is Verdict.FIRING
    assert finding.summary.startswith(
        "at the current pace the daily budget of $50.00 is reached at 15:40 UTC (in 1 h 35 min)"
    )
    assert "top drivers: conversation 3f2a…" in finding.summary


def test_forecast_beyond_the_horizon_is_ok() -> None:
    obs = _obs(_daily(reached_at=NOW + timedelta(hours=3)))
    assert budget_forecast(obs, LIMITS).verdict is Verdict.OK


def test_forecast_quiet_once_the_limit_is_crossed() -> None:
    obs = _obs(_daily(spent_usd=55.0, percent=110.0, level=100.0, reached_at=None))
    assert budget_forecast(obs, LIMITS).verdict is Verdict.OK


def test_forecast_without_enough_data_changes_nothing() -> None:
    obs = _obs(_daily(method="not_enough_data", forecast_usd=None))
    assert budget_forecast(obs, LIMITS).verdict is Verdict.NOT_ENOUGH_DATA


def test_a_level_already_reported_this_period_holds() -> None:
    status = _daily(spent_usd=41.0, percent=82.0, level=80.0)
    told = Observations(now=NOW, budget=(status,), budget_notified={"daily": 40.0})
    finding = budget_daily(told, LIMITS)
    assert finding.verdict is Verdict.NOT_ENOUGH_DATA  # no repeat, no resolve
    assert "was reported this period" in finding.summary
    lower = Observations(now=NOW, budget=(status,), budget_notified={"daily": 25.0})
    assert budget_daily(lower, LIMITS).verdict is Verdict.FIRING  # 80 % is new
    assert budget_daily(lower, LIMITS).threshold == 40.0  # the level, in USD
