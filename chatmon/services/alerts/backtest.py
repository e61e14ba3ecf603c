"""Backtest: replay the alert rules over the stored request log, minute by minute.

Before changing ``ALERT_ERROR_RATE_THRESHOLD`` from 10 to 5, an on-call engineer wants to
know what last week would have looked like: which rules would have fired, when, for
how long, and how many messages would have gone out. This module answers from the
request log with the *same* rules (``catalog.evaluate``), the same error counting
(``inputs.judged_errors``), the same state machine with its cooldown (``lifecycle.plan``)
and the silences recorded in ``alert_silence``. Nothing is written and nothing is sent.

How it stays fast (a week of 1M requests in a few seconds, ``bench/backtest.py``): two
grouped queries read the log once as per-minute counts ``(status, category)``, cost
and latency histogram bins, plus the minutes with ``circuit_open`` refusals; the
replay then slides the windows over those minutes in Python, adding the minute that
enters and subtracting the one that leaves.

Reading the log is :mod:`chatmon.services.alerts.backtest_log`; the text report
:mod:`chatmon.services.alerts.backtest_report`; the command, ``chatmon.cli_backtest``.

What is approximated, and said in the report:

* checks run once a minute on minute boundaries (the live loop runs every
  ``ALERT_CHECK_INTERVAL_SECONDS`` at arbitrary offsets); the alert window is rounded
  to whole minutes;
* "no traffic" measures idleness from the end of the minute of the last request;
* a breaker counts as open when a request was refused with ``circuit_open`` within
  the lookback the live check uses (a process's in-memory breaker is not in the log);
* ``probe_failed`` and the budget rules are not replayed: probe results are not kept
  per run, and budgets have their own report (``/api/budget``, the digest).
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sqlmodel import Session

from chatmon.models import AlertSilence
from chatmon.observability.call_status import ERROR_STATUSES, CallStatus
from chatmon.services.alerts.backtest_log import (
    MINUTE,
    Minute,
    read_minutes,
    read_silences,
    silenced_at,
    watching_since,
)
from chatmon.services.alerts.catalog import evaluate
from chatmon.services.alerts.inputs import judged_errors, utc_midnight
from chatmon.services.alerts.lifecycle import Action, RuleState, plan
from chatmon.services.alerts.rules import (
    RULE_TITLES,
    Finding,
    Observations,
    Rule,
    Thresholds,
    Verdict,
)
from chatmon.services.histogram import percentiles
from chatmon.services.sql_time import from_epoch
from chatmon.services.stats import Histogram, check_window
from chatmon.settings import Settings

NOT_REPLAYED: dict[Rule, str] = {
    Rule.PROBE_FAILED: "probe results are not kept per run",
    Rule.BUDGET_DAILY: "budgets are reported by /api/budget and the digest",
    Rule.BUDGET_MONTHLY: "budgets are reported by /api/budget and the digest",
    Rule.BUDGET_FORECAST: "budgets are reported by /api/budget and the digest",
    Rule.DISSATISFACTION: "ratings arrive after the reply; the monitor's feedback shows them",
}


@dataclass(frozen=True)
class Episode:
    """One stretch during which a rule would have been firing."""

    rule: Rule
    fired_at: datetime
    resolved_at: datetime | None  # None: still firing when the replay ended
    peak: float | None  # the highest figure judged while firing
    messages: int  # firing, repeat and resolved messages that would have been sent
    silenced: int  # messages that a silence would have held back
    suppressed: bool  # started within the cooldown of the previous message: nobody paged

    def lasted(self, end: datetime) -> timedelta:
        return (self.resolved_at or end) - self.fired_at


@dataclass(frozen=True)
class RuleReplay:
    """One rule over the whole replay."""

    rule: Rule
    threshold: float | None
    episodes: tuple[Episode, ...]
    not_replayed: str = ""  # why, when the log cannot replay this rule
    off: bool = False  # not configured with these settings

    @property
    def title(self) -> str:
        return RULE_TITLES[self.rule]

    @property
    def messages(self) -> int:
        return sum(episode.messages for episode in self.episodes)

    @property
    def silenced(self) -> int:
        return sum(episode.silenced for episode in self.episodes)

    def firing_time(self, end: datetime) -> timedelta:
        return sum((episode.lasted(end) for episode in self.episodes), timedelta())


@dataclass(frozen=True)
class Backtest:
    """What the rules would have done over ``[start, end)``."""

    start: datetime
    end: datetime
    checks: int
    requests: int
    rules: tuple[RuleReplay, ...]

    def rule(self, rule: Rule) -> RuleReplay:
        return next(replay for replay in self.rules if replay.rule is rule)


# ----------------------------------------------------------------------------- replaying


class _Sliding:
    """Sums over the last ``width`` minutes, moved one minute at a time."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.counts: Counter[tuple[str, str]] = Counter()
        self.latency: Histogram = {}
        self.cost = 0.0
        self.fallbacks: Counter[str] = Counter()

    def add(self, minute: Minute | None, sign: int) -> None:
        if minute is None:
            return
        for key, count in minute.counts.items():
            self.counts[key] += sign * count
        for bin_index, count in minute.latency.items():
            left = self.latency.get(bin_index, 0) + sign * count
            if left:
                self.latency[bin_index] = left
            else:
                self.latency.pop(bin_index, None)
        self.cost += sign * minute.cost_usd
        for model, count in minute.fallbacks.items():
            self.fallbacks[model] += sign * count


