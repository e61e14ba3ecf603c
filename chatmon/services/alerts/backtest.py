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
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlmodel import Session, col

from chatmon.models import AlertRuleState, AlertSilence, LLMRequest
from chatmon.observability.call_status import ERROR_STATUSES, CallStatus
from chatmon.services.alerts.catalog import evaluate
from chatmon.services.alerts.inputs import CIRCUIT_OPEN, judged_errors, utc_midnight
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
from chatmon.services.sql_time import bucket_of, from_epoch, to_utc
from chatmon.services.stats import Histogram, check_window
from chatmon.settings import Settings

MINUTE = 60
NOT_REPLAYED: dict[Rule, str] = {
    Rule.PROBE_FAILED: "probe results are not kept per run",
    Rule.BUDGET_DAILY: "budgets are reported by /api/budget and the digest",
    Rule.BUDGET_MONTHLY: "budgets are reported by /api/budget and the digest",
    Rule.BUDGET_FORECAST: "budgets are reported by /api/budget and the digest",
    Rule.DISSATISFACTION: "ratings arrive after the reply; the monitor's feedback shows them",
}


@dataclass
class _Minute:
    """One minute of the request log."""

    counts: Counter[tuple[str, str]] = field(default_factory=Counter)  # (status, category)
    cost_usd: float = 0.0
    latency: Histogram = field(default_factory=dict)
    refusing: frozenset[str] = frozenset()  # models refused with circuit_open
    fallbacks: Counter[str] = field(default_factory=Counter)  # fallback model -> requests

    @property
    def requests(self) -> int:
        return sum(self.counts.values())


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


# ----------------------------------------------------------------------------- reading


def read_minutes(*, session: Session, start: datetime, end: datetime) -> dict[int, _Minute]:
    """The log of ``[start, end)`` per epoch minute, in grouped scans of the
    ``started_at`` index (totals, latency bins, ``circuit_open`` refusals, fallbacks)."""
    start, end = check_window(start, end)
    r = LLMRequest
    minute = bucket_of(r.started_at, MINUTE).label("minute")
    in_window = (
        col(r.started_at) >= start,
        col(r.started_at) < end,
        col(r.synthetic).is_(False),  # the probe has its own rule, as live
    )
    category = func.coalesce(r.error_category, "")
    minutes: dict[int, _Minute] = {}

    def at(index: int) -> _Minute:
        found = minutes.get(index)
        if found is None:
            found = minutes[index] = _Minute()
        return found

    totals = (
        select(minute, col(r.status), category, func.count(), func.sum(r.cost_usd))
        .where(*in_window)
        .group_by(minute, col(r.status), category)
    )
    for index, status, cat, count, cost in _rows(session, totals):
        one = at(int(index))
        one.counts[(status, cat or "")] += int(count)
        one.cost_usd += float(cost or 0.0)
    bins = (
        select(minute, col(r.latency_bin), func.count())
        .where(*in_window, col(r.latency_bin).is_not(None))
        .group_by(minute, col(r.latency_bin))
    )
    for index, bin_index, count in _rows(session, bins):
        hist = at(int(index)).latency
        hist[int(bin_index)] = hist.get(int(bin_index), 0) + int(count)
    refused = (
        select(minute, col(r.model))
        .where(*in_window, col(r.error_category) == CIRCUIT_OPEN)
        .group_by(minute, col(r.model))
    )
    for index, model in _rows(session, refused):
        one = at(int(index))
        one.refusing = one.refusing | {model}
    fallbacks = (
        select(minute, col(r.model), func.count())
        .where(*in_window, col(r.fallback).is_(True))
        .group_by(minute, col(r.model))
    )
    for index, model, count in _rows(session, fallbacks):
        at(int(index)).fallbacks[str(model)] += int(count)
    return minutes


def _rows(session: Session, query: Any) -> list[tuple[Any, ...]]:
    return [tuple(row) for row in session.execute(query)]


def watching_since(*, session: Session, start: datetime) -> datetime:
    """When "no traffic" starts counting in the replay: its start, or later if chatmon was
    not watching yet (the first alert check, else the first request, as the live rule)."""
    first = [
        session.execute(select(func.min(AlertRuleState.created_at))).scalar_one_or_none(),
        session.execute(
            select(func.min(LLMRequest.started_at)).where(col(LLMRequest.synthetic).is_(False))
        ).scalar_one_or_none(),
    ]
    known = [to_utc(moment) for moment in first if moment is not None]
    return max(start, min(known)) if known else start


def read_silences(*, session: Session, start: datetime, end: datetime) -> list[AlertSilence]:
    """Silences in force at some moment of ``[start, end)``."""
    rows = session.execute(
        select(AlertSilence).where(
            col(AlertSilence.created_at) < end, col(AlertSilence.until) > start
        )
    ).scalars()
    return list(rows)


def _silenced(silences: Iterable[AlertSilence], rule: str, now: datetime) -> bool:
    for silence in silences:
        if silence.rule != rule or not to_utc(silence.created_at) <= now < to_utc(silence.until):
            continue
        if silence.cleared_at is None or now < to_utc(silence.cleared_at):
            return True
    return False


# ----------------------------------------------------------------------------- replaying


class _Sliding:
    """Sums over the last ``width`` minutes, moved one minute at a time."""

    def __init__(self, width: int) -> None:
        self.width = width
        self.counts: Counter[tuple[str, str]] = Counter()
        self.latency: Histogram = {}
        self.cost = 0.0
        self.fallbacks: Counter[str] = Counter()

    def add(self, minute: _Minute | None, sign: int) -> None:
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
    silenced = action.sends and _silenced(held, rule.value, now)
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


