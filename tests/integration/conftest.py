"""The real app, started once per test session in prod mode, against the fake upstream.

The app runs in its own process (``scripts/start.sh``, exactly what ``make run`` runs)
and talks to a FakeLLMServer in this process over real HTTP. Chromium is Debian's,
driven by Playwright; nothing is downloaded.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Coroutine, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, sync_playwright
from sqlalchemy import text
from sqlalchemy.engine import Engine

from chatmon.db import make_engine
from chatmon.devtools.fake_llm_server import FakeLLMServer
from chatmon.devtools.procs import free_port, stop

T = TypeVar("T")
ROOT = Path(__file__).resolve().parents[2]
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
    "--disable-quic",
]
APP_START_TIMEOUT = 420  # a cold first start runs `npm install`
MAX_MESSAGE_CHARS = 2000
START_ATTEMPTS = 2
# The monitor is behind a login by default: every instance gets this password unless a
# test passes MONITOR_PASSWORD="" (then the first start generates one) or MONITOR_AUTH=off.
TEST_MONITOR_PASSWORD = "integration-monitor-pw-7"
MONITOR_USER = "ops"


@dataclass
class RunningApp:
    """A chatmon server started for the tests."""

    url: str
    database_url: str
    prompt_file: Path
    log_file: Path
    web_dir: Path  # the app's built frontend (what bench/reflex_client.py reads)
    process_group: int = 0  # of the server's processes (os.killpg to crash it)
    monitor_password: str | None = None  # None: MONITOR_AUTH=off, or generated (see test_security)

    @property
    def monitor_auth(self) -> tuple[str, str] | None:
        """HTTP Basic credentials for /api/* and /metrics (httpx ``auth=``)."""
        return (MONITOR_USER, self.monitor_password) if self.monitor_password else None


def sign_in(
    page: Page, app: RunningApp, next_path: str = "/monitor", password: str | None = None
) -> None:
    """Sign in through the real login form (POST /auth/login) and land on ``next_path``."""
    page.goto(app.url + "/login?next=" + next_path)
    page.fill("#login-user", MONITOR_USER)
    page.fill("#login-password", password or app.monitor_password or "")
    page.click("#login-submit")
    target = (app.url + next_path).rstrip("/")
    page.wait_for_url(lambda url: url.split("?")[0].rstrip("/") == target)


def isolated_web_dir(workdir: Path) -> Path:
    """A Reflex web directory of this test run's own (REFLEX_WEB_WORKDIR).

    Each app instance builds its frontend there, so tests running beside ``make run``
    (or beside each other) never rebuild the files another server is serving. When the
    project's ``.web`` already holds ``node_modules`` it is hard-linked in, which spares
    the ``npm install`` of a cold start.
    """
    web = workdir / "web"
    web.mkdir(exist_ok=True)
    installed = ROOT / ".web" / "node_modules"
    if installed.is_dir() and not (web / "node_modules").exists():
        subprocess.run(["cp", "-al", str(installed), str(web / "node_modules")], check=True)
    elif not installed.is_dir():
        # Past pytest's capture: a fresh checkout's app starts are minutes, not a hang.
        print(
            f"==> {workdir.name}: no .web/node_modules yet (run `make run` once to keep one),"
            " so this app start runs npm install first: a few minutes",
            file=sys.__stderr__,
            flush=True,
        )
    return web


def run_async(coro: Coroutine[Any, Any, T]) -> T:
    """Run ``coro`` to its end from a sync test, whatever else holds the main thread.

    Playwright's sync API keeps an event loop on the main thread once a browser test
    has run, so ``asyncio.run`` there would refuse; the coroutine gets a fresh loop in
    a worker thread instead (the websocket clients of bench/reflex_client.py use it).
    """
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


def identity_cookie(context: BrowserContext) -> str | None:
    """The server-issued identity cookie (``chatmon_id``) this browser profile holds."""
    return next((c["value"] for c in context.cookies() if c["name"] == "chatmon_id"), None)


def _wait_until_up(
    url: str, process: subprocess.Popen, log_file: Path, page_path: str = "/"
) -> None:
    deadline = time.monotonic() + APP_START_TIMEOUT
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"chatmon exited early:\n{log_file.read_text()[-4000:]}")
        try:
            if (
                httpx.get(url + "/ping", timeout=2).status_code == 200
                and httpx.get(url + page_path, timeout=5).status_code == 200
            ):
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise RuntimeError(f"chatmon did not start in time:\n{log_file.read_text()[-4000:]}")


@pytest.fixture(scope="session")
def fake_llm() -> Iterator[FakeLLMServer]:
    """The fake OpenAI-compatible upstream, shared by the session."""
    with FakeLLMServer() as server:
        yield server


@pytest.fixture(autouse=True)
def _fresh_fake_llm(request: pytest.FixtureRequest) -> None:
    """Every test starts with a well-behaved upstream and zeroed counters."""
    if "fake_llm" in request.fixturenames:
        fake: FakeLLMServer = request.getfixturevalue("fake_llm")
        fake.reset()


def _start_with_retry(env: dict[str, str], url: str, log_file: Path) -> subprocess.Popen:
    """Start the app; try again when the start itself fails.

    On a loaded machine React Router's prerender step inside the production build can
    time out ("Prerender: Request failed ... aborted due to timeout"), which ends the
    start before the app ever runs. That is the build tool's timeout, not chatmon's
    behaviour, so a second attempt is made; a failure after that is reported.
    """
    for attempt in range(1, START_ATTEMPTS + 1):
        with log_file.open("a") as log:
            process = subprocess.Popen(
                ["bash", "scripts/start.sh"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            _wait_until_up(url, process, log_file)
            return process
        except RuntimeError:
            stop(process, group=True)
            early_exit = (
                process.poll() is not None and "Production Build failed" in log_file.read_text()
            )
            if attempt == START_ATTEMPTS or not early_exit:
                raise
    raise AssertionError("unreachable")


@contextmanager
def launch_app(
    *, workdir: Path, fake_llm_url: str, port: int | None = None, **env_overrides: str
) -> Iterator[RunningApp]:
    """Start chatmon (``scripts/start.sh``, as ``make run`` does) and stop it afterwards.

    ``env_overrides`` are extra environment variables (e.g. ``RATE_LIMIT_PER_MINUTE="3"``);
    the default points the app at ``fake_llm_url`` with a database of its own in ``workdir``
    (the same ``workdir`` and ``port`` again start the same instance anew, as a restart).
    Each start costs 10-40 s: prefer the session's ``app_server`` when its settings do.
    """
    workdir.mkdir(parents=True, exist_ok=True)
    database_url = f"sqlite:///{workdir / 'chatmon.db'}"
    prompt_file = workdir / "system_prompt.txt"
    prompt_file.write_text("You are the integration-test assistant.")
    log_file = workdir / "app.log"
    port = port or free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "DATABASE_URL": database_url,
        "LLM_MODEL": "openai/fake",
        "LLM_API_BASE": fake_llm_url,
        "LLM_API_KEY": "sk-integration-test-key",
        "LLM_MAX_RETRIES": "1",
        "REQUEST_TIMEOUT": "3",
        "SYSTEM_PROMPT_FILE": str(prompt_file),
        "MAX_MESSAGE_CHARS": str(MAX_MESSAGE_CHARS),
        "REFLEX_WEB_WORKDIR": str(isolated_web_dir(workdir)),
        "REFLEX_STATES_WORKDIR": str(workdir / "states"),
        "LOG_FILE": str(workdir / "chatmon.log"),
        "PROMETHEUS_MULTIPROC_DIR": str(workdir / "prometheus_multiproc"),
        "MONITOR_PASSWORD": TEST_MONITOR_PASSWORD,
        # "{url}" in a value stands for this instance's own address (e.g. PUBLIC_URL)
        **{k: v.replace("{url}", f"http://127.0.0.1:{port}") for k, v in env_overrides.items()},
    }
    if env.get("MONITOR_AUTH", "").lower() in ("off", "false", "0", "no") and (
        "MONITOR_PASSWORD" not in env_overrides
    ):
        env["MONITOR_PASSWORD"] = ""  # off and a password would stop startup (a contradiction)
    url = f"http://127.0.0.1:{port}"
    process = _start_with_retry(env, url, log_file)
    try:
        yield RunningApp(
            url=url,
            database_url=env["DATABASE_URL"],
            prompt_file=prompt_file,
            log_file=log_file,
            web_dir=Path(env["REFLEX_WEB_WORKDIR"]),
            process_group=process.pid,
            monitor_password=env["MONITOR_PASSWORD"] or None,
        )
    finally:
        stop(process, group=True)


@pytest.fixture(scope="session")
def app_server(
    fake_llm: FakeLLMServer, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[RunningApp]:
    """chatmon in prod mode on a free port, configured for the fake upstream."""
    with launch_app(workdir=tmp_path_factory.mktemp("app"), fake_llm_url=fake_llm.url) as app:
        yield app


@pytest.fixture(scope="session")
def app_db(app_server: RunningApp) -> Iterator[Engine]:
    """Read access to the running app's database."""
    engine = make_engine(app_server.database_url)
    yield engine
    engine.dispose()


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    """Debian's Chromium, headless."""
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@contextmanager
def chat_page(browser: Browser, url: str) -> Iterator[Page]:
    """A fresh browser profile (empty localStorage) on the chat page at ``url``, ready to type."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    try:
        page = context.new_page()
        page.set_default_timeout(20_000)
        page.goto(url + "/")
        page.wait_for_selector("#message:not([disabled])")
        page.wait_for_selector("#chat-loaded", state="attached")
        yield page
    finally:
        context.close()


@pytest.fixture
def page(browser: Browser, app_server: RunningApp) -> Iterator[Page]:
    """A fresh browser profile (empty localStorage) on the chat page, ready to type."""
    with chat_page(browser, app_server.url) as page:
        yield page


# ----- a module's own app instance ---------------------------------------------------
# A module that needs the app configured its own way (launch_app with extra settings)
# defines a module-scoped ``module_app`` fixture; these give it a work directory, its
# database and a chat page.


@pytest.fixture(scope="module")
def workdir(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The work directory of the module's own app (its logs, database and build)."""
    return tmp_path_factory.mktemp(request.module.__name__.rsplit(".", 1)[-1])


@pytest.fixture(scope="module")
def module_db(module_app: RunningApp) -> Iterator[Engine]:
    """Access to the database of the module's own app."""
    engine = make_engine(module_app.database_url)
    yield engine
    engine.dispose()


@pytest.fixture
def chat(browser: Browser, module_app: RunningApp) -> Iterator[Page]:
    """A fresh browser profile on the chat page of the module's own app, ready to type."""
    with chat_page(browser, module_app.url) as page:
        yield page


def last_correlation_id(db: Engine) -> str:
    """The correlation id of the last reply saved in ``db`` (its trace's seed)."""
    with db.connect() as connection:
        correlation_id: str = connection.execute(
            text(
                "SELECT correlation_id FROM chatmessage WHERE role = 'assistant' "
                "AND correlation_id IS NOT NULL ORDER BY id DESC LIMIT 1"
            )
        ).scalar_one()
        return correlation_id
