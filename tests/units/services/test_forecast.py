"""The spend forecast on synthetic histories: steady, spike, quiet night, budget raised."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chatmon.services.forecast import SpendHistory, project, recent_pace

NOON = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
MIDNIGHT = datetime(2026, 3, 11, 0, 0, tzinfo=UTC)


def _steady(now: datetime = NOON, per_hour: float = 2.0, **changes: object) -> SpendHistory:
    """$2/h all day, every day: at noon $24 spent, $24 usual for the rest of the day."""
    hours_done = (now - (MIDNIGHT - timedelta(days=1))).total_seconds() / 3600
    values: dict[str, object] = dict(
        now=now,
        period_end=MIDNIGHT,
        spent=per_hour * hours_done,
        recent_buckets=[per_hour / 6] * 6,
        recent_requests=60,
        usual_remainders=[per_hour * (24 - hours_done)] * 7,
    )
    values.update(changes)
    return SpendHistory(**values)  # type: ignore[arg-type]


def test_steady_day_forecasts_the_usual_total() -> None:
    outlook = project(_steady(), limit=50.0)
    assert outlook.forecast_usd == pytest.approx(48.0)
    assert outlook.method == "recent+usual"
    assert outlook.reached_at is None  # $50 at $2/h: 13 h away, after midnight


def test_spike_brings_the_limit_within_the_hour() -> None:
    spike = _steady(recent_buckets=[0.33, 0.33, 0.33, 5.0, 5.0, 5.0])
    outlook = project(spike, limit=50.0)
    assert outlook.pace_usd_per_hour > 20
    assert outlook.reached_at is not None
    assert outlook.reached_at - NOON < timedelta(hours=2)
    assert outlook.forecast_usd > 48.0


def test_quiet_night_forecasts_the_usual_day_not_zero() -> None:
    three_am = NOON - timedelta(hours=9)
    night = SpendHistory(
        now=three_am,
        period_end=MIDNIGHT,
        spent=0.5,
        recent_buckets=[0.0] * 6,
        recent_requests=0,  # too few to speak
        usual_remainders=[40.0, 44.0, 42.0],
    )
    outlook = project(night, limit=50.0)
    assert outlook.method == "usual"
    assert outlook.forecast_usd == pytest.approx(42.5)
    assert outlook.reached_at is None


def test_budget_raised_mid_day_moves_the_limit_out_of_reach() -> None:
    spike = _steady(recent_buckets=[5.0] * 6)  # $30/h
    assert project(spike, limit=50.0).reached_at == NOON + timedelta(hours=(50 - 24) / 30)
    assert project(spike, limit=500.0).reached_at is None  # after the period ends


def test_not_enough_data_says_nothing() -> None:
    fresh = SpendHistory(now=NOON, period_end=MIDNIGHT, spent=0.1, recent_requests=2)
    outlook = project(fresh, limit=50.0)
    assert (outlook.forecast_usd, outlook.reached_at, outlook.method) == (
        None,
        None,
        "not_enough_data",
    )


def test_limit_already_reached_has_no_reached_at() -> None:
    assert project(_steady(spent=60.0), limit=50.0).reached_at is None


def test_recent_pace_weighs_the_newest_bucket_most() -> None:
    assert recent_pace([0, 0, 0, 0, 0, 1.0]) > recent_pace([1.0, 0, 0, 0, 0, 0])
    assert recent_pace([1.0] * 6) == pytest.approx(6.0)
