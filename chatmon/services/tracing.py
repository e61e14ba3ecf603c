"""Langfuse tracing (optional), through the Langfuse 5 SDK directly.

One trace per user request: a ``generation`` with model, input, output, token usage,
cost, latency and time to first token, the browser as Langfuse user and the
conversation as Langfuse session, and the correlation id and prompt version as
metadata. A thumbs up/down becomes a ``user-feedback`` score on that trace. The
trace id is derived from the correlation id (``create_trace_id(seed=...)``), so the
score, the request log and the monitor's link all find the same trace.

Nothing here may slow down or break a chat. Event listeners only put the event on a
bounded queue (dropping, and counting, when it is full); one worker thread makes all
SDK calls. The SDK itself exports in its own background threads with a short
``LANGFUSE_TIMEOUT``. Flushing happens only on shutdown, bounded in time. Text is
capped (``TRACE_TEXT_MAX_CHARS`` per string), PII-redacted (``ENABLE_PII_REDACTION``)
and secret-masked before it leaves, via the SDK's ``mask`` hook, which covers input,
output and metadata.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import timedelta
from typing import Any, Literal

from chatmon.observability.call_status import CallStatus
from chatmon.observability.export_queue import ExportQueue
from chatmon.observability.trace_ids import seeded_id_generator
from chatmon.services import events
from chatmon.services.events import Feedback, LLMCall
from chatmon.services.limits import TRACE_TEXT_MAX_CHARS
from chatmon.services.redaction import pii_spans, redact
from chatmon.services.secrets import bounded, mask_secrets
from chatmon.settings import Settings

log = logging.getLogger(__name__)

QUEUE_SIZE = 10_000  # trace events waiting for the worker thread
TRACE_NAME = "chat-reply"
FEEDBACK_SCORE = "user-feedback"


def feedback_comment(feedback: Feedback) -> str | None:
    """The score's comment: the reasons, then the user's comment, always PII-redacted
    (whatever ``ENABLE_PII_REDACTION`` says: a comment is free text typed about a reply)
    and secret-masked; None when there is neither."""
    parts = []
    if feedback.reasons:
        parts.append("reasons: " + ", ".join(feedback.reasons))
    text = feedback.comment.strip()
    if text:
        parts.append(bounded(redact(text), TRACE_TEXT_MAX_CHARS))
    return "\n".join(parts) or None


def trace_id_for(correlation_id: str) -> str:
    """The Langfuse trace id of a request: stable, derived from its correlation id."""
    from langfuse import Langfuse

    return Langfuse.create_trace_id(seed=correlation_id)


def trace_text_cleaner(redact_pii: bool) -> Callable[[str], str]:
    """What every text in a trace goes through (Langfuse's and OpenTelemetry's alike).

    The text is first cut to ``TRACE_TEXT_MAX_CHARS`` (a long model reply, a pasted
    document), at a point that splits no secret and no piece of PII; then PII is
    redacted (if enabled) and secrets are masked.
    """
    also = pii_spans if redact_pii else None

    def clean_text(value: str) -> str:
        text = bounded(value, TRACE_TEXT_MAX_CHARS, also=also)
        return mask_secrets(redact(text) if redact_pii else text)

    return clean_text


def _masker(redact_pii: bool) -> Callable[..., Any]:
    """The SDK ``mask`` hook: :func:`trace_text_cleaner` on every string of a JSON value."""
    clean_text = trace_text_cleaner(redact_pii)

    def clean(value: Any) -> Any:
        if isinstance(value, str):
            return clean_text(value)
        if isinstance(value, dict):
            return {key: clean(item) for key, item in value.items()}
        if isinstance(value, list | tuple):
            return [clean(item) for item in value]
        return value

    return lambda *, data, **_: clean(data)


class LangfuseTracer:
    """Ships calls and feedback to Langfuse from one worker thread."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self._queue = ExportQueue(
            label="langfuse",
            events="trace events",
            connect=self._connect,
            log=log,
            off_message="langfuse client could not be created; tracing is off",
            maxsize=QUEUE_SIZE,
        )
        self._client: Any = None
        self._provider: Any = None
        self._ids: Any = None
        self.sent_calls = 0
        self.sent_scores = 0

    @property
    def dropped(self) -> int:
        """Events dropped because the queue was full."""
        return self._queue.dropped

    # ----- listeners (event loop thread: never block) ---------------------------------
    def on_call(self, call: LLMCall) -> None:
        """Queue one finished request for tracing (not the probe's: no user asked it)."""
        if not call.synthetic:
            self._queue.submit(self._send_call, call)

    def on_feedback(self, feedback: Feedback) -> None:
        """Queue one rating for scoring."""
        if feedback.correlation_id:
            self._queue.submit(self._send_feedback, feedback)

    def start(self) -> None:
        """Start the worker thread now (otherwise the first event starts it)."""
        self._queue.start()

    # ----- worker thread ----------------------------------------------------------------
    def _connect(self) -> None:
        from langfuse import Langfuse
        from langfuse import __version__ as langfuse_version
        from opentelemetry.sdk.trace import TracerProvider

        settings = self._settings
        # Hands out the trace id derived from the correlation id, so the generation is
        # the real root span of the trace the score and the monitor's link point at
        # (only the worker thread starts spans on this provider).
        self._ids = seeded_id_generator()
        # Our own provider (not the process-global one), so nothing else in the
        # process exports through Langfuse and our spans get the seeded trace ids.
        self._provider = TracerProvider(id_generator=self._ids)
        kwargs: dict[str, Any] = {}
        if settings.langfuse_host:
            kwargs["base_url"] = settings.langfuse_host
        self._client = Langfuse(
            public_key=settings.langfuse_public_key,
            secret_key=settings.langfuse_secret_key.get_secret_value()
            if settings.langfuse_secret_key
            else None,
            timeout=settings.langfuse_timeout,
            flush_interval=1.0,
            mask=_masker(settings.enable_pii_redaction),
            tracer_provider=self._provider,
            **kwargs,
        )
        # A tracer with the SDK's own scope (name, version, public key): Langfuse's span
        # processor exports only spans of its scope and project. OpenTelemetry's public
        # ``start_span(start_time=...)`` then gives the generation its real start time,
        # which the SDK's ``start_observation`` cannot (it stamps "now").
        self._tracer = self._provider.get_tracer(
            "langfuse-sdk",
            langfuse_version,
            attributes={"public_key": settings.langfuse_public_key},
        )

    def _send_call(self, call: LLMCall) -> None:
        from langfuse import LangfuseGeneration, propagate_attributes

        assert self._ids is not None
        start_ns = int(call.started_at.timestamp() * 1e9)
        end_ns = start_ns + int(max(call.total_seconds, 0.0) * 1e9)
        metadata = {
            "correlation_id": call.correlation_id,
            "prompt_version": call.prompt_version,
            "status": call.status,
            "error_category": call.error_category or "none",
            "retries": str(call.retries),
            "fallback": "true" if call.fallback else "false",  # LLM_FALLBACK_MODELS served it
        }
        usage: dict[str, int] = {}
        if call.input_tokens is not None:
            usage["input"] = call.input_tokens
        if call.output_tokens is not None:
            usage["output"] = call.output_tokens
        completion_start = (
            call.started_at + timedelta(seconds=call.first_token_seconds)
            if call.first_token_seconds is not None
            else None
        )
        level: Literal["DEFAULT", "WARNING", "ERROR"] = "DEFAULT"  # langfuse's SpanLevel
        status_message: str | None = None
        if call.status == CallStatus.ERROR:
            level, status_message = "ERROR", call.error_category or "unknown"
        elif call.status == CallStatus.CANCELLED:
            level, status_message = "WARNING", "cancelled by the user"

        self._ids.next_trace_id = int(trace_id_for(call.correlation_id), 16)
        with propagate_attributes(
            user_id=call.session_id or None,
            session_id=call.conversation_id or None,
            trace_name=TRACE_NAME,
            metadata={"correlation_id": call.correlation_id, "prompt_version": call.prompt_version},
        ):
            span = self._tracer.start_span(TRACE_NAME, start_time=start_ns)
            generation = LangfuseGeneration(
                otel_span=span,
                langfuse_client=self._client,
                input=call.input_text,
                output=call.output_text,
                metadata=metadata,
                model=call.model,
                model_parameters={"temperature": call.temperature},
                usage_details=usage or None,
                cost_details={"total": call.cost_usd} if call.cost_usd is not None else None,
                completion_start_time=completion_start,
                level=level,
                status_message=status_message,
            )
            generation.end(end_time=end_ns)
        self.sent_calls += 1

    def _send_feedback(self, feedback: Feedback) -> None:
        # One score per request, upserted by id: the latest rating wins (0 = cleared).
        trace_id = trace_id_for(feedback.correlation_id)
        self._client.create_score(
            name=FEEDBACK_SCORE,
            value=float(feedback.rating),
            trace_id=trace_id,
            score_id=f"feedback-{trace_id}",
            data_type="NUMERIC",
            comment=feedback_comment(feedback),
        )
        self.sent_scores += 1

    # ----- lifecycle --------------------------------------------------------------------
    def shutdown(self, timeout: float) -> bool:
        """Send what is queued and flush the SDK, giving up after ``timeout`` seconds.

        Returns:
            True when everything was handed over in time.
        """

        def flush(_seconds_left: float) -> bool:
            self._client.shutdown()  # may block far longer on a silent host: bounded by the queue
            return True

        return self._queue.shutdown(timeout, flush=flush)


