"""A worker that dies mid-reply loses nothing the user saw: after a restart and a reload,
the partial reply is there (saved by its checkpoints), marked interrupted, the composer
is usable, and the request log holds the request as ``interrupted``."""

from __future__ import annotations

import os
import signal
import time

import pytest
from playwright.sync_api import Browser, expect
from sqlalchemy import Engine
from sqlmodel import Session, select

from chatmon.db import make_engine
from chatmon.devtools.fake_llm_server import FakeLLMServer
from chatmon.devtools.procs import free_port
from chatmon.models import ChatMessage, LLMRequest
from tests.integration.conftest import launch_app

pytestmark = [pytest.mark.browser, pytest.mark.timeout(900)]  # two server starts


def test_reload_after_a_killed_worker_shows_the_partial_reply_and_a_usable_composer(
    browser: Browser, fake_llm: FakeLLMServer, tmp_path_factory: pytest.TempPathFactory
) -> None:
    workdir, port = tmp_path_factory.mktemp("lost-worker"), free_port()
    fake_llm.configure(tokens_per_second=4, reply_words=120)  # a 30-second reply
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(30_000)
    try:
        with launch_app(workdir=workdir, fake_llm_url=fake_llm.url, port=port) as first:
            page.goto(first.url + "/")
            page.wait_for_selector("#chat-loaded", state="attached")
            page.fill("#message", "tell me a long story")
            page.click("#send-button")
            streaming = page.locator(".bubble-streaming")
            # the first reply of a fresh server waits for its LiteLLM warm-up (slow under load)
            expect(streaming).to_contain_text("Echo: tell me a long story", timeout=90_000)
            time.sleep(5)  # a few checkpoints (every 2 s)
            shown = streaming.inner_text()
            os.killpg(first.process_group, signal.SIGKILL)  # the worker dies mid-reply
        time.sleep(11)  # its reply is now older than the staleness limit (10 s)
        fake_llm.configure(tokens_per_second=0, reply_words=12)
        with launch_app(workdir=workdir, fake_llm_url=fake_llm.url, port=port) as second:
            page.reload()
            page.wait_for_selector("#chat-loaded", state="attached")
            partial = page.locator(".bubble-assistant").last
            expect(partial).to_contain_text("reply interrupted")
            saved = partial.inner_text()
            # what was saved is a prefix of the reply, and holds what the user last saw
            # up to the last checkpoint (at most 2 s of text before the kill)
            assert "Echo: tell me a long story" in saved
            assert len(saved.split("reply interrupted")[0].strip()) >= len(shown) // 2
            expect(page.locator("#message")).to_be_enabled()
            page.fill("#message", "are you back?")
            page.click("#send-button")
            expect(page.locator(".bubble-assistant").last).to_contain_text(
                "Echo: are you back?",
                timeout=90_000,  # a fresh server's first reply
            )
            engine = make_engine(second.database_url)
            try:
                # The text is on screen as it streams; its row is finished just after.
                deadline = time.monotonic() + 30
                while True:
                    statuses, interrupted = _assistant_statuses(engine)
                    if "streaming" not in statuses or time.monotonic() > deadline:
                        break
                    time.sleep(0.2)
            finally:
                engine.dispose()
            assert statuses == ["interrupted", None]
            assert len(interrupted) == 1
    finally:
        context.close()


def _assistant_statuses(engine: Engine) -> tuple[list[str | None], list[LLMRequest]]:
    """The assistant messages' statuses in order, and the interrupted request rows."""
    with Session(engine) as session:
        statuses = [
            m.status
            for m in session.exec(
                select(ChatMessage).where(ChatMessage.role == "assistant").order_by(ChatMessage.id)
            ).all()
        ]
        interrupted = list(
            session.exec(select(LLMRequest).where(LLMRequest.status == "interrupted")).all()
        )
    return statuses, interrupted
