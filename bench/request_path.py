"""Shared by ``bench.overhead`` and ``bench.chaos``: chatmon's request path as the app wires
it, driven without Reflex, against the fake upstream in a process of its own.

``prepare`` must run before anything imports ``chatmon``: settings are read once from the
environment, exactly as in the app. It points chatmon at the fake upstream, a migrated
SQLite database and log file in a temp directory and, unless told otherwise, a local
Langfuse sink (so tracing really runs: queue, worker thread, OTLP export over HTTP).
``install_listeners`` then subscribes what ``chatmon/chatmon.py`` subscribes.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from chatmon.devtools.procs import stop

ROOT = Path(__file__).resolve().parents[1]

# A Langfuse stand-in: accepts any POST (OTLP traces, scores) with 200 "{}".
_SINK = """
import http.server
class Sink(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("content-length") or 0))
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", "2")
        self.end_headers()
        self.wfile.write(b"{}")
    do_PUT = do_POST
    def log_message(self, *args):
        pass
server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Sink)
print(f"listening on http://127.0.0.1:{server.server_address[1]}", flush=True)
server.serve_forever()
"""


@dataclass
class Upstream:
    """The fake LLM upstream process: its OpenAI base URL and its HTTP control."""

    url: str  # ends in /v1

    @property
    def control(self) -> str:
        return self.url.removesuffix("/v1") + "/_control"

    def configure(self, client: httpx.Client | None = None, **changes: object) -> None:
        """Change the fake's behaviour for the next requests (POST /_control)."""
        (client or httpx).post(self.control, json=changes, timeout=5).raise_for_status()

    def counters(self) -> dict[str, int]:
        """``{"hits", "failures", "successes"}`` since start or the last reset."""
        return httpx.get(self.control, timeout=5).json()["counters"]

    def reset_counters(self) -> None:
        self.configure(reset_counters=True)


def _listening_url(process: subprocess.Popen, what: str) -> str:
    assert process.stdout is not None
    line = process.stdout.readline()
    match = re.search(r"listening on (\S+)", line)
    if match is None:
        raise RuntimeError(f"{what} did not start: {line!r}")
    return match.group(1)


@contextmanager
def fake_upstream(*, latency: float = 0.0, reply_words: int = 12) -> Iterator[Upstream]:
    """``python -m chatmon fake-llm`` in its own process (its work never takes our GIL)."""
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
            "--reply-words",
            str(reply_words),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        yield Upstream(url=_listening_url(process, "fake-llm"))
    finally:
        stop(process, group=True, timeout=10)


@contextmanager
def langfuse_sink() -> Iterator[str]:
    """A local HTTP server standing in for Langfuse, in its own process; yields its URL."""
    process = subprocess.Popen(
        [sys.executable, "-c", _SINK], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        yield _listening_url(process, "langfuse sink")
    finally:
        stop(process, group=True, timeout=10)


def prepare(
    workdir: Path, *, upstream: Upstream, langfuse_url: str | None, **settings: str
) -> None:
    """Configure chatmon through the environment, as an operator would (before importing it).

    ``settings`` are extra variables (e.g. ``REQUEST_TIMEOUT="2"``).
    """
    database_url = f"sqlite:///{workdir / 'chatmon.db'}"
    env = {
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
        "DATABASE_URL": database_url,
        "LOG_FILE": str(workdir / "chatmon.log"),
        "LOG_LEVEL": "ERROR",  # JSON logs stay on; only errors reach the terminal
        "SYSTEM_PROMPT_FILE": str(workdir / "system_prompt.txt"),
        "LLM_MODEL": "openai/fake",
        "LLM_API_BASE": upstream.url,
        "LLM_API_KEY": "sk-bench-not-a-real-key",
        "LLM_PRICE_INPUT_PER_1M": "0.075",
        "LLM_PRICE_OUTPUT_PER_1M": "0.30",
        "ENABLE_LANGFUSE": "true" if langfuse_url else "false",
        **settings,
    }
    if langfuse_url:
        env |= {
            "LANGFUSE_HOST": langfuse_url,
            "LANGFUSE_PUBLIC_KEY": "pk-lf-bench",
            "LANGFUSE_SECRET_KEY": "sk-lf-bench",
        }
    (workdir / "system_prompt.txt").write_text("You are a concise assistant.")
    os.environ.pop("PROMETHEUS_MULTIPROC_DIR", None)  # one process: plain registry
    os.environ.update(env)

    from chatmon.migrate import upgrade_head

    upgrade_head(database_url)


def install_listeners() -> list[str]:
    """Subscribe what the app module subscribes; returns the active LLMCall listeners."""
    from chatmon.services import events, llm, recorder
    from chatmon.settings import get_settings
    from chatmon.wiring import install

    install(get_settings())  # JSON logs, Prometheus series, Langfuse tracing
    recorder.install()  # one llm_request row per request, written off the event loop
    llm.warm_up()  # as the app's lifespan task does at startup
    return [_listener_name(listener) for listener in events._call_listeners]


def _listener_name(listener: object) -> str:
    owner = getattr(listener, "__self__", None)
    name = getattr(listener, "__qualname__", repr(listener))
    if owner is not None:
        return f"{type(owner).__module__}.{name}"
    return f"{getattr(listener, '__module__', '?')}.{name}"


def line(name: str, value: str, reference: str, ratio: float) -> str:
    """One benchmark figure: ``name: value (reference: value, ratio)``."""
    return f"{name}: {value} (reference: {reference}, ratio {ratio:.3f})"


def describe(settings: dict[str, object]) -> str:
    return json.dumps(settings, sort_keys=True)
