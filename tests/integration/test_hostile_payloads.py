"""No input can stall the process (issue #10): the real app, a real websocket, hostile text.

One client sends the largest events the server accepts, filled with the worst text we
found: near-misses of every masking and redaction pattern, backslash runs (quadratic in
``rich.markup.escape``, which Reflex runs on every frontend error report) and repeated
Firefox error prefixes (cubic in Reflex's auto-reload patterns), as
``handle_frontend_exception`` events, ``client_error`` socket events and chat messages of
the maximum length. Meanwhile a prober in a process of its own asks ``/ping`` every 50 ms,
and every probe must be answered within 200 ms of an idle server of the same kind asked at
the same moment (``ping_control.py``: on 2 shared cores the machine itself pauses now and
then, and such a pause is not the app's).

The app is started for this module (``launch_app``, as ``make run`` runs it) with its
default MAX_MESSAGE_CHARS (16,000), so the largest accepted event is the largest a
deployment accepts by default, and with Langfuse tracing on (a local receiver), so every
reply is also capped, redacted and masked for its trace: the path where long model
replies met the same patterns.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest

from bench.reflex_client import CompiledApp, ReflexSession, SessionClosed, chat_messages, form_data
from chatmon.client_errors import WINDOW_SECONDS
from chatmon.devtools.fake_llm_server import FakeLLMServer
from chatmon.devtools.langfuse_receiver import LangfuseReceiver
from chatmon.devtools.procs import free_port
from chatmon.services.limits import (
    CLIENT_ERROR_MAX_CHARS,
    LOG_MESSAGE_MAX_CHARS,
    LOG_TRACEBACK_MAX_CHARS,
    socket_max_message_chars,
)
from tests.integration.conftest import ROOT, RunningApp, launch_app

# Whichever test runs first starts the module's app (up to a few minutes on a loaded
# machine, a retried production build included).
pytestmark = pytest.mark.timeout(900)

MAX_MESSAGE_CHARS = 16_000  # the default
SOCKET_MAX_CHARS = socket_max_message_chars(MAX_MESSAGE_CHARS)
ATTACK_ROUNDS = 4  # at least; each ~1 s on a warm, loaded server
ATTACK_MIN_SECONDS = 6.0  # and rounds go on until this long, so the prober has much to see
ATTACK_MAX_ROUNDS = 12
PING_BUDGET_SECONDS = 0.200
PROBE_INTERVAL_SECONDS = 0.05
REPLY_TIMEOUT = 120.0
CHAT_STATE = "chat"
EXCEPTION_STATE = "reflex___state____frontend_event_exception_state"
PUBLIC_KEY = "pk-lf-hostile-0001"
SECRET_KEY = "sk-lf-hostile-secret-0001"
FIREFOX = "TypeError: can't access property \""

# Error report texts: what makes Reflex's own handling of a report super-linear, and
# near-misses of our masking patterns (every report is logged, so masked).
HOSTILE_REPORTS = {
    "backslash runs": "\\",
    "firefox prefixes": FIREFOX + '", ',
    "dash runs": "ab-",
    "url near-misses": "http://a:a:",
    "email near-misses": "a.a.a.@",
    "everything": "ab-sk-a AIza-x Bearer\t a+b://c:d token: ?key= a.a@1.1 +1 (1) 01 GB82 \\\\",
}
# Chat messages of the maximum length, echoed back by the fake upstream and traced. No
# whitespace: the fake streams one chunk per word, and a reply of thousands of chunks
# stalls the event loop by itself, whatever its text (each chunk resends the whole reply,
# reflex-dev/reflex#4156; plain "aa aa aa ..." does it as much as "+1 +1 ..."). That is
# the streaming issue's (STREAM_FLUSH_MS), not this one's.
HOSTILE_MESSAGES = {
    "dash runs": "ab-",
    "email near-misses": "a.a.a.@",
    "url near-misses": "http://a:a:",
    "digit runs": "1-1-1-1-",
    "phone near-misses": "(555)123-+1-",
    "everything": "ab-sk-a+AIza-x+a+b://c:d+token:?key=a.a@1.1+1(1)01GB82-\\",
}


def _fill(unit: str, length: int) -> str:
    return (unit * (length // len(unit) + 1))[:length]


def _frame_chars(event: dict[str, Any]) -> int:
    """Characters of the websocket frame that carries ``event`` (what the server counts)."""
    return len("42/_event," + json.dumps(["event", event], separators=(",", ":")))


def _largest_report(session: ReflexSession, unit: str) -> dict[str, Any]:
    """A ``handle_frontend_exception`` payload whose frame just fits the server's limit."""
    name = session.app.handler(EXCEPTION_STATE, "handle_frontend_exception")
    fits = SOCKET_MAX_CHARS - 512
    payload = {"info": _fill(unit, fits), "component_stack": "at Composer"}
    while (size := _frame_chars(session._event(name, payload))) > fits:
        payload["info"] = payload["info"][: len(payload["info"]) - (size - fits) - 1]
    return payload


