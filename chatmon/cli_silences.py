"""``python -m chatmon alerts silence|unsilence|silences``: silences from a shell.

For the moment an on-call engineer knows a rule will fire and wants the pages to stop
(planned work, a known provider outage), without a browser: ``alerts silence error_rate
--for 2h --reason "provider migration"``. The silence is in the database, so every
worker and instance honours it from their next check.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlmodel import Session

import argparse
import getpass
import sys
from datetime import UTC, datetime


def add_silence_actions(actions: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    """Registers ``silence``, ``unsilence`` and ``silences`` under ``alerts``."""
    silence = actions.add_parser(
        "silence", help="hold a rule's messages back for a while (recorded, not sent)"
    )
    silence.add_argument("rule", help="the rule, e.g. error_rate")
    silence.add_argument("--for", dest="duration", required=True, help="30m, 2h, 1d (max 30d)")
    silence.add_argument("--reason", required=True, help="why, for whoever looks next")
    silence.add_argument("--by", default=None, help="who (default: your user name)")
    silence.set_defaults(handler=_run_silence)
    unsilence = actions.add_parser("unsilence", help="end a rule's silences now")
    unsilence.add_argument("rule")
    unsilence.set_defaults(handler=_run_unsilence)
    actions.add_parser("silences", help="list the silences in force").set_defaults(
        handler=_run_list
    )


def _rules() -> list[str]:
    from chatmon.services.alerts.rules import Rule

    return [rule.value for rule in Rule]


def _known_rule(rule: str) -> bool:
    if rule in _rules():
        return True
    print(f"chatmon: unknown rule {rule!r} (rules: {', '.join(_rules())})", file=sys.stderr)
    return False


def _session() -> Session:
    from sqlmodel import Session

    from chatmon.db import get_engine

    return Session(get_engine(), expire_on_commit=False)


def _run_silence(args: argparse.Namespace) -> int:
    from chatmon.services.alerts import silences

    if not _known_rule(args.rule):
        return 2
    try:
        duration = silences.parse_duration(args.duration)
        with _session() as session:
            silence = silences.add_silence(
                session=session,
                rule=args.rule,
                duration=duration,
                reason=args.reason,
                by=args.by or getpass.getuser(),
                now=datetime.now(UTC),
            )
            session.commit()
    except ValueError as exc:
        print(f"chatmon: {exc}", file=sys.stderr)
        return 2
    print(f"{silence.rule} {silence.note()}")
    return 0


def _run_unsilence(args: argparse.Namespace) -> int:
    from chatmon.services.alerts import silences

    if not _known_rule(args.rule):
        return 2
    with _session() as session:
        count = silences.clear_silences(session=session, rule=args.rule, now=datetime.now(UTC))
        session.commit()
    print(f"{args.rule}: {count} silence(s) ended" if count else f"{args.rule} was not silenced")
    return 0


def _run_list(_args: argparse.Namespace) -> int:
    from chatmon.services.alerts import silences

    with _session() as session:
        active = silences.active_silences(session=session, now=datetime.now(UTC))
    if not active:
        print("no silences")
    for silence in active.values():
        print(f"{silence.rule} {silence.note()}")
    return 0
