"""``python -m chatmon alerts backtest``: what the rules would have done, from the log.

Before changing a threshold, see what last week would have paged:
``alerts backtest --since 7d --set ALERT_ERROR_RATE_THRESHOLD=5``. Read-only: nothing is
written to the database and nothing is sent.
"""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chatmon.settings import Settings


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
    from chatmon.services.alerts.inputs import now_utc
    from chatmon.settings import SettingsError, get_settings, load_settings

    try:
        span = backtest.parse_span(args.since)
        overrides = backtest.parse_overrides(args.overrides)
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
    print(backtest.format_backtest(result, baseline=baseline, routes=_routes(proposed)))
    return 0
