"""Copy, regenerate and flip, edit and resend, export: driven in Chromium against the real app."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, expect
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from chatmon.devtools.fake_llm import expected_reply
from chatmon.devtools.fake_llm_server import FakeLLMServer
from chatmon.models import ChatMessage, LLMRequest
from tests.integration.conftest import RunningApp
from tests.integration.test_chat_page import assistant_bubbles, send_and_wait

pytestmark = pytest.mark.browser


def _rows(page: Page) -> Locator:
    return page.locator("[id^=message-]")


def _id_of(row: Locator) -> int:
    return int((row.get_attribute("id") or "").removeprefix("message-"))


def _wait_idle(page: Page) -> None:
    expect(page.locator("#send-button")).to_be_visible(timeout=20_000)


def _recorded(engine: Engine, correlation_ids: list[str]) -> list[str]:
    """Which of these requests the request log holds (its writer may lag a little)."""
    deadline = time.monotonic() + 10
    found: list[str] = []
    while time.monotonic() < deadline:
        with Session(engine) as session:
            found = list(
                session.exec(
                    select(LLMRequest.correlation_id).where(
                        col(LLMRequest.correlation_id).in_(correlation_ids)
                    )
                )
            )
        if len(found) == len(correlation_ids):
            break
        time.sleep(0.2)
    return sorted(found)


def test_copy_puts_the_message_text_on_the_clipboard(
    page: Page, app_server: RunningApp, fake_llm: FakeLLMServer
) -> None:
    page.context.grant_permissions(["clipboard-read", "clipboard-write"], origin=app_server.url)
    send_and_wait(page, "copy **me** please")
    question, reply = _rows(page).nth(0), _rows(page).nth(1)
    page.click(f"#copy-{_id_of(reply)}")
    assert page.evaluate("navigator.clipboard.readText()") == expected_reply("copy **me** please")
    page.click(f"#copy-{_id_of(question)}")
    assert page.evaluate("navigator.clipboard.readText()") == "copy **me** please"


def test_regenerate_keeps_the_old_reply_to_flip_back_to(
    page: Page, fake_llm: FakeLLMServer, app_db: Engine, app_server: RunningApp
) -> None:
    send_and_wait(page, "answer me twice")
    first = _rows(page).nth(1)
    first_id = _id_of(first)
    first_text = expected_reply("answer me twice")
    fake_llm.configure(reply_words=30)  # the second reply reads differently
    page.click(f"#regenerate-{first_id}")
    expect(page.locator("#stop-button")).to_be_visible()
    _wait_idle(page)
    expect(assistant_bubbles(page)).to_have_count(1)
    second = _rows(page).nth(1)
    second_id = _id_of(second)
    assert second_id != first_id
    expect(page.locator(f"#alt-pos-{second_id}")).to_have_text("2/2")
    expect(second).to_contain_text(expected_reply("answer me twice", 30).split()[-1])
    page.click(f"#alt-prev-{second_id}")
    expect(page.locator(f"#message-{first_id}")).to_contain_text(first_text.strip())
    expect(page.locator(f"#alt-pos-{first_id}")).to_have_text("1/2")
    expect(page.locator(f"#alt-prev-{first_id}")).to_be_disabled()
    # the choice is saved: a reload shows the same alternative
    page.reload()
    page.wait_for_selector("#chat-loaded", state="attached")
    expect(page.locator(f"#alt-pos-{first_id}")).to_have_text("1/2")
    page.click(f"#alt-next-{first_id}")
    expect(page.locator(f"#alt-pos-{second_id}")).to_have_text("2/2")
    with Session(app_db) as session:
        replies = [session.get(ChatMessage, i) for i in (first_id, second_id)]
    ids = [r.correlation_id or "" for r in replies if r is not None]
    assert len(set(ids)) == 2
    assert _recorded(app_db, ids) == sorted(ids)  # each reply is a request of its own


def test_edit_and_resend_branches_the_conversation(
    page: Page, app_db: Engine, fake_llm: FakeLLMServer
) -> None:
    send_and_wait(page, "first question")
    send_and_wait(page, "follow-up")
    expect(_rows(page)).to_have_count(4)
    question_id = _id_of(_rows(page).nth(0))
    page.click(f"#edit-{question_id}")
    box = page.locator("#edit-text")
    expect(box).to_have_value("first question")
    box.fill("a better first question")
    page.click("#edit-send")
    _wait_idle(page)
    expect(_rows(page)).to_have_count(2)
    edited = _rows(page).nth(0)
    expect(edited).to_contain_text("a better first question")
    expect(_rows(page).nth(1)).to_contain_text("Echo: a better first question")
    edited_id = _id_of(edited)
    expect(page.locator(f"#alt-pos-{edited_id}")).to_have_text("2/2")
    # the old branch, with its follow-up, is one click away
    page.click(f"#alt-prev-{edited_id}")
    expect(_rows(page)).to_have_count(4)
    expect(_rows(page).nth(0)).to_contain_text("first question")
    expect(_rows(page).nth(2)).to_contain_text("follow-up")
    expect(page.locator(f"#alt-pos-{question_id}")).to_have_text("1/2")
    # an edit box closes without changing anything
    page.click(f"#edit-{question_id}")
    page.click("#edit-cancel")
    expect(page.locator("#edit-form")).to_have_count(0)
    expect(_rows(page)).to_have_count(4)
    with Session(app_db) as session:
        row = session.get(ChatMessage, edited_id)
        assert row is not None and row.content == "a better first question"


def test_export_downloads_the_conversation_as_markdown(
    page: Page, tmp_path: Path, fake_llm: FakeLLMServer
) -> None:
    send_and_wait(page, "export this chat")
    with page.expect_download() as info:
        page.click("#export-chat")
    download = info.value
    assert download.suggested_filename == "chatmon-export-this-chat.md"
    target = tmp_path / "export.md"
    download.save_as(target)
    text = target.read_text(encoding="utf-8")
    assert text.startswith("# export this chat\n")
    assert "**You:**\n\nexport this chat" in text
    assert "**Assistant:**\n\n" + expected_reply("export this chat").strip() in text


def test_a_reload_while_a_regenerated_reply_streams_shows_only_the_new_one(
    page: Page, fake_llm: FakeLLMServer
) -> None:
    send_and_wait(page, "regenerate, then reload")
    old_id = _id_of(_rows(page).nth(1))
    fake_llm.configure(tokens_per_second=15, reply_words=60)
    page.click(f"#regenerate-{old_id}")
    live = page.locator("#streaming-reply")
    expect(live).to_contain_text("Echo: regenerate, then reload")
    page.reload()
    page.wait_for_selector("#chat-loaded", state="attached")
    expect(live).to_contain_text("Echo: regenerate, then reload", timeout=10_000)
    expect(page.locator(f"#message-{old_id}")).to_have_count(0)  # the replaced reply
    expect(page.locator("#send-button")).to_be_visible(timeout=30_000)
    expect(assistant_bubbles(page)).to_have_count(1)
    new_id = _id_of(_rows(page).nth(1))
    assert new_id != old_id
    expect(page.locator(f"#alt-pos-{new_id}")).to_have_text("2/2")
