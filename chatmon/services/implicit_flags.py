"""Setting an implicit signal's bit on requests, and the prompt-version rollup's
``flagged`` count that a request's first flag adds to.

The statements are built once (``functools.cache``): they run on the recorder's thread,
which shares the GIL with the event loop.
"""

from __future__ import annotations

import functools
from collections.abc import Collection, Iterable, Sequence
from typing import Any

from sqlalchemy import bindparam, update
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from chatmon.models import LLMRequest
from chatmon.services import version_rollup
from chatmon.services.implicit_signals import FLAGS

_IN_CHUNK = 500  # bound parameters per IN (...)


def in_chunks(values: Sequence[Any]) -> Iterable[list[Any]]:
    """``values`` in lists of at most ``_IN_CHUNK``: one ``IN (...)`` each."""
    for start in range(0, len(values), _IN_CHUNK):
        yield list(values[start : start + _IN_CHUNK])


def has_signal(signal: str) -> ColumnElement[bool]:
    """The request carries ``signal``."""
    return col(LLMRequest.implicit_flags).op("&")(FLAGS[signal]) != 0


def set_flag(*, session: Session, signal: str, correlation_ids: Collection[str]) -> int:
    """OR ``signal`` into the flags of those requests (synthetic ones excepted).

    Returns how many rows newly got it (already flagged rows are not counted again).
    A request's first flag, whatever the signal, also counts it in the prompt-version
    rollup's ``flagged`` (in this transaction). The caller commits, then counts the
    result (:func:`chatmon.services.implicit_signals.count`).
    """
    changed = 0
    for chunk in in_chunks(sorted(set(correlation_ids))):
        # Rows without any flag first, returning their rollup keys: the database decides
        # which rows were unflagged (a concurrent writer's flag is seen, not guessed).
        first = session.connection().execute(_first_flag_statement(signal), {"ids": chunk})
        keys = [
            version_rollup.key_of(started_at=started, prompt_version=version, model=model)
            for started, version, model in first.all()
        ]
        version_rollup.add_flagged(session, keys)
        result = session.connection().execute(_set_flag_statement(signal), {"ids": chunk})
        changed += len(keys) + int(result.rowcount or 0)
    return changed


@functools.cache
def _first_flag_statement(signal: str) -> Any:
    r = LLMRequest
    return (
        update(r)
        .where(col(r.correlation_id).in_(bindparam("ids", expanding=True)))
        .where(col(r.synthetic).is_(False), col(r.implicit_flags) == 0)
        .values(implicit_flags=FLAGS[signal])
        .returning(col(r.started_at), col(r.prompt_version), col(r.model))
    )


@functools.cache
def _set_flag_statement(signal: str) -> Any:
    flags = col(LLMRequest.implicit_flags)
    return (
        update(LLMRequest)
        .where(col(LLMRequest.correlation_id).in_(bindparam("ids", expanding=True)))
        .where(col(LLMRequest.synthetic).is_(False))
        .where(~has_signal(signal))
        .values(implicit_flags=flags.op("|")(FLAGS[signal]))
    )
