"""What the tracing tests (Langfuse and OTLP alike) send: one finished request, timed,
priced, with PII in both the message and the reply, and a rating of it."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from chatmon.services.events import Feedback, LLMCall
from tests.units.services.stats_factory import make_call

PII_INPUT = "Write to jane.doe@example.com, card 4111 1111 1111 1111"
PII_OUTPUT = "I will write to jane.doe@example.com and call +44 20 7946 0958."
PII_COMMENT = "wrong again, mail me at jane.doe@example.com"


def traced_call(**fields: object) -> LLMCall:
    """A call that started now, with a fresh correlation id; any field may be overridden."""
    values: dict[str, object] = {
        "correlation_id": uuid.uuid4().hex[:16],  # unique across forked test processes too
        "first_token_seconds": 0.25,
        "total_seconds": 1.5,
        "cost_usd": 0.00125,
        "retries": 1,
        "temperature": 0.4,
        "prompt_version": "prompt-v7",
        "input_text": PII_INPUT,
        "output_text": PII_OUTPUT,
    }
    values.update(fields)
    return make_call(at=datetime.now(UTC), **values)


def thumbs_down(call: LLMCall) -> Feedback:
    """A thumbs down on ``call`` with two reasons and a comment holding an email address."""
    return Feedback(
        correlation_id=call.correlation_id,
        session_id="browser-1",
        rating=-1,
        reasons=("wrong", "unsafe"),
        comment=PII_COMMENT,
    )
