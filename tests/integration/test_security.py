"""Access control and security headers on the real app.

``locked_app`` starts as a first start does: no MONITOR_PASSWORD, so it generates one and
prints it on the console (read back here from the start's output), with CHAT_PASSWORD,
PUBLIC_URL and one trusted proxy hop (X-Forwarded-For/-Proto count: tests give each
guesser its own address). ``open_app`` runs with MONITOR_AUTH=off.
"""

from __future__ import annotations

import base64
import os
import re
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest
from playwright.sync_api import Browser, Page, expect
from sqlalchemy import inspect, text

from chatmon.db import make_engine
from chatmon.devtools.fake_llm_server import FakeLLMServer
from chatmon.services.auth import verify_password
from tests.integration.conftest import ROOT, RunningApp, launch_app, sign_in

CHAT_PASSWORD = "integration-chat-pw-3"
PROTECTED = ["/api/stats?window=1h", "/api/requests.csv?window=1h", "/metrics"]
PRINTED = re.compile(r"^ {6}(\S{20,})$", re.M)  # the password line of the first-start notice
SESSION_ENDS_WITHIN = 60.0  # seconds, the promise (the gate refreshes every 20-30 s)


def _printed_passwords(app: RunningApp) -> list[str]:
    return PRINTED.findall(app.log_file.read_text(errors="replace"))


@pytest.fixture(scope="module")
def locked_app(
    fake_llm: FakeLLMServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningApp]:
    """A first start without a monitor password, with CHAT_PASSWORD and a trusted proxy."""
    with launch_app(
        workdir=tmp_path_factory.mktemp("locked"),
        fake_llm_url=fake_llm.url,
        MONITOR_PASSWORD="",  # nothing configured: the first start generates one
        CHAT_PASSWORD=CHAT_PASSWORD,
        PUBLIC_URL="{url}",
        TRUSTED_PROXY_HOPS="1",
    ) as app:
        printed = _printed_passwords(app)
        assert len(printed) == 1, app.log_file.read_text()[-3000:]
        app.monitor_password = printed[0]
        yield app


@pytest.fixture(scope="module")
def open_app(
    fake_llm: FakeLLMServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningApp]:
    """MONITOR_AUTH=off: the deliberate opt-out for a closed network."""
    with launch_app(
        workdir=tmp_path_factory.mktemp("open"), fake_llm_url=fake_llm.url, MONITOR_AUTH="off"
    ) as app:
        yield app


def _from(address: str) -> dict[str, str]:
    """Headers of a request that reached chatmon through the trusted proxy from ``address``."""
    return {"x-forwarded-for": address}


# ----- first start ---------------------------------------------------------------------------
def test_first_start_prints_a_password_once_and_stores_only_its_hash(
    locked_app: RunningApp,
) -> None:
    password = locked_app.monitor_password or ""
    console = locked_app.log_file.read_text(errors="replace")
    assert console.count("a monitor password was generated") == 1  # migrate and every worker
    assert "reset-monitor-password" in console
    workdir = Path(locked_app.log_file).parent
    for log_file in workdir.glob("chatmon.log*"):  # LOG_FILE: the JSON logs
        assert password not in log_file.read_text(errors="replace")
    engine = make_engine(locked_app.database_url)
    try:
        with engine.connect() as connection:
            stored = dict(connection.execute(text("SELECT name, value FROM instance_secret")).all())
            rows = [
                repr(tuple(row))
                for table in inspect(connection).get_table_names()
                for row in connection.execute(text(f'SELECT * FROM "{table}"'))
            ]
    finally:
        engine.dispose()
    assert verify_password(password, stored["monitor_password_hash"])
    assert "session_secret" in stored  # SESSION_SECRET unset: generated once, kept here
    assert not any(password in row for row in rows)


