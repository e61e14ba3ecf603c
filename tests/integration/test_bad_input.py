"""Bad input gets a clear refusal, and nothing is stored wrongly or lost."""

from __future__ import annotations

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from chatmon.devtools.fake_llm_server import FakeLLMServer
from chatmon.models import ChatMessage, Conversation
from tests.integration.conftest import MAX_MESSAGE_CHARS, RunningApp

pytestmark = pytest.mark.browser
REPLY_TIMEOUT = 20_000  # ms; the machine is shared with other test runs


def _send(page: Page, text: str) -> None:
    page.fill("#message", text)
    page.click("#send-button")


@pytest.mark.parametrize("text", ["", "   \n\t  "])
def test_empty_message_is_refused(page: Page, fake_llm: FakeLLMServer, text: str) -> None:
    _send(page, text)
    expect(page.locator("#notice")).to_contain_text("Type a message first")
    assert fake_llm.hits == 0
    expect(page.locator(".bubble-user")).to_have_count(0)


def test_one_megabyte_message_is_stopped_in_the_page_and_kept(
    page: Page, fake_llm: FakeLLMServer
) -> None:
    """The server reads no websocket message longer than a maximum-length chat message
    needs, so the composer stops a longer one before it leaves the page: a notice says
    why, the counter shows the length, and the text stays in the box."""
    huge = "y" * 1_000_000
    page.eval_on_selector("#message", "(el, v) => { el.value = v; }", huge)  # no keystrokes
    page.click("#send-button")
    expect(page.locator("#composer-too-long")).to_have_text(
        f"Your message is 1,000,000 characters long; the limit is {MAX_MESSAGE_CHARS:,}. "
        "Please shorten it."
    )
    expect(page.locator("#composer-counter")).to_have_text(f"1,000,000 / {MAX_MESSAGE_CHARS:,}")
    assert len(page.input_value("#message")) == len(huge)
    assert fake_llm.hits == 0
    expect(page.locator(".bubble-user")).to_have_count(0)
    # still connected and usable
    page.fill("#message", "small after huge")
    expect(page.locator("#composer-too-long")).to_have_text("")
    page.click("#send-button")
    expect(page.locator(".bubble-assistant").last).to_contain_text(
        "Echo: small after huge", timeout=REPLY_TIMEOUT
    )


def test_typing_past_the_limit_shows_it_and_enter_sends_nothing(
    page: Page, fake_llm: FakeLLMServer
) -> None:
    page.fill("#message", "x" * MAX_MESSAGE_CHARS)
    expect(page.locator("#composer-counter")).to_have_text(
        f"{MAX_MESSAGE_CHARS:,} / {MAX_MESSAGE_CHARS:,}"
    )
    expect(page.locator("#composer-too-long")).to_have_text("")
    page.press("#message", "End")
    page.keyboard.type("!")
    expect(page.locator("#composer-counter")).to_have_attribute("data-over", "true")
    expect(page.locator("#composer-too-long")).to_contain_text(
        f"{MAX_MESSAGE_CHARS + 1:,} characters long; the limit is {MAX_MESSAGE_CHARS:,}"
    )
    page.keyboard.press("Enter")
    page.wait_for_timeout(500)
    assert fake_llm.hits == 0 and len(page.input_value("#message")) == MAX_MESSAGE_CHARS + 1
    page.keyboard.press("Backspace")
    expect(page.locator("#composer-too-long")).to_have_text("")
    page.keyboard.press("Enter")
    expect(page.locator(".bubble-assistant").last).to_contain_text(
        "Echo: xxx", timeout=REPLY_TIMEOUT
    )
    expect(page.locator("#composer-counter")).to_have_text("")  # the box was emptied


