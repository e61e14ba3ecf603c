"""Request spans to any OpenTelemetry backend over OTLP/HTTP (protobuf), Langfuse or not.

One span per user request, named and described with the OpenTelemetry GenAI semantic
conventions (``chat {model}``, ``gen_ai.request.model``, ``gen_ai.usage.input_tokens``,
...) so Jaeger, Tempo, Phoenix or an OTel Collector show it as an LLM call; chatmon's
own figures (cost, prompt version, correlation id, retries) as ``chatmon.*``. The trace
id is derived from the correlation id exactly as the Langfuse trace's is, so one
request has the same trace id in both places; so is the span id, so that a rating given
later becomes a ``chatmon.feedback`` child span of the request's span.

The ids come from :mod:`chatmon.observability.trace_ids`, the attributes from
:mod:`chatmon.observability.otel_spans`; this module holds the exporter and its queue.

A leaf: it imports nothing of chatmon outside ``observability/``. The caller passes
the configuration as plain values (:class:`OtelConfig`) and the text cleaner (PII
redaction and secret masking, the same as Langfuse traces get), and subscribes
:meth:`OtelExporter.on_call` to the chat's events.

Nothing here may slow down or break a chat. The listener only puts the call on a
bounded queue (dropping, and counting, when it is full); one worker thread builds the
spans, and the SDK's ``BatchSpanProcessor`` (bounded too) exports them from its own
thread with the OTLP timeout. Shutdown is bounded in time, whatever the collector does.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from chatmon.observability.call_status import CallStatus
from chatmon.observability.export_queue import ExportQueue
from chatmon.observability.otel_spans import (
    CallLike,
    FeedbackLike,
    feedback_attributes,
    span_attributes,
)
from chatmon.observability.trace_ids import seeded_id_generator, span_id_for, trace_id_for

log = logging.getLogger(__name__)

QUEUE_SIZE = 10_000  # calls and ratings waiting for the worker thread
SPAN_QUEUE_SIZE = 2048  # finished spans waiting for export (the SDK's default)
SCOPE = "chatmon"


@dataclass(frozen=True)
class OtelConfig:
    """Where and how to export, resolved from the standard ``OTEL_*`` variables."""

    traces_endpoint: str  # the full URL, e.g. http://collector:4318/v1/traces
    headers: Mapping[str, str] = field(default_factory=dict)
    timeout_seconds: float = 10.0
    compression: str | None = None  # "gzip" | "none" | None (none)
    service_name: str = "chatmon"
    service_version: str = ""
    resource_attributes: Mapping[str, str] = field(default_factory=dict)
    capture_content: bool = True  # gen_ai.input.messages / gen_ai.output.messages


class OtelExporter:
    """Turns finished requests into OTLP spans, from one worker thread."""

    def __init__(
        self,
        config: OtelConfig,
        *,
        clean: Callable[[str], str],
        clean_comment: Callable[[str], str] | None = None,
    ) -> None:
        """
        Args:
            config: where and how to export.
            clean: what every message and reply goes through (capping, PII redaction
                as configured, secret masking).
            clean_comment: the same for a feedback comment, which is free text typed
                about a reply and redacted whatever the PII setting (default ``clean``).
        """
        self._config = config
        self._clean = clean
        self._clean_comment = clean_comment or clean
        self._queue = ExportQueue(
            label="otel",
            events="spans",
            connect=self._connect,
            log=log,
            off_message="otel exporter could not be created; OpenTelemetry export is off",
            maxsize=QUEUE_SIZE,
        )
        self._provider: Any = None
        self._tracer: Any = None
        self._ids: Any = None
        self.sent = 0
        self.sent_feedback = 0

    @property
    def endpoint(self) -> str:
        """Where the spans go (may hold credentials in its query: mask it before logging)."""
        return self._config.traces_endpoint

    @property
    def dropped(self) -> int:
        """Calls and ratings dropped because the queue was full."""
        return self._queue.dropped

    # ----- listener (event loop thread: never block) ----------------------------------
    def on_call(self, call: CallLike) -> None:
        """Queue one finished request (not the probe's: no user asked it)."""
        if not call.synthetic:
            self._queue.submit(self._send, call)

    def on_feedback(self, feedback: FeedbackLike) -> None:
        """Queue one rating (a child span of its request's)."""
        if feedback.correlation_id:
            self._queue.submit(self._send_feedback, feedback)

    def start(self) -> None:
        """Start the worker thread now (otherwise the first call starts it).

        In a forked worker the thread starts again; the SDK's batch processor restarts
        its own thread after a fork.
        """
        self._queue.start()

    # ----- worker thread --------------------------------------------------------------
    def _connect(self) -> None:
        from opentelemetry.exporter.otlp.proto.http import Compression
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        from opentelemetry.sdk.resources import Resource
        from opentelemetry.sdk.trace import TracerProvider
        from opentelemetry.sdk.trace.export import BatchSpanProcessor

        config = self._config
        attributes = dict(config.resource_attributes)
        attributes["service.name"] = config.service_name
        if config.service_version:
            attributes.setdefault("service.version", config.service_version)
        self._ids = seeded_id_generator()
        # Our own provider (never the process-global one, never Langfuse's), shut down
        # by us within a bound rather than by the SDK's atexit hook, which would wait
        # for a hung collector.
        self._provider = TracerProvider(
            resource=Resource.create(attributes), id_generator=self._ids, shutdown_on_exit=False
        )
        exporter = OTLPSpanExporter(
            endpoint=config.traces_endpoint,
            headers=dict(config.headers),
            timeout=config.timeout_seconds,
            compression=Compression.Gzip
            if config.compression == "gzip"
            else Compression.NoCompression,
        )
        self._provider.add_span_processor(
            BatchSpanProcessor(exporter, max_queue_size=SPAN_QUEUE_SIZE, schedule_delay_millis=1000)
        )
        self._tracer = self._provider.get_tracer(SCOPE, config.service_version or None)

    def _send(self, call: CallLike) -> None:
        from opentelemetry.trace import SpanKind, Status, StatusCode

        start_ns = int(call.started_at.timestamp() * 1e9)
        end_ns = start_ns + int(max(call.total_seconds, 0.0) * 1e9)
        self._ids.next_trace_id = trace_id_for(call.correlation_id)
        self._ids.next_span_id = span_id_for(call.correlation_id)
        span = self._tracer.start_span(
            f"chat {call.model}",
            kind=SpanKind.CLIENT,
            start_time=start_ns,
            attributes=span_attributes(
                call, clean=self._clean, capture_content=self._config.capture_content
            ),
        )
        if call.first_token_seconds is not None:
            span.add_event(
                "chatmon.first_token",
                timestamp=start_ns + int(call.first_token_seconds * 1e9),
            )
        if call.status == CallStatus.ERROR:
            span.set_status(Status(StatusCode.ERROR, call.error_category or "unknown"))
        span.end(end_time=end_ns)
        self.sent += 1

    def _send_feedback(self, feedback: FeedbackLike) -> None:
        from opentelemetry import trace
        from opentelemetry.trace import NonRecordingSpan, SpanContext, SpanKind, TraceFlags

        request_span = SpanContext(
            trace_id=trace_id_for(feedback.correlation_id),
            span_id=span_id_for(feedback.correlation_id),
            is_remote=True,
            trace_flags=TraceFlags(TraceFlags.SAMPLED),
        )
        span = self._tracer.start_span(
            "chatmon.feedback",
            context=trace.set_span_in_context(NonRecordingSpan(request_span)),
            kind=SpanKind.INTERNAL,
            attributes=feedback_attributes(
                feedback,
                clean_comment=self._clean_comment,
                capture_content=self._config.capture_content,
            ),
        )
        span.end()
        self.sent_feedback += 1

    # ----- lifecycle ------------------------------------------------------------------
    def shutdown(self, timeout: float) -> bool:
        """Export what is queued, giving up after ``timeout`` seconds.

        Returns:
            True when every span was handed to the collector in time.
        """

        def flush(seconds_left: float) -> bool:
            provider = self._provider  # built by the worker thread, which has stopped now
            flushed = bool(provider.force_flush(int(seconds_left * 1000)))
            provider.shutdown()
            return flushed

        return self._queue.shutdown(timeout, flush=flush)


_exporter: OtelExporter | None = None


def setup(candidate: OtelExporter) -> OtelExporter:
    """The process's exporter: the first candidate given (the caller subscribes it).

    No thread yet: servers fork their workers after importing the app, and a thread
    does not survive a fork. The first call starts it, in the worker.
    """
    global _exporter
    if _exporter is None:
        _exporter = candidate
    return _exporter


def exporter() -> OtelExporter | None:
    """The process's exporter, when OpenTelemetry export is on."""
    return _exporter


def shutdown(timeout: float) -> bool:
    """Export what is left and stop (call once, at server shutdown; bounded in time)."""
    return True if _exporter is None else _exporter.shutdown(timeout)


def reset() -> None:
    """Forget the process's exporter (tests; the caller unsubscribes it)."""
    global _exporter
    _exporter = None