class Prober:
    """``tests/integration/ping_prober.py`` in a process of its own, for a ``with`` block,
    probing ``url`` and an idle control server (``ping_control.py``) side by side."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.results: list[tuple[float, float | None, float | None]] = []

    def __enter__(self) -> Prober:
        port = free_port()
        self._control = subprocess.Popen(
            [sys.executable, "-m", "tests.integration.ping_control", str(port)],
            cwd=ROOT,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        self._process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "tests.integration.ping_prober",
                self.url,
                f"http://127.0.0.1:{port}",
                str(PROBE_INTERVAL_SECONDS),
            ],
            cwd=ROOT,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        assert self._process.stdout is not None
        assert self._process.stdout.readline().strip() == "ready", "the prober did not start"
        return self

    def __exit__(self, *exc_info: object) -> None:
        try:
            out, _ = self._process.communicate(timeout=30)  # closing stdin stops it
            self.results = [tuple(item) for item in json.loads(out)]
        finally:
            self._control.terminate()
            self._control.wait(timeout=30)


def run_async(coro: Any) -> Any:
    """Run a coroutine in a thread of its own (Playwright may hold this thread's loop)."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(asyncio.run, coro).result()


@pytest.fixture(scope="module")
def receiver() -> Iterator[LangfuseReceiver]:
    with LangfuseReceiver(public_key=PUBLIC_KEY, secret_key=SECRET_KEY) as server:
        yield server


@pytest.fixture(scope="module")
def hostile_app(
    fake_llm: FakeLLMServer, receiver: LangfuseReceiver, workdir: Path
) -> Iterator[RunningApp]:
    with launch_app(
        workdir=workdir,
        fake_llm_url=fake_llm.url,
        MAX_MESSAGE_CHARS=str(MAX_MESSAGE_CHARS),
        RATE_LIMIT_PER_MINUTE="0",
        RATE_LIMIT_PER_IP_PER_MINUTE="0",  # one client sends every payload
        GLOBAL_RATE_LIMIT_PER_MINUTE="0",
        LANGFUSE_PUBLIC_KEY=PUBLIC_KEY,
        LANGFUSE_SECRET_KEY=SECRET_KEY,
        LANGFUSE_HOST=receiver.url,
        LANGFUSE_TIMEOUT="1",
    ) as app:
        yield app


@pytest.fixture(scope="module")
def compiled(hostile_app: RunningApp, workdir: Path) -> CompiledApp:
    """The app's frontend, after one ordinary chat: the first chat of a fresh process
    stalls it for up to a second or so (lazy work on the first model call), a cold start
    that no input causes, so it is kept out of the measurement."""
    app = CompiledApp.from_web_dir(workdir / "web")

    async def warm_up() -> None:
        session = ReflexSession(hostile_app.url, app)
        await session.connect(timeout=60)
        try:
            await _chat(session, "warm up")
        finally:
            await session.close()

    run_async(warm_up())
    return app


async def _chat(session: ReflexSession, text: str) -> dict[str, Any]:
    """Send ``text`` in a new conversation, as the composer does; the finished reply.

    A new conversation each time: every state change resends the whole conversation
    (reflex-dev/reflex#4156), so a conversation of many maximum-length messages slows
    every event down by its size, whatever the text. That is not what is measured here.
    """
    await session.send(session.app.handler(CHAT_STATE, "new_conversation"))
    await session.wait_until(lambda s: not chat_messages(s), timeout=30)
    before = 0
    await session.send(
        session.app.handler(CHAT_STATE, "send_message"), form_data=form_data(message=text)
    )
    await session.wait_until(
        lambda s: len(chat_messages(s) or []) >= before + 2 and not s.get(CHAT_STATE, "streaming"),
        timeout=REPLY_TIMEOUT,
    )
    return chat_messages(session)[-1]


async def _attack(
    url: str, app: CompiledApp, phases: list[tuple[float, str]]
) -> list[dict[str, Any]]:
    """Every hostile payload from one tab; returns the chat replies it got.

    ``phases`` gets ``(time.perf_counter(), what)`` as each payload is sent.
    """
    session = ReflexSession(url, app)
    await session.connect(timeout=60)
    replies = []
    try:
        started = time.perf_counter()
        round_ = 0
        while round_ < ATTACK_ROUNDS or (
            time.perf_counter() - started < ATTACK_MIN_SECONDS and round_ < ATTACK_MAX_ROUNDS
        ):
            round_ += 1
            for label, unit in HOSTILE_REPORTS.items():
                phases.append((time.perf_counter(), f"round {round_}, report: {label}"))
                await session.send(
                    app.handler(EXCEPTION_STATE, "handle_frontend_exception"),
                    **_largest_report(session, unit),
                )
                phases.append((time.perf_counter(), f"round {round_}, client_error: {label}"))
                await session.emit(
                    "client_error",
                    {"error_type": _fill(unit, 4_000), "message": _fill(unit, 60_000)},
                )
            for label, unit in HOSTILE_MESSAGES.items():
                phases.append((time.perf_counter(), f"round {round_}, chat: {label}"))
                replies.append(await _chat(session, _fill(unit, MAX_MESSAGE_CHARS)))
        phases.append((time.perf_counter(), "done"))
    finally:
        await session.close()
    return replies


def _phase_at(phases: list[tuple[float, str]], at: float) -> str:
    """What the attack was sending at ``at``."""
    current = "before the attack"
    for started, what in phases:
        if started <= at:
            current = what
    return current


def _log_lines(app: RunningApp, needle: str, *, timeout: float) -> list[dict[str, Any]]:
    deadline = time.monotonic() + timeout
    path = app.log_file.parent / "chatmon.log"
    while True:
        found = [
            json.loads(raw)
            for raw in path.read_text().splitlines()
            if needle in raw and raw.startswith("{")
        ]
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def test_frontend_error_reports_are_logged_capped(
    hostile_app: RunningApp, compiled: CompiledApp
) -> None:
    """What a browser reports reaches the log as one bounded line, and the rest of what
    it sent is dropped unread by the patterns. Another test's reports may have used up
    this minute's log budget (REPORTS_PER_WINDOW): then the report is sent again until the
    next minute logs it, so the test holds in any order."""

    marker = f"report-{uuid.uuid4().hex[:8]}"

    async def report() -> None:
        session = ReflexSession(hostile_app.url, compiled)
        await session.connect(timeout=60)
        try:
            payload = _largest_report(session, f"{marker} \\ ab-")
            await session.send(
                compiled.handler(EXCEPTION_STATE, "handle_frontend_exception"), **payload
            )
            await asyncio.sleep(1.0)
            assert not session.closed, session.errors
        finally:
            await session.close()

    deadline = time.monotonic() + WINDOW_SECONDS + 30
    lines: list[dict[str, Any]] = []
    while not lines and time.monotonic() < deadline:
        run_async(report())
        lines = _log_lines(hostile_app, marker, timeout=10)
    assert lines, "the report was not logged, not even in the next minute's budget"
    for line in lines:
        assert line["message"].startswith("frontend exception reported by a browser:")
        assert len(line["message"]) < CLIENT_ERROR_MAX_CHARS + 200
        assert "…[truncated" in line["message"]
    # No line of the log holds more than a capped message and a capped traceback, even
    # with every character JSON-escaped (at most 6 characters for one).
    longest = 6 * (LOG_MESSAGE_MAX_CHARS + LOG_TRACEBACK_MAX_CHARS) + 1_000
    for raw in (hostile_app.log_file.parent / "chatmon.log").read_text().splitlines():
        assert len(raw) < longest


def test_what_reflex_logs_of_a_malformed_event_is_capped(
    hostile_app: RunningApp, compiled: CompiledApp
) -> None:
    """An event sent as a bare string makes Reflex log it whole, twice (a warning and the
    deserialization error, with its traceback): every line stays within the caps."""
    marker = f"malformed-{uuid.uuid4().hex[:8]}"
    payload = marker + " " + _fill("ab-", SOCKET_MAX_CHARS - 2_000)

    async def send() -> None:
        session = ReflexSession(hostile_app.url, compiled)
        await session.connect(timeout=60)
        try:
            await session.emit("event", payload)
            await asyncio.sleep(1.0)
        finally:
            await session.close()

    run_async(send())
    time.sleep(1.0)
    for name in ("app.log", "chatmon.log"):  # the server's output, and the JSON log file
        lines = [
            line
            for line in (hostile_app.log_file.parent / name).read_text().splitlines()
            if marker in line
        ]
        assert lines, f"nothing about the malformed event in {name}"
        assert max(map(len, lines)) < LOG_TRACEBACK_MAX_CHARS + 2_000 < len(payload)


def test_ping_answers_within_200_ms_while_a_client_sends_hostile_payloads(
    hostile_app: RunningApp, compiled: CompiledApp, receiver: LangfuseReceiver
) -> None:
    phases: list[tuple[float, str]] = []
    with Prober(hostile_app.url) as prober:
        time.sleep(1.0)  # a second of probes before the attack, for comparison
        replies = run_async(_attack(hostile_app.url, compiled, phases))
    slow = [
        (_phase_at(phases, at), _ms(latency), _ms(control))
        for at, latency, control in prober.results
        if _stalled(latency, control)
    ]
    answered = [latency for _, latency, _ in prober.results if latency is not None]
    controls = [control for _, _, control in prober.results if control is not None]
    print(
        f"\n{len(prober.results)} probes, slowest {max(answered, default=0) * 1000:.0f} ms"
        f" (idle control server at the same moments: {max(controls, default=0) * 1000:.0f} ms)"
    )
    assert len(prober.results) >= 40, "the prober hardly ran"
    assert not slow, (
        f"/ping over {PING_BUDGET_SECONDS * 1000:.0f} ms beyond the idle control"
        f" (during, ms, control ms): {slow}"
    )
    # Every maximum-length message was answered in full, and traced.
    for reply, unit in zip(
        replies, [*HOSTILE_MESSAGES.values()] * (len(replies) // len(HOSTILE_MESSAGES)), strict=True
    ):
        assert reply["role"] == "assistant" and not reply.get("error_category")
        assert reply["content"].startswith("Echo: " + unit.strip()[:3])
    receiver.wait_for(lambda r: len(r.spans) > len(replies), timeout=30)  # + the warm-up


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


def _stalled(latency: float | None, control: float | None) -> bool:
    """Whether the app answered a probe more than the budget later than an idle server of
    the same kind asked at the same moment (or not at all). A pause of the whole machine
    (2 shared cores) delays both; only the app's own work delays the app alone."""
    if latency is None:
        return True
    return latency - (control or 0.0) > PING_BUDGET_SECONDS


def test_an_event_over_the_socket_limit_drops_only_that_connection(
    hostile_app: RunningApp, compiled: CompiledApp
) -> None:
    """The server reads no more than a maximum-length message needs: a bigger frame ends
    that websocket (the page reconnects), and the server and other tabs carry on."""

    async def scenario() -> dict[str, Any]:
        bystander = ReflexSession(hostile_app.url, compiled)
        attacker = ReflexSession(hostile_app.url, compiled)
        await bystander.connect(timeout=60)
        await attacker.connect(timeout=60)
        try:
            await attacker.send(
                compiled.handler(CHAT_STATE, "send_message"),
                form_data=form_data(message="z" * (SOCKET_MAX_CHARS + 1_000)),
            )
            await attacker.wait_until(lambda s: s.closed, timeout=20)
            with pytest.raises(SessionClosed):
                await attacker.send(
                    compiled.handler(CHAT_STATE, "send_message"),
                    form_data=form_data(message="still there?"),
                )
            return await _chat(bystander, "the bystander carries on")
        finally:
            await bystander.close()

    reply = run_async(scenario())
    assert reply["content"].startswith("Echo: the bystander carries on")
    assert httpx.get(hostile_app.url + "/ping", timeout=5).status_code == 200


def test_a_message_over_the_limit_that_skips_the_page_is_refused_clearly(
    hostile_app: RunningApp, compiled: CompiledApp
) -> None:
    """Within the socket's limit, the server's own check still answers a client that
    skips the composer's: a clear notice, nothing stored. The message is made of control
    characters, six characters each in JSON: the socket's limit has room for that."""

    async def scenario() -> tuple[str, list[Any]]:
        session = ReflexSession(hostile_app.url, compiled)
        await session.connect(timeout=60)
        try:
            await session.send(compiled.handler(CHAT_STATE, "new_conversation"))
            await session.send(
                compiled.handler(CHAT_STATE, "send_message"),
                form_data=form_data(message="\u0001" * (MAX_MESSAGE_CHARS + 1)),
            )
            await session.wait_until(lambda s: s.get(CHAT_STATE, "notice"), timeout=30)
            return session.get(CHAT_STATE, "notice"), chat_messages(session)
        finally:
            await session.close()

    notice, messages = run_async(scenario())
    assert notice == (
        f"Your message is {MAX_MESSAGE_CHARS + 1:,} characters long; "
        f"the limit is {MAX_MESSAGE_CHARS:,}. Please shorten it."
    )
    assert messages == []
