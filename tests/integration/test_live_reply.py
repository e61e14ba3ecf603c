"""A long reply streams into the page progressively, as Markdown, and arrives exactly.

The live text reaches the page as coalesced, append-only frames beside the state
(chatmon/states/live.py, assets/live_reply.js); these tests watch what Chromium paints.
"""

from __future__ import annotations

import time
from itertools import pairwise

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from chatmon.devtools.fake_llm import expected_reply
from chatmon.devtools.fake_llm_server import FakeLLMServer
from chatmon.models import ChatMessage

pytestmark = pytest.mark.browser

# Every distinct text the streaming bubble paints, and whether it held rendered Markdown.
WATCH = """
() => {
  window.__paints = [];
  window.__markdownWhileStreaming = false;
  const record = () => {
    const el = document.querySelector('#streaming-reply .message-body');
    if (!el) return;
    if (el.querySelector('strong') && el.querySelector('code')) {
      window.__markdownWhileStreaming = true;
    }
    const text = el.innerText;
    if (text.trim() && window.__paints.at(-1) !== text) window.__paints.push(text);
  };
  new MutationObserver(record).observe(document.body,
    {subtree: true, childList: true, characterData: true});
}
"""
MESSAGE = "render **bold words** and `inline code` please"


def _finished(page: Page):
    return page.locator(".bubble-assistant:not(.bubble-streaming)")


def _stored_reply(engine: Engine, correlation_hint: str) -> str:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        with Session(engine) as session:
            rows = session.exec(
                select(ChatMessage)
                .where(ChatMessage.role == "assistant")
                .order_by(
                    ChatMessage.id.desc()  # type: ignore[union-attr]  # SQLModel types the column as int | None
                )
            ).all()
        for row in rows:
            if correlation_hint in row.content:
                return row.content
        time.sleep(0.2)
    pytest.fail("the reply was never saved")


def test_long_reply_streams_progressively_as_markdown_and_arrives_exactly(
    page: Page, fake_llm: FakeLLMServer, app_db: Engine
) -> None:
    words = 300
    fake_llm.configure(tokens_per_second=80, reply_words=words)
    page.evaluate(WATCH)
    page.fill("#message", MESSAGE)
    page.click("#send-button")
    expect(_finished(page)).to_have_count(1, timeout=60_000)

    paints: list[str] = page.evaluate("window.__paints")
    assert len(paints) >= 10, paints  # seen growing, not in one piece
    for shorter, longer in pairwise(paints):
        assert longer.startswith(shorter.rstrip()), (shorter[-80:], longer[:80])
    assert page.evaluate("window.__markdownWhileStreaming"), "Markdown not rendered live"

    sent = expected_reply(MESSAGE, words)
    assert _stored_reply(app_db, "render **bold words**") == sent  # exactly what was sent
    final = _finished(page).last
    expect(final.locator("strong")).to_have_text("bold words")
    expect(final.locator("code").first).to_have_text("inline code")
    final_text = final.locator(".message-body").inner_text()
    assert final_text.startswith(paints[-1].rstrip()[:200])
    assert final_text.rstrip().endswith(sent.rsplit(" ", 1)[-1].rstrip())
    assert page.locator("#streaming-reply").count() == 0


def test_reload_mid_stream_shows_the_text_so_far_and_continues(
    page: Page, fake_llm: FakeLLMServer, app_db: Engine
) -> None:
    words = 60
    fake_llm.configure(tokens_per_second=10, reply_words=words)
    message = "reload while you talk"
    page.fill("#message", message)
    page.click("#send-button")
    expect(page.locator("#streaming-reply .message-body")).to_contain_text("lorem ipsum")
    page.reload()
    # The reloaded tab asks for the text so far: it shows the start of the reply again,
    # before the reply has finished.
    live = page.locator("#streaming-reply .message-body")
    expect(live).to_contain_text("Echo: reload while you talk", timeout=10_000)
    shown = live.inner_text()
    expect(_finished(page)).to_have_count(1, timeout=60_000)
    assert _stored_reply(app_db, message) == expected_reply(message, words)
    assert expected_reply(message, words).startswith(shown.strip()[:40])


def test_reply_follows_the_bottom_unless_the_reader_scrolled_up(
    page: Page, fake_llm: FakeLLMServer
) -> None:
    fake_llm.configure(tokens_per_second=60, reply_words=400)
    page.fill("#message", "a reply longer than the window")
    page.click("#send-button")
    live = page.locator("#streaming-reply .message-body")
    expect(live).to_contain_text("lorem ipsum")
    page.wait_for_function(
        "() => { const m = document.getElementById('messages');"
        " return m.scrollHeight > m.clientHeight + 200; }",
        timeout=30_000,
    )
    at_bottom = (
        "() => { const m = document.getElementById('messages');"
        " return m.scrollHeight - m.scrollTop - m.clientHeight < 80; }"
    )
    assert page.evaluate(at_bottom)  # followed the reply down
    page.evaluate("document.getElementById('messages').scrollTop = 0")
    page.wait_for_timeout(1000)  # more text arrives meanwhile
    assert page.evaluate("document.getElementById('messages').scrollTop") < 50  # left alone
    expect(_finished(page)).to_have_count(1, timeout=60_000)


def test_finished_replies_show_their_whole_text_in_later_turns_and_after_a_reload(
    page: Page, fake_llm: FakeLLMServer
) -> None:
    """A finished reply's text is not sent again (the page rebuilds it from the live
    frames, chatmon/states/message_wire.py): it still shows exactly, also once it
    moved on with later turns, and a reload shows it from the conversation."""
    words = 40
    fake_llm.configure(tokens_per_second=60, reply_words=words)
    messages = ["first question here", "second question here", "third question here"]
    for turn, message in enumerate(messages, start=1):
        page.fill("#message", message)
        page.click("#send-button")
        expect(_finished(page)).to_have_count(turn, timeout=60_000)
        expect(page.locator("#message")).to_have_value("")  # the composer emptied itself
    bodies = _finished(page).locator(".message-body")

    def shown() -> list[str]:
        return [" ".join(text.split()) for text in bodies.all_inner_texts()]

    sent = [" ".join(expected_reply(m, words).split()) for m in messages]
    assert shown() == sent
    page.reload()
    expect(_finished(page)).to_have_count(len(messages), timeout=30_000)
    assert shown() == sent
