"""What a person sees when the provider fails or they send too fast, in Chromium.

One extra app instance with a low rate limit and a quick circuit breaker
(``launch_app``), so the shared ``app_server`` keeps its defaults.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator

import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from chatmon.db import make_engine
from chatmon.devtools.fake_llm_server import FakeLLMServer
from chatmon.models import ChatMessage, LLMRequest
from chatmon.services.errors import ErrorCategory, human_message
from tests.integration.conftest import RunningApp, launch_app
from tests.integration.test_chat_page import assistant_bubbles
from tests.peers import wait_for

pytestmark = pytest.mark.browser

RESET_SECONDS = 12


@pytest.fixture(scope="module")
def resilient_app(
    fake_llm: FakeLLMServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningApp]:
    """chatmon with 3 messages a minute per session and a breaker that opens after 2."""
    with launch_app(
        workdir=tmp_path_factory.mktemp("resilient-app"),
        fake_llm_url=fake_llm.url,
        RATE_LIMIT_PER_MINUTE="3",
        BREAKER_FAILURE_THRESHOLD="2",
        BREAKER_RESET_SECONDS=str(RESET_SECONDS),
        LLM_MAX_RETRIES="0",
    ) as app:
        yield app


@pytest.fixture(scope="module")
def resilient_db(resilient_app: RunningApp) -> Iterator[Engine]:
    engine = make_engine(resilient_app.database_url)
    yield engine
    engine.dispose()


def open_chat(browser: Browser, url: str) -> Page:
    """A fresh browser profile (its own chat session) on the chat page."""
    page = browser.new_context(viewport={"width": 1280, "height": 900}).new_page()
    page.set_default_timeout(20_000)
    page.goto(url + "/")
    page.wait_for_selector("#message:not([disabled])")
    page.wait_for_selector("#chat-loaded", state="attached")
    return page


def send_and_wait(page: Page, text: str) -> None:
    """Send a message and wait until its reply (or error notice) is saved and shown.

    Counts saved bubbles only (the streaming bubble shares their class), so a first
    reply that is slow while the fresh server warms up is waited for, not missed.
    """
    saved = page.locator("[id^=message-] .bubble-assistant, [id^=message-] .bubble-error")
    before = saved.count()
    page.fill("#message", text)
    page.click("#send-button")
    expect(saved).to_have_count(before + 1, timeout=30_000)
    expect(page.locator("#send-button")).to_be_visible()


@pytest.fixture
def chat(browser: Browser, resilient_app: RunningApp) -> Iterator[Page]:
    page = open_chat(browser, resilient_app.url)
    yield page
    page.context.close()


def test_sending_too_fast_tells_when_to_send_again(
    chat: Page, fake_llm: FakeLLMServer, resilient_db: Engine
) -> None:
    for i in range(3):
        send_and_wait(chat, f"quick message {i}")
    chat.fill("#message", "one too many")
    chat.click("#send-button")
    refusal = chat.locator("#notice")
    expect(refusal).to_contain_text(human_message(ErrorCategory.RATE_LIMITED_LOCAL))
    expect(refusal).to_contain_text(re.compile(r"You can send again in \d+ seconds?\."))
    wait = int(re.search(r"send again in (\d+)", refusal.inner_text()).group(1))
    assert 1 <= wait <= 20  # a token every 60/3 s, less what has trickled in since
    assert chat.input_value("#message") == "one too many"  # kept, to send again later
    assert fake_llm.hits == 3  # the refused message never reached the provider

    def refusals() -> list[LLMRequest]:
        with Session(resilient_db) as session:
            query = select(LLMRequest).where(LLMRequest.error_category == "rate_limited_local")
            return list(session.exec(query).all())

    assert wait_for(lambda: len(refusals()) == 1)  # the refusal is on the monitor's record
    with Session(resilient_db) as session:
        stored = session.exec(
            select(ChatMessage).where(ChatMessage.content == "one too many")
        ).all()
    assert stored == []  # but not in the conversation
    expect(chat.locator("#message")).to_be_enabled()  # the chat stays usable


def test_degraded_banner_follows_the_breaker_without_reload(
    browser: Browser, chat: Page, fake_llm: FakeLLMServer, resilient_app: RunningApp
) -> None:
    watcher = chat  # an idle tab: it must learn of the breaker by itself
    expect(watcher.locator("#provider-banner")).to_have_count(0)
    sender = open_chat(browser, resilient_app.url)
    try:
        fake_llm.configure(fail_with="503", fail_rate=1.0)
        send_and_wait(sender, "failing one")
        send_and_wait(sender, "failing two")  # the second consecutive failure opens it
        expect(sender.locator("#provider-banner")).to_have_attribute("data-state", "open")
        expect(watcher.locator("#provider-banner")).to_contain_text("Provider degraded")
        hits = fake_llm.hits

        started = time.monotonic()
        send_and_wait(watcher, "while open")
        expect(watcher.locator(".bubble-error").last).to_contain_text("circuit_open")
        assert fake_llm.hits == hits  # refused without calling the provider
        assert time.monotonic() - started < RESET_SECONDS

        fake_llm.configure(fail_rate=0.0)
        expect(watcher.locator("#provider-banner")).to_have_attribute(
            "data-state", "half_open", timeout=(RESET_SECONDS + 5) * 1000
        )
        send_and_wait(watcher, "are you back")  # the half-open trial
        expect(assistant_bubbles(watcher).last).to_contain_text("Echo: are you back")
        expect(watcher.locator("#provider-banner")).to_have_count(0)
        expect(sender.locator("#provider-banner")).to_have_count(0, timeout=10_000)
    finally:
        sender.context.close()
