"""Implicit signals through the real chat: a person stops a slow reply and asks again in
other words; the request log, /api/stats and /metrics say so (Chromium, the real app,
the fake upstream)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

import httpx
import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from chatmon.devtools.fake_llm_server import FakeLLMServer
from chatmon.models import ChatMessage, LLMRequest
from chatmon.services import implicit_signals
from tests.integration.conftest import RunningApp

pytestmark = pytest.mark.browser

T = TypeVar("T")
QUESTION = "which port does the integration server listen on"
REPHRASED = "on which port does this integration server listen please"


def _replies(page: Page):
    return page.locator(".bubble-assistant:not(.bubble-streaming), .bubble-error")


def _reply_row(engine: Engine, question: str) -> LLMRequest | None:
    """The recorded request of the reply to ``question``, once it is written."""
    with Session(engine) as session:
        asked = session.exec(
            select(ChatMessage).where(
                col(ChatMessage.role) == "user", col(ChatMessage.content) == question
            )
        ).first()
        if asked is None:
            return None
        reply = session.exec(
            select(ChatMessage)
            .where(col(ChatMessage.conversation_id) == asked.conversation_id)
            .where(col(ChatMessage.role) == "assistant", col(ChatMessage.id) > asked.id)
            .order_by(col(ChatMessage.id))
        ).first()
        if reply is None or not reply.correlation_id:
            return None
        return session.exec(
            select(LLMRequest).where(col(LLMRequest.correlation_id) == reply.correlation_id)
        ).first()


def _eventually(read: Callable[[], T], done: Callable[[T], object], timeout: float = 15.0) -> T:
    deadline = time.monotonic() + timeout
    value = read()
    while not done(value) and time.monotonic() < deadline:
        time.sleep(0.2)
        value = read()
    return value


def _implicit_total(app: RunningApp, signal: str) -> float:
    text = httpx.get(app.url + "/metrics", auth=app.monitor_auth, timeout=30).text
    line = f'chatmon_implicit_feedback_total{{signal="{signal}"}}'
    return sum(float(row.rsplit(" ", 1)[1]) for row in text.splitlines() if row.startswith(line))


def test_a_stopped_reply_asked_again_in_other_words_is_flagged_twice(
    page: Page, fake_llm: FakeLLMServer, app_db: Engine, app_server: RunningApp
) -> None:
    stopped_before = _implicit_total(app_server, "stopped")
    rephrased_before = _implicit_total(app_server, "rephrased")
    stats_before = httpx.get(
        app_server.url + "/api/stats?window=1h", auth=app_server.monitor_auth, timeout=30
    ).json()["implicit_flags"]

    fake_llm.configure(tokens_per_second=2, reply_words=40)
    page.fill("#message", QUESTION)
    page.click("#send-button")
    # the first reply of a fresh app waits for its model client to warm up
    expect(page.locator("#streaming-reply")).to_contain_text("Echo:", timeout=60_000)
    page.click("#stop-button")
    expect(_replies(page)).to_have_count(1)
    expect(_replies(page).last).to_contain_text("(stopped)")

    fake_llm.configure(tokens_per_second=200, reply_words=5)
    page.fill("#message", REPHRASED)
    page.click("#send-button")
    expect(_replies(page)).to_have_count(2, timeout=30_000)

    second = _eventually(lambda: _reply_row(app_db, REPHRASED), lambda row: row is not None)
    first = _eventually(
        lambda: _reply_row(app_db, QUESTION), lambda row: row is not None and row.implicit_flags
    )
    assert first is not None and second is not None
    assert first.status == "cancelled"
    assert implicit_signals.bits(first.implicit_flags) == ["stopped", "rephrased"]
    assert second.implicit_flags == 0
    stats = httpx.get(
        app_server.url + "/api/stats?window=1h", auth=app_server.monitor_auth, timeout=30
    ).json()
    assert stats["implicit_flags"]["stopped"] == stats_before["stopped"] + 1
    assert stats["implicit_flags"]["rephrased"] == stats_before["rephrased"] + 1
    counted = _eventually(
        lambda: (_implicit_total(app_server, "stopped"), _implicit_total(app_server, "rephrased")),
        lambda totals: totals == (stopped_before + 1, rephrased_before + 1),
    )
    assert counted == (stopped_before + 1, rephrased_before + 1)
