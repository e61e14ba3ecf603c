"""What an OTLP span of a request, or of a rating, says: its attributes, named with the
OpenTelemetry GenAI semantic conventions (``gen_ai.*``), chatmon's own as ``chatmon.*``.

Pure: no SDK, no thread; :mod:`chatmon.observability.otel_export` builds and exports
the spans.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any, Protocol

from chatmon.observability.call_status import CallStatus

# LiteLLM's provider names -> the GenAI conventions' well-known gen_ai.provider.name values
# (others are passed on as LiteLLM names them).
PROVIDER_NAMES = {
    "gemini": "gcp.gemini",
    "vertex_ai": "gcp.vertex_ai",
    "vertex_ai_beta": "gcp.vertex_ai",
    "bedrock": "aws.bedrock",
    "azure": "azure.ai.openai",
    "azure_ai": "azure.ai.inference",
    "mistral": "mistral_ai",
    "xai": "x_ai",
    "watsonx": "ibm.watsonx.ai",
}


class CallLike(Protocol):
    """The fields of ``chatmon.services.events.LLMCall`` a span is made of."""

    @property
    def correlation_id(self) -> str: ...
    @property
    def session_id(self) -> str: ...
    @property
    def conversation_id(self) -> str: ...
    @property
    def model(self) -> str: ...
    @property
    def provider(self) -> str | None: ...
    @property
    def started_at(self) -> datetime: ...
    @property
    def first_token_seconds(self) -> float | None: ...
    @property
    def total_seconds(self) -> float: ...
    @property
    def input_tokens(self) -> int | None: ...
    @property
    def output_tokens(self) -> int | None: ...
    @property
    def cost_usd(self) -> float | None: ...
    @property
    def status(self) -> str: ...  # a CallStatus value
    @property
    def error_category(self) -> str | None: ...
    @property
    def retries(self) -> int: ...
    @property
    def temperature(self) -> float: ...
    @property
    def prompt_version(self) -> str: ...
    @property
    def input_text(self) -> str: ...
    @property
    def output_text(self) -> str: ...
    @property
    def synthetic(self) -> bool: ...


class FeedbackLike(Protocol):
    """The fields of ``chatmon.services.events.Feedback`` a feedback span is made of."""

    @property
    def correlation_id(self) -> str: ...
    @property
    def rating(self) -> int: ...
    @property
    def reasons(self) -> tuple[str, ...]: ...
    @property
    def comment(self) -> str: ...


def provider_name(call: CallLike) -> str:
    """``gen_ai.provider.name``: the well-known name of the model's provider."""
    provider = call.provider or (call.model.split("/", 1)[0] if "/" in call.model else "")
    if not provider:
        provider = "chatmon" if call.model == "demo" else "unknown"  # demo: the offline model
    return PROVIDER_NAMES.get(provider, provider)


def span_attributes(
    call: CallLike, *, clean: Callable[[str], str], capture_content: bool
) -> dict[str, Any]:
    """The span's attributes: GenAI conventions first, chatmon's own as ``chatmon.*``."""
    provider = provider_name(call)
    attributes: dict[str, Any] = {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": provider,
        "gen_ai.system": provider,  # the name before semantic conventions 1.37
        "gen_ai.request.model": call.model,
        "gen_ai.response.model": call.model,
        "gen_ai.request.temperature": float(call.temperature),
        "chatmon.correlation_id": call.correlation_id,
        "chatmon.prompt_version": call.prompt_version,
        "chatmon.status": call.status,
        "chatmon.retries": call.retries,
        "chatmon.fallback": bool(getattr(call, "fallback", False)),
    }
    if call.conversation_id:
        attributes["gen_ai.conversation.id"] = call.conversation_id
        attributes["session.id"] = call.conversation_id
    if call.session_id:
        attributes["user.id"] = call.session_id  # the browser (a random id), as in Langfuse
    if call.input_tokens is not None:
        attributes["gen_ai.usage.input_tokens"] = call.input_tokens
    if call.output_tokens is not None:
        attributes["gen_ai.usage.output_tokens"] = call.output_tokens
    if call.cost_usd is not None:
        attributes["chatmon.cost_usd"] = float(call.cost_usd)
    if call.first_token_seconds is not None:
        attributes["chatmon.time_to_first_token_seconds"] = float(call.first_token_seconds)
    if call.status == CallStatus.ERROR:
        attributes["error.type"] = call.error_category or "unknown"
    if capture_content:
        attributes["gen_ai.input.messages"] = json.dumps(
            [{"role": "user", "parts": [{"type": "text", "content": clean(call.input_text)}]}],
            ensure_ascii=False,
        )
        if call.output_text:
            attributes["gen_ai.output.messages"] = json.dumps(
                [
                    {
                        "role": "assistant",
                        "parts": [{"type": "text", "content": clean(call.output_text)}],
                        "finish_reason": "stop" if call.status == CallStatus.OK else call.status,
                    }
                ],
                ensure_ascii=False,
            )
    return attributes


def feedback_attributes(
    feedback: FeedbackLike, *, clean_comment: Callable[[str], str], capture_content: bool
) -> dict[str, Any]:
    """The attributes of a rating's ``chatmon.feedback`` span (the comment only when
    content is captured, cleaned)."""
    attributes: dict[str, Any] = {
        "chatmon.correlation_id": feedback.correlation_id,
        "chatmon.feedback.rating": feedback.rating,  # 1 up, -1 down, 0 cleared
    }
    if feedback.reasons:
        attributes["chatmon.feedback.reasons"] = list(feedback.reasons)
    comment = feedback.comment.strip()
    if comment and capture_content:
        attributes["chatmon.feedback.comment"] = clean_comment(comment)
    return attributes
