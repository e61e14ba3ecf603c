"""The per-rule state machine: fire once, suppress within the cooldown, repeat after it,
resolve only what people were told about."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from chatmon.services.alerts.lifecycle import Action, RuleState, plan
from chatmon.services.alerts.rules import Finding, Rule, Verdict

T0 = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def finding(verdict: Verdict) -> Finding:
    return Finding(Rule.ERROR_RATE, verdict, 50.0, 10.0, "50 % failed")


def step(state: RuleState, verdict: Verdict, at: timedelta) -> tuple[Action, RuleState]:
    result = plan(state, finding(verdict), now=T0 + at, cooldown=HOUR)
    return result.action, result.state


OK, FIRING, WAIT, OFF = Verdict.OK, Verdict.FIRING, Verdict.NOT_ENOUGH_DATA, Verdict.OFF
fresh = RuleState()
told = RuleState(firing=True, firing_since=T0, notified_at=T0, episode_notified=True)
suppressed = RuleState(firing=True, firing_since=T0 + 10 * timedelta(minutes=1), notified_at=T0)
calm_after = RuleState(notified_at=T0)


@pytest.mark.parametrize(
    ("state", "verdict", "at", "action"),
    [
        (fresh, OK, timedelta(0), Action.NONE),
        (fresh, WAIT, timedelta(0), Action.NONE),
        (fresh, FIRING, timedelta(0), Action.FIRE),
        (told, FIRING, timedelta(minutes=59), Action.NONE),  # within the cooldown: silence
        (told, FIRING, HOUR, Action.REPEAT),  # exactly one cooldown later
        (told, WAIT, 2 * HOUR, Action.NONE),  # too few requests: no verdict, no reminder
        (told, OK, timedelta(minutes=5), Action.RESOLVE),
        (told, OFF, timedelta(minutes=5), Action.CLEAR),
        (calm_after, FIRING, timedelta(minutes=30), Action.SUPPRESS),  # flapping
        (calm_after, FIRING, HOUR, Action.FIRE),
        (suppressed, FIRING, timedelta(minutes=30), Action.NONE),
        (suppressed, FIRING, HOUR, Action.FIRE),  # the cooldown ran out while still firing
        (suppressed, OK, timedelta(minutes=30), Action.CLEAR),  # nobody was told: no resolved
    ],
)
def test_plan_action(state: RuleState, verdict: Verdict, at: timedelta, action: Action) -> None:
    assert step(state, verdict, at)[0] is action


def test_plan_fire_then_resolve_then_cooldown_holds() -> None:
    action, state = step(fresh, FIRING, timedelta(0))
    assert action is Action.FIRE and state.firing and state.notified_at == T0
    action, state = step(state, OK, timedelta(minutes=10))
    assert action is Action.RESOLVE and not state.firing
    assert state.notified_at == T0  # the cooldown outlives the episode
    action, state = step(state, FIRING, timedelta(minutes=20))
    assert action is Action.SUPPRESS and state.firing and not state.episode_notified
    action, state = step(state, OK, timedelta(minutes=25))
    assert action is Action.CLEAR


def test_plan_repeat_restarts_the_cooldown() -> None:
    action, state = step(told, FIRING, HOUR)
    assert action is Action.REPEAT and state.notified_at == T0 + HOUR
    assert state.firing_since == T0
    assert step(state, FIRING, HOUR + timedelta(minutes=30))[0] is Action.NONE


def test_plan_never_changes_the_version() -> None:
    # the store bumps it when the transition is claimed
    assert plan(told, finding(OK), now=T0, cooldown=HOUR).state.version == told.version


def test_action_message_kinds() -> None:
    assert [a for a in Action if a.sends] == [Action.FIRE, Action.REPEAT, Action.RESOLVE]
    assert Action.RESOLVE.message_kind == "resolved"
