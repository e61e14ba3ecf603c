"""A reply whose worker died mid-stream, recorded as the request it was.

Its writer never ended the turn (:mod:`chatmon.services.turn` publishes one LLMCall
per request when it does), so whoever claims the stale reply
(:func:`chatmon.services.chat_messages.interrupt_stale_replies`) publishes it here:
one LLMCall with status ``interrupted``, lasting from the reply's row to its last
checkpoint.
"""

from __future__ import annotations

import uuid

from chatmon.models import ChatMessage
from chatmon.observability.call_status import CallStatus
from chatmon.services import events
from chatmon.services.events import LLMCall


def publish_interrupted(message: ChatMessage, *, owner: str, model: str) -> None:
    """Record reply ``message`` of ``owner``, asked of ``model``, as one interrupted request."""
    created = message.created_at
    ended = message.updated_at or created
    events.publish_call(
        LLMCall(
            correlation_id=message.correlation_id or uuid.uuid4().hex[:16],
            session_id=owner,
            conversation_id=message.conversation_id,
            model=model,
            provider=None,
            started_at=created,
            first_token_seconds=None,
            total_seconds=max((ended - created).total_seconds(), 0.0),
            input_tokens=None,
            output_tokens=None,
            cost_usd=None,
            status=CallStatus.INTERRUPTED,
            error_category=None,
            retries=0,
            temperature=0.0,
            prompt_version="",
        )
    )
