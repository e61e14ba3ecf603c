"""What the table modules share: the default factories of their columns, and
:func:`table_of` for Core statements over any table model."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy
from sqlalchemy import Table
from sqlmodel import SQLModel


def utc_now() -> datetime:
    """Timezone-aware now in UTC (stored naive-UTC by SQLite, aware by PostgreSQL)."""
    return datetime.now(UTC)


def new_id() -> str:
    """A random, URL-safe identifier."""
    return uuid.uuid4().hex


def table_of(model: type[SQLModel]) -> Table:
    """The Core table of a table model, for Core statements (SQLModel does not type
    ``Model.__table__``)."""
    mapper = sqlalchemy.inspect(model, raiseerr=False)
    table = getattr(mapper, "local_table", None)
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not a table model")
    return table
