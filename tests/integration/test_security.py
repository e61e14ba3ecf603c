"""Access control and security headers on the real app."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect

from chatmon.devtools.fake_llm import FakeLLMServer
from tests.integration.conftest import RunningApp, launch_app

MONITOR_PASSWORD = "integration-monitor-pw"
CHAT_PASSWORD = "integration-chat-pw"
PROTECTED_API = ["/api/stats?window=1h", "/api/requests.csv?window=1h"]


@pytest.fixture(scope="module")
def locked_app(
    fake_llm: FakeLLMServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningApp]:
    """An instance with MONITOR_PASSWORD and CHAT_PASSWORD set."""
    with launch_app(
        workdir=tmp_path_factory.mktemp("locked"),
        fake_llm_url=fake_llm.url,
        MONITOR_PASSWORD=MONITOR_PASSWORD,
        CHAT_PASSWORD=CHAT_PASSWORD,
        SESSION_SECRET="integration-session-secret",
        PUBLIC_URL="{url}",
    ) as app:
        yield app


@pytest.mark.parametrize("path", PROTECTED_API)
def test_api_refuses_strangers_and_admits_credentials(locked_app: RunningApp, path: str) -> None:
    refused = httpx.get(locked_app.url + path)
    assert refused.status_code == 401
    assert "requests" not in refused.text.lower().replace("login required", "")
    wrong = httpx.get(locked_app.url + path, auth=("admin", "guess"))
    assert wrong.status_code == 401
    admitted = httpx.get(locked_app.url + path, auth=("admin", MONITOR_PASSWORD))
    assert admitted.status_code == 200


def test_cors_admits_only_the_public_url(locked_app: RunningApp) -> None:
    own = httpx.get(locked_app.url + "/health", headers={"origin": locked_app.url})
    assert own.headers.get("access-control-allow-origin") == locked_app.url
    foreign = httpx.get(locked_app.url + "/health", headers={"origin": "http://evil.example"})
    assert "access-control-allow-origin" not in foreign.headers


def test_health_stays_public_and_leaks_nothing(locked_app: RunningApp) -> None:
    response = httpx.get(locked_app.url + "/health")
    assert response.status_code == 200
    assert MONITOR_PASSWORD not in response.text
    assert "sk-integration-test-key" not in response.text


def test_pages_carry_security_headers(app_server: RunningApp) -> None:
    response = httpx.get(app_server.url + "/")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    csp = response.headers["content-security-policy"]
    assert "script-src 'self' 'sha256-" in csp
    assert "frame-ancestors 'none'" in csp


@pytest.mark.browser
def test_chat_works_under_the_csp(page: Page, browser: Browser) -> None:
    violations: list[str] = []
    page.on("console", lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None)
    page.reload()
    page.wait_for_selector("#chat-loaded", state="attached")
    page.fill("#message", "csp check")
    page.click("#send-button")
    expect(page.locator(".bubble-assistant").last).to_contain_text(
        "Echo: csp check", timeout=20_000
    )
    assert violations == []


@pytest.mark.browser
def test_login_form_sets_a_session_that_opens_the_api(
    locked_app: RunningApp, browser: Browser
) -> None:
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(locked_app.url + "/login?next=/")
        page.wait_for_selector("#login-password")
        page.fill("#login-password", "wrong")
        page.click("#login-submit")
        expect(page.locator("#login-error")).to_contain_text(
            "Wrong user name or password", timeout=20_000
        )
        page.fill("#login-password", MONITOR_PASSWORD)
        page.click("#login-submit")
        page.wait_for_url(locked_app.url + "/")
        cookies = {c["name"]: c["value"] for c in context.cookies()}
        assert cookies.get("chatmon_session")
        api = page.request.get(locked_app.url + "/api/stats?window=1h")
        assert api.status == 200
    finally:
        context.close()


def _login(page: Page, url: str, password: str) -> None:
    page.wait_for_selector("#login-password")
    page.fill("#login-password", password)
    page.click("#login-submit")


@pytest.mark.browser
def test_monitor_shows_a_login_never_data(locked_app: RunningApp, browser: Browser) -> None:
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(locked_app.url + "/monitor")
        page.wait_for_url(lambda url: "/login?next=/monitor" in url)
        expect(page.locator("#login-password")).to_be_visible()
        assert page.locator("#kpis").count() == 0
        _login(page, locked_app.url, MONITOR_PASSWORD)
        page.wait_for_url(lambda url: url.rstrip("/").endswith("/monitor"))
        expect(page.locator("#monitor-page")).to_be_visible(timeout=20_000)
    finally:
        context.close()


@pytest.mark.browser
def test_chat_password_gates_the_chat_but_not_the_monitor(
    locked_app: RunningApp, browser: Browser
) -> None:
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(locked_app.url + "/")
        page.wait_for_url(lambda url: "/login?next=/" in url)
        _login(page, locked_app.url, CHAT_PASSWORD)
        page.wait_for_url(locked_app.url + "/")
        page.wait_for_selector("#chat-loaded", state="attached")
        page.fill("#message", "behind the chat password")
        page.click("#send-button")
        expect(page.locator(".bubble-assistant").last).to_contain_text(
            "Echo: behind the chat password", timeout=20_000
        )
        # a chat session does not open the monitor or the API
        page.goto(locked_app.url + "/monitor")
        page.wait_for_url(lambda url: "/login?next=/monitor" in url)
        assert page.request.get(locked_app.url + "/api/stats?window=1h").status == 401
    finally:
        context.close()
