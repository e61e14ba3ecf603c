"""Hand-built requests for the stats and request-log tests, written the recorder's way."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from sqlmodel import Session

from chatmon.services import request_log
from chatmon.services.events import LLMCall

T0 = datetime(2025, 3, 10, 12, 0, tzinfo=UTC)  # an hour boundary
_ids = itertools.count(1)


def make_call(*, at: timedelta | datetime = timedelta(0), **fields: object) -> LLMCall:
    """An LLMCall ``at`` after T0 (or at a datetime); any field may be overridden."""
    started = at if isinstance(at, datetime) else T0 + at
    values: dict[str, object] = {
        "correlation_id": f"req{next(_ids):08d}",
        "session_id": "browser-1",
        "conversation_id": "conv-1",
        "model": "openai/fake",
        "provider": "openai",
        "started_at": started,
        "first_token_seconds": 0.2,
        "total_seconds": 1.0,
        "input_tokens": 10,
        "output_tokens": 20,
        "cost_usd": 0.001,
        "status": "ok",
        "error_category": None,
        "retries": 0,
        "temperature": 0.7,
        "prompt_version": "abc123",
    }
    values.update(fields)
    return LLMCall(**values)  # type: ignore[arg-type]  # field values built in a dict


def record(session: Session, *calls: LLMCall, price_known: bool = True) -> None:
    """Write the calls exactly as the recorder does, and commit."""
    request_log.record_calls(session=session, calls=list(calls), price_known=lambda _m: price_known)
    session.commit()