# ----- /api/* and /metrics --------------------------------------------------------------------
@pytest.mark.parametrize("path", PROTECTED)
def test_api_and_metrics_refuse_strangers_and_admit_credentials(
    locked_app: RunningApp, path: str
) -> None:
    address = f"198.51.100.{PROTECTED.index(path) + 1}"
    refused = httpx.get(locked_app.url + path, headers=_from(address))
    assert refused.status_code == 401
    assert "requests" not in refused.text.lower().replace("login required", "")
    assert refused.headers["www-authenticate"].startswith("Basic")
    wrong = httpx.get(locked_app.url + path, auth=("admin", "guess"), headers=_from(address))
    assert wrong.status_code == 401
    admitted = httpx.get(
        locked_app.url + path, auth=locked_app.monitor_auth, headers=_from(address)
    )
    assert admitted.status_code == 200


def test_basic_guessing_is_throttled_per_address(locked_app: RunningApp) -> None:
    guesser = _from("203.0.113.66")
    statuses = [
        httpx.get(
            locked_app.url + "/api/stats", auth=("admin", f"guess-{n}"), headers=guesser
        ).status_code
        for n in range(5)
    ]
    assert statuses == [401] * 5
    blocked = httpx.get(
        locked_app.url + "/api/stats", auth=locked_app.monitor_auth, headers=guesser
    )
    assert blocked.status_code == 429  # even the right password waits, unchecked
    assert int(blocked.headers["retry-after"]) >= 1
    other = httpx.get(
        locked_app.url + "/api/stats", auth=locked_app.monitor_auth, headers=_from("203.0.113.67")
    )
    assert other.status_code == 200


def test_x_forwarded_for_of_a_stranger_is_not_an_escape(app_server: RunningApp) -> None:
    """Without TRUSTED_PROXY_HOPS a guesser cannot be a new address each time."""
    for n in range(5):
        httpx.get(
            app_server.url + "/api/stats", auth=("ops", f"guess-{n}"), headers=_from(f"192.0.2.{n}")
        )
    assert (
        httpx.get(
            app_server.url + "/api/stats", auth=("ops", "guess-5"), headers=_from("192.0.2.99")
        ).status_code
        == 429
    )
    # leave the session's shared app usable: wait the block out, then sign in once
    time.sleep(2.5)
    assert httpx.get(app_server.url + "/api/stats", auth=app_server.monitor_auth).status_code == 200


@pytest.mark.parametrize(
    "headers",
    [
        {"authorization": b"Basic \xff\xfe\xfd"},
        {"authorization": b"Basic " + base64.b64encode("\u00e9l\u00e8ve:pw".encode("latin-1"))},
        {"authorization": b"Bearer \xe9t\xe9"},
        {"cookie": b"chatmon_session=\xc3\xa9t\xc3\xa9.\xc3\xa9"},
        {"cookie": b"chatmon_session=eyJ1IjoiYWRtaW4ifQ.forged"},
    ],
)
def test_malformed_cookies_and_tokens_are_401_not_500(
    locked_app: RunningApp, headers: dict
) -> None:
    for path in ("/api/stats", "/metrics"):
        response = httpx.get(locked_app.url + path, headers={**_from("198.51.100.77"), **headers})
        assert response.status_code == 401, path


# ----- the login endpoint itself ------------------------------------------------------------------
def _post_login(app: RunningApp, password: str, **headers: str) -> httpx.Response:
    return httpx.post(
        app.url + "/auth/login",
        data={"user": "admin", "password": password, "next": "/monitor"},
        headers={"origin": app.url, **headers},
    )


def _session_cookie(response: httpx.Response) -> SimpleCookie:
    cookie = SimpleCookie()
    for header in response.headers.get_list("set-cookie"):
        if header.startswith("chatmon_session="):
            cookie.load(header)
    return cookie


