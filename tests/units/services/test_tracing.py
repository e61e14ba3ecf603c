"""Tracing to a Langfuse-compatible receiver over real HTTP: content, redaction, no blocking."""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from chatmon.devtools.langfuse_receiver import LangfuseReceiver
from chatmon.services import tracing
from chatmon.services.events import Feedback
from chatmon.services.limits import TRACE_TEXT_MAX_CHARS
from chatmon.services.tracing import LangfuseTracer, trace_id_for
from chatmon.settings import Settings, load_settings
from tests.units.services.trace_factory import thumbs_down
from tests.units.services.trace_factory import traced_call as _call


@pytest.fixture
def receiver() -> Iterator[LangfuseReceiver]:
    # The SDK keeps one resource manager per public key: a fresh key per test.
    key = uuid.uuid4().hex[:8]
    with LangfuseReceiver(public_key=f"pk-lf-{key}", secret_key=f"sk-lf-{key}") as server:
        yield server


def _settings(receiver: LangfuseReceiver, **overrides: object) -> Settings:
    values: dict[str, object] = dict(
        langfuse_public_key=receiver.state.public_key,
        langfuse_secret_key=receiver.state.secret_key,
        langfuse_host=receiver.url,
        langfuse_timeout=1,
    )
    values.update(overrides)
    return load_settings(**values)


def _json_attr(span, key: str):
    return json.loads(span.attributes[key])


def test_call_becomes_one_generation_trace_with_usage_cost_and_timing(
    receiver: LangfuseReceiver,
) -> None:
    tracer = LangfuseTracer(_settings(receiver))
    call = _call()
    tracer.on_call(call)
    assert tracer.shutdown(10)
    [span] = receiver.wait_for(lambda r: r.spans)
    assert span.trace_id == trace_id_for(call.correlation_id)
    assert span.parent_span_id == ""  # the generation is the trace's root
    attrs = span.attributes
    assert attrs["langfuse.observation.type"] == "generation"
    assert attrs["langfuse.observation.model.name"] == "openai/fake"
    assert attrs["user.id"] == "browser-1" and attrs["session.id"] == "conv-1"
    assert _json_attr(span, "langfuse.observation.usage_details") == {"input": 10, "output": 20}
    assert _json_attr(span, "langfuse.observation.cost_details") == {"total": 0.00125}
    assert _json_attr(span, "langfuse.observation.metadata.correlation_id") == call.correlation_id
    assert _json_attr(span, "langfuse.observation.metadata.prompt_version") == "prompt-v7"
    assert span.duration_seconds == pytest.approx(1.5, abs=0.01)
    assert span.start_ns == pytest.approx(call.started_at.timestamp() * 1e9, abs=1e6)
    first_token = datetime.fromisoformat(
        _json_attr(span, "langfuse.observation.completion_start_time")
    )
    assert (first_token - call.started_at).total_seconds() == pytest.approx(0.25, abs=0.001)


def test_traced_text_is_pii_redacted(receiver: LangfuseReceiver) -> None:
    tracer = LangfuseTracer(_settings(receiver))
    tracer.on_call(_call())
    assert tracer.shutdown(10)
    [span] = receiver.wait_for(lambda r: r.spans)
    assert span.attributes["langfuse.observation.input"] == "Write to [EMAIL], card [CARD]"
    assert (
        span.attributes["langfuse.observation.output"]
        == "I will write to [EMAIL] and call [PHONE]."
    )
    raw = b"".join(receiver.state.raw_bodies)
    assert b"jane.doe@example.com" not in raw and b"4111 1111 1111 1111" not in raw


def test_traced_text_is_kept_when_redaction_is_off(receiver: LangfuseReceiver) -> None:
    tracer = LangfuseTracer(_settings(receiver, enable_pii_redaction=False))
    tracer.on_call(_call(input_text="mail jane@example.com"))
    assert tracer.shutdown(10)
    [span] = receiver.wait_for(lambda r: r.spans)
    assert span.attributes["langfuse.observation.input"] == "mail jane@example.com"


