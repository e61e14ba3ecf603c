"""``python -m chatmon migrate`` and ``backup PATH``: the schema, and a copy of the database."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # argparse's subparsers action is private, and generic only in typeshed
    Subparsers = argparse._SubParsersAction[argparse.ArgumentParser]


def add_migrate(subparsers: Subparsers) -> None:
    """Registers ``migrate``: bring the database to the newest schema revision."""
    parser = subparsers.add_parser(
        "migrate", help="apply database migrations (alembic upgrade head)"
    )
    parser.set_defaults(handler=_run_migrate)


def _run_migrate(_args: argparse.Namespace) -> int:
    from chatmon.settings import SettingsError, get_settings

    try:
        get_settings()
    except SettingsError as exc:  # a bad variable stops startup, named, without a traceback
        print(f"chatmon: {exc}", file=sys.stderr)
        return 2
    from chatmon.migrate import upgrade_head

    upgrade_head()
    announce_first_start()
    return 0


def announce_first_start() -> None:
    """After migrating: create the instance secret and, when the monitor has no password
    configured, the generated one, printed here once (stderr, never a log file)."""
    from sqlmodel import Session

    from chatmon.db import get_engine
    from chatmon.services.first_start import announcement, ensure_monitor_password, session_secret
    from chatmon.settings import get_settings

    with Session(get_engine()) as session:
        session_secret(session=session, settings=get_settings())
        password = ensure_monitor_password(session=session, settings=get_settings())
    if password is not None:
        print(announcement(password), file=sys.stderr, flush=True)


def add_backup(subparsers: Subparsers) -> None:
    """Registers ``backup PATH``: a consistent copy of the database, while chatmon runs."""
    parser = subparsers.add_parser(
        "backup",
        help="copy the SQLite database to PATH while chatmon runs (PostgreSQL: prints pg_dump)",
        description="Writes a consistent copy of DATABASE_URL's SQLite file to PATH with "
        "SQLite's online backup API (the app may keep running). Restore: stop chatmon, copy "
        "the file to DATABASE_URL's path, start (migrations run at start). For PostgreSQL "
        "it prints the pg_dump command to use instead and exits with 2.",
    )
    parser.add_argument("path", type=Path, help="the new backup file (must not exist)")
    parser.set_defaults(handler=_run_backup)


def _run_backup(args: argparse.Namespace) -> int:
    from chatmon.services.backup import BackupError, backup_sqlite, pg_dump_command, sqlite_path
    from chatmon.settings import SettingsError, get_settings

    try:
        database_url = get_settings().database_url
    except SettingsError as exc:
        print(f"chatmon: {exc}", file=sys.stderr)
        return 2
    try:
        source = sqlite_path(database_url)
        if source is None:
            print(
                "chatmon: DATABASE_URL is not SQLite; back PostgreSQL up with its own tool:\n"
                f"  {pg_dump_command(database_url, args.path)}\n"
                "restore into an empty database with pg_restore (README, Backup and restore)",
                file=sys.stderr,
            )
            return 2
        size = backup_sqlite(source, args.path)
    except BackupError as exc:
        print(f"chatmon: backup failed: {exc}", file=sys.stderr)
        return 1
    print(f"chatmon: backed up {source} to {args.path} ({size:,} bytes)", flush=True)
    return 0
