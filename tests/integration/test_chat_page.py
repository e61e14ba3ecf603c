"""What a person sees on the chat page, driven in Chromium against the real app."""

from __future__ import annotations

import time
from itertools import pairwise

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from chatmon.devtools.fake_llm_server import FakeLLMServer
from chatmon.models import ChatMessage
from chatmon.services.errors import ErrorCategory, human_message
from tests.integration.conftest import MAX_MESSAGE_CHARS, RunningApp

pytestmark = pytest.mark.browser

# Records every distinct text the streaming bubble shows, as the browser paints it.
WATCH_STREAM = """
() => {
  window.__paints = [];
  const record = () => {
    const el = document.querySelector('#streaming-reply .message-body');
    if (el && el.innerText.trim() && window.__paints.at(-1) !== el.innerText) {
      window.__paints.push(el.innerText);
    }
  };
  new MutationObserver(record).observe(document.body,
    {subtree: true, childList: true, characterData: true});
}
"""


def send(page: Page, text: str) -> None:
    page.fill("#message", text)
    page.click("#send-button")


def assistant_bubbles(page: Page):
    """Finished replies and error notices (not the bubble still streaming)."""
    return page.locator(".bubble-assistant:not(.bubble-streaming), .bubble-error")


def wait_reply_done(page: Page, replies_before: int) -> None:
    """Wait until one more reply bubble is saved and the composer is back."""
    expect(assistant_bubbles(page)).to_have_count(replies_before + 1, timeout=20_000)
    expect(page.locator("#send-button")).to_be_visible()


def send_and_wait(page: Page, text: str) -> None:
    """Send a message and wait for its reply (or error notice) to finish."""
    before = assistant_bubbles(page).count()
    send(page, text)
    wait_reply_done(page, before)


def timed_send(page: Page, text: str, timeout_ms: int = 20_000) -> float:
    """Send a message; the seconds until its reply (or error notice) is shown and done."""
    before = assistant_bubbles(page).count()
    started = time.monotonic()
    send(page, text)
    expect(assistant_bubbles(page)).to_have_count(before + 1, timeout=timeout_ms)
    expect(page.locator("#send-button")).to_be_visible(timeout=timeout_ms)
    return time.monotonic() - started


def test_reply_streams_token_by_token(page: Page, fake_llm: FakeLLMServer) -> None:
    fake_llm.configure(tokens_per_second=25, reply_words=20)
    page.evaluate(WATCH_STREAM)
    send(page, "stream test please")
    expect(page.locator("#stop-button")).to_be_visible()
    expect(page.locator("#message")).to_be_disabled()
    wait_reply_done(page, 0)
    reply = assistant_bubbles(page).last
    expect(reply).to_contain_text("Echo: stream test please")
    paints = page.evaluate("window.__paints")
    assert len(paints) > 3, paints  # many partial paints before the end
    assert all(len(a) <= len(b) for a, b in pairwise(paints))
    expect(page.locator("#message")).to_be_enabled()


def test_thumbs_up_is_saved(page: Page, app_db: Engine) -> None:
    send_and_wait(page, "rate me")
    reply_row = page.locator("[id^=message-]").last
    message_id = int(reply_row.get_attribute("id").removeprefix("message-"))
    page.click(f"#thumb-up-{message_id}")
    expect(page.locator(f"#thumb-up-{message_id}")).to_have_attribute("data-active", "true")
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        with Session(app_db) as session:
            if session.get(ChatMessage, message_id).feedback == 1:
                return
        time.sleep(0.1)
    pytest.fail("thumbs up never reached the database")


def test_reload_keeps_the_conversation(page: Page) -> None:
    send_and_wait(page, "remember this line")
    page.reload()
    expect(page.locator(".bubble-user")).to_contain_text("remember this line")
    expect(assistant_bubbles(page).last).to_contain_text("Echo: remember this line")
    expect(page.locator("#conversation-list")).to_contain_text("remember this line")


