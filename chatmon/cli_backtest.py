"""``python -m chatmon alerts backtest``: what the rules would have done, from the log.

Before changing a threshold, see what last week would have paged:
``alerts backtest --since 7d --set ALERT_ERROR_RATE_THRESHOLD=5``. Read-only: nothing is
written to the database and nothing is sent.
"""

from __future__ import annotations

import argparse
import re
import sys
from collections.abc import Iterable
from datetime import timedelta
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chatmon.settings import Settings


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


def add_backtest_action(actions: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]  # argparse's private generic
    """Registers ``backtest`` under ``alerts``."""
    parser = actions.add_parser(
        "backtest",
        help="replay the rules over the request log: what would have fired, when, how often",
    )
    parser.add_argument("--since", default="7d", help="how far back: 90m, 36h, 7d (max 90d)")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a proposed setting, e.g. ALERT_ERROR_RATE_THRESHOLD=5 (repeatable)",
    )
    parser.set_defaults(handler=_run_backtest)


def _routes(settings: Settings) -> dict[str, list[str]]:
    """Rule -> the configured channels its messages go to (``ALERT_ROUTES``)."""
    from chatmon.services.alert_routing import Routing
    from chatmon.services.alerts.channels import configured_channels
    from chatmon.services.alerts.channels_http import http_channels
    from chatmon.services.alerts.rules import Rule

    rules = [rule.value for rule in Rule]
    names = [c.name for c in [*configured_channels(settings), *http_channels(settings)]]
    routing = Routing.from_settings(settings, rules=rules)
    return {rule: routing.channels_for(rule, names) for rule in rules}


def _run_backtest(args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError
    from sqlmodel import Session

    from chatmon.db import get_engine
    from chatmon.services.alerts import backtest
    from chatmon.services.alerts.backtest_report import format_backtest
    from chatmon.services.alerts.inputs import now_utc
    from chatmon.settings import SettingsError, get_settings, load_settings

    try:
        span = parse_span(args.since)
        overrides = parse_overrides(args.overrides)
        current = get_settings()
        proposed = load_settings(**overrides) if overrides else current
    except (ValueError, SettingsError) as exc:
        print(f"chatmon: {exc}", file=sys.stderr)
        return 2
    end = now_utc()

    def run(settings: Settings) -> backtest.Backtest:
        limits, cooldown = backtest.limits_of(settings)
        with Session(get_engine()) as session:
            return backtest.replay(
                session=session,
                limits=limits,
                start=end - span,
                end=end,
                cooldown=cooldown,
                breaker_lookback=backtest.breaker_lookback(settings),
            )

    try:
        result = run(proposed)
        baseline = run(current) if overrides else None
    except SQLAlchemyError as exc:
        print(
            f"chatmon: database error ({type(exc).__name__}); run `python -m chatmon migrate`?",
            file=sys.stderr,
        )
        return 1
    if overrides:
        print("proposed: " + ", ".join(f"{k.upper()}={v}" for k, v in overrides.items()))
    print(format_backtest(result, baseline=baseline, routes=_routes(proposed)))
    return 0
