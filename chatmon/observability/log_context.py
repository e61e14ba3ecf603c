"""Which request a log line belongs to: ids carried by the task, not passed around.

A leaf (it imports nothing of chatmon): services open a ``log_context`` around a request,
and ``chatmon.logging_setup`` stamps the ids onto every record.
"""

from __future__ import annotations

import contextlib
import contextvars
from collections.abc import Iterator

_correlation_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "chatmon_correlation_id", default=None
)
_session_id: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "chatmon_session_id", default=None
)


@contextlib.contextmanager
def log_context(
    *, correlation_id: str | None = None, session_id: str | None = None
) -> Iterator[None]:
    """Within the block, every log line carries these ids (restored afterwards)."""
    tokens = []
    if correlation_id is not None:
        tokens.append((_correlation_id, _correlation_id.set(correlation_id)))
    if session_id is not None:
        tokens.append((_session_id, _session_id.set(session_id)))
    try:
        yield
    finally:
        for var, token in reversed(tokens):
            try:
                var.reset(token)
            except ValueError:  # closed from another context (e.g. another task): clear it
                var.set(None)


def current_ids() -> tuple[str | None, str | None]:
    """The correlation and session ids of the request being handled, if any."""
    return _correlation_id.get(), _session_id.get()