def test_rate_limited_upstream_shows_rate_limit_message(
    page: Page, fake_llm: FakeLLMServer, app_db: Engine
) -> None:
    fake_llm.configure(fail_with="429", fail_rate=1.0)
    send_and_wait(page, "will be limited")
    error = page.locator(".bubble-error").last
    expect(error).to_contain_text(human_message(ErrorCategory.RATE_LIMIT))
    expect(error).to_contain_text("rate_limit")
    expect(error).not_to_contain_text("Traceback")
    expect(error).not_to_contain_text("injected by fake-llm")  # provider text never shown
    with Session(app_db) as session:
        stored = session.exec(
            select(ChatMessage).where(ChatMessage.error_category == "rate_limit")
        ).all()
    assert stored and stored[-1].correlation_id
    # the app stays usable: the next message gets a normal reply
    fake_llm.configure(fail_rate=0.0)
    send_and_wait(page, "after the storm")
    expect(assistant_bubbles(page).last).to_contain_text("Echo: after the storm")


def test_html_in_a_message_renders_as_text(page: Page) -> None:
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    payload = "<img src=x onerror=alert(1)> and <script>alert(2)</script>"
    send_and_wait(page, payload)
    expect(page.locator(".bubble-user").last).to_contain_text("<img src=x onerror=alert(1)>")
    assert page.locator("#messages img").count() == 0
    assert page.locator("#messages script").count() == 0
    assert dialogs == []


def test_stop_cancels_reply_in_flight(page: Page, fake_llm: FakeLLMServer) -> None:
    fake_llm.configure(tokens_per_second=2, reply_words=40)
    send(page, "a slow one")
    expect(page.locator("#streaming-reply")).to_contain_text("Echo:")
    page.click("#stop-button")
    wait_reply_done(page, 0)
    reply = assistant_bubbles(page).last
    expect(reply).to_contain_text("(stopped)")
    expect(page.locator("#message")).to_be_enabled()


def test_system_prompt_file_is_hot_reloaded(
    page: Page, fake_llm: FakeLLMServer, app_server: RunningApp
) -> None:
    app_server.prompt_file.write_text("You only speak in haiku.")
    send_and_wait(page, "prompt check")
    sent = fake_llm.requests[-1]["messages"]
    assert sent[0] == {"role": "system", "content": "You only speak in haiku."}
    app_server.prompt_file.write_text("You are the integration-test assistant.")


def test_temperature_and_history_reach_the_provider(page: Page, fake_llm: FakeLLMServer) -> None:
    send_and_wait(page, "first question")
    send_and_wait(page, "second question")
    body = fake_llm.requests[-1]
    assert body["temperature"] == 0.7
    roles = [m["role"] for m in body["messages"]]
    assert roles == ["system", "user", "assistant", "user"]
    assert body["messages"][-1]["content"] == "second question"


def test_over_long_message_is_refused_and_kept(page: Page, fake_llm: FakeLLMServer) -> None:
    hits_before = fake_llm.hits
    send(page, "x" * (MAX_MESSAGE_CHARS + 1))
    expect(page.locator("#composer-too-long")).to_contain_text(f"limit is {MAX_MESSAGE_CHARS:,}")
    assert fake_llm.hits == hits_before
    assert len(page.input_value("#message")) == MAX_MESSAGE_CHARS + 1  # nothing lost


def test_sidebar_new_rename_delete(page: Page) -> None:
    send_and_wait(page, "first chat")
    page.click("#new-chat")
    expect(page.locator("#empty-chat")).to_be_visible()
    send_and_wait(page, "second chat")
    rows = page.locator(".conversation-row")
    expect(rows).to_have_count(2)
    # open the first conversation again
    page.locator(".conversation-title", has_text="first chat").click()
    expect(page.locator(".bubble-user").last).to_contain_text("first chat")
    # rename it
    first_row = page.locator(".conversation-row", has_text="first chat")
    first_row.locator("[id^=rename-]").click()
    page.fill("#rename-input", "Renamed chat")
    page.click("#rename-save")
    expect(page.locator("#conversation-list")).to_contain_text("Renamed chat")
    # delete it
    page.locator(".conversation-row", has_text="Renamed chat").locator("[id^=delete-]").click()
    expect(rows).to_have_count(1)
    expect(page.locator("#conversation-list")).not_to_contain_text("Renamed chat")
    expect(page.locator("#empty-chat")).to_be_visible()


def test_clear_chat_empties_the_conversation(page: Page) -> None:
    send_and_wait(page, "to be cleared")
    page.click("#clear-chat")
    expect(page.locator("#empty-chat")).to_be_visible()
    page.reload()
    expect(page.locator("#empty-chat")).to_be_visible()


def test_model_name_is_visible(page: Page) -> None:
    expect(page.locator("#model-name")).to_have_text("openai/fake")