def _window_figures(window: _Sliding) -> dict[str, object]:
    """The window fields of :class:`Observations`, counted as ``stats.window_summary``
    and ``inputs.gather`` count them."""
    requests = errors = 0
    by_category: Counter[str] = Counter()
    for (status, category), count in window.counts.items():
        if count <= 0:
            continue
        requests += count
        if status in ERROR_STATUSES:
            errors += count
            by_category[category or ("unknown" if status == CallStatus.ERROR else status)] += count
    counted = judged_errors(requests, errors, dict(by_category))
    (p95,) = percentiles(window.latency, 0.95)
    fallbacks = sorted(
        ((model, n) for model, n in window.fallbacks.items() if n > 0),
        key=lambda kv: (-kv[1], kv[0]),
    )
    return {
        "window_fallbacks": sum(n for _model, n in fallbacks),
        "fallback_by_model": tuple(fallbacks),
        "window_requests": counted.requests,
        "window_errors": counted.errors,
        "window_error_rate": counted.rate,
        "window_refused": counted.refused,
        "window_user_errors": counted.user_caused,
        "window_latency_p95": p95,
        "errors_by_category": dict(by_category),
    }


@dataclass
class _Open:
    fired_at: datetime
    peak: float | None
    messages: int
    silenced: int
    suppressed: bool


def _peak(old: float | None, new: float | None) -> float | None:
    if new is None:
        return old
    return new if old is None else max(old, new)


