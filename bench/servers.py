"""The processes a chat benchmark runs against: the fake upstream, a chatmon prod server
and the databases it may be given (a PostgreSQL database, a Redis db of the bench's own).

Used by ``bench.concurrency`` and ``bench.first_paint``: the fake upstream starts in a
process of its own (``python -m chatmon fake-llm``), so its work never competes with the
clients for the bench's GIL, and chatmon starts in prod mode (``scripts/start.sh``, what
``make run`` runs) in a temp workdir against it.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from chatmon.devtools.procs import free_port, stop

ROOT = Path(__file__).resolve().parents[1]
SYSTEM_PROMPT = "You are the benchmark assistant."
REDIS_DB = 12  # the bench's own; tests/integration/test_scale_out.py uses 11
START_TIMEOUT = 420  # a cold first start runs `npm install`
START_ATTEMPTS = 5  # the build prerenders "/" in 10 s, which a loaded 2-core box misses
PRERENDER_TIMEOUT = "Prerender: Request failed for /: The operation was aborted due to timeout"


# ----------------------------------------------------------------------------- processes
@contextmanager
def fake_llm(*, latency: float, tokens_per_second: float, reply_words: int) -> Iterator[str]:
    """The fake upstream in its own process; yields its OpenAI base URL (``.../v1``)."""
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "chatmon",
            "fake-llm",
            "--port",
            "0",
            "--latency",
            str(latency),
            "--tokens-per-second",
            str(tokens_per_second),
            "--reply-words",
            str(reply_words),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        assert process.stdout is not None
        line = process.stdout.readline()
        match = re.search(r"listening on (\S+)", line)
        if match is None:
            raise RuntimeError(f"fake-llm did not start: {line!r}")
        yield match.group(1)
    finally:
        stop(process, group=True)


@dataclass
class Server:
    """A chatmon prod server started by the bench."""

    url: str
    process: subprocess.Popen
    web_dir: Path
    log_file: Path

    def pss(self) -> int:
        """Proportional set size of the tree: shared pages split between their users.

        Granian forks its workers from a supervisor that imported the app, so much of
        each worker's RSS is shared; PSS is the memory the tree really costs.
        """
        total = 0
        root = psutil.Process(self.process.pid)
        for proc in [root, *root.children(recursive=True)]:
            with suppress(psutil.NoSuchProcess):
                total += proc.memory_full_info().pss
        return total

    def rss(self) -> int:
        """Resident memory of the whole process tree, in bytes (shared pages count twice)."""
        try:
            return sum(self.process_rss())
        except psutil.NoSuchProcess:
            return 0

    def cpu_seconds(self) -> float:
        """User + system CPU time used so far by the live process tree."""
        total = 0.0
        root = psutil.Process(self.process.pid)
        for proc in [root, *root.children(recursive=True)]:
            try:
                times = proc.cpu_times()
                total += times.user + times.system
            except psutil.NoSuchProcess:
                pass
        return total

    def process_rss(self) -> list[int]:
        """RSS of each process in the tree (reflex, granian's workers), in bytes."""
        root = psutil.Process(self.process.pid)
        sizes = []
        for proc in [root, *root.children(recursive=True)]:
            with suppress(psutil.NoSuchProcess):
                sizes.append(proc.memory_info().rss)
        return sizes


def _web_dir(workdir: Path) -> Path:
    """A web dir of the server's own (REFLEX_WEB_WORKDIR), reusing installed node_modules.

    Same as ``tests/integration/conftest.py``: hard-links the project's ``.web/node_modules``
    so a start skips ``npm install`` and never rebuilds files another server serves.
    """
    web = workdir / "web"
    web.mkdir(exist_ok=True)
    installed = ROOT / ".web" / "node_modules"
    if installed.is_dir() and not (web / "node_modules").exists():
        subprocess.run(["cp", "-al", str(installed), str(web / "node_modules")], check=True)
    return web


@contextmanager
def chatmon_server(
    *, workdir: Path, fake_llm_url: str, env_overrides: dict[str, str]
) -> Iterator[Server]:
    """chatmon via ``scripts/start.sh`` on a free port, stopped (process group) on exit."""
    prompt = workdir / "system_prompt.txt"
    prompt.write_text(SYSTEM_PROMPT)
    port = free_port()
    env = {
        **os.environ,
        "PORT": str(port),
        "DATABASE_URL": f"sqlite:///{workdir / 'chatmon.db'}",
        "LLM_MODEL": "openai/fake",
        "LLM_API_BASE": fake_llm_url,
        "LLM_API_KEY": "sk-bench-key",
        "REQUEST_TIMEOUT": "60",
        "RATE_LIMIT_PER_MINUTE": "0",
        "RATE_LIMIT_PER_IP_PER_MINUTE": "0",
        "GLOBAL_RATE_LIMIT_PER_MINUTE": "0",
        "SYSTEM_PROMPT_FILE": str(prompt),
        "LOG_FILE": str(workdir / "chatmon.log"),
        "REFLEX_WEB_WORKDIR": str(_web_dir(workdir)),
        "REFLEX_STATES_WORKDIR": str(workdir / "states"),
        "PROMETHEUS_MULTIPROC_DIR": str(workdir / "prometheus"),
        **env_overrides,
    }
    log_file = workdir / "server.log"
    for attempt in range(1, START_ATTEMPTS + 1):
        with log_file.open("w") as log:
            process = subprocess.Popen(
                ["bash", "scripts/start.sh"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        web_dir = Path(env["REFLEX_WEB_WORKDIR"])
        server = Server(f"http://127.0.0.1:{port}", process, web_dir, log_file)
        try:
            _wait_until_up(server)
            break
        except RuntimeError:
            stop(process, group=True)
            # The frontend build prerenders "/" with a fixed 10 s timeout, which a busy
            # shared machine can miss; that is the build, not what this bench measures.
            if attempt == START_ATTEMPTS or PRERENDER_TIMEOUT not in log_file.read_text():
                raise
            print(f"# start {attempt}: the build's prerender timed out, starting again", flush=True)
    try:
        yield server
    finally:
        stop(process, group=True)


def _wait_until_up(server: Server) -> None:
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        if server.process.poll() is not None:
            raise RuntimeError(f"chatmon exited early:\n{server.log_file.read_text()[-4000:]}")
        try:
            if (
                httpx.get(server.url + "/ping", timeout=2).status_code == 200
                and httpx.get(server.url + "/", timeout=5).status_code == 200
            ):
                return
        except httpx.HTTPError:
            pass
        time.sleep(1)
    raise RuntimeError(f"chatmon did not start in time:\n{server.log_file.read_text()[-4000:]}")


class PeakRss:
    """Samples a server's RSS in a thread while a load runs; keeps the peak."""

    def __init__(self, server: Server, interval: float = 0.25) -> None:
        self.server, self.interval, self.peak = server, interval, 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            self.peak = max(self.peak, self.server.rss())
            self._stop.wait(self.interval)

    def __enter__(self) -> PeakRss:
        self._thread.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self.server.rss())


@contextmanager
def postgres_database() -> Iterator[str]:
    """A PostgreSQL database of the bench's own, dropped after (on the server the tests use:
    tests/services.py, a throwaway one when the machine's does not accept them)."""
    from sqlalchemy import create_engine, make_url, text

    from tests.services import postgres_admin_url

    name = f"chatmon_bench_{os.getpid()}"
    admin_url = postgres_admin_url()
    admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as connection:
        connection.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        connection.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            connection.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def flush_redis_db() -> None:
    """Empty the bench's Redis db (``REDIS_DB``), before and after a ``--redis`` run."""
    import redis  # installed with reflex

    from tests.services import redis_url

    redis.Redis.from_url(f"{redis_url()}/{REDIS_DB}").flushdb()
