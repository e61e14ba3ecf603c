"""``python -m chatmon alerts check|test`` (and the actions of ``cli_silences`` and
``cli_backtest``, registered under ``alerts`` here)."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

from chatmon.cli_backtest import add_backtest_action
from chatmon.cli_silences import add_silence_actions

if TYPE_CHECKING:  # argparse's subparsers action is private, and generic only in typeshed
    from chatmon.services.alerts.engine import AlertEngine

    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]


def add_alerts(subparsers: Subparsers) -> None:
    """Registers ``alerts check``, ``alerts test``, the silences (``cli_silences``) and
    ``alerts backtest`` (``cli_backtest``)."""
    parser = subparsers.add_parser(
        "alerts", help="evaluate alert rules, or test the alert channels"
    )
    actions = parser.add_subparsers(dest="alerts_command", metavar="<action>", required=True)
    actions.add_parser(
        "check", help="evaluate every rule once, send what fires, print a table (exit 0)"
    ).set_defaults(handler=_run_alerts_check)
    actions.add_parser(
        "test", help="send a test message to every configured channel (exit 1 if one fails)"
    ).set_defaults(handler=_run_alerts_test)
    add_silence_actions(actions)
    add_backtest_action(actions)


def _alert_engine() -> AlertEngine:
    from chatmon.services.alerts import build_engine
    from chatmon.settings import get_settings

    return build_engine(get_settings())


def _run_alerts_check(_args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError

    from chatmon.services.alerts.report import format_check
    from chatmon.settings import SettingsError

    try:
        engine = _alert_engine()
        report = engine.check()
    except SettingsError as exc:
        print(f"chatmon: {exc}", file=sys.stderr)
        return 2
    except SQLAlchemyError as exc:
        print(
            f"chatmon: database error ({type(exc).__name__}); run `python -m chatmon migrate`?",
            file=sys.stderr,
        )
        return 1
    print(format_check(report, channels=engine.channel_names))
    return 0


def _run_alerts_test(_args: argparse.Namespace) -> int:
    from chatmon.services.alerts.report import NO_CHANNELS, format_test
    from chatmon.settings import SettingsError

    try:
        engine = _alert_engine()
    except SettingsError as exc:
        print(f"chatmon: {exc}", file=sys.stderr)
        return 2
    if not engine.channel_names:
        print(f"chatmon: {NO_CHANNELS}", file=sys.stderr)
        return 2
    outcomes = engine.send_test()
    print(format_test(outcomes))
    failed = [outcome.channel for outcome in outcomes if not outcome.ok]
    if failed:
        print(f"chatmon: the test message failed on: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0
