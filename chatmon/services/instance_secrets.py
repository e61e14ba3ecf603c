"""Secrets an installation generates for itself, kept in the ``instance_secret`` table.

Every worker and instance on the same database reads the same values, so they agree
on how sessions are signed without anyone configuring a secret. Creation is race-safe
on SQLite and PostgreSQL: ``INSERT ... ON CONFLICT DO NOTHING``, then read back what
the first writer stored.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from chatmon.models import InstanceSecret, table_of, utc_now

SESSION_SECRET = "session_secret"
MONITOR_PASSWORD_HASH = "monitor_password_hash"


def _dialect(session: Session) -> Any:
    name = session.get_bind().dialect.name
    module = {"sqlite": sqlite, "postgresql": postgresql}.get(name)
    if module is None:
        raise NotImplementedError(f"instance secrets need SQLite or PostgreSQL, not {name}")
    return module


def read_secret(*, session: Session, name: str) -> str | None:
    """The stored value of ``name``, or None when it was never created."""
    statement = select(col(InstanceSecret.value)).where(col(InstanceSecret.name) == name)
    return session.execute(statement).scalar_one_or_none()


def claim_secret(*, session: Session, name: str, value: str) -> bool:
    """Store ``value`` as ``name`` unless some process already did; commits.

    Returns:
        True when this call created the row (it won the race), False when a value
        was already there (that one stays).
    """
    table = table_of(InstanceSecret)
    statement = (
        _dialect(session)
        .insert(table)
        .values(name=name, value=value, created_at=utc_now())
        .on_conflict_do_nothing(index_elements=["name"])
        .returning(table.c.name)
    )
    created = session.execute(statement).first() is not None
    session.commit()
    return created


def get_or_create_secret(
    *, session: Session, name: str, make: Callable[[], str]
) -> tuple[str, bool]:
    """The value of ``name``, created with ``make()`` if there is none yet.

    Returns:
        ``(value, created)``: the value every process agrees on, and whether this
        call created it.
    """
    existing = read_secret(session=session, name=name)
    if existing is not None:
        return existing, False
    created = claim_secret(session=session, name=name, value=make())
    value = read_secret(session=session, name=name)
    if value is None:  # pragma: no cover - deleted between the insert and the read
        raise RuntimeError(f"instance secret {name!r} vanished while being created")
    return value, created


def replace_secret(*, session: Session, name: str, value: str) -> None:
    """Set ``name`` to ``value`` whether or not it existed; commits."""
    table = table_of(InstanceSecret)
    statement = _dialect(session).insert(table).values(name=name, value=value, created_at=utc_now())
    statement = statement.on_conflict_do_update(
        index_elements=["name"],
        set_={"value": statement.excluded.value, "created_at": statement.excluded.created_at},
    )
    session.execute(statement)
    session.commit()
