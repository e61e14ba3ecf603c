"""The alert rules: pure functions from one check's observations to one finding per rule.

Nothing here touches the database, the clock or the network, so every threshold is
unit-tested table-driven (``tests/units/services/alerts/test_rules.py``). A rule is
*firing* when its figure is strictly above its threshold. The error-rate and latency
rules judge nothing below ``min_requests`` requests in the window: a verdict of
``not_enough_data`` changes no alert state (one failed request out of two is not an
incident, and a quiet night does not "resolve" one either).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any

from chatmon.services.budget import BudgetConfig


class Rule(StrEnum):
    """Every rule, by its stable name (a Prometheus label value and a database key)."""

    ERROR_RATE = "error_rate"
    LATENCY_P95 = "latency_p95"
    COST_HOURLY = "cost_hourly"
    COST_DAILY = "cost_daily"
    BREAKER_OPEN = "breaker_open"
    NO_TRAFFIC = "no_traffic"
    PROBE_FAILED = "probe_failed"
    BUDGET_DAILY = "budget_daily"  # chatmon.services.alerts.budget_rules
    BUDGET_MONTHLY = "budget_monthly"
    BUDGET_FORECAST = "budget_forecast"
    DISSATISFACTION = "dissatisfaction"  # chatmon.services.alerts.feedback_rules
    FALLBACK_USED = "fallback_used"  # chatmon.services.alerts.fallback_rules


RULE_TITLES: dict[Rule, str] = {
    Rule.ERROR_RATE: "Error rate",
    Rule.LATENCY_P95: "p95 latency",
    Rule.COST_HOURLY: "Cost in the last hour",
    Rule.COST_DAILY: "Cost today (UTC)",
    Rule.BREAKER_OPEN: "Circuit breaker open",
    Rule.NO_TRAFFIC: "No traffic",
    Rule.PROBE_FAILED: "Synthetic probe failing",
    Rule.BUDGET_DAILY: "Daily budget",
    Rule.BUDGET_MONTHLY: "Monthly budget",
    Rule.BUDGET_FORECAST: "Budget forecast",
    Rule.DISSATISFACTION: "Dissatisfaction",
    Rule.FALLBACK_USED: "Fallback model answering",
}


class Verdict(StrEnum):
    """What a rule concluded this check."""

    FIRING = "firing"
    OK = "ok"
    NOT_ENOUGH_DATA = "not_enough_data"  # no state change either way
    OFF = "off"  # the rule is not configured


@dataclass(frozen=True)
class Thresholds:
    """The configured limits (``ALERT_*`` and ``DAILY_COST_THRESHOLD``)."""

    error_rate_percent: float = 10.0
    latency_p95_seconds: float = 5.0
    cost_hourly_usd: float = 1.0
    cost_daily_usd: float = 50.0
    min_requests: int = 10
    window_minutes: float = 15.0
    no_traffic_minutes: float | None = None
    probe_failures: int | None = None  # None: the probe is off (PROBE_INTERVAL_SECONDS)
    budget: Any = None  # chatmon.services.budget.BudgetConfig (None: no budget rules)
    feedback_window_hours: float = 24.0
    dissatisfaction_percent: float = 30.0  # Wilson lower bound of the thumbs-down share
    fallback_percent: float | None = None  # None: no LLM_FALLBACK_MODELS, the rule is off

    @classmethod
    def from_settings(cls, settings: Any) -> Thresholds:
        """The thresholds of a :class:`chatmon.settings.Settings`."""
        return cls(
            error_rate_percent=settings.alert_error_rate_threshold,
            latency_p95_seconds=settings.alert_latency_p95_threshold,
            cost_hourly_usd=settings.alert_cost_threshold,
            cost_daily_usd=settings.daily_budget,  # DAILY_BUDGET_USD, else DAILY_COST_THRESHOLD
            min_requests=settings.alert_min_requests,
            window_minutes=settings.alert_window_minutes,
            no_traffic_minutes=settings.alert_no_traffic_minutes,
            probe_failures=(
                settings.probe_failures
                if getattr(settings, "probe_interval_seconds", None)
                else None
            ),
            budget=BudgetConfig.from_settings(settings),
            feedback_window_hours=settings.alert_feedback_window_hours,
            dissatisfaction_percent=settings.alert_dissatisfaction_threshold,
            fallback_percent=(
                settings.alert_fallback_threshold
                if getattr(settings, "fallback_models", None)
                else None
            ),
        )


@dataclass(frozen=True)
class Observations:
    """Everything the rules look at, gathered once per check (see ``inputs.py``).

    ``window_*`` cover the last ``Thresholds.window_minutes``; ``watching_since`` is
    when alerting started on this database, so "no traffic" on a fresh install
    counts from then rather than from the beginning of time.
    """

    now: datetime
    window_requests: int = 0
    window_errors: int = 0
    window_error_rate: float = 0.0  # percent, 0-100
    window_latency_p95: float | None = None  # seconds
    cost_last_hour: float = 0.0
    cost_today: float = 0.0
    open_breakers: tuple[str, ...] = ()
    last_request_at: datetime | None = None
    watching_since: datetime | None = None
    errors_by_category: dict[str, int] = field(default_factory=dict)
    probe_failures: int = 0  # consecutive failed synthetic probes
    window_refused: int = 0  # chatmon's own refusals, left out of the error rate
    window_user_errors: int = 0  # errors the request caused, not counted as failures
    probe_error: str | None = None  # the latest one's error category
    budget: tuple[Any, ...] = ()  # chatmon.services.budget.PeriodStatus, one per period
    budget_drivers: str = ""  # "conversation …, model …": the last hour's top spenders
    budget_notified: dict[str, float] = field(default_factory=dict)  # period -> USD level told
    # feedback_rules.VersionFeedback per prompt version, last feedback_window_hours
    feedback_by_version: tuple[Any, ...] = ()
    window_fallbacks: int = 0  # requests of the window that went to a fallback model
    fallback_by_model: tuple[tuple[str, int], ...] = ()  # (fallback model, requests), most first


@dataclass(frozen=True)
class Finding:
    """One rule's conclusion: its verdict, the figure it judged and the limit."""

    rule: Rule
    verdict: Verdict
    value: float | None
    threshold: float | None
    summary: str  # one line a person can act on, figures included

    @property
    def firing(self) -> bool:
        return self.verdict is Verdict.FIRING

    @property
    def title(self) -> str:
        return RULE_TITLES[self.rule]


