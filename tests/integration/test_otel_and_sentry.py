"""The real app with OpenTelemetry export and Sentry on (and no Langfuse): request spans
reach a local OTLP receiver redacted (a rating as a child span), a hung collector changes
nothing for the chat, and an exception in a backend route reaches a local Sentry envelope
receiver without secrets.

One extra app instance (``launch_app``) with OTEL_EXPORTER_OTLP_ENDPOINT and SENTRY_DSN
pointing at the receivers over real HTTP.
"""

from __future__ import annotations

import base64
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import text
from sqlalchemy.engine import Engine

from chatmon import __version__
from chatmon.db import make_engine
from chatmon.devtools.fake_llm import FakeLLMServer
from chatmon.devtools.otlp_receiver import OtlpReceiver
from chatmon.devtools.sentry_receiver import SentryReceiver
from chatmon.observability.otel_export import trace_id_for
from tests.integration.conftest import TEST_MONITOR_PASSWORD, RunningApp, launch_app
from tests.integration.test_chat_page import assistant_bubbles, send, send_and_wait

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
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("otel-app")


@pytest.fixture(scope="module")
def exporting_app(
    fake_llm: FakeLLMServer, otlp: OtlpReceiver, sentry: SentryReceiver, workdir: Path
) -> Iterator[RunningApp]:
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


@pytest.fixture(scope="module")
def app_engine(exporting_app: RunningApp) -> Iterator[Engine]:
    engine = make_engine(exporting_app.database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def chat(browser: Browser, exporting_app: RunningApp) -> Iterator[Page]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(exporting_app.url + "/")
    page.wait_for_selector("#message:not([disabled])")
    page.wait_for_selector("#chat-loaded", state="attached")
    yield page
    context.close()


def _last_correlation_id(db: Engine) -> str:
    with db.connect() as connection:
        return connection.execute(
            text(
                "SELECT correlation_id FROM chatmessage WHERE role = 'assistant' "
                "AND correlation_id IS NOT NULL ORDER BY id DESC LIMIT 1"
            )
        ).scalar_one()


def _timed_send(page: Page, message: str, timeout_ms: int = 20_000) -> float:
    before = assistant_bubbles(page).count()
    started = time.monotonic()
    send(page, message)
    expect(assistant_bubbles(page)).to_have_count(before + 1, timeout=timeout_ms)
    expect(page.locator("#send-button")).to_be_visible(timeout=timeout_ms)
    return time.monotonic() - started


def test_chat_is_unaffected_while_the_collector_hangs(chat: Page, otlp: OtlpReceiver) -> None:
    # The first reply of a fresh server pays LiteLLM's imports (seconds on a busy machine).
    _timed_send(chat, "warm-up message", timeout_ms=120_000)
    baseline = _timed_send(chat, "baseline message while the collector answers")
    otlp.set_hang(True)
    try:
        _timed_send(chat, "first message while the collector hangs")
        # The batch processor exports every second: it is stuck on the receiver now.
        otlp.wait_for(lambda r: r.state.hung >= 1, timeout=15)
        elapsed = _timed_send(chat, "second message while the collector hangs")
        expect(assistant_bubbles(chat).last).to_contain_text(
            "Echo: second message while the collector hangs"
        )
        print(f"\nreply with the collector answering: {baseline:.2f} s, hung: {elapsed:.2f} s")
        assert elapsed < baseline + 3, f"{elapsed:.1f} s while it hung vs {baseline:.1f} s"
    finally:
        otlp.set_hang(False)


def test_request_becomes_a_redacted_genai_span(
    chat: Page, otlp: OtlpReceiver, app_engine: Engine
) -> None:
    send_and_wait(chat, PII_MESSAGE)
    expect(chat.locator(".bubble-user").last).to_contain_text("jane.doe@example.com")
    trace_id = f"{trace_id_for(_last_correlation_id(app_engine)):032x}"
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
    exporting_app: RunningApp, sentry: SentryReceiver, app_engine: Engine
) -> None:
    # A real failure in a real route: the table /api/stats reads is gone (a botched
    # migration, say), so its query raises and nothing in the route handles it.
    with app_engine.begin() as connection:
        connection.execute(text("ALTER TABLE llm_request RENAME TO llm_request_away"))
    try:
        response = httpx.get(
            exporting_app.url + "/api/stats?window=1h", auth=exporting_app.monitor_auth, timeout=20
        )
        assert response.status_code == 500
    finally:
        with app_engine.begin() as connection:
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
