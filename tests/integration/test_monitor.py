"""Every request recorded, shown by /api/stats, the CSV and the monitor page (Chromium).

Runs against the session's shared app. Other tests use it too, so each test looks at a
custom window that starts when the test starts: requests of earlier tests started
before it and fall outside, which makes the expected counts exact.
"""

from __future__ import annotations

import csv
import io
import time
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from chatmon.devtools.fake_llm import prompt_tokens, reply_chunks
from chatmon.devtools.fake_llm_server import FakeLLMServer
from chatmon.models import LLMRequest
from tests.integration.conftest import RunningApp, sign_in

pytestmark = pytest.mark.browser

RECORDED_WITHIN = 15.0  # seconds for a finished request to be on /api/stats


def window_start() -> datetime:
    """The next whole second (UTC), after waiting for it: every request sent from now on
    starts inside a window beginning there, every earlier one outside it."""
    now = datetime.now(UTC)
    start = now.replace(microsecond=0) + timedelta(seconds=1)
    time.sleep((start - now).total_seconds())
    return start


def iso(moment: datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def stats_between(app: RunningApp, start: datetime, end: datetime) -> dict:
    response = httpx.get(
        app.url + "/api/stats",
        params={"start": iso(start), "end": iso(end)},
        auth=app.monitor_auth,
        timeout=10,
    )
    response.raise_for_status()
    return response.json()


def wait_for_requests(app: RunningApp, start: datetime, count: int) -> dict:
    """/api/stats of [start, now + 1 min) once it counts ``count`` requests."""
    deadline = time.monotonic() + RECORDED_WITHIN
    while True:
        body = stats_between(app, start, datetime.now(UTC) + timedelta(minutes=1))
        if body["requests"] >= count or time.monotonic() > deadline:
            return body
        time.sleep(0.2)


def replies(page: Page):
    """Finished replies (not the one still streaming)."""
    return page.locator(".bubble-assistant:not(.bubble-streaming), .bubble-error")


def send_and_wait(page: Page, text: str) -> None:
    before = replies(page).count()
    page.fill("#message", text)
    page.click("#send-button")
    expect(replies(page)).to_have_count(before + 1, timeout=30_000)
    expect(page.locator("#send-button")).to_be_visible(timeout=30_000)


def test_requests_show_on_stats_csv_and_monitor(
    page: Page, fake_llm: FakeLLMServer, app_server: RunningApp
) -> None:
    # A known mix, never two failures in a row (the circuit breaker stays closed):
    # 3 replies, 2 bad requests (400) and 1 authentication failure (401), none retried.
    mix = [None, "400", None, "401", None, "400"]
    start = window_start()
    tokens_in = tokens_out = 0
    for i, fault in enumerate(mix):
        if fault:
            fake_llm.configure(fail_first=1, fail_with=fault)
        send_and_wait(page, f"monitor check number {i}")
        body = fake_llm.requests[-1]
        if fault is None:  # the fake's usage is deterministic: words in, words out
            tokens_in += prompt_tokens(body["messages"])
            tokens_out += len(reply_chunks(body["messages"], fake_llm.config.reply_words))
    assert fake_llm.hits == len(mix)
    end = datetime.now(UTC).replace(microsecond=0) + timedelta(seconds=2)

    stats = wait_for_requests(app_server, start, len(mix))
    stats = stats_between(app_server, start, end)
    assert (stats["requests"], stats["ok"], stats["errors"]) == (6, 3, 3)
    assert stats["error_rate"] == 50.0
    assert stats["errors_by_category"] == {"bad_request": 2, "auth": 1}
    assert (stats["tokens_input"], stats["tokens_output"]) == (tokens_in, tokens_out)
    assert stats["latency_p50"] > 0 and stats["ttft_p95"] > 0
    assert stats["unpriced_requests"] == 6  # "openai/fake" has no price: flagged, not $0
    window = httpx.get(
        app_server.url + "/api/stats?window=1h", auth=app_server.monitor_auth, timeout=10
    ).json()
    assert window["requests"] >= 6

    response = httpx.get(
        app_server.url + "/api/requests.csv",
        params={"start": iso(start), "end": iso(end)},
        auth=app_server.monitor_auth,
        timeout=10,
    )
    rows = list(csv.DictReader(io.StringIO(response.text)))
    assert len(rows) == 6
    assert [r["status"] for r in rows] == ["ok", "error", "ok", "error", "ok", "error"]

    # The monitor page (behind its login), on the same custom window
    sign_in(page, app_server)
    page.click("#window-custom")
    page.fill("#custom-start", start.strftime("%Y-%m-%dT%H:%M:%S"))
    page.fill("#custom-end", end.strftime("%Y-%m-%dT%H:%M:%S"))
    page.click("#custom-apply")
    expect(page.locator("#kpi-requests")).to_have_text("6")
    expect(page.locator("#kpi-errors")).to_have_text("3")
    expect(page.locator("#kpi-error-rate")).to_have_text("50.0 %")
    expect(page.locator("#kpi-tokens-input")).to_have_text(f"{tokens_in:,}")
    expect(page.locator("#kpi-tokens-output")).to_have_text(f"{tokens_out:,}")
    expect(page.locator(".request-row")).to_have_count(6)
    expect(page.locator("#chart-errors-by-category")).to_contain_text("bad_request")

    page.select_option("#filter-status", "error")
    expect(page.locator(".request-row")).to_have_count(3)
    expect(page.locator("#page-label")).to_contain_text("3 requests")
    page.select_option("#filter-category", "auth")
    expect(page.locator(".request-row")).to_have_count(1)

    with page.expect_download() as download:
        page.click("#download-csv")
    with open(download.value.path(), encoding="utf-8") as handle:
        assert len(list(csv.DictReader(handle))) == 6  # the whole window, not the filtered table

    page.locator(".request-row").first.click()
    detail = page.locator("#request-detail")
    expect(detail).to_contain_text("auth")
    expect(detail).to_contain_text("credentials")  # the category's message, not provider text
    conversation_link = page.locator("#detail-conversation-link")
    href = conversation_link.get_attribute("href")
    assert href and href.startswith("/?conversation=")
    conversation_link.click()
    expect(page.locator(".bubble-user").first).to_contain_text("monitor check number 0")


def test_monitor_refreshes_itself(page: Page, app_server: RunningApp) -> None:
    monitor = page.context.new_page()
    sign_in(monitor, app_server)
    monitor.click("#window-1h")
    expect(monitor.locator("#updated-at")).to_be_visible()
    monitor.evaluate("window.__not_reloaded = true")

    def shown() -> int:
        kpi = monitor.locator("#kpi-requests")
        return int(kpi.inner_text().replace(",", "")) if kpi.count() else 0

    before = shown()
    send_and_wait(page, "counted while the monitor is open")
    deadline = time.monotonic() + 30  # the loop reloads every 10 s
    while shown() <= before and time.monotonic() < deadline:
        time.sleep(0.5)
    assert shown() == before + 1
    assert monitor.evaluate("window.__not_reloaded") is True


def test_empty_window_tells_what_to_do(page: Page, app_server: RunningApp) -> None:
    sign_in(page, app_server)
    page.click("#window-custom")
    page.fill("#custom-start", "2001-01-01T00:00:00")
    page.fill("#custom-end", "2001-01-02T00:00:00")
    page.click("#custom-apply")
    empty = page.locator("#monitor-empty")
    expect(empty).to_contain_text("No requests in this window")
    expect(page.locator("#empty-open-chat")).to_be_visible()


def test_disconnect_mid_stream_leaves_exactly_one_row(
    browser: Browser, fake_llm: FakeLLMServer, app_server: RunningApp, app_db: Engine
) -> None:
    fake_llm.configure(tokens_per_second=5, reply_words=25)  # about 5 s of streaming
    context = browser.new_context()
    tab = context.new_page()
    tab.goto(app_server.url + "/")
    tab.wait_for_selector("#message:not([disabled])")
    start = window_start()
    tab.fill("#message", "I will leave before the reply ends")
    tab.click("#send-button")
    expect(tab.locator("#streaming-reply")).to_contain_text("Echo:")
    context.close()  # the browser goes away mid-stream

    def recorded() -> int:
        with Session(app_db) as session:
            query = (
                select(func.count()).select_from(LLMRequest).where(LLMRequest.started_at >= start)
            )
            return session.execute(query).scalar_one()

    deadline = time.monotonic() + 30
    while recorded() == 0 and time.monotonic() < deadline:
        time.sleep(0.25)
    time.sleep(6)  # long enough for a second row to appear, were there one
    assert recorded() == 1
    assert fake_llm.hits == 1


def test_charts_mark_what_changed(page: Page, app_server: RunningApp, app_db: Engine) -> None:
    """A change_event in the window is a dashed line on every time chart, spelled out
    below them."""
    from chatmon.models import ChangeEvent

    send_and_wait(page, "a request for the charts to show")
    with Session(app_db) as session:
        session.add(
            ChangeEvent(
                kind="prompt",
                old="feedc0de",
                new="c0ffee11",
                at=datetime.now(UTC) - timedelta(minutes=5),
            )
        )
        session.commit()
    monitor = page.context.new_page()
    sign_in(monitor, app_server)
    monitor.click("#window-1h")
    expect(monitor.locator("#chart-changes")).to_contain_text(
        "system prompt feedc0de→c0ffee11", timeout=20_000
    )
    for chart in ("#chart-requests", "#chart-latency", "#chart-cost", "#chart-tokens"):
        expect(monitor.locator(f"{chart} .recharts-reference-line").first).to_be_attached()


def test_alerts_panel_says_what_would_have_fired_last_week(
    page: Page, app_server: RunningApp
) -> None:
    import re

    sign_in(page, app_server)
    panel = page.locator("#alerts-panel")
    expect(panel.locator("#alert-rule-probe_failed .alert-last-week")).to_have_text(
        "not replayed", timeout=30_000
    )
    expect(panel.locator("#alert-rule-error_rate .alert-last-week")).to_have_text(
        re.compile(r"^(never|\d+× \(.+\), \d+ messages?.*)$")
    )
