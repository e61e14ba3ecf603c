"""/metrics in a multi-worker server: every worker's requests are counted, whichever
worker answers the scrape.

One extra instance with two Granian workers (Reflex needs Redis for that), chats from
several browser tabs so both workers serve some, then many scrapes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
import redis
from playwright.sync_api import Browser, Page, expect
from prometheus_client.mmap_dict import MmapedDict

from chatmon.devtools.fake_llm_server import FakeLLMServer
from tests.integration.conftest import RunningApp, launch_app
from tests.integration.test_chat_page import assistant_bubbles, send
from tests.services import redis_url

pytestmark = pytest.mark.browser

REDIS_DB = 13  # this module's own
TABS = 6
ROUNDS = 3
REQUESTS = re.compile(r"^chatmon_llm_requests_total\{[^}]*\} (\S+)$", re.MULTILINE)


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("two-workers")


@pytest.fixture(scope="module")
def two_workers(
    browser: Browser,
    fake_llm: FakeLLMServer,
    workdir: Path,
) -> Iterator[RunningApp]:
    client = redis.Redis.from_url(f"{redis_url()}/{REDIS_DB}")
    try:
        client.flushdb()
    except redis.ConnectionError as exc:
        pytest.fail(f"Redis is not reachable at {redis_url()}: {exc}")
    try:
        with launch_app(
            workdir=workdir,
            fake_llm_url=fake_llm.url,
            REFLEX_REDIS_URL=f"{redis_url()}/{REDIS_DB}",
            GRANIAN_WORKERS="2",
            REQUEST_TIMEOUT="30",  # each worker's first reply pays LiteLLM's imports
        ) as app:
            yield app
    finally:
        client.flushdb()
        client.close()


def _open_tab(browser: Browser, url: str) -> Page:
    page = browser.new_context().new_page()
    page.set_default_timeout(60_000)
    page.goto(url + "/")
    page.wait_for_selector("#message:not([disabled])")
    # connected and loaded (the backend handed this tab its id): a message sent earlier
    # could go out before the websocket is up
    page.wait_for_selector("#chat-loaded", state="attached")
    return page


def _total(text: str) -> float:
    return sum(float(value) for value in REQUESTS.findall(text))


def _requests_per_process(directory: Path) -> dict[str, float]:
    """chatmon_llm_requests_total summed per process file (counter_<pid>.db)."""
    per_pid: dict[str, float] = {}
    for path in directory.glob("counter_*.db"):
        for key, value, *_ in MmapedDict.read_all_values_from_file(str(path)):
            if json.loads(key)[1] == "chatmon_llm_requests_total":  # (metric, sample name, ...)
                pid = path.stem.removeprefix("counter_")
                per_pid[pid] = per_pid.get(pid, 0.0) + value
    return {pid: total for pid, total in per_pid.items() if total}


@pytest.mark.timeout(900)  # an extra two-worker instance on a shared machine
def test_scrapes_count_every_workers_requests(
    browser: Browser, two_workers: RunningApp, workdir: Path
) -> None:
    # Granian hands connections to whichever worker accepts first, so on a busy machine
    # one round of tabs may all land on one worker: chat in more rounds until both served.
    sent = 0
    per_process: dict[str, float] = {}
    for _round in range(ROUNDS):
        _chat_in_tabs(browser, two_workers.url, first=sent)
        sent += TABS
        per_process = _requests_per_process(workdir / "prometheus_multiproc")
        if len(per_process) >= 2:
            break
    assert sum(per_process.values()) == sent
    assert len(per_process) >= 2, f"one worker served every chat: {per_process}"
    with httpx.Client(timeout=10) as client:  # new connections: either worker may answer
        totals = {
            _total(
                client.get(
                    two_workers.url + "/metrics",
                    headers={"Connection": "close"},
                    auth=two_workers.monitor_auth,
                ).text
            )
            for _ in range(20)
        }
    assert totals == {float(sent)}


def _chat_in_tabs(browser: Browser, url: str, *, first: int) -> None:
    tabs = [_open_tab(browser, url) for _ in range(TABS)]
    try:
        for number, tab in enumerate(tabs, start=first):
            send(tab, f"tab {number} says hello")
        for number, tab in enumerate(tabs, start=first):
            expect(assistant_bubbles(tab)).to_have_count(1, timeout=120_000)
            expect(tab.locator("#streaming-reply")).to_have_count(0, timeout=60_000)
            expect(assistant_bubbles(tab).last).to_contain_text(f"Echo: tab {number} says hello")
    finally:
        for tab in tabs:
            tab.context.close()