def test_a_huge_reply_is_cut_before_redaction_never_inside_pii(receiver: LangfuseReceiver) -> None:
    tracer = LangfuseTracer(_settings(receiver))
    filler = "a " * ((TRACE_TEXT_MAX_CHARS - 8) // 2)  # the card starts 8 characters before the cap
    reply = filler + "4111 1111 1111 1111 " + "ab-" * 300_000
    tracer.on_call(_call(output_text=reply))
    assert tracer.shutdown(10)
    [span] = receiver.wait_for(lambda r: r.spans)
    output = span.attributes["langfuse.observation.output"]
    assert output == filler + f"…[truncated {len(reply) - len(filler)} chars]"
    assert b"4111" not in b"".join(receiver.state.raw_bodies)


def test_failed_request_is_an_error_level_generation(receiver: LangfuseReceiver) -> None:
    tracer = LangfuseTracer(_settings(receiver))
    tracer.on_call(
        _call(status="error", error_category="rate_limit", output_text="", first_token_seconds=None)
    )
    assert tracer.shutdown(10)
    [span] = receiver.wait_for(lambda r: r.spans)
    assert span.attributes["langfuse.observation.level"] == "ERROR"
    assert span.attributes["langfuse.observation.status_message"] == "rate_limit"


def test_feedback_becomes_a_score_on_the_requests_trace(receiver: LangfuseReceiver) -> None:
    tracer = LangfuseTracer(_settings(receiver))
    call = _call()
    tracer.on_call(call)
    tracer.on_feedback(
        Feedback(correlation_id=call.correlation_id, session_id="browser-1", rating=-1)
    )
    assert tracer.shutdown(10)
    [score] = receiver.wait_for(lambda r: r.scores)
    assert score["traceId"] == trace_id_for(call.correlation_id) == receiver.spans[0].trace_id
    assert (score["name"], score["value"], score["dataType"]) == ("user-feedback", -1.0, "NUMERIC")


def test_reasons_and_a_redacted_comment_become_the_scores_comment(
    receiver: LangfuseReceiver,
) -> None:
    # redaction of the comment does not depend on ENABLE_PII_REDACTION
    tracer = LangfuseTracer(_settings(receiver, enable_pii_redaction=False))
    call = _call()
    tracer.on_call(call)
    tracer.on_feedback(thumbs_down(call))
    assert tracer.shutdown(10)
    [score] = receiver.wait_for(lambda r: r.scores)
    assert score["comment"].startswith("reasons: wrong, unsafe\nwrong again, mail me at ")
    assert "jane.doe@example.com" not in score["comment"]


def test_hanging_langfuse_never_blocks_the_caller(receiver: LangfuseReceiver) -> None:
    receiver.set_hang(True)
    tracer = LangfuseTracer(_settings(receiver))
    tracer.start()
    durations = []
    for _ in range(200):
        started = time.perf_counter()
        tracer.on_call(_call())
        tracer.on_feedback(Feedback(correlation_id="abc", session_id="s", rating=1))
        durations.append(time.perf_counter() - started)
    durations.sort()
    # Enqueueing only: microseconds, while one export to the hung host waits 1 s.
    assert durations[len(durations) // 2] < 0.001, f"median {durations[100] * 1000:.2f} ms"
    assert durations[-1] < 0.1, f"slowest {durations[-1] * 1000:.1f} ms"
    started = time.perf_counter()
    tracer.shutdown(timeout=2.0)
    assert time.perf_counter() - started < 3.0  # bounded, whatever Langfuse does
    assert receiver.state.hung >= 1  # the SDK really was stuck on the receiver


def test_trace_url_points_at_the_trace_when_host_is_set(receiver: LangfuseReceiver) -> None:
    settings = _settings(receiver)
    try:
        tracing.setup(settings)
        assert tracing.trace_url("corr-1") == f"{receiver.url}/trace/{trace_id_for('corr-1')}"
    finally:
        tracing.shutdown(5)
        tracing.reset()


def test_tracing_is_off_without_both_keys() -> None:
    assert tracing.setup(load_settings(langfuse_public_key="pk-lf-only")) is None
    assert tracing.trace_url("corr-1") is None
    assert (
        tracing.setup(
            load_settings(langfuse_public_key="pk", langfuse_secret_key="sk", enable_langfuse=False)
        )
        is None
    )


def test_tracing_works_in_a_forked_worker(receiver: LangfuseReceiver) -> None:
    """Servers fork workers after importing the app: the child must trace too."""
    import multiprocessing

    tracer = LangfuseTracer(_settings(receiver))
    parent_call, child_call = _call(), _call()
    tracer.on_call(parent_call)  # the parent's worker thread and SDK client exist now
    receiver.wait_for(lambda r: r.spans, timeout=15)

    def child() -> None:
        tracer.on_call(child_call)
        raise SystemExit(0 if tracer.shutdown(10) else 1)

    process = multiprocessing.get_context("fork").Process(target=child)
    process.start()
    process.join(30)
    assert process.exitcode == 0
    receiver.wait_for(lambda r: len(r.spans) >= 2, timeout=15)
    traced = {span.trace_id for span in receiver.spans}
    assert trace_id_for(child_call.correlation_id) in traced
    assert tracer.shutdown(10)


def test_monitor_request_detail_links_to_the_trace(receiver: LangfuseReceiver) -> None:
    from datetime import datetime

    from chatmon.models import LLMRequest
    from chatmon.presenters.requests import request_detail

    row = LLMRequest(
        correlation_id="corr-9",
        model="openai/fake",
        status="ok",
        priced=True,
        started_at=datetime(2026, 11, 26, tzinfo=UTC),
    )
    assert request_detail(row).trace_url == ""  # tracing off: no link
    try:
        tracing.setup(_settings(receiver))
        assert request_detail(row).trace_url == f"{receiver.url}/trace/{trace_id_for('corr-9')}"
    finally:
        tracing.shutdown(5)
        tracing.reset()
