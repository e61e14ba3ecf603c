"""``INSERT ... ON CONFLICT DO UPDATE`` that adds counts: how every rollup is written.

A leaf (models only), so both the request log and the implicit signals, which the
request log imports, can keep rollups in step without importing each other.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel

from chatmon.models import table_of


def dialect(session: Session) -> Any:
    """SQLAlchemy's SQLite or PostgreSQL module (for their ``ON CONFLICT`` inserts)."""
    name = session.get_bind().dialect.name
    module = {"sqlite": sqlite, "postgresql": postgresql}.get(name)
    if module is None:
        raise NotImplementedError(f"the request log needs SQLite or PostgreSQL, not {name}")
    return module


def adding(session: Session, model: type[SQLModel], key: Sequence[str]) -> Any:
    """``INSERT ... ON CONFLICT (key) DO UPDATE`` adding the new counts to the stored ones.

    Built once per dialect and table: the recorder runs several per batch, and building
    one costs more Python than executing it.
    """
    return _adding(dialect(session), model, tuple(key))


@functools.cache
def _adding(module: Any, model: type[SQLModel], key: tuple[str, ...]) -> Any:
    table = table_of(model)
    statement = module.insert(table)
    counters = [c.name for c in table.columns if c.name not in key]
    return statement.on_conflict_do_update(
        index_elements=list(key),
        set_={name: table.c[name] + statement.excluded[name] for name in counters},
    )