def test_session_cookie_is_httponly_lax_and_secure_only_behind_https(
    locked_app: RunningApp,
) -> None:
    plain = _post_login(locked_app, locked_app.monitor_password or "", **_from("198.51.100.20"))
    assert plain.status_code == 303 and plain.headers["location"] == "/monitor"
    morsel = _session_cookie(plain)["chatmon_session"]
    assert morsel["httponly"] and morsel["samesite"].lower() == "lax" and not morsel["secure"]
    proxied = _post_login(
        locked_app,
        locked_app.monitor_password or "",
        **{**_from("198.51.100.21"), "x-forwarded-proto": "https"},
    )
    assert _session_cookie(proxied)["chatmon_session"]["secure"]


def test_login_posted_from_another_site_is_refused(locked_app: RunningApp) -> None:
    response = httpx.post(
        locked_app.url + "/auth/login",
        data={"password": locked_app.monitor_password or "", "next": "/monitor"},
        headers={"origin": "http://evil.example", **_from("198.51.100.30")},
    )
    assert response.status_code == 403
    assert "chatmon_session" not in response.headers.get("set-cookie", "")


# ----- CORS and the websocket's Origin ------------------------------------------------------------
def test_cors_admits_only_the_public_url(locked_app: RunningApp) -> None:
    own = httpx.get(locked_app.url + "/health", headers={"origin": locked_app.url})
    assert own.headers.get("access-control-allow-origin") == locked_app.url
    foreign = httpx.get(locked_app.url + "/health", headers={"origin": "http://evil.example"})
    assert "access-control-allow-origin" not in foreign.headers


def _websocket_handshake(url: str, origin: str) -> int:
    """The HTTP status of a websocket handshake on Reflex's event endpoint."""
    parts = urlsplit(url)
    request = (
        f"GET /_event/?EIO=4&transport=websocket HTTP/1.1\r\nHost: {parts.netloc}\r\n"
        "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
        f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\n"
        f"Origin: {origin}\r\n\r\n"
    )
    with socket.create_connection((parts.hostname, parts.port), timeout=10) as sock:
        sock.sendall(request.encode())
        status_line = sock.recv(1024).split(b"\r\n", 1)[0]
    return int(status_line.split()[1])


def test_by_default_no_other_site_gets_credentialed_access(app_server: RunningApp) -> None:
    """No PUBLIC_URL, no CORS_ALLOWED_ORIGINS: the page's own origin only, never '*'."""
    foreign = httpx.get(
        app_server.url + "/api/stats",
        auth=app_server.monitor_auth,
        headers={"origin": "http://evil.example"},
    )
    assert "access-control-allow-origin" not in foreign.headers
    assert _websocket_handshake(app_server.url, app_server.url) == 101
    assert _websocket_handshake(app_server.url, "http://evil.example") == 403


def test_health_stays_public_and_leaks_nothing(locked_app: RunningApp) -> None:
    response = httpx.get(locked_app.url + "/health")
    assert response.status_code == 200
    assert (locked_app.monitor_password or "-") not in response.text
    assert "sk-integration-test-key" not in response.text


def test_pages_carry_security_headers(app_server: RunningApp) -> None:
    response = httpx.get(app_server.url + "/")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"
    csp = response.headers["content-security-policy"]
    assert "script-src 'self' 'sha256-" in csp
    assert "frame-ancestors 'none'" in csp


def test_monitor_auth_off_opens_api_and_metrics(open_app: RunningApp) -> None:
    assert httpx.get(open_app.url + "/api/stats?window=1h").status_code == 200
    assert httpx.get(open_app.url + "/metrics").status_code == 200


# ----- in the browser -----------------------------------------------------------------------------
@pytest.mark.browser
def test_chat_works_under_the_csp(page: Page, browser: Browser) -> None:
    violations: list[str] = []
    page.on(
        "console",
        lambda m: violations.append(m.text) if "Content Security Policy" in m.text else None,
    )
    page.reload()
    page.wait_for_selector("#chat-loaded", state="attached")
    page.fill("#message", "csp check")
    page.click("#send-button")
    expect(page.locator(".bubble-assistant").last).to_contain_text(
        "Echo: csp check", timeout=20_000
    )
    assert violations == []


