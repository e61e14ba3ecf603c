"""Every rule at, just below and just above its threshold (table-driven)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chatmon.services.alerts.catalog import evaluate
from chatmon.services.alerts.rules import (
    Observations,
    Rule,
    Thresholds,
    Verdict,
    breaker_open,
    cost_daily,
    cost_hourly,
    error_rate,
    latency_p95,
    no_traffic,
)
from chatmon.services.budget import BudgetConfig
from chatmon.settings import load_settings

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
LIMITS = Thresholds(
    error_rate_percent=10.0,
    latency_p95_seconds=5.0,
    cost_hourly_usd=1.0,
    cost_daily_usd=50.0,
    min_requests=10,
    window_minutes=15,
    no_traffic_minutes=30,
)
F, OK, WAIT, OFF = Verdict.FIRING, Verdict.OK, Verdict.NOT_ENOUGH_DATA, Verdict.OFF


def obs(**fields: object) -> Observations:
    return Observations(now=NOW, **fields)  # type: ignore[arg-type]  # field values built in a dict


@pytest.mark.parametrize(
    ("requests", "errors", "rate", "verdict"),
    [
        (0, 0, 0.0, WAIT),
        (9, 9, 100.0, WAIT),  # one below min_requests: never judged, however bad
        (10, 1, 10.0, OK),  # exactly at the threshold: not above it
        (10, 2, 20.0, F),  # exactly min_requests: judged
        (1000, 100, 10.0, OK),
        (1000, 101, 10.1, F),
        (1000, 99, 9.9, OK),
        (20, 0, 0.0, OK),
    ],
)
def test_error_rate_at_and_around_threshold(
    requests: int, errors: int, rate: float, verdict: Verdict
) -> None:
    finding = error_rate(
        obs(window_requests=requests, window_errors=errors, window_error_rate=rate), LIMITS
    )
    assert finding.verdict is verdict
    assert finding.rule is Rule.ERROR_RATE
    assert finding.threshold == 10.0
    if verdict is not WAIT:
        assert finding.value == rate
        assert f"{errors} of {requests}" in finding.summary


@pytest.mark.parametrize(
    ("requests", "p95", "verdict"),
    [
        (9, 60.0, WAIT),
        (10, None, WAIT),  # requests, but none with a latency (all cancelled)
        (10, 5.0, OK),
        (10, 4.99, OK),
        (10, 5.01, F),
        (500, 12.5, F),
    ],
)
def test_latency_p95_at_and_around_threshold(
    requests: int, p95: float | None, verdict: Verdict
) -> None:
    finding = latency_p95(obs(window_requests=requests, window_latency_p95=p95), LIMITS)
    assert finding.verdict is verdict
    if verdict is F:
        assert finding.value == p95
        assert f"{p95:.2f} s" in finding.summary


@pytest.mark.parametrize(
    ("cost", "verdict"), [(0.0, OK), (0.99, OK), (1.0, OK), (1.0001, F), (7.5, F)]
)
def test_cost_last_hour_at_and_around_threshold(cost: float, verdict: Verdict) -> None:
    finding = cost_hourly(obs(cost_last_hour=cost), LIMITS)
    assert finding.verdict is verdict
    assert finding.value == cost


@pytest.mark.parametrize(("cost", "verdict"), [(0.0, OK), (49.99, OK), (50.0, OK), (50.01, F)])
def test_cost_today_at_and_around_threshold(cost: float, verdict: Verdict) -> None:
    assert cost_daily(obs(cost_today=cost), LIMITS).verdict is verdict


def test_cost_rules_judge_regardless_of_request_count() -> None:
    # one very expensive request is enough: cost has no minimum sample
    finding = cost_hourly(obs(window_requests=1, cost_last_hour=3.0), LIMITS)
    assert finding.firing


@pytest.mark.parametrize(
    ("open_models", "verdict", "value"),
    [((), OK, 0), (("openai/fake",), F, 1), (("b", "a", "a"), F, 2)],
)
def test_breaker_open(open_models: tuple[str, ...], verdict: Verdict, value: int) -> None:
    finding = breaker_open(obs(open_breakers=open_models), LIMITS)
    assert finding.verdict is verdict
    assert finding.value == value
    if verdict is F:
        assert "a, b" in finding.summary or "openai/fake" in finding.summary


@pytest.mark.parametrize(
    ("last_request_ago", "watching_ago", "verdict"),
    [
        (timedelta(minutes=29, seconds=59), None, OK),
        (timedelta(minutes=30), None, OK),  # exactly the limit: not above it
        (timedelta(minutes=30, seconds=1), None, F),
        (None, timedelta(minutes=10), OK),  # fresh install: counts from when alerting began
        (None, timedelta(minutes=31), F),
        (None, None, WAIT),
    ],
)
def test_no_traffic_at_and_around_threshold(
    last_request_ago: timedelta | None, watching_ago: timedelta | None, verdict: Verdict
) -> None:
    finding = no_traffic(
        obs(
            last_request_at=None if last_request_ago is None else NOW - last_request_ago,
            watching_since=None if watching_ago is None else NOW - watching_ago,
        ),
        LIMITS,
    )
    assert finding.verdict is verdict


def test_no_traffic_is_off_unless_configured() -> None:
    limits = Thresholds(no_traffic_minutes=None)
    finding = no_traffic(obs(last_request_at=NOW - timedelta(days=3)), limits)
    assert finding.verdict is OFF


def test_evaluate_returns_one_finding_per_rule_in_order() -> None:
    findings = evaluate(obs(), LIMITS)
    assert [f.rule for f in findings] == list(Rule)


def test_thresholds_come_from_settings() -> None:
    settings = load_settings(
        alert_error_rate_threshold=25,
        alert_latency_p95_threshold=2.5,
        alert_cost_threshold=3,
        daily_cost_threshold=40,
        alert_min_requests=4,
        alert_window_minutes=5,
        alert_no_traffic_minutes=60,
    )
    budget = BudgetConfig(daily_usd=40.0)  # DAILY_COST_THRESHOLD is the daily budget's alias
    expected = Thresholds(25, 2.5, 3, 40, 4, 5, 60, probe_failures=None, budget=budget)
    assert Thresholds.from_settings(settings) == expected