# ----------------------------------------------------------------------------- formatting


def format_minutes(minutes: float) -> str:
    """``15 min``, ``1.5 min``, ``2 h`` — how windows read in messages."""
    if minutes >= 120 and minutes % 60 == 0:
        return f"{minutes / 60:g} h"
    return f"{minutes:g} min"


def format_usd(amount: float) -> str:
    """Dollars with cents, or four decimals for amounts under a dollar."""
    return f"${amount:,.2f}" if amount >= 1 or amount == 0 else f"${amount:.4f}"


def _above(value: float, threshold: float) -> Verdict:
    return Verdict.FIRING if value > threshold else Verdict.OK


# ----------------------------------------------------------------------------- the rules


def error_rate(obs: Observations, limits: Thresholds) -> Finding:
    """Errors over the window as a percentage, judged from ``min_requests`` requests on."""
    window = format_minutes(limits.window_minutes)
    if obs.window_requests < limits.min_requests:
        return Finding(
            Rule.ERROR_RATE,
            Verdict.NOT_ENOUGH_DATA,
            None,
            limits.error_rate_percent,
            f"{obs.window_requests} requests in the last {window}, "
            f"fewer than the {limits.min_requests} needed to judge",
        )
    rate = obs.window_error_rate
    return Finding(
        Rule.ERROR_RATE,
        _above(rate, limits.error_rate_percent),
        rate,
        limits.error_rate_percent,
        f"{rate:.1f} % of requests failed in the last {window} "
        f"({obs.window_errors} of {obs.window_requests}); "
        f"threshold {limits.error_rate_percent:g} %{_not_counted(obs)}",
    )


def _not_counted(obs: Observations) -> str:
    parts = []
    if obs.window_refused:
        parts.append(f"{obs.window_refused} refused by chatmon's own limits")
    if obs.window_user_errors:
        parts.append(f"{obs.window_user_errors} caused by the request itself")
    return f" (not counted: {', '.join(parts)})" if parts else ""


def latency_p95(obs: Observations, limits: Thresholds) -> Finding:
    """The window's p95 latency, judged from ``min_requests`` requests on."""
    window = format_minutes(limits.window_minutes)
    p95 = obs.window_latency_p95
    if obs.window_requests < limits.min_requests or p95 is None:
        return Finding(
            Rule.LATENCY_P95,
            Verdict.NOT_ENOUGH_DATA,
            None,
            limits.latency_p95_seconds,
            f"{obs.window_requests} requests in the last {window}, "
            f"fewer than the {limits.min_requests} needed to judge",
        )
    return Finding(
        Rule.LATENCY_P95,
        _above(p95, limits.latency_p95_seconds),
        p95,
        limits.latency_p95_seconds,
        f"p95 latency {p95:.2f} s over the last {window} ({obs.window_requests} requests); "
        f"threshold {limits.latency_p95_seconds:g} s",
    )


