"""Static export: the frontend built once with REFLEX_API_URL, served by a plain web
server, chatting through a separate `--backend-only` process."""

from __future__ import annotations

import functools
import http.server
import os
import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, expect

from chatmon.devtools.fake_llm import FakeLLMServer
from tests.integration.conftest import (
    ROOT,
    _stop,
    _wait_until_up,
    free_port,
    isolated_web_dir,
)

pytestmark = pytest.mark.browser


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def exported_site(
    fake_llm: FakeLLMServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """Build the static site, start the backend alone and a static file server."""
    workdir = tmp_path_factory.mktemp("export")
    backend_port = free_port()
    static_port = free_port()
    env = {
        **os.environ,
        "REFLEX_API_URL": f"http://127.0.0.1:{backend_port}",
        "REFLEX_WEB_WORKDIR": str(isolated_web_dir(workdir)),
        "REFLEX_STATES_WORKDIR": str(workdir / "states"),
        "DATABASE_URL": f"sqlite:///{workdir / 'chatmon.db'}",
        "LLM_MODEL": "openai/fake",
        "LLM_API_BASE": fake_llm.url,
        "LLM_API_KEY": "sk-export-test",
        "BACKEND_PORT": str(backend_port),
        # the pages come from another origin: the backend must be told to accept it
        "CORS_ALLOWED_ORIGINS": f"http://127.0.0.1:{static_port}",
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
    site = Path(env["REFLEX_WEB_WORKDIR"]) / "build" / "client"
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
    static = http.server.ThreadingHTTPServer(
        ("127.0.0.1", static_port), functools.partial(_QuietHandler, directory=str(site))
    )
    threading.Thread(target=static.serve_forever, daemon=True).start()
    try:
        _wait_until_up(f"http://127.0.0.1:{backend_port}", backend, log_file, page_path="/health")
        yield f"http://127.0.0.1:{static.server_address[1]}"
    finally:
        static.shutdown()
        static.server_close()
        _stop(backend)


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
