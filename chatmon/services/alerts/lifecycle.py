"""When a finding becomes a message: the per-rule state machine, as a pure function.

A rule's stored state says whether it is firing, since when, and when people were
last told. Each check, :func:`plan` turns (stored state, new finding) into an
action and the next state; the store then claims that transition atomically, so
however many workers evaluate the same finding only one of them acts on it.

- ok -> firing: a *firing* message, unless one went out less than the cooldown ago
  (then the episode is *suppressed*: recorded, nobody paged again for a flapping rule).
- still firing once the cooldown has passed since the last message: a *repeat* (or the
  first message of an episode that started suppressed).
- firing -> ok: a *resolved* message when people were told about this episode; a
  silent *clear* when they were not.
- not enough data: nothing changes.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum

from chatmon.services.alerts.rules import Finding, Verdict


@dataclass(frozen=True)
class RuleState:
    """What the database remembers of one rule between checks (aware UTC datetimes)."""

    firing: bool = False
    firing_since: datetime | None = None
    notified_at: datetime | None = None  # last firing/repeat message: the cooldown starts here
    episode_notified: bool = False  # people were told about the current firing episode
    version: int = 0  # bumped by every claimed transition (optimistic concurrency)


class Action(StrEnum):
    """What a check does about one rule."""

    FIRE = "fired"
    REPEAT = "repeated"
    SUPPRESS = "suppressed"
    RESOLVE = "resolved"
    CLEAR = "cleared"
    NONE = "none"

    @property
    def sends(self) -> bool:
        """Whether this action produces a message to the channels."""
        return self in (Action.FIRE, Action.REPEAT, Action.RESOLVE)

    @property
    def message_kind(self) -> str:
        """The notification kind stored and rendered: firing, repeat or resolved."""
        return {Action.FIRE: "firing", Action.REPEAT: "repeat", Action.RESOLVE: "resolved"}[self]


@dataclass(frozen=True)
class Plan:
    """The action to take and the state to store if this check wins the claim."""

    action: Action
    state: RuleState


def _cooled_down(state: RuleState, now: datetime, cooldown: timedelta) -> bool:
    return state.notified_at is None or now - state.notified_at >= cooldown


def plan(state: RuleState, finding: Finding, *, now: datetime, cooldown: timedelta) -> Plan:
    """The transition ``finding`` causes from ``state`` at ``now``."""
    if finding.verdict is Verdict.NOT_ENOUGH_DATA:
        return Plan(Action.NONE, state)
    if finding.verdict is Verdict.OFF:
        if state.firing:  # switched off while firing: forget it quietly
            return Plan(Action.CLEAR, _calm(state))
        return Plan(Action.NONE, state)
    if finding.firing:
        return _plan_firing(state, now, cooldown)
    if not state.firing:
        return Plan(Action.NONE, state)
    action = Action.RESOLVE if state.episode_notified else Action.CLEAR
    return Plan(action, _calm(state))


def _plan_firing(state: RuleState, now: datetime, cooldown: timedelta) -> Plan:
    told = replace(state, firing=True, notified_at=now, episode_notified=True)
    if not state.firing:
        started = replace(state, firing=True, firing_since=now, episode_notified=False)
        if _cooled_down(state, now, cooldown):
            return Plan(Action.FIRE, replace(told, firing_since=now))
        return Plan(Action.SUPPRESS, started)
    if not _cooled_down(state, now, cooldown):
        return Plan(Action.NONE, state)
    return Plan(Action.REPEAT if state.episode_notified else Action.FIRE, told)


def _calm(state: RuleState) -> RuleState:
    """Back to ok; ``notified_at`` stays so the cooldown outlives the episode."""
    return replace(state, firing=False, firing_since=None, episode_notified=False)
