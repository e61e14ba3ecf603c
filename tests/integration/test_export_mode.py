"""Static export: the frontend built once with REFLEX_API_URL, served by Debian's nginx
with deploy/nginx/chatmon-static.conf (the README's try_files line), chatting through a
separate `--backend-only` process."""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator

import httpx
import pytest
from playwright.sync_api import Browser, expect

from chatmon.devtools.fake_llm_server import FakeLLMServer
from chatmon.devtools.procs import free_port, stop
from tests.integration.conftest import (
    ROOT,
    _wait_until_up,
    isolated_web_dir,
)
from tests.nginx import StaticSite

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def exported_site(
    fake_llm: FakeLLMServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Build the static site, start the backend alone and nginx serving the site."""
    workdir = tmp_path_factory.mktemp("export")
    backend_port = free_port()
    web_dir = isolated_web_dir(workdir)
    site = web_dir / "build" / "client"  # what `make export` writes
    nginx = StaticSite(tmp_path_factory.mktemp("nginx"), root=site)
    env = {
        **os.environ,
        "REFLEX_API_URL": f"http://127.0.0.1:{backend_port}",
        "REFLEX_WEB_WORKDIR": str(web_dir),
        "REFLEX_STATES_WORKDIR": str(workdir / "states"),
        "DATABASE_URL": f"sqlite:///{workdir / 'chatmon.db'}",
        "LLM_MODEL": "openai/fake",
        "LLM_API_BASE": fake_llm.url,
        "LLM_API_KEY": "sk-export-test",
        "BACKEND_PORT": str(backend_port),
        # the pages come from another origin: the backend must be told to accept it
        "CORS_ALLOWED_ORIGINS": nginx.url,
    }
    build = subprocess.run(
        ["bash", "scripts/export.sh"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert build.returncode == 0, build.stdout[-3000:] + build.stderr[-3000:]
    assert (site / "index.html").is_file()

    log_file = workdir / "backend.log"
    with log_file.open("w") as log:
        backend = subprocess.Popen(
            ["bash", "scripts/start-backend.sh"],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        _wait_until_up(f"http://127.0.0.1:{backend_port}", backend, log_file, page_path="/health")
        with nginx:
            yield nginx.url
    finally:
        stop(backend, group=True)


def test_exported_frontend_chats_through_separate_backend(
    exported_site: str, browser: Browser
) -> None:
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(exported_site + "/")
        page.wait_for_selector("#message:not([disabled])", timeout=30_000)
        # connected and loaded: the backend has handed this browser its id
        page.wait_for_selector("#chat-loaded", state="attached")
        page.fill("#message", "hello from a static site")
        page.click("#send-button")
        expect(page.locator(".bubble-assistant").last).to_contain_text(
            "Echo: hello from a static site", timeout=20_000
        )
    finally:
        context.close()


def test_nginx_answers_any_page_path_with_the_app_shell(
    exported_site: str, browser: Browser
) -> None:
    """deploy/nginx/chatmon-static.conf's try_files: a path that is no file (a deep link,
    a reload on a route) gets the app's shell (404.html), with 200, and the shell routes in
    the browser; a missing bundle file stays a 404."""
    shell = httpx.get(exported_site + "/404.html", timeout=10)
    assert shell.status_code == 200
    assert "<html" in shell.text.lower()
    deep = httpx.get(exported_site + "/some/deep/link", timeout=10)
    assert deep.status_code == 200
    assert deep.text == shell.text
    assert httpx.get(exported_site + "/assets/no-such-bundle.js", timeout=10).status_code == 404
    context = browser.new_context()
    page = context.new_page()
    try:
        page.goto(exported_site + "/monitor")  # the shell, routed in the browser
        # The monitor's page, rendered in the browser, sends a signed-out visitor to its login.
        page.wait_for_url(lambda url: "/login?next=/monitor" in url, timeout=30_000)
        expect(page.locator("#login-form")).to_be_visible()
    finally:
        context.close()
