"""The budget alert rules: pure functions of the budget statuses gathered for a check.

* ``budget_daily`` / ``budget_monthly`` fire when the period's spend reaches a
  ``BUDGET_WARN_PERCENT`` level not reported yet this period (the finding's threshold
  is that level in USD, which the notification keeps: ``inputs`` reads the highest one
  sent since the period began). A level already told holds (no state change, so no
  repeats); a higher level speaks again, as a repeat once ``ALERT_COOLDOWN_HOURS`` has
  passed since the last message. They resolve when a new period starts. Delivery,
  cooldown and resolved messages are the alert machinery's.
* ``budget_forecast`` fires when, at the current pace, a limit will be reached within
  ``BUDGET_FORECAST_HORIZON_MINUTES`` *before* the spend crosses it
  (``chatmon.services.forecast``), naming the last hour's top drivers. Without
  enough data it says so and changes no alert state.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from chatmon.services.alerts.rules import (
    Finding,
    Observations,
    Rule,
    Thresholds,
    Verdict,
    format_usd,
)
from chatmon.services.errors import format_duration


def _hhmm(moment: datetime, timezone: str) -> str:
    from zoneinfo import ZoneInfo

    return moment.astimezone(ZoneInfo(timezone)).strftime("%H:%M") + f" {timezone}"


def _period(obs: Observations, period: str) -> Any:
    return next((s for s in obs.budget if s.period == period), None)


def _level_rule(rule: Rule, period: str) -> Callable[[Observations, Thresholds], Finding]:
    def check(obs: Observations, limits: Thresholds) -> Finding:
        status = _period(obs, period)
        if status is None or limits.budget is None:
            return Finding(rule, Verdict.OFF, None, None, f"off (no {period} budget set)")
        spent, limit = format_usd(status.spent_usd), format_usd(status.limit_usd)
        head = f"{status.percent:.0f} % of the {period} budget of {limit} spent ({spent})"
        if status.level is None:
            return Finding(rule, Verdict.OK, status.spent_usd, status.limit_usd, head)
        action = limits.budget.action
        at_limit = {
            "warn": "requests keep being served",
            "fallback": f"replies come from {limits.budget.fallback_model}",
            "refuse": "the chat refuses new requests",
        }[action]
        tail = f"; at 100 % {at_limit}" if not status.exceeded else f"; limit reached: {at_limit}"
        resets = _hhmm(status.resets_at, limits.budget.timezone)
        summary = f"{head}, past the {status.level:g} % warning level{tail}; resets {resets}"
        level_usd = status.limit_usd * status.level / 100
        if obs.budget_notified.get(period, 0.0) >= level_usd - 1e-9:
            # told already this period: no repeat (a new level or period speaks again)
            summary += f" (the {status.level:g} % level was reported this period)"
            return Finding(rule, Verdict.NOT_ENOUGH_DATA, status.spent_usd, level_usd, summary)
        return Finding(rule, Verdict.FIRING, status.spent_usd, level_usd, summary)

    check.__name__ = rule.value
    return check


budget_daily = _level_rule(Rule.BUDGET_DAILY, "daily")
budget_monthly = _level_rule(Rule.BUDGET_MONTHLY, "monthly")


def budget_forecast(obs: Observations, limits: Thresholds) -> Finding:
    """The first period whose limit the current pace reaches within the horizon."""
    rule = Rule.BUDGET_FORECAST
    if not obs.budget or limits.budget is None:
        return Finding(rule, Verdict.OFF, None, None, "off (no budget set)")
    horizon = timedelta(minutes=limits.budget.horizon_minutes)
    spoke = [s for s in obs.budget if s.method != "not_enough_data"]
    if not spoke:
        return Finding(
            rule, Verdict.NOT_ENOUGH_DATA, None, None, "not enough spend yet to forecast"
        )
    for status in spoke:
        reached = status.reached_at
        if reached is None or status.exceeded or reached - obs.now > horizon:
            continue
        drivers = f"; top drivers: {obs.budget_drivers}" if obs.budget_drivers else ""
        summary = (
            f"at the current pace the {status.period} budget of "
            f"{format_usd(status.limit_usd)} is reached at "
            f"{_hhmm(reached, limits.budget.timezone)} "
            f"(in {format_duration((reached - obs.now).total_seconds())}); "
            f"{format_usd(status.spent_usd)} spent so far{drivers}"
        )
        return Finding(rule, Verdict.FIRING, status.forecast_usd, status.limit_usd, summary)
    first = spoke[0]
    forecast = "n/a" if first.forecast_usd is None else format_usd(first.forecast_usd)
    summary = (
        f"{first.period} forecast {forecast} against {format_usd(first.limit_usd)}; no limit "
        f"reached within {format_duration(horizon.total_seconds())} at the current pace"
    )
    return Finding(rule, Verdict.OK, first.forecast_usd, first.limit_usd, summary)


RULES: tuple[Callable[[Observations, Thresholds], Finding], ...] = (
    budget_daily,
    budget_monthly,
    budget_forecast,
)
