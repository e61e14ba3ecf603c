"""The real app with Langfuse, secrets and PII: traces arrive redacted, a hung Langfuse
changes nothing for the chat, and no secret appears in any log, DB row, /metrics or /health.

One extra app instance (``launch_app``) with LANGFUSE_* pointing at a local
Langfuse-compatible receiver over real HTTP, every secret setting filled in, and
LOG_LEVEL=DEBUG so that LiteLLM's own chatter (request details included) goes
through our logging and must be masked there.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from chatmon.devtools.fake_llm_server import FakeLLMServer
from chatmon.devtools.langfuse_receiver import LangfuseReceiver
from chatmon.services.tracing import trace_id_for
from tests.integration.conftest import RunningApp, last_correlation_id, launch_app
from tests.integration.test_chat_page import assistant_bubbles, send_and_wait, timed_send

pytestmark = pytest.mark.browser

PUBLIC_KEY = "pk-lf-integration-0001"
SECRETS = {
    "LLM_API_KEY": "sk-integration-secret-key-7f3a9c",
    "LANGFUSE_SECRET_KEY": "sk-lf-integration-secret-5e2d1b",
    "METRICS_TOKEN": "metrics-token-secret-9d8c7b",
    "SMTP_PASSWORD": "smtp-password-secret-4a5b6c",
    "SLACK_WEBHOOK_URL": "http://127.0.0.1:9/services/T000/B000/webhook-secret-3c2b1a",
}
PII_MESSAGE = "Please email jane.doe@example.com or charge card 4111 1111 1111 1111"


@pytest.fixture(scope="module")
def receiver() -> Iterator[LangfuseReceiver]:
    with LangfuseReceiver(
        public_key=PUBLIC_KEY, secret_key=SECRETS["LANGFUSE_SECRET_KEY"]
    ) as server:
        yield server


@pytest.fixture(scope="module")
def module_app(
    fake_llm: FakeLLMServer, receiver: LangfuseReceiver, workdir: Path
) -> Iterator[RunningApp]:
    """This module's app: traced to the Langfuse receiver, every secret set, DEBUG logs."""
    with launch_app(
        workdir=workdir,
        fake_llm_url=fake_llm.url,
        LANGFUSE_PUBLIC_KEY=PUBLIC_KEY,
        LANGFUSE_HOST=receiver.url,
        LANGFUSE_TIMEOUT="1",
        LOG_LEVEL="DEBUG",
        SMTP_HOST="127.0.0.1",
        SMTP_PORT="9",
        SMTP_USER="alerts",
        ALERT_EMAIL_FROM="chatmon@example.com",
        ALERT_EMAIL_TO="ops@example.com",
        **SECRETS,
    ) as app:
        yield app


def test_chat_is_unaffected_while_langfuse_hangs(chat: Page, receiver: LangfuseReceiver) -> None:
    # The first reply of a fresh server pays LiteLLM's imports (seconds on a busy machine).
    timed_send(chat, "warm-up message", timeout_ms=120_000)
    baseline = timed_send(chat, "baseline message while Langfuse answers")
    receiver.set_hang(True)
    try:
        timed_send(chat, "first message while Langfuse hangs")
        # The SDK's exporter is now stuck on the receiver (it flushes every second).
        receiver.wait_for(lambda r: r.state.hung >= 1, timeout=15)
        elapsed = timed_send(chat, "second message while Langfuse hangs")
        expect(assistant_bubbles(chat).last).to_contain_text(
            "Echo: second message while Langfuse hangs"
        )
        print(f"\nreply with Langfuse answering: {baseline:.2f} s, while it hangs: {elapsed:.2f} s")
        assert elapsed < baseline + 3, (
            f"{elapsed:.1f} s while Langfuse hung vs {baseline:.1f} s before"
        )
        assert receiver.state.hung >= 1
    finally:
        receiver.set_hang(False)


