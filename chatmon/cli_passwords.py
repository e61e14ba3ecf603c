"""``python -m chatmon hash-password`` and ``reset-monitor-password``: the monitor's passwords."""

from __future__ import annotations

import argparse
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # argparse's subparsers action is private, and generic only in typeshed
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]


def add_hash_password(subparsers: Subparsers) -> None:
    """Registers ``hash-password``: a MONITOR_USERS entry for one user."""
    parser = subparsers.add_parser(
        "hash-password",
        help="print a user:hash entry for MONITOR_USERS (asks for the password)",
    )
    parser.add_argument("user", help="the user name")
    parser.set_defaults(handler=_run_hash_password)


def _run_hash_password(args: argparse.Namespace) -> int:
    import getpass

    from chatmon.services.auth import hash_password

    password = getpass.getpass("Password: ") if sys.stdin.isatty() else sys.stdin.readline()
    password = password.rstrip("\n")
    if not password:
        print("chatmon: the password must not be empty", file=sys.stderr)
        return 2
    print(f"{args.user}:{hash_password(password)}")
    return 0


def add_reset_monitor_password(
    subparsers: Subparsers,
) -> None:
    """Registers ``reset-monitor-password``: a new generated monitor password."""
    parser = subparsers.add_parser(
        "reset-monitor-password",
        help="replace the generated monitor password and print the new one (once)",
        description="Replaces the monitor password generated at the first start (when neither "
        "MONITOR_PASSWORD nor MONITOR_USERS is set) and prints the new one. Sessions signed in "
        "with the old one end within a minute.",
    )
    parser.set_defaults(handler=_run_reset_monitor_password)


def _run_reset_monitor_password(_args: argparse.Namespace) -> int:
    from sqlalchemy.exc import SQLAlchemyError
    from sqlmodel import Session

    from chatmon.settings import SettingsError, get_settings

    try:
        settings = get_settings()
    except SettingsError as exc:
        print(f"chatmon: {exc}", file=sys.stderr)
        return 2
    from chatmon.db import get_engine
    from chatmon.services.first_start import (
        announcement,
        reset_monitor_password,
        uses_generated_password,
    )

    if not uses_generated_password(settings):
        reason = (
            "MONITOR_AUTH is off"
            if not settings.monitor_auth
            else "MONITOR_PASSWORD or MONITOR_USERS is set and takes precedence"
        )
        print(
            f"chatmon: the generated monitor password is not in use ({reason}); "
            "nothing was changed",
            file=sys.stderr,
        )
        return 2
    try:
        with Session(get_engine()) as session:
            password = reset_monitor_password(session=session)
    except SQLAlchemyError as exc:
        print(
            f"chatmon: database error ({type(exc).__name__}); run `python -m chatmon migrate`?",
            file=sys.stderr,
        )
        return 1
    print(announcement(password, reset=True), flush=True)
    return 0
