"""``python -m chatmon digest --print|--send``: preview or send the spend digest."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # argparse's subparsers action is private, and generic only in typeshed
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]


def add_digest(subparsers: Subparsers) -> None:
    """Registers ``digest --print|--send``."""
    parser = subparsers.add_parser("digest", help="preview or send the spend digest")
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--print", action="store_true", help="print it (text)")
    action.add_argument(
        "--send", action="store_true", help="send it now to the email and Slack channels"
    )
    parser.add_argument("--html", action="store_true", help="print the HTML version instead")
    parser.add_argument(
        "--schedule",
        choices=("daily", "weekly"),
        default=None,
        help="the period (default: DIGEST_SCHEDULE, else daily)",
    )
    parser.set_defaults(handler=_run_digest)


def _run_digest(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    from sqlmodel import Session

    from chatmon.db import get_engine
    from chatmon.services import digest
    from chatmon.services.digest_send import DigestSender, digest_channels
    from chatmon.settings import SettingsError, get_settings

    try:
        settings = get_settings()
    except SettingsError as exc:  # a bad variable, named, without a traceback
        print(f"chatmon: {exc}", file=sys.stderr)
        return 2
    schedule = args.schedule or (
        settings.digest_schedule if settings.digest_schedule != "off" else "daily"
    )
    now = datetime.now(UTC)
    if args.send:
        if not digest_channels(settings):
            print("chatmon: no digest channel: set SMTP_HOST or SLACK_WEBHOOK_URL", file=sys.stderr)
            return 2
        sender = DigestSender(
            settings=settings.model_copy(update={"digest_schedule": schedule}), engine=get_engine()
        )
        outcomes = sender.send_now(now=now)
        for outcome in outcomes:
            print(f"{outcome.channel}: {'sent' if outcome.ok else 'FAILED: ' + str(outcome.error)}")
        return 0 if all(outcome.ok for outcome in outcomes) else 1
    with Session(get_engine()) as session:
        built = digest.build(session=session, settings=settings, now=now, schedule=schedule)
    print(built.html if args.html else built.subject + "\n\n" + built.text)
    return 0
