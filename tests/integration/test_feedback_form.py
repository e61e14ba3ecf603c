"""The reason/comment form a rating opens, driven in Chromium against the real app."""

from __future__ import annotations

import time

import pytest
from playwright.sync_api import Page, expect
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from chatmon.models import ChatMessage, LLMRequest
from tests.integration.test_chat_page import send_and_wait

pytestmark = pytest.mark.browser


def test_thumbs_down_with_a_reason_and_a_comment_is_stored(page: Page, app_db: Engine) -> None:
    send_and_wait(page, "judge me")
    reply_row = page.locator("[id^=message-]").last
    message_id = int((reply_row.get_attribute("id") or "").removeprefix("message-"))
    page.click(f"#thumb-down-{message_id}")
    form = page.locator("#feedback-form")
    expect(form).to_be_visible()
    form.get_by_label("wrong").check()
    form.get_by_label("too slow").check()
    page.fill("#feedback-comment", "  the answer was made up  ")
    page.click("#feedback-send")
    expect(form).to_have_count(0)
    expect(reply_row.locator(".feedback-given")).to_contain_text("wrong,too slow")
    deadline = time.monotonic() + 10
    stored: tuple[object, ...] = ()
    while time.monotonic() < deadline:
        with Session(app_db) as session:
            message = session.get(ChatMessage, message_id)
            assert message is not None
            request = session.exec(
                select(LLMRequest).where(LLMRequest.correlation_id == message.correlation_id)
            ).first()
            stored = (
                message.feedback,
                message.feedback_reasons,
                message.feedback_comment,
                request.feedback_reasons if request else None,
            )
        if stored == (-1, "wrong,too slow", "the answer was made up", "wrong,too slow"):
            return
        time.sleep(0.2)
    pytest.fail(f"feedback never fully reached the database: {stored}")
