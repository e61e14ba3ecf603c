"""The fallback_used rule, table-driven: replies from a fallback model mean the primary
is failing even when users see no error; its inputs and its replay from the log."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session

from chatmon.services.alert_routing import DEFAULT_SEVERITY, WARNING
from chatmon.services.alerts import catalog, inputs
from chatmon.services.alerts.backtest import limits_of, replay
from chatmon.services.alerts.fallback_rules import fallback_used
from chatmon.services.alerts.messages import build_message
from chatmon.services.alerts.rules import Observations, Rule, Thresholds, Verdict
from chatmon.settings import load_settings
from tests.units.services.stats_factory import T0, make_call, record

NOW = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
M = timedelta(minutes=1)
BACKUP = "openai/gpt-4o-mini"


def _obs(requests: int, fallbacks: int) -> Observations:
    by_model = ((BACKUP, fallbacks),) if fallbacks else ()
    return Observations(
        now=NOW, window_requests=requests, window_fallbacks=fallbacks, fallback_by_model=by_model
    )


@pytest.mark.parametrize(
    ("threshold", "requests", "fallbacks", "verdict", "value"),
    [
        (0.0, 100, 0, Verdict.OK, 0.0),  # nothing went to a fallback
        (0.0, 100, 1, Verdict.FIRING, 1.0),  # default 0: any fallback fires
        (0.0, 1, 1, Verdict.FIRING, 100.0),  # a quiet window: one request, served by it
        (0.0, 0, 0, Verdict.OK, 0.0),  # no traffic at all
        (10.0, 100, 10, Verdict.OK, 10.0),  # at the threshold: not above it
        (10.0, 100, 11, Verdict.FIRING, 11.0),  # just above
        (50.0, 40, 12, Verdict.OK, 30.0),
        (0.0, 3, 5, Verdict.FIRING, 100.0),  # refused-but-fallback rows: never above 100 %
    ],
)
def test_fires_when_the_fallback_share_is_above_the_threshold(
    threshold: float, requests: int, fallbacks: int, verdict: Verdict, value: float
) -> None:
    finding = fallback_used(_obs(requests, fallbacks), Thresholds(fallback_percent=threshold))
    assert finding.verdict is verdict, finding.summary
    assert finding.value == pytest.approx(value)
    assert finding.threshold == threshold


def test_off_without_fallback_models() -> None:
    finding = fallback_used(_obs(100, 50), Thresholds())
    assert finding.verdict is Verdict.OFF
    assert "LLM_FALLBACK_MODELS" in finding.summary


def test_the_summary_names_the_fallback_models_most_used_first() -> None:
    obs = Observations(
        now=NOW,
        window_requests=40,
        window_fallbacks=9,
        fallback_by_model=(("b/two", 6), ("a/one", 3)),
    )
    finding = fallback_used(obs, Thresholds(fallback_percent=0.0))
    assert finding.firing
    assert "9 of 40 requests in the last 15 min (22.5 %)" in finding.summary
    assert "b/two (6), a/one (3)" in finding.summary


def test_the_rule_is_in_the_catalog_and_a_warning() -> None:
    rules = [f.rule for f in catalog.evaluate(_obs(0, 0), Thresholds())]
    assert rules == list(Rule) and Rule.FALLBACK_USED in rules
    assert DEFAULT_SEVERITY["fallback_used"] == WARNING


def test_settings_turn_the_rule_on_with_fallback_models() -> None:
    assert Thresholds.from_settings(load_settings()).fallback_percent is None
    configured = load_settings(
        llm_model="gemini/gemini-2.5-flash",
        llm_fallback_models=BACKUP,
        alert_fallback_threshold=5,
    )
    assert Thresholds.from_settings(configured).fallback_percent == 5.0


def test_a_check_counts_the_window_fallbacks_per_model(session: Session) -> None:
    calls = [make_call(model="gemini/main") for _ in range(6)]
    calls += [make_call(model=BACKUP, fallback=True) for _ in range(3)]
    calls.append(make_call(model="openai/other", fallback=True))
    calls.append(make_call(model=BACKUP, fallback=True, at=-2 * timedelta(hours=1)))  # too old
    calls.append(make_call(model=BACKUP, fallback=True, synthetic=True))  # the probe's
    record(session, *calls)
    limits = Thresholds(fallback_percent=0.0, window_minutes=15)
    obs = inputs.gather(
        session=session,
        limits=limits,
        now=T0 + M,
        open_breakers={},
        breaker_lookback=timedelta(minutes=2),
    )
    assert obs.window_fallbacks == 4
    assert obs.fallback_by_model == ((BACKUP, 3), ("openai/other", 1))
    finding = fallback_used(obs, limits)
    assert finding.firing, finding.summary
    evidence = inputs.evidence(session=session, finding=finding, obs=obs, limits=limits)
    fallback_ids = {c.correlation_id for c in calls[6:10]}
    assert evidence.correlation_ids and set(evidence.correlation_ids) <= fallback_ids
    message = build_message(
        kind="firing",
        finding=finding,
        evidence=evidence,
        window_minutes=limits.window_minutes,
        checked_at=obs.now,
        firing_since=obs.now,
        monitor_url="http://chat.example/monitor",
    )
    assert (message.value, message.threshold) == (f"{finding.value:.1f} %", "0 %")


def test_backtest_replays_a_stretch_of_fallbacks(session: Session) -> None:
    """Minutes 30-39 are answered by the fallback model: the rule fires at the first check
    that sees them and resolves once the 15-minute window has left them behind."""
    calls = [make_call(model="gemini/main", at=m * M + timedelta(seconds=5)) for m in range(90)]
    calls += [
        make_call(model=BACKUP, fallback=True, at=m * M + timedelta(seconds=30))
        for m in range(30, 40)
    ]
    record(session, *calls)
    settings = load_settings(
        llm_model="gemini/main", llm_fallback_models=BACKUP, alert_window_minutes=15
    )
    limits, cooldown = limits_of(settings)
    result = replay(session=session, limits=limits, start=T0, end=T0 + 90 * M, cooldown=cooldown)
    (episode,) = result.rule(Rule.FALLBACK_USED).episodes
    assert episode.fired_at == T0 + 31 * M
    assert episode.resolved_at == T0 + 55 * M
    assert not result.rule(Rule.FALLBACK_USED).not_replayed