# The settings a backtest may propose (``--set NAME=VALUE``): the ones the replayed rules
# and the cooldown read.
PROPOSABLE = (
    "ALERT_ERROR_RATE_THRESHOLD",
    "ALERT_LATENCY_P95_THRESHOLD",
    "ALERT_COST_THRESHOLD",
    "DAILY_COST_THRESHOLD",
    "DAILY_BUDGET_USD",
    "ALERT_MIN_REQUESTS",
    "ALERT_WINDOW_MINUTES",
    "ALERT_NO_TRAFFIC_MINUTES",
    "ALERT_FALLBACK_THRESHOLD",
    "ALERT_COOLDOWN_HOURS",
    "ALERT_CHECK_INTERVAL_SECONDS",
)
MAX_SPAN = timedelta(days=90)
_SPAN = re.compile(r"(\d{1,6})([mhd])")
_SPAN_UNITS = {"m": "minutes", "h": "hours", "d": "days"}


def parse_span(text: str) -> timedelta:
    """``7d``, ``36h``, ``90m`` or sums such as ``1d12h``; at most 90 days.
    Raises ValueError saying what is accepted."""
    compact = text.strip().lower().replace(" ", "")
    parts = _SPAN.findall(compact)
    if not compact or "".join(n + u for n, u in parts) != compact:
        raise ValueError(f"{text!r} is not a span such as 90m, 36h or 7d")
    total = sum((timedelta(**{_SPAN_UNITS[u]: int(n)}) for n, u in parts), timedelta())
    if not timedelta(minutes=1) <= total <= MAX_SPAN:
        raise ValueError("a backtest covers at least 1 minute and at most 90 days")
    return total


def parse_overrides(pairs: Iterable[str]) -> dict[str, str]:
    """``NAME=VALUE`` pairs as settings overrides (field names); raises ValueError naming
    a malformed pair or a setting the backtest does not replay."""
    overrides: dict[str, str] = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        name = name.strip().upper()
        if not sep or not value.strip():
            raise ValueError(f"--set {pair!r}: expected NAME=VALUE")
        if name not in PROPOSABLE:
            raise ValueError(
                f"--set {name}: not a setting the backtest replays ({', '.join(PROPOSABLE)})"
            )
        overrides[name.lower()] = value.strip()
    return overrides


def breaker_lookback(settings: Settings) -> timedelta:
    """How recent a ``circuit_open`` refusal counts, as ``AlertEngine.breaker_lookback``."""
    return timedelta(seconds=max(2 * settings.alert_check_interval_seconds, 60))


def _time(moment: datetime | None) -> str:
    return "still firing" if moment is None else moment.strftime("%Y-%m-%d %H:%M")


def format_backtest(
    result: Backtest,
    *,
    baseline: Backtest | None = None,
    routes: dict[str, list[str]] | None = None,
) -> str:
    """The per-rule table, then every episode; with ``baseline`` (the current settings,
    when proposing others) each rule's messages under both; with ``routes`` (rule ->
    the channels ``ALERT_ROUTES`` sends it to) where the messages would have gone."""
    from chatmon.services.alerts.messages import format_threshold, format_value
    from chatmon.services.errors import format_duration

    span = format_duration((result.end - result.start).total_seconds())
    lines = [
        f"backtest {result.start:%Y-%m-%d %H:%M} - {result.end:%Y-%m-%d %H:%M} UTC ({span}): "
        f"{result.requests} requests, {result.checks} checks (one a minute)",
        "",
    ]
    header = ["rule", "threshold", "fired", "firing for", "messages", "silenced"]
    if baseline is not None:
        header.append("messages now")
    if routes is not None:
        header.append("to")
    rows = []
    for replay_ in result.rules:
        if replay_.not_replayed:
            cells = [replay_.rule.value, "-", "not replayed", "", "", ""]
        elif replay_.off:
            cells = [replay_.rule.value, "off", "", "", "", ""]
        else:
            cells = [
                replay_.rule.value,
                format_threshold(replay_.rule, replay_.threshold),
                f"{len(replay_.episodes)}×",
                format_duration(replay_.firing_time(result.end).total_seconds())
                if replay_.episodes
                else "",
                str(replay_.messages),
                str(replay_.silenced),
            ]
        if baseline is not None:
            cells.append("" if replay_.not_replayed else str(baseline.rule(replay_.rule).messages))
        if routes is not None:
            cells.append(", ".join(routes.get(replay_.rule.value, [])) or "no channel")
        rows.append(cells)
    lines += _table(header, rows)
    episodes = sorted(
        (e for r in result.rules for e in r.episodes), key=lambda e: (e.fired_at, e.rule.value)
    )
    lines.append("")
    if not episodes:
        lines.append("nothing would have fired")
    else:
        lines += _table(
            ["rule", "fired", "resolved", "lasted", "peak", "messages", "note"],
            [
                [
                    e.rule.value,
                    _time(e.fired_at),
                    _time(e.resolved_at),
                    format_duration(e.lasted(result.end).total_seconds()),
                    format_value(e.rule, e.peak),
                    str(e.messages),
                    ("within the cooldown: nobody paged" if e.suppressed else "")
                    + (f"{e.silenced} held by a silence" if e.silenced else ""),
                ]
                for e in episodes
            ],
        )
    skipped = [f"{r.rule.value} ({r.not_replayed})" for r in result.rules if r.not_replayed]
    lines += ["", "not replayed: " + "; ".join(skipped)] if skipped else []
    return "\n".join(lines)


def _table(header: list[str], rows: list[list[str]]) -> list[str]:
    widths = [max(len(cell) for cell in column) for column in zip(header, *rows, strict=True)]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()

    return [line(header), line(["-" * w for w in widths]), *(line(row) for row in rows)]
