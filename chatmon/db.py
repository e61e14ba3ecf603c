"""Database engine and sessions, built from ``Settings.database_url``."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.engine.interfaces import DBAPIConnection
from sqlalchemy.pool import ConnectionPoolEntry
from sqlmodel import Session, create_engine

from chatmon.settings import get_settings

T = TypeVar("T")


def _enable_sqlite_pragmas(dbapi_connection: DBAPIConnection, _record: ConnectionPoolEntry) -> None:
    """Foreign keys (for ON DELETE CASCADE) and WAL, so readers never wait on the writer."""
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA busy_timeout=5000")
    cursor.close()


def make_engine(url: str) -> Engine:
    """An engine for ``url``, with the SQLite settings chatmon relies on."""
    is_sqlite = url.startswith("sqlite")
    connect_args = {"check_same_thread": False} if is_sqlite else {}
    engine = create_engine(url, connect_args=connect_args, pool_pre_ping=not is_sqlite)
    if is_sqlite:
        event.listen(engine, "connect", _enable_sqlite_pragmas)
    return engine


@functools.lru_cache(maxsize=1)
def get_engine() -> Engine:
    """The process-wide engine."""
    return make_engine(get_settings().database_url)


@contextmanager
def session_scope() -> Iterator[Session]:
    """A session that commits on success and rolls back on error."""
    with Session(get_engine(), expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except Exception:
            session.rollback()
            raise


async def run(fn: Callable[..., T], /, **kwargs: Any) -> T:
    """``fn(session=..., **kwargs)`` in a worker thread, in one committed transaction.

    The way async code (event handlers, lifespan tasks) calls a service function:
    the database call never runs on the event loop, so a slow disk or a locked SQLite
    file delays only this caller, not every other user's stream.
    """

    def call() -> T:
        with session_scope() as session:
            return fn(session=session, **kwargs)

    return await asyncio.to_thread(call)
