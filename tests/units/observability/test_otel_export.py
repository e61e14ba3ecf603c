"""Request spans to an OTLP/HTTP receiver over real HTTP: GenAI names, redaction, no blocking."""

from __future__ import annotations

import json
import socket
import time
import uuid
from collections.abc import Iterator

import pytest

from chatmon import __version__, wiring
from chatmon.devtools.otlp_receiver import OtlpReceiver
from chatmon.observability import otel_export
from chatmon.observability.otel_export import OtelExporter
from chatmon.services import events
from chatmon.services.events import LLMCall
from chatmon.services.secrets import register_secret_values
from chatmon.services.tracing import trace_id_for as langfuse_trace_id
from chatmon.settings import Settings, load_settings
from tests.units.services.trace_factory import thumbs_down, traced_call


@pytest.fixture
def receiver() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as server:
        yield server


def _settings(endpoint: str, **overrides: object) -> Settings:
    values: dict[str, object] = dict(otel_exporter_otlp_endpoint=endpoint)
    values.update(overrides)
    return load_settings(**values)


def _exporter(settings: Settings) -> OtelExporter:
    """The exporter as the app's startup builds it, not subscribed to the event bus."""
    exporter = wiring.otel_exporter(settings)
    assert exporter is not None
    return exporter


def _call(**overrides: object) -> LLMCall:
    return traced_call(**{"model": "gemini/gemini-2.0-flash", "provider": "gemini", **overrides})


def _content(span, key: str) -> str:
    [message] = json.loads(span.attributes[key])
    [part] = message["parts"]
    return str(part["content"])


def test_call_becomes_a_genai_chat_span(receiver: OtlpReceiver) -> None:
    exporter = _exporter(_settings(receiver.url))
    call = _call()
    exporter.on_call(call)
    assert exporter.shutdown(10)
    [span] = receiver.wait_for(lambda r: r.spans)
    assert span.name == "chat gemini/gemini-2.0-flash"
    assert span.kind == "client" and span.status == "unset"
    attrs = span.attributes
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == attrs["gen_ai.system"] == "gcp.gemini"
    assert attrs["gen_ai.request.model"] == attrs["gen_ai.response.model"] == call.model
    assert attrs["gen_ai.request.temperature"] == pytest.approx(0.4)
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (10, 20)
    assert attrs["gen_ai.conversation.id"] == "conv-1"
    assert attrs["chatmon.cost_usd"] == pytest.approx(0.00125)
    assert attrs["chatmon.prompt_version"] == "prompt-v7"
    assert attrs["chatmon.correlation_id"] == call.correlation_id
    assert "error.type" not in attrs
    assert span.duration_seconds == pytest.approx(1.5, abs=0.01)
    assert span.start_ns == pytest.approx(call.started_at.timestamp() * 1e9, abs=1e6)
    [(event, at_ns)] = span.events
    assert event == "chatmon.first_token"
    assert (at_ns - span.start_ns) / 1e9 == pytest.approx(0.25, abs=0.001)


def test_span_has_the_langfuse_traces_id(receiver: OtlpReceiver) -> None:
    exporter = _exporter(_settings(receiver.url))
    call = _call()
    exporter.on_call(call)
    assert exporter.shutdown(10)
    [span] = receiver.wait_for(lambda r: r.spans)
    assert span.trace_id == langfuse_trace_id(call.correlation_id)
    assert span.parent_span_id == ""


def test_resource_names_the_service_and_its_attributes(receiver: OtlpReceiver) -> None:
    settings = _settings(
        receiver.url,
        otel_service_name="chat-eu",
        otel_resource_attributes="deployment.environment.name=prod,team=ml%20ops",
    )
    exporter = _exporter(settings)
    exporter.on_call(_call())
    assert exporter.shutdown(10)
    [span] = receiver.wait_for(lambda r: r.spans)
    assert span.resource["service.name"] == "chat-eu"
    assert span.resource["service.version"] == __version__
    assert span.resource["deployment.environment.name"] == "prod"
    assert span.resource["team"] == "ml ops"
    assert span.scope == "chatmon"