def cost_hourly(obs: Observations, limits: Thresholds) -> Finding:
    """Spend in the last 60 minutes."""
    return Finding(
        Rule.COST_HOURLY,
        _above(obs.cost_last_hour, limits.cost_hourly_usd),
        obs.cost_last_hour,
        limits.cost_hourly_usd,
        f"{format_usd(obs.cost_last_hour)} spent in the last hour; "
        f"threshold {format_usd(limits.cost_hourly_usd)}",
    )


def cost_daily(obs: Observations, limits: Thresholds) -> Finding:
    """Spend since midnight UTC."""
    return Finding(
        Rule.COST_DAILY,
        _above(obs.cost_today, limits.cost_daily_usd),
        obs.cost_today,
        limits.cost_daily_usd,
        f"{format_usd(obs.cost_today)} spent since 00:00 UTC; "
        f"threshold {format_usd(limits.cost_daily_usd)}",
    )


def breaker_open(obs: Observations, _limits: Thresholds) -> Finding:
    """Any model whose circuit breaker is open: the chat is refusing requests."""
    models = sorted(set(obs.open_breakers))
    if not models:
        return Finding(Rule.BREAKER_OPEN, Verdict.OK, 0, None, "every circuit breaker is closed")
    return Finding(
        Rule.BREAKER_OPEN,
        Verdict.FIRING,
        len(models),
        None,
        f"circuit breaker open for {', '.join(models)}: the chat refuses requests "
        "to this model until a trial request succeeds",
    )


def no_traffic(obs: Observations, limits: Thresholds) -> Finding:
    """No request for more than ``no_traffic_minutes`` (off when that is unset)."""
    limit = limits.no_traffic_minutes
    if limit is None:
        summary = "off (ALERT_NO_TRAFFIC_MINUTES unset)"
        return Finding(Rule.NO_TRAFFIC, Verdict.OFF, None, None, summary)
    since = obs.last_request_at or obs.watching_since
    if since is None:
        return Finding(Rule.NO_TRAFFIC, Verdict.NOT_ENOUGH_DATA, None, limit, "no request yet")
    idle = max((obs.now - since).total_seconds() / 60.0, 0.0)
    what = "no request" if obs.last_request_at is None else "no new request"
    return Finding(
        Rule.NO_TRAFFIC,
        _above(idle, limit),
        round(idle, 2),
        limit,
        f"{what} for {idle:.1f} min; threshold {format_minutes(limit)}",
    )


# What a failed probe's category most often means, for whoever is paged.
_PROBE_HINTS = {
    "auth": "the provider rejects the key (revoked or rotated? check LLM_API_KEY)",
    "connection": "the provider cannot be reached (LLM_API_BASE moved? network?)",
    "bad_request": "the provider refuses the request (LLM_MODEL renamed?)",
    "timeout": "the provider does not answer in REQUEST_TIMEOUT",
    "circuit_open": "the circuit breaker is open: the provider has been failing",
}


def probe_failed(obs: Observations, limits: Thresholds) -> Finding:
    """``probe_failures`` synthetic probes in a row failed: users are failing too, or
    will be at their next message (off unless PROBE_INTERVAL_SECONDS is set)."""
    limit = limits.probe_failures
    if limit is None:
        summary = "off (PROBE_INTERVAL_SECONDS unset)"
        return Finding(Rule.PROBE_FAILED, Verdict.OFF, None, None, summary)
    failures = obs.probe_failures
    if failures < limit:
        what = "the last probe succeeded" if failures == 0 else f"{failures} probe(s) failed"
        return Finding(Rule.PROBE_FAILED, Verdict.OK, failures, limit, f"{what}; threshold {limit}")
    category = obs.probe_error or "unknown"
    hint = _PROBE_HINTS.get(category, "see the provider's status and chatmon's log")
    return Finding(
        Rule.PROBE_FAILED,
        Verdict.FIRING,
        failures,
        limit,
        f"{failures} synthetic probes in a row failed with {category}: {hint}",
    )


RuleCheck = Callable[[Observations, Thresholds], Finding]

# The request-log rules; the budget rules are in ``budget_rules``, and ``catalog`` holds
# them all in the order of :class:`Rule`.
CORE_RULES: tuple[RuleCheck, ...] = (
    error_rate,
    latency_p95,
    cost_hourly,
    cost_daily,
    breaker_open,
    no_traffic,
    probe_failed,
)
