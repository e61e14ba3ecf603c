"""The backtest replays the live rules over recorded requests, minute by minute, with the
cooldown and the silences, on SQLite and PostgreSQL (the ``session`` fixture)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from chatmon.models import AlertSilence
from chatmon.services.alerts.backtest import Backtest, limits_of, replay
from chatmon.services.alerts.engine import AlertEngine
from chatmon.services.alerts.rules import Rule
from chatmon.settings import load_settings
from tests.units.services.alerts.test_engine import Clock
from tests.units.services.stats_factory import T0, make_call, record

M = timedelta(minutes=1)
PER_MINUTE = 20


def minutes(first: int, last: int, *, errors: int = 0, **fields: object) -> list:
    """PER_MINUTE requests in each minute ``[first, last)`` after T0, the first
    ``errors`` of each minute failing with a server error."""
    calls = []
    for minute in range(first, last):
        for i in range(PER_MINUTE):
            failed = i < errors
            calls.append(
                make_call(
                    at=minute * M + timedelta(seconds=2 * i + 1),
                    status="error" if failed else "ok",
                    error_category="server_error" if failed else None,
                    **fields,
                )
            )
    return calls


def run(session: Session, *, end: int = 120, **settings: object) -> Backtest:
    values: dict[str, object] = {
        "alert_min_requests": 10,
        "alert_window_minutes": 15,
        "alert_cooldown_hours": 1,
        "alert_error_rate_threshold": 10,
    }
    values.update(settings)
    limits, cooldown = limits_of(load_settings(**values))
    return replay(session=session, limits=limits, start=T0, end=T0 + end * M, cooldown=cooldown)


def outage(session: Session) -> None:
    """Half the requests of minutes 30-49 fail; the rest of two hours is healthy."""
    record(session, *minutes(0, 30), *minutes(30, 50, errors=10), *minutes(50, 120))


def test_backtest_fires_and_resolves_when_the_live_rule_would(session: Session) -> None:
    """Window [c-15, c): 40 failures of 300 (13 %) first at minute 34; back to 10 %
    (not above the threshold) at minute 62."""
    outage(session)
    result = run(session)
    (episode,) = result.rule(Rule.ERROR_RATE).episodes
    assert episode.fired_at == T0 + 34 * M
    assert episode.resolved_at == T0 + 62 * M
    assert episode.messages == 2  # firing, resolved
    assert episode.peak == pytest.approx(100 * 150 / 300)
    assert result.requests == 120 * PER_MINUTE
    assert result.rule(Rule.LATENCY_P95).episodes == ()


def test_backtest_uses_proposed_thresholds(session: Session) -> None:
    outage(session)
    assert run(session, alert_error_rate_threshold=60).rule(Rule.ERROR_RATE).episodes == ()
    (episode,) = run(session, alert_error_rate_threshold=5).rule(Rule.ERROR_RATE).episodes
    assert episode.fired_at == T0 + 32 * M  # 20 of 300 = 6.7 % > 5 %


def test_backtest_counts_a_second_episode_within_the_cooldown_as_suppressed(
    session: Session,
) -> None:
    record(
        session,
        *minutes(0, 20),
        *minutes(20, 30, errors=10),
        *minutes(30, 60),
        *minutes(60, 70, errors=10),
        *minutes(70, 110),
    )
    first, second = run(session, end=110).rule(Rule.ERROR_RATE).episodes
    assert (first.messages, first.suppressed) == (2, False)
    assert (second.messages, second.suppressed) == (0, True)  # nobody paged again
    assert run(session, end=110, alert_cooldown_hours=0.5).rule(Rule.ERROR_RATE).messages == 4


def test_backtest_holds_back_the_messages_of_a_silenced_rule(session: Session) -> None:
    outage(session)
    session.add(
        AlertSilence(
            rule="error_rate",
            until=T0 + 40 * M,
            reason="provider migration",
            created_by="alice",
            created_at=T0,
        )
    )
    session.commit()
    (episode,) = run(session).rule(Rule.ERROR_RATE).episodes
    assert (episode.messages, episode.silenced) == (1, 1)  # the firing held, the resolve sent


def test_backtest_replays_latency_cost_and_breaker_rules(session: Session) -> None:
    record(
        session,
        *minutes(0, 30, cost_usd=0.0),
        *minutes(30, 40, total_seconds=9.0, cost_usd=0.0),
        *minutes(40, 60, cost_usd=1 / 128),  # $0.15625 a minute, exact in binary
        make_call(at=70 * M, status="error", error_category="circuit_open"),
    )
    result = run(session, alert_cost_threshold=2.0)
    (slow,) = result.rule(Rule.LATENCY_P95).episodes
    assert (slow.fired_at, slow.resolved_at) == (T0 + 31 * M, T0 + 55 * M)  # 20 slow of 300
    (costly,) = result.rule(Rule.COST_HOURLY).episodes
    assert costly.fired_at == T0 + 53 * M  # 13 minutes: $2.03 > $2
    assert costly.resolved_at is not None
    (breaker,) = result.rule(Rule.BREAKER_OPEN).episodes
    assert breaker.fired_at == T0 + 71 * M
    assert breaker.resolved_at == T0 + 73 * M  # the live check's 2-minute lookback


def test_backtest_says_which_rules_it_cannot_replay(session: Session) -> None:
    outage(session)
    result = run(session, probe_interval_seconds=60)
    assert "probe" in result.rule(Rule.PROBE_FAILED).not_replayed
    assert result.rule(Rule.NO_TRAFFIC).off  # ALERT_NO_TRAFFIC_MINUTES unset
    assert not result.rule(Rule.ERROR_RATE).not_replayed


def test_backtest_of_an_idle_log_fires_no_traffic(session: Session) -> None:
    record(session, *minutes(0, 10))
    (idle,) = run(session, end=60, alert_no_traffic_minutes=30).rule(Rule.NO_TRAFFIC).episodes
    assert idle.fired_at == T0 + 41 * M  # idle from 00:10, more than 30 min at 00:41
    assert idle.resolved_at is None  # still quiet when the replay ends


def test_backtest_agrees_with_the_live_check_minute_by_minute(
    engine: Engine, session: Session
) -> None:
    """At each minute around the transitions, the live engine's error-rate verdict is
    firing exactly while the backtest says the rule was firing."""
    outage(session)
    (episode,) = run(session).rule(Rule.ERROR_RATE).episodes
    checker = AlertEngine(
        db_engine=engine,
        settings=load_settings(alert_min_requests=10, alert_window_minutes=15),
        channels=[],
        clock=Clock(T0),
    )
    assert episode.resolved_at is not None
    for minute in (*range(31, 37), *range(59, 65)):
        now = T0 + minute * M
        _obs, findings = checker.observe(now)
        live = next(f for f in findings if f.rule is Rule.ERROR_RATE)
        assert live.firing == (episode.fired_at <= now < episode.resolved_at), minute


def test_backtest_counts_no_traffic_only_from_when_chatmon_was_watching(
    session: Session,
) -> None:
    """A week's replay of an install whose first request came 2 hours ago does not say
    "no traffic" fired for the days before it existed."""
    record(session, *minutes(0, 10))
    limits, cooldown = limits_of(load_settings(alert_no_traffic_minutes=30))
    result = replay(
        session=session,
        limits=limits,
        start=T0 - 7 * 24 * 60 * M,
        end=T0 + 60 * M,
        cooldown=cooldown,
    )
    (idle,) = result.rule(Rule.NO_TRAFFIC).episodes
    assert idle.fired_at == T0 + 41 * M