def test_message_and_reply_are_pii_redacted_and_secret_masked(receiver: OtlpReceiver) -> None:
    register_secret_values(["configured-key-0123456789"])
    exporter = _exporter(_settings(receiver.url))
    exporter.on_call(
        _call(
            input_text="mail jane.doe@example.com, my key is sk-proj-abcdefghijklmnop",
            output_text="Noted configured-key-0123456789 and +44 20 7946 0958.",
        )
    )
    assert exporter.shutdown(10)
    [span] = receiver.wait_for(lambda r: r.spans)
    assert _content(span, "gen_ai.input.messages") == "mail [EMAIL], my key is sk-***"
    assert _content(span, "gen_ai.output.messages") == "Noted *** and [PHONE]."
    raw = b"".join(receiver.state.raw_bodies)
    for leaked in (b"jane.doe", b"abcdefghijklmnop", b"configured-key", b"7946"):
        assert leaked not in raw


def test_text_is_kept_when_redaction_is_off_and_left_out_when_content_capture_is(
    receiver: OtlpReceiver,
) -> None:
    kept = _exporter(_settings(receiver.url, enable_pii_redaction=False))
    kept.on_call(_call(input_text="mail jane@example.com"))
    assert kept.shutdown(10)
    left_out = _exporter(
        _settings(receiver.url, otel_instrumentation_genai_capture_message_content=False)
    )
    left_out.on_call(_call())
    assert left_out.shutdown(10)
    first, second = receiver.wait_for(lambda r: len(r.spans) == 2 and r.spans)
    assert _content(first, "gen_ai.input.messages") == "mail jane@example.com"
    assert "gen_ai.input.messages" not in second.attributes
    assert "gen_ai.output.messages" not in second.attributes
    assert second.attributes["gen_ai.usage.input_tokens"] == 10


def test_failed_request_is_an_error_span_with_its_error_type(receiver: OtlpReceiver) -> None:
    exporter = _exporter(_settings(receiver.url))
    exporter.on_call(
        _call(status="error", error_category="rate_limit", output_text="", first_token_seconds=None)
    )
    assert exporter.shutdown(10)
    [span] = receiver.wait_for(lambda r: r.spans)
    assert span.status == "error" and span.status_message == "rate_limit"
    assert span.attributes["error.type"] == "rate_limit"
    assert span.events == []


def test_probe_requests_are_not_exported(receiver: OtlpReceiver) -> None:
    exporter = _exporter(_settings(receiver.url))
    exporter.on_call(_call(synthetic=True))
    exporter.on_call(_call(correlation_id="user-asked"))
    assert exporter.shutdown(10)
    spans = receiver.wait_for(lambda r: r.spans)
    assert [s.attributes["chatmon.correlation_id"] for s in spans] == ["user-asked"]


def test_headers_reach_the_collector_and_traces_endpoint_wins(receiver: OtlpReceiver) -> None:
    receiver.state.required_headers = {"authorization": "Bearer otlp-token-123456"}
    settings = _settings(
        "http://127.0.0.1:9/unused",  # the base endpoint loses to the traces endpoint
        otel_exporter_otlp_traces_endpoint=f"{receiver.url}/v1/traces",
        otel_exporter_otlp_headers="Authorization=Bearer%20otlp-token-123456",
        otel_exporter_otlp_compression="gzip",
    )
    exporter = _exporter(settings)
    exporter.on_call(_call())
    assert exporter.shutdown(10)
    assert receiver.wait_for(lambda r: r.spans)
    assert receiver.state.unauthorized == 0


def test_startup_subscribes_the_exporter_to_chat_events(receiver: OtlpReceiver) -> None:
    try:
        exporter = wiring.install_otel(_settings(receiver.url))
        assert exporter is not None
        events.publish_call(_call(correlation_id="from-the-bus"))
        assert exporter.shutdown(10)
        [span] = receiver.wait_for(lambda r: r.spans)
        assert span.attributes["chatmon.correlation_id"] == "from-the-bus"
    finally:
        if (current := otel_export.exporter()) is not None:
            events.off_call(current.on_call)
            events.off_feedback(current.on_feedback)
        otel_export.reset()


def test_export_is_off_without_an_endpoint_or_when_the_sdk_is_disabled() -> None:
    assert load_settings().otel_traces_endpoint is None
    assert (
        load_settings(
            otel_exporter_otlp_endpoint="http://localhost:4318", otel_sdk_disabled=True
        ).otel_traces_endpoint
        is None
    )
    assert wiring.install_otel(load_settings()) is None


def _timed_calls(exporter: OtelExporter, count: int = 200) -> list[float]:
    durations = []
    for _ in range(count):
        started = time.perf_counter()
        exporter.on_call(_call())
        durations.append(time.perf_counter() - started)
    return sorted(durations)