def test_page_recovers_when_the_server_drops_an_oversized_message(
    page: Page, fake_llm: FakeLLMServer
) -> None:
    """A client that skips the composer's check can still send more than the server
    reads: the server drops that websocket, the page reconnects by itself, and what the
    person typed is still there to send again."""
    page.evaluate(
        """() => {
            window.__chatmon_test = { connects: 0, disconnects: [] };
            window.__reflex_otel = {  // Reflex's instrumentation hooks, here a fat client
                onEventSend: (event) => {
                    if (window.__chatmon_test.inflate) {
                        window.__chatmon_test.inflate = false;
                        event.padding = "p".repeat(2000000);
                    }
                },
                onSocketConnect: () => { window.__chatmon_test.connects += 1; },
                onSocketDisconnect: (reason) => { window.__chatmon_test.disconnects.push(reason); },
            };
        }"""
    )
    page.fill("#message", "sent in an oversized frame")
    page.evaluate("window.__chatmon_test.inflate = true")
    page.click("#send-button")
    page.wait_for_function("() => window.__chatmon_test.disconnects.length >= 1")
    page.wait_for_function("() => window.__chatmon_test.connects >= 1")
    page.wait_for_selector("#message:not([disabled])")
    assert page.input_value("#message") == "sent in an oversized frame"
    assert fake_llm.hits == 0
    page.click("#send-button")
    expect(page.locator(".bubble-assistant").last).to_contain_text(
        "Echo: sent in an oversized frame", timeout=REPLY_TIMEOUT
    )


def test_control_characters_are_stored_clean(page: Page, app_db: Engine) -> None:
    page.eval_on_selector("#message", "(el) => { el.value = 'bell\\u0007 nul\\u0000 ok'; }")
    page.click("#send-button")
    expect(page.locator(".bubble-assistant").last).to_contain_text(
        "Echo: bell nul ok", timeout=REPLY_TIMEOUT
    )
    with Session(app_db) as session:
        stored = session.exec(select(ChatMessage).where(ChatMessage.content == "bell nul ok")).all()
    assert len(stored) == 1


def test_javascript_link_is_not_clickable_code(page: Page) -> None:
    _send(page, "[click me](javascript:alert(1)) and <a href='javascript:alert(2)'>x</a>")
    expect(page.locator(".bubble-assistant").last).to_contain_text("Echo:", timeout=REPLY_TIMEOUT)
    hrefs = page.eval_on_selector_all(
        "#messages a", "els => els.map(e => e.getAttribute('href') || '')"
    )
    assert not any(h.strip().lower().startswith("javascript:") for h in hrefs)


def test_conversation_id_of_another_browser_reveals_nothing(
    page: Page, browser: Browser, app_server: RunningApp, app_db: Engine
) -> None:
    _send(page, "alice's secret plans")
    expect(page.locator(".bubble-assistant").last).to_contain_text(
        "Echo: alice's secret plans", timeout=REPLY_TIMEOUT
    )
    alice_conversation = page.evaluate("localStorage.getItem('chatmon_conversation_id')")
    assert alice_conversation

    mallory = browser.new_context()
    try:
        other = mallory.new_page()
        other.goto(app_server.url + "/")
        other.wait_for_selector("#chat-loaded", state="attached")
        other.evaluate(f"localStorage.setItem('chatmon_conversation_id', '{alice_conversation}')")
        other.reload()
        other.wait_for_selector("#message:not([disabled])")
        expect(other.locator("#empty-chat")).to_be_visible()
        expect(other.locator("body")).not_to_contain_text("secret plans")
        other.fill("#message", "mallory writes")
        other.click("#send-button")
        expect(other.locator(".bubble-assistant").last).to_contain_text(
            "Echo: mallory writes", timeout=REPLY_TIMEOUT
        )
    finally:
        mallory.close()
    with Session(app_db) as session:
        contents = [
            m.content
            for m in session.exec(
                select(ChatMessage).where(ChatMessage.conversation_id == alice_conversation)
            )
        ]
        assert "mallory writes" not in contents
        assert session.get(Conversation, alice_conversation) is not None


@pytest.mark.parametrize(
    "query",
    [
        "window=2h",
        "window=",
        "window=1h&start=yesterday",
        "start=2026-01-02&end=2026-01-01",
        "window=%00",
        "window=" + "9" * 500,
    ],
)
def test_malformed_stats_query_is_a_clear_400(app_server: RunningApp, query: str) -> None:
    response = httpx.get(f"{app_server.url}/api/stats?{query}", auth=app_server.monitor_auth)
    assert response.status_code == 400
    assert "error" in response.json()
