"""Cost through the real app: an unpriced model is loud, a budget that refuses, Top spenders.

Two instances: the session's app (``openai/fake``, which LiteLLM's map does not price)
and one of this module's, priced so that one reply spends the whole daily budget, with
``BUDGET_ACTION=refuse``.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from chatmon.devtools.fake_llm_server import FakeLLMServer
from tests.integration.conftest import RunningApp, identity_cookie, launch_app, sign_in

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def budget_app(
    fake_llm: FakeLLMServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningApp]:
    with launch_app(
        workdir=tmp_path_factory.mktemp("budget-app"),
        fake_llm_url=fake_llm.url,
        LLM_PRICE_INPUT_PER_1M="100000",  # $0.10 per token: the first reply costs > $1
        LLM_PRICE_OUTPUT_PER_1M="100000",
        DAILY_BUDGET_USD="1",
        BUDGET_ACTION="refuse",
    ) as app:
        yield app


def test_unpriced_model_is_loud_on_health_and_monitor(page: Page, app_server: RunningApp) -> None:
    deadline = time.monotonic() + 60
    while httpx.get(app_server.url + "/health/ready", timeout=10).status_code != 200:
        assert time.monotonic() < deadline, "the app never got ready"
        time.sleep(0.5)
    health = httpx.get(app_server.url + "/health", timeout=10).json()
    assert health["status"] == "degraded"
    assert health["checks"]["pricing"]["status"] == "unpriced"
    assert "cost alerts cannot fire for model openai/fake" in health["checks"]["pricing"]["message"]
    page.fill("#message", "how much is this?")
    page.click("#send-button")
    expect(page.locator(".bubble-assistant:not(.bubble-streaming)")).to_have_count(1)
    sign_in(page, app_server)
    warning = page.locator("#price-warning")
    expect(warning).to_contain_text("Cost alerts cannot fire for model openai/fake")
    expect(warning).to_contain_text("LLM_PRICE_INPUT_PER_1M")


def test_budget_refuses_and_the_monitor_shows_who_spent_it(
    browser: Browser, fake_llm: FakeLLMServer, budget_app: RunningApp
) -> None:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(20_000)
    page.goto(budget_app.url + "/")
    page.wait_for_selector("#message:not([disabled])")
    page.wait_for_selector("#chat-loaded", state="attached")

    # Replies until the budget gate has read the spend (it re-reads every 10 s)
    deadline = time.monotonic() + 40
    refused = False
    while time.monotonic() < deadline and not refused:
        before = page.locator(".bubble-assistant:not(.bubble-streaming)").count()
        page.fill("#message", "spend some money")
        page.click("#send-button")
        notice = page.locator("#notice")
        page.wait_for_function(
            "([n]) => document.querySelectorAll('.bubble-assistant:not(.bubble-streaming)')"
            ".length > n || (document.querySelector('#notice')?.textContent || '').length > 0",
            arg=[before],
        )
        refused = notice.count() > 0 and "budget" in notice.inner_text()
        if not refused:
            time.sleep(2)
    assert refused, "the budget was never enforced"
    hits = fake_llm.hits
    expect(page.locator("#notice")).to_contain_text("budget is used up")
    expect(page.locator("#notice")).to_contain_text("It resets in")
    expect(page.locator("#message")).to_have_value("spend some money")  # kept in the composer
    assert fake_llm.hits == hits  # nothing was sent to the provider

    owner_cookie = identity_cookie(context)
    auth = budget_app.monitor_auth
    body = httpx.get(budget_app.url + "/api/budget", auth=auth, timeout=10).json()
    (daily,) = body["periods"]
    assert daily["exceeded"] is True and daily["action"] == "refuse"
    assert daily["spent_usd"] >= 1.0 and daily["resets_at"].endswith("Z")
    usage = httpx.get(
        budget_app.url + "/api/usage", params={"window": "1h", "by": "user"}, auth=auth, timeout=10
    ).json()
    (spender,) = usage["rows"]
    assert spender["cost_usd"] >= 1.0 and spender["errors"] >= 1  # the refusal is recorded
    assert owner_cookie and spender["key"] not in owner_cookie  # a keyed hash, not the id
    stats = httpx.get(budget_app.url + "/api/stats?window=1h", auth=auth, timeout=10).json()
    assert stats["errors_by_category"].get("budget_exceeded", 0) >= 1

    sign_in(page, budget_app)
    expect(page.locator("#budget-daily")).to_contain_text("limit reached")
    expect(page.locator("#budget-daily")).to_contain_text("refuse new requests")
    expect(page.locator("#price-warning")).to_have_count(0)
    page.click("#window-1h")
    page.get_by_role("radio", name="User").click()
    expect(page.locator("#spender-0")).to_be_visible()
    expect(page.locator("#spender-1")).to_have_count(0)
    page.click("#spender-requests-0")
    expect(page.locator("#page-label")).to_contain_text(f"{spender['requests']} requests")
    context.close()
