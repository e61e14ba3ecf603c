"""Did the change help? Through a real app of its own: the chat's prompt version is kept
in ``prompt_version`` (with its text, on /api/versions), and a prompt change whose
satisfaction fell shows on the monitor's card with its verdict (Chromium)."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy.engine import Engine
from sqlmodel import Session

from chatmon.db import make_engine
from chatmon.devtools.fake_llm_server import FakeLLMServer
from chatmon.models import ChangeEvent, LLMRequest
from chatmon.services import histogram, request_log
from tests.integration.conftest import launch_app, sign_in

pytestmark = pytest.mark.browser

OLD, NEW = "0123456789ab", "ba9876543210"
_ids = itertools.count(1)


def _history(engine: Engine, at: datetime) -> None:
    """400 requests before ``at`` (81 % satisfied) and 400 after (72 %), one change."""
    rows = []
    for version, start, ups in ((OLD, at - timedelta(minutes=100), 324), (NEW, at, 288)):
        for i in range(400):
            rows.append(
                LLMRequest(
                    correlation_id=f"hist{next(_ids):012d}",
                    model="openai/fake",
                    started_at=start + timedelta(seconds=1 + 14 * i),
                    latency_seconds=1.0,
                    latency_bin=histogram.bin_of(1.0),
                    cost_usd=0.001,
                    status="ok",
                    prompt_version=version,
                    feedback=1 if i < ups else -1,
                )
            )
    with Session(engine) as session:
        session.add_all(rows)
        session.add(ChangeEvent(kind="prompt", old=OLD[:8], new=NEW[:8], at=at))
        session.commit()
        request_log.rebuild_rollups(session=session)  # written directly: roll them up
        session.commit()


def test_card_shows_the_verdict_of_a_prompt_change(
    browser: Browser, fake_llm: FakeLLMServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    with launch_app(workdir=tmp_path_factory.mktemp("versions"), fake_llm_url=fake_llm.url) as app:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        chat = context.new_page()
        chat.set_default_timeout(20_000)
        chat.goto(app.url + "/")
        chat.wait_for_selector("#message:not([disabled])")
        chat.wait_for_selector("#chat-loaded", state="attached")
        chat.fill("#message", "which prompt answers me?")
        chat.click("#send-button")
        expect(chat.locator(".bubble-assistant:not(.bubble-streaming)")).to_have_count(
            1, timeout=30_000
        )

        deadline, served = time.monotonic() + 20, []
        while time.monotonic() < deadline and not served:
            body = httpx.get(
                app.url + "/api/versions", params={"window": "1h"}, auth=app.monitor_auth
            ).json()
            served = [v for v in body["versions"] if v["requests"] >= 1 and v["text"]]
            time.sleep(0.2)
        assert served, "the chat's prompt version never reached /api/versions"
        assert served[0]["text"] == "You are the integration-test assistant."

        engine = make_engine(app.database_url)
        _history(engine, datetime.now(UTC) - timedelta(hours=2))
        engine.dispose()

        monitor = context.new_page()
        monitor.set_default_timeout(20_000)
        sign_in(monitor, app)
        card = monitor.locator("#versions-card")
        expect(card.locator(".change-label").first).to_have_text(
            f"system prompt {OLD[:8]} → {NEW[:8]}", timeout=30_000
        )
        expect(card.locator(".change-verdict").first).to_have_text(
            "worse: satisfaction 81 % → 72 %, interval does not overlap"
        )
        expect(card.locator(".change-verdict-kind").first).to_have_text("worse")
        expect(card.locator("#prompt-versions")).to_contain_text(served[0]["version"])
        context.close()
