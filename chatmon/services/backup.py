"""A consistent copy of the database while chatmon runs (``python -m chatmon backup PATH``).

SQLite: the online backup API (``sqlite3.Connection.backup``) copies the pages under
SQLite's own locking, so a running app may keep writing; the copy is written next to the
target, checked with ``PRAGMA integrity_check`` and only then renamed into place.
Restoring is copying the file back to ``DATABASE_URL``'s path with chatmon stopped; a
backup from an older version is migrated at the next start.

PostgreSQL is backed up with its own tool, ``pg_dump`` (:func:`pg_dump_command`).
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from sqlalchemy import URL, make_url


class BackupError(Exception):
    """The backup could not be made; the message says why (never a password)."""


def sqlite_path(database_url: str) -> Path | None:
    """The file of a SQLite ``database_url``; None for another database."""
    url = make_url(database_url)
    if url.get_backend_name() != "sqlite":
        return None
    if not url.database or url.database == ":memory:":
        raise BackupError("an in-memory SQLite database has nothing to back up")
    return Path(url.database)


def pg_dump_command(database_url: str, target: Path) -> str:
    """The ``pg_dump`` line for a PostgreSQL ``database_url``, its password left out
    (pg_dump reads it from PGPASSWORD or ~/.pgpass)."""
    url = make_url(database_url)
    bare = URL.create(  # URL.set cannot clear a field: build it without the password
        "postgresql",
        username=url.username,
        host=url.host,
        port=url.port,
        database=url.database,
        query=url.query,
    )
    rendered = bare.render_as_string(hide_password=False)
    return f"pg_dump --format=custom --file '{target}' '{rendered}'"


def backup_sqlite(source: Path, target: Path) -> int:
    """Copy the SQLite database ``source`` to ``target`` (which must not exist) online.

    Returns the copy's size in bytes.
    """
    if not source.is_file():
        raise BackupError(f"no database file at {source}")
    if target.exists():
        raise BackupError(f"{target} exists; choose a new file (a backup never overwrites)")
    if not target.parent.is_dir():
        raise BackupError(f"directory {target.parent} does not exist")
    partial = target.with_name(f".{target.name}.partial-{os.getpid()}")
    try:
        with sqlite3.connect(source) as src, sqlite3.connect(partial) as dst:
            src.backup(dst, pages=1024)  # in steps, so writers are not held off for long
            check = dst.execute("PRAGMA integrity_check").fetchone()
            if check is None or check[0] != "ok":
                raise BackupError(f"the copy failed its integrity check: {check}")
        src.close()
        dst.close()
        os.replace(partial, target)
    except sqlite3.Error as exc:
        raise BackupError(f"SQLite could not copy {source}: {exc}") from exc
    finally:
        partial.unlink(missing_ok=True)
    return target.stat().st_size