def replay(
    *,
    session: Session,
    limits: Thresholds,
    start: datetime,
    end: datetime,
    cooldown: timedelta,
    breaker_lookback: timedelta = timedelta(minutes=2),
) -> Backtest:
    """What the rules would have done over ``[start, end)``, checked once a minute.

    ``limits`` and ``cooldown`` are the current settings' or proposed ones
    (:func:`limits_of`). Every rule starts calm at ``start``; a rule still firing at
    ``end`` has an episode without ``resolved_at``.
    """
    start, end = check_window(start, end)
    first = math.ceil(start.timestamp() / MINUTE)  # the first check, on a minute boundary
    last = math.floor(end.timestamp() / MINUTE)
    window_minutes = max(1, round(limits.window_minutes))
    lookback = max(1, math.ceil(breaker_lookback.total_seconds() / MINUTE))
    read_from = min(
        utc_midnight(start), start - timedelta(hours=1), start - timedelta(minutes=window_minutes)
    )
    minutes = read_minutes(session=session, start=read_from, end=end)
    held = read_silences(session=session, start=start, end=end)
    watching = watching_since(session=session, start=start)
    limits = replace(limits, probe_failures=None, budget=None)  # not replayed (see above)

    window, hour = _Sliding(window_minutes), _Sliding(60)
    first_read = math.floor(read_from.timestamp() / MINUTE)
    last_request: int | None = None  # minute index
    for index in range(first_read, first):
        window.add(minutes.get(index), 1)
        hour.add(minutes.get(index), 1)
        window.add(minutes.get(index - window_minutes), -1)
        hour.add(minutes.get(index - 60), -1)
        if index in minutes and minutes[index].requests:
            last_request = index
    day, today = -1, 0.0
    states = {rule: RuleState() for rule in Rule}
    open_: dict[Rule, _Open] = {}
    done: dict[Rule, list[Episode]] = {rule: [] for rule in Rule}
    verdicts: dict[Rule, Verdict] = {}
    thresholds: dict[Rule, float | None] = {}
    for check in range(first, last + 1):
        # the check at minute ``check`` sees every minute before it
        entering = minutes.get(check - 1)
        if check > first:
            window.add(entering, 1)
            hour.add(entering, 1)
            window.add(minutes.get(check - 1 - window_minutes), -1)
            hour.add(minutes.get(check - 1 - 60), -1)
            if entering is not None and entering.requests:
                last_request = check - 1
        now = from_epoch(check * MINUTE)
        if now.toordinal() != day:  # a new UTC day: cost_today restarts at midnight
            day = now.toordinal()
            midnight = math.floor(utc_midnight(now).timestamp() / MINUTE)
            today = sum(minutes[i].cost_usd for i in range(midnight, check) if i in minutes)
        elif check > first and entering is not None:
            today += entering.cost_usd
        refusing: set[str] = set()
        for i in range(check - lookback, check):
            if i in minutes:
                refusing |= minutes[i].refusing
        obs = Observations(
            now=now,
            cost_last_hour=max(hour.cost, 0.0),
            cost_today=today,
            open_breakers=tuple(sorted(refusing)),
            last_request_at=None
            if last_request is None
            else from_epoch((last_request + 1) * MINUTE),
            watching_since=watching,
            **_window_figures(window),  # type: ignore[arg-type]
        )
        for finding in evaluate(obs, limits):
            _step(finding, now, cooldown, states, open_, done, held)
            verdicts[finding.rule] = finding.verdict
            if finding.threshold is not None:
                thresholds[finding.rule] = finding.threshold
    end_at = from_epoch(last * MINUTE) if last >= first else start
    lo, hi = math.floor(start.timestamp() / MINUTE), math.ceil(end.timestamp() / MINUTE)
    requests = sum(m.requests for i, m in minutes.items() if lo <= i < hi)
    replays = []
    for rule in Rule:
        episodes = list(done[rule])
        if rule in open_:
            o = open_[rule]
            episodes.append(
                Episode(rule, o.fired_at, None, o.peak, o.messages, o.silenced, o.suppressed)
            )
        replays.append(
            RuleReplay(
                rule=rule,
                threshold=thresholds.get(rule),
                episodes=tuple(episodes),
                not_replayed=NOT_REPLAYED.get(rule, ""),
                off=verdicts.get(rule) is Verdict.OFF and rule not in NOT_REPLAYED,
            )
        )
    return Backtest(
        start=start,
        end=end_at,
        checks=max(last - first + 1, 0),
        requests=requests,
        rules=tuple(replays),
    )


def _step(
    finding: Finding,
    now: datetime,
    cooldown: timedelta,
    states: dict[Rule, RuleState],
    open_: dict[Rule, _Open],
    done: dict[Rule, list[Episode]],
    held: list[AlertSilence],
) -> None:
    rule = finding.rule
    step = plan(states[rule], finding, now=now, cooldown=cooldown)
    states[rule] = step.state
    action = step.action
    if action is Action.NONE:
        if rule in open_ and finding.firing:
            open_[rule].peak = _peak(open_[rule].peak, finding.value)
        return
    silenced = action.sends and silenced_at(held, rule.value, now)
    if action in (Action.FIRE, Action.SUPPRESS) and rule not in open_:
        open_[rule] = _Open(now, finding.value, 0, 0, action is Action.SUPPRESS)
    current = open_.get(rule)
    if current is None:  # a clear or resolve of nothing: cannot happen from a calm start
        return
    if action.sends:
        if silenced:
            current.silenced += 1
        else:
            current.messages += 1
    if action in (Action.RESOLVE, Action.CLEAR):
        done[rule].append(
            Episode(
                rule,
                current.fired_at,
                now,
                current.peak,
                current.messages,
                current.silenced,
                current.suppressed,
            )
        )
        del open_[rule]
    elif finding.firing:
        current.peak = _peak(current.peak, finding.value)


# ----------------------------------------------------------------------------- settings


def limits_of(settings: Settings) -> tuple[Thresholds, timedelta]:
    """The thresholds and cooldown of a :class:`chatmon.settings.Settings`."""
    return Thresholds.from_settings(settings), timedelta(hours=settings.alert_cooldown_hours)


def breaker_lookback(settings: Settings) -> timedelta:
    """How recent a ``circuit_open`` refusal counts, as ``AlertEngine.breaker_lookback``."""
    return timedelta(seconds=max(2 * settings.alert_check_interval_seconds, 60))