def test_request_is_traced_redacted_and_rated(
    chat: Page, receiver: LangfuseReceiver, module_db: Engine
) -> None:
    send_and_wait(chat, PII_MESSAGE)
    # The person still sees their own words.
    expect(chat.locator(".bubble-user").last).to_contain_text("jane.doe@example.com")
    correlation_id = last_correlation_id(module_db)
    trace_id = trace_id_for(correlation_id)
    spans = receiver.wait_for(lambda r: [s for s in r.spans if s.trace_id == trace_id], timeout=20)
    [span] = spans
    attrs = span.attributes
    assert attrs["langfuse.observation.type"] == "generation"
    assert attrs["langfuse.observation.model.name"] == "openai/fake"
    assert attrs["langfuse.observation.input"] == "Please email [EMAIL] or charge card [CARD]"
    assert "[EMAIL]" in attrs["langfuse.observation.output"]  # the fake echoes the message
    assert (
        "usage_details" in "".join(attrs) and "langfuse.observation.completion_start_time" in attrs
    )
    assert attrs["session.id"] and attrs["user.id"]
    raw = b"".join(receiver.state.raw_bodies)
    assert b"jane.doe@example.com" not in raw and b"4111 1111 1111 1111" not in raw

    message_id = chat.locator("[id^=message-]").last.get_attribute("id").removeprefix("message-")
    chat.click(f"#thumb-down-{message_id}")
    scores = receiver.wait_for(
        lambda r: [s for s in r.scores if s.get("traceId") == trace_id], timeout=20
    )
    assert scores[-1]["name"] == "user-feedback" and scores[-1]["value"] == -1.0


def test_no_secret_in_logs_db_metrics_health_or_traces(
    chat: Page,
    module_app: RunningApp,
    module_db: Engine,
    receiver: LangfuseReceiver,
    fake_llm: FakeLLMServer,
    workdir: Path,
) -> None:
    send_and_wait(chat, "a normal question")
    fake_llm.configure(fail_first=1, fail_with="401")  # the provider rejects the key
    send_and_wait(chat, "this one fails with 401")
    expect(assistant_bubbles(chat).last).to_contain_text("credentials")

    unauthorized = httpx.get(module_app.url + "/metrics", timeout=10)
    assert unauthorized.status_code == 401
    metrics_text = httpx.get(
        module_app.url + "/metrics",
        headers={"Authorization": f"Bearer {SECRETS['METRICS_TOKEN']}"},
        timeout=10,
    ).text
    assert (
        'chatmon_llm_requests_total{error_type="auth",model="openai/fake",status="error"}'
        in metrics_text
    )
    health_text = httpx.get(module_app.url + "/health", timeout=10).text
    time.sleep(2)  # let the request log and the log files catch up

    with module_db.connect() as connection:
        rows = [
            repr(tuple(row))
            for table in inspect(connection).get_table_names()
            for row in connection.execute(text(f'SELECT * FROM "{table}"'))
        ]
    stdout_log = module_app.log_file.read_text(errors="replace")
    file_logs = "".join(p.read_text(errors="replace") for p in workdir.glob("chatmon.log*"))
    traces = b"".join(receiver.state.raw_bodies).decode("utf-8", errors="replace")
    places = {
        "stdout log": stdout_log,
        "LOG_FILE": file_logs,
        "database": "\n".join(rows),
        "/metrics": metrics_text,
        "/health": health_text,
        "Langfuse payloads": traces,
        "chat page (error message shown)": chat.content(),
    }
    # The places are really filled: DEBUG logs of both requests, rows, traces.
    assert '"level": "DEBUG"' in file_logs and "this one fails with 401" in "\n".join(rows)
    assert '"logger": "LiteLLM' in file_logs  # LiteLLM's chatter went through our handlers
    for place, content in places.items():
        for name, secret in SECRETS.items():
            assert secret not in content, f"{name} leaked into {place}"
        assert "webhook-secret" not in content and "integration-secret" not in content, place
