"""The real app with OpenTelemetry export and Sentry on (and no Langfuse): request spans
reach a local OTLP receiver redacted (a rating as a child span), a hung collector changes
nothing for the chat, and an exception in a backend route reaches a local Sentry envelope
receiver without secrets.

One extra app instance (``launch_app``) with OTEL_EXPORTER_OTLP_ENDPOINT and SENTRY_DSN
pointing at the receivers over real HTTP.
"""

from __future__ import annotations

import base64
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import text
from sqlalchemy.engine import Engine

from chatmon import __version__
from chatmon.devtools.fake_llm_server import FakeLLMServer
from chatmon.devtools.otlp_receiver import OtlpReceiver
from chatmon.devtools.sentry_receiver import SentryReceiver
from chatmon.observability.trace_ids import trace_id_for
from tests.integration.conftest import (
    TEST_MONITOR_PASSWORD,
    RunningApp,
    last_correlation_id,
    launch_app,
)
from tests.integration.test_chat_page import assistant_bubbles, send_and_wait, timed_send

pytestmark = pytest.mark.browser

LLM_KEY = "sk-otel-integration-key-0c9b8a7d"
PII_MESSAGE = "Please email jane.doe@example.com or charge card 4111 1111 1111 1111"


@pytest.fixture(scope="module")
def otlp() -> Iterator[OtlpReceiver]:
    with OtlpReceiver() as server:
        yield server


@pytest.fixture(scope="module")
def sentry() -> Iterator[SentryReceiver]:
    with SentryReceiver() as server:
        yield server


@pytest.fixture(scope="module")
def module_app(
    fake_llm: FakeLLMServer, otlp: OtlpReceiver, sentry: SentryReceiver, workdir: Path
) -> Iterator[RunningApp]:
    """This module's app: exporting to the OTLP receiver, reporting to the Sentry one."""
    with launch_app(
        workdir=workdir,
        fake_llm_url=fake_llm.url,
        LLM_API_KEY=LLM_KEY,
        OTEL_EXPORTER_OTLP_ENDPOINT=otlp.url,
        OTEL_EXPORTER_OTLP_TIMEOUT="1000",
        OTEL_SERVICE_NAME="chatmon-it",
        OTEL_RESOURCE_ATTRIBUTES="deployment.environment.name=integration",
        SENTRY_DSN=sentry.dsn,
        SENTRY_ENVIRONMENT="integration",
    ) as app:
        yield app


def test_chat_is_unaffected_while_the_collector_hangs(chat: Page, otlp: OtlpReceiver) -> None:
    # The first reply of a fresh server pays LiteLLM's imports (seconds on a busy machine).
    timed_send(chat, "warm-up message", timeout_ms=120_000)
    baseline = timed_send(chat, "baseline message while the collector answers")
    otlp.set_hang(True)
    try:
        timed_send(chat, "first message while the collector hangs")
        # The batch processor exports every second: it is stuck on the receiver now.
        otlp.wait_for(lambda r: r.state.hung >= 1, timeout=15)
        elapsed = timed_send(chat, "second message while the collector hangs")
        expect(assistant_bubbles(chat).last).to_contain_text(
            "Echo: second message while the collector hangs"
        )
        print(f"\nreply with the collector answering: {baseline:.2f} s, hung: {elapsed:.2f} s")
        assert elapsed < baseline + 3, f"{elapsed:.1f} s while it hung vs {baseline:.1f} s"
    finally:
        otlp.set_hang(False)


def test_request_becomes_a_redacted_genai_span(
    chat: Page, otlp: OtlpReceiver, module_db: Engine
) -> None:
    send_and_wait(chat, PII_MESSAGE)
    expect(chat.locator(".bubble-user").last).to_contain_text("jane.doe@example.com")
    trace_id = f"{trace_id_for(last_correlation_id(module_db)):032x}"
    [span] = otlp.wait_for(
        lambda r: [s for s in r.spans if s.trace_id == trace_id and s.name.startswith("chat ")],
        timeout=20,
    )
    assert span.name == "chat openai/fake" and span.kind == "client"
    attrs = span.attributes
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "openai"
    assert attrs["gen_ai.request.model"] == "openai/fake"
    assert attrs["gen_ai.usage.input_tokens"] > 0 and attrs["gen_ai.usage.output_tokens"] > 0
    assert "[EMAIL]" in attrs["gen_ai.input.messages"]
    assert "[CARD]" in attrs["gen_ai.input.messages"]
    assert attrs["chatmon.prompt_version"]
    assert span.resource["service.name"] == "chatmon-it"
    assert span.resource["service.version"] == __version__
    assert span.resource["deployment.environment.name"] == "integration"
    raw = b"".join(otlp.state.raw_bodies)
    assert b"jane.doe@example.com" not in raw and b"4111 1111 1111 1111" not in raw
    assert LLM_KEY.encode() not in raw

    message_id = chat.locator("[id^=message-]").last.get_attribute("id").removeprefix("message-")
    chat.click(f"#thumb-down-{message_id}")
    [feedback] = otlp.wait_for(
        lambda r: [s for s in r.spans if s.trace_id == trace_id and s.name == "chatmon.feedback"],
        timeout=20,
    )
    assert feedback.parent_span_id == span.span_id
    assert feedback.attributes["chatmon.feedback.rating"] == -1


def test_backend_route_exception_reaches_sentry_without_secrets(
    module_app: RunningApp, sentry: SentryReceiver, module_db: Engine
) -> None:
    # A real failure in a real route: the table /api/stats reads is gone (a botched
    # migration, say), so its query raises and nothing in the route handles it.
    with module_db.begin() as connection:
        connection.execute(text("ALTER TABLE llm_request RENAME TO llm_request_away"))
    try:
        response = httpx.get(
            module_app.url + "/api/stats?window=1h", auth=module_app.monitor_auth, timeout=20
        )
        assert response.status_code == 500
    finally:
        with module_db.begin() as connection:
            connection.execute(text("ALTER TABLE llm_request_away RENAME TO llm_request"))
    [event] = sentry.wait_for(
        lambda r: [e for e in r.events if "exception" in e and "llm_request" in str(e)], timeout=20
    )
    assert event["release"] == f"chatmon@{__version__}"
    assert event["environment"] == "integration"
    [*_, exception] = event["exception"]["values"]
    assert exception["type"] == "OperationalError"
    assert event["request"]["url"].endswith("/api/stats")
    raw = b"".join(sentry.state.raw_bodies)
    basic = base64.b64encode(f"ops:{TEST_MONITOR_PASSWORD}".encode())
    for secret in (LLM_KEY.encode(), TEST_MONITOR_PASSWORD.encode(), basic):
        assert secret not in raw
    assert b'"vars"' not in raw  # no local variables of stack frames