def test_hung_collector_never_blocks_the_caller(receiver: OtlpReceiver) -> None:
    receiver.set_hang(True)
    exporter = _exporter(_settings(receiver.url, otel_exporter_otlp_timeout=1000))
    exporter.start()
    exporter.on_call(_call())
    receiver.wait_for(lambda r: r.state.hung >= 1)  # an export is stuck on the receiver
    durations = _timed_calls(exporter)
    # Enqueueing only: microseconds, while each export to the hung collector waits 1 s.
    assert durations[len(durations) // 2] < 0.001, f"median {durations[100] * 1000:.2f} ms"
    assert durations[-1] < 0.1, f"slowest {durations[-1] * 1000:.1f} ms"
    started = time.perf_counter()
    exporter.shutdown(timeout=2.0)
    assert time.perf_counter() - started < 3.0  # bounded, whatever the collector does


def test_dead_collector_never_blocks_the_caller() -> None:
    with socket.socket() as sock:  # a port nobody listens on
        sock.bind(("127.0.0.1", 0))
        dead = f"http://127.0.0.1:{sock.getsockname()[1]}"
    exporter = _exporter(_settings(dead, otel_exporter_otlp_timeout=1000))
    exporter.on_call(_call())
    deadline = time.monotonic() + 15
    while exporter.sent < 1 and time.monotonic() < deadline:  # the worker is up (imports paid)
        time.sleep(0.01)
    durations = _timed_calls(exporter)
    assert durations[len(durations) // 2] < 0.001, f"median {durations[100] * 1000:.2f} ms"
    assert durations[-1] < 0.1, f"slowest {durations[-1] * 1000:.1f} ms"
    started = time.perf_counter()
    exporter.shutdown(timeout=2.0)
    assert time.perf_counter() - started < 3.0


def test_with_langfuse_too_each_backend_gets_its_own_span_with_one_trace_id(
    receiver: OtlpReceiver,
) -> None:
    from chatmon.devtools.langfuse_receiver import LangfuseReceiver
    from chatmon.services.tracing import LangfuseTracer

    key = uuid.uuid4().hex[:8]
    with LangfuseReceiver(public_key=f"pk-lf-{key}", secret_key=f"sk-lf-{key}") as langfuse:
        settings = _settings(
            receiver.url,
            langfuse_public_key=f"pk-lf-{key}",
            langfuse_secret_key=f"sk-lf-{key}",
            langfuse_host=langfuse.url,
            langfuse_timeout=1,
        )
        tracer, exporter = LangfuseTracer(settings), _exporter(settings)
        call = _call()
        tracer.on_call(call)
        exporter.on_call(call)
        assert tracer.shutdown(10) and exporter.shutdown(10)
        [generation] = langfuse.wait_for(lambda r: r.spans)
    [span] = receiver.wait_for(lambda r: r.spans)
    assert span.trace_id == generation.trace_id == langfuse_trace_id(call.correlation_id)
    assert span.scope == "chatmon" and generation.scope == "langfuse-sdk"
    assert not any(k.startswith("langfuse.") for k in span.attributes)


def test_an_auth_header_is_masked_in_logs_once_export_is_on(receiver: OtlpReceiver) -> None:
    from chatmon.services.secrets import mask_secrets

    token = "hny_0a1b2c3d4e5f60718293"
    try:
        wiring.install_otel(_settings(receiver.url, otel_exporter_otlp_headers=f"x-team={token}"))
        assert mask_secrets(f"export failed with team {token}") == "export failed with team ***"
    finally:
        if (current := otel_export.exporter()) is not None:
            events.off_call(current.on_call)
            events.off_feedback(current.on_feedback)
            current.shutdown(5)
        otel_export.reset()


def test_a_rating_becomes_a_feedback_span_under_its_requests_span(receiver: OtlpReceiver) -> None:
    exporter = _exporter(_settings(receiver.url, enable_pii_redaction=False))
    call = _call()
    exporter.on_call(call)
    exporter.on_feedback(thumbs_down(call))
    assert exporter.shutdown(10)
    request, feedback = receiver.wait_for(lambda r: len(r.spans) == 2 and r.spans)
    assert feedback.name == "chatmon.feedback"
    assert feedback.trace_id == request.trace_id and feedback.parent_span_id == request.span_id
    assert feedback.attributes["chatmon.feedback.rating"] == -1
    assert feedback.attributes["chatmon.feedback.reasons"] == ["wrong", "unsafe"]
    # a comment is redacted whatever ENABLE_PII_REDACTION says (as Langfuse's score comment)
    assert feedback.attributes["chatmon.feedback.comment"] == "wrong again, mail me at [EMAIL]"
