"""The review queue through the real app: a thumbs-down in the chat shows in
/api/feedback and on the review page, whose conversation view is redacted and audited
(Chromium, signed in through the real login form)."""

from __future__ import annotations

import time

import httpx
import pytest
from playwright.sync_api import Page, expect

from tests.integration.conftest import MONITOR_USER, RunningApp, sign_in

pytestmark = pytest.mark.browser


def _rated_down(app: RunningApp, text: str) -> dict:
    """The /api/feedback row of the thumbs-down given to the reply to ``text``."""
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        body = httpx.get(
            app.url + "/api/feedback",
            params={"window": "1h", "rating": "down"},
            auth=app.monitor_auth,
            timeout=10,
        ).json()
        if body["rows"]:
            return body["rows"][0]
        time.sleep(0.2)
    pytest.fail("the thumbs-down never reached /api/feedback")


def test_thumbs_down_opens_in_the_review_queue_redacted_and_audited(
    page: Page, app_server: RunningApp
) -> None:
    text = "review me, write to carol@example.com"
    before = page.locator(".bubble-assistant:not(.bubble-streaming)").count()
    page.fill("#message", text)
    page.click("#send-button")
    # The first reply of a freshly started app can take several seconds on a loaded machine.
    expect(page.locator(".bubble-assistant:not(.bubble-streaming)")).to_have_count(
        before + 1, timeout=30_000
    )
    expect(page.locator("#send-button")).to_be_visible()
    reply_id = page.locator("[id^=message-]").last.get_attribute("id").removeprefix("message-")
    page.click(f"#thumb-down-{reply_id}")
    row = _rated_down(app_server, text)
    assert row["rating"] == "down" and row["owner"] and "carol" not in str(row)

    sign_in(page, app_server)
    page.click("#review-queue")
    page.wait_for_url(lambda url: "/api/feedback/review" in url)
    page.select_option("#review-rating", "down")
    page.click("#review-apply")
    page.locator(f"a.review-open:text-is('{row['correlation_id']}')").click()
    conversation = page.locator("#review-conversation")
    expect(conversation).to_contain_text("review me, write to [EMAIL]")
    expect(conversation).not_to_contain_text("carol@example.com")
    expect(page.locator("#review-audit")).to_contain_text(MONITOR_USER)
    expect(page.locator("#review-audit")).to_contain_text(row["conversation_id"])

    views = httpx.get(
        app_server.url + "/api/feedback/views", auth=app_server.monitor_auth, timeout=10
    ).json()["views"]
    assert views[0]["viewer"] == MONITOR_USER
    assert views[0]["correlation_id"] == row["correlation_id"]