_tracer: LangfuseTracer | None = None
_settings: Settings | None = None


def setup(settings: Settings) -> LangfuseTracer | None:
    """Subscribe tracing to the chat's events when Langfuse is configured (idempotent)."""
    global _tracer, _settings
    _settings = settings
    if not settings.langfuse_enabled:
        return None
    if _tracer is None:
        import langfuse  # noqa: F401 - pay the import (~0.5 s) at startup, not on a request

        # No thread yet: servers fork their workers after importing the app, and a
        # thread does not survive a fork. The first event starts it, in the worker.
        _tracer = LangfuseTracer(settings)
        events.on_call(_tracer.on_call)
        events.on_feedback(_tracer.on_feedback)
    return _tracer


def reset() -> None:
    """Forget the process's tracer and unsubscribe it (tests)."""
    global _tracer, _settings
    if _tracer is not None:
        events.off_call(_tracer.on_call)
        events.off_feedback(_tracer.on_feedback)
    _tracer, _settings = None, None


def tracer() -> LangfuseTracer | None:
    """The process's tracer, when tracing is on."""
    return _tracer


def shutdown(timeout: float | None = None) -> bool:
    """Flush and stop tracing (call once, at server shutdown)."""
    if _tracer is None:
        return True
    wait = (
        timeout if timeout is not None else 2.0 * (_settings.langfuse_timeout if _settings else 3)
    )
    return _tracer.shutdown(wait)


def trace_url(correlation_id: str) -> str | None:
    """Link to a request's trace in the Langfuse UI, for the monitor's request detail.

    None unless tracing is on and ``LANGFUSE_HOST`` is set. Langfuse's ``/trace/<id>``
    page redirects to the trace in its project, so no API call is needed.
    """
    if _tracer is None or _settings is None or not _settings.langfuse_host or not correlation_id:
        return None
    return f"{_settings.langfuse_host}/trace/{trace_id_for(correlation_id)}"