@pytest.mark.browser
def test_login_form_sets_an_httponly_session_that_opens_the_api(
    locked_app: RunningApp, browser: Browser
) -> None:
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(locked_app.url + "/login?next=/monitor")
        page.wait_for_selector("#login-password")
        page.fill("#login-password", "wrong")
        page.click("#login-submit")
        expect(page.locator("#login-error")).to_contain_text(
            "Wrong user name or password", timeout=20_000
        )
        page.fill("#login-password", locked_app.monitor_password or "")
        page.click("#login-submit")
        page.wait_for_url(lambda url: url.rstrip("/") == locked_app.url + "/monitor")
        cookies = {c["name"]: c for c in context.cookies()}
        assert cookies["chatmon_session"]["httpOnly"] is True
        assert cookies["chatmon_session"]["sameSite"] == "Lax"
        assert (
            page.evaluate("document.cookie").find("chatmon_session") == -1
        )  # scripts can't see it
        assert page.request.get(locked_app.url + "/api/stats?window=1h").status == 200
    finally:
        context.close()


@pytest.mark.browser
def test_monitor_shows_a_login_never_data_and_signs_out(
    locked_app: RunningApp, browser: Browser
) -> None:
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(locked_app.url + "/monitor")
        page.wait_for_url(lambda url: "/login?next=/monitor" in url)
        expect(page.locator("#login-password")).to_be_visible()
        assert page.locator("#kpis").count() == 0
        page.fill("#login-password", locked_app.monitor_password or "")
        page.click("#login-submit")
        page.wait_for_url(lambda url: url.rstrip("/").endswith("/monitor"))
        expect(page.locator("#monitor-page")).to_be_visible(timeout=20_000)
        expect(page.locator("#unprotected-badge")).to_have_count(0)
        page.click("#logout-button")
        page.wait_for_url(lambda url: "/login" in url)
        expect(page.locator("#login-error")).to_contain_text("signed out")
        assert page.request.get(locked_app.url + "/api/stats?window=1h").status == 401
        page.goto(locked_app.url + "/monitor")
        page.wait_for_url(lambda url: "/login?next=/monitor" in url)
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
        page.fill("#login-password", CHAT_PASSWORD)
        page.click("#login-submit")
        page.wait_for_url(lambda url: url.rstrip("/") == locked_app.url)
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


@pytest.mark.browser
def test_monitor_auth_off_shows_an_unprotected_badge(
    open_app: RunningApp, browser: Browser
) -> None:
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(open_app.url + "/monitor")
        expect(page.locator("#monitor-page")).to_be_visible(timeout=20_000)
        expect(page.locator("#unprotected-badge")).to_be_visible()
        expect(page.locator("#unprotected-badge")).to_contain_text("Unprotected")
        expect(page.locator("#logout-button")).to_have_count(0)
        assert "/login" not in page.url
    finally:
        context.close()


@pytest.mark.browser
def test_reset_password_ends_open_sessions_within_a_minute(
    locked_app: RunningApp, browser: Browser
) -> None:
    """Last: it changes locked_app's password (the new one is kept for any later test)."""
    context = browser.new_context()
    page = context.new_page()
    try:
        sign_in(page, locked_app)
        assert page.request.get(locked_app.url + "/api/stats?window=1h").status == 200
        reset = subprocess.run(
            [sys.executable, "-m", "chatmon", "reset-monitor-password"],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": locked_app.database_url},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert reset.returncode == 0, reset.stderr
        new_password = PRINTED.findall(reset.stdout)[0]
        started = time.monotonic()
        while page.request.get(locked_app.url + "/api/stats?window=1h").status == 200:
            assert time.monotonic() - started < SESSION_ENDS_WITHIN, "the old session still works"
            time.sleep(1)
        locked_app.monitor_password = new_password
        page.goto(locked_app.url + "/monitor")
        page.wait_for_url(lambda url: "/login?next=/monitor" in url)
        sign_in(page, locked_app)
        expect(page.locator("#monitor-page")).to_be_visible(timeout=20_000)
    finally:
        context.close()
