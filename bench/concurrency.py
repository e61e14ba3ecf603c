"""Concurrency: N simultaneous chat sessions streaming through ONE prod server.

    python -m bench.concurrency --sessions 50,200 [--redis] [--workers N] [--postgres]
                                [--rounds R] [--latency S] [--tokens-per-second R]
    python -m bench.concurrency --breakdown TURNS [--reply-words W]   # where the bytes go

In one run, side by side:

1. the fake upstream starts in a process of its own (``python -m chatmon fake-llm``), so
   its work never competes with the clients for this process's GIL, and chatmon starts in
   prod mode (``scripts/start.sh``, what ``make run`` runs) in a temp workdir against it;
2. one websocket session must get a full reply first (the protocol works end to end);
3. for each N: N clients call the fake directly, all at once, and time the whole stream
   (the upstream's own time: the reference); then N websocket sessions
   (:mod:`bench.reflex_client`: hydrate and on_load, then ``send_message`` with the form's
   ``message`` field, exactly what the browser sends) send one message each at the same
   moment and wait until ``streaming`` is false again and the reply, with the text the
   fake sends, is appended to ``messages``;
4. prints, per N (medians over ``--rounds`` rounds, after one untimed warm-up round):
   sessions served without error, p50/p95 reply time and the latency added over the
   upstream's own p50/p95, the server's CPU per session against the clients', and the
   server's peak RSS (summed over its process tree: reflex and every granian worker)
   against its idle RSS.

The per-session and global rate limits are switched off: this measures capacity, not the
limiter. ``--redis`` runs with ``REFLEX_REDIS_URL`` (Redis db ``REDIS_DB``, flushed before
and after), where Reflex starts several workers (``--workers`` sets GRANIAN_WORKERS);
``--postgres`` gives the server a PostgreSQL database of its own instead of SQLite.
Figures and what they mean for sizing: docs/scaling.md.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/concurrency.py` as well as `-m bench.concurrency`
    sys.path.insert(0, str(ROOT))

import httpx
import psutil

from bench import breakdown, pyspy
from bench.figures import percentile
from bench.reflex_client import CompiledApp, ReflexSession, chat_messages, form_data
from chatmon.devtools.fake_llm import expected_reply
from chatmon.devtools.procs import free_port, stop

CHAT_STATE = "chat"
LIVE_STATE = ".live"  # the live reply's frames (full name ends so: LiveState.get_name)
SYSTEM_PROMPT = "You are the benchmark assistant."
REDIS_DB = 12  # the bench's own; tests/integration/test_scale_out.py uses 11
START_TIMEOUT = 420  # a cold first start runs `npm install`
START_ATTEMPTS = 5  # the build prerenders "/" in 10 s, which a loaded 2-core box misses
PRERENDER_TIMEOUT = "Prerender: Request failed for /: The operation was aborted due to timeout"
REPLY_TIMEOUT = 120.0
CONNECT_TIMEOUT = 60.0


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


# ----------------------------------------------------------------------------- the clients
@dataclass
class Outcome:
    """One session's (or one direct upstream call's) result."""

    seconds: float | None  # message sent -> reply complete; None when it failed
    error: str = ""
    update_bytes: int = 0  # JSON bytes of the state updates the tab received meanwhile
    live_bytes: int = 0  # of which the live reply's frames
    reply_bytes: int = 0  # UTF-8 bytes of the reply's text


def _message(index: int) -> str:
    return f"bench session {index} says hello"


def _reply_done(before: int) -> Callable[[ReflexSession], bool]:
    """The predicate of a finished reply: not streaming, user message and reply appended."""

    def done(session: ReflexSession) -> bool:
        messages = chat_messages(session) or []
        return len(messages) >= before + 2 and not session.get(CHAT_STATE, "streaming")

    return done


async def chat_turn(session: ReflexSession, text: str, reply_words: int) -> Outcome:
    """Send ``text`` like the composer form does and wait for the complete, correct reply."""
    before = len(chat_messages(session) or [])
    bytes_before = session.received_bytes
    live_before = _live_bytes(session)
    sent = await session.send(
        session.app.handler(CHAT_STATE, "send_message"), form_data=form_data(message=text)
    )
    try:
        await session.wait_until(_reply_done(before), timeout=REPLY_TIMEOUT)
    except TimeoutError:
        return Outcome(None, f"no complete reply within {REPLY_TIMEOUT:.0f} s")
    finished = session.last_update_at
    reply = (chat_messages(session) or [])[-1]
    if reply.get("role") != "assistant" or reply.get("error_category"):
        return Outcome(None, f"error reply: {reply.get('error_category') or reply.get('role')}")
    if reply.get("content") != expected_reply(text, reply_words):
        return Outcome(None, f"unexpected reply: {reply.get('content', '')[:80]!r}")
    return Outcome(
        finished - sent,
        update_bytes=session.received_bytes - bytes_before,
        live_bytes=_live_bytes(session) - live_before,
        reply_bytes=len(reply["content"].encode()),
    )


def _live_bytes(session: ReflexSession) -> int:
    return sum(
        size
        for name, size in session.received_bytes_by_substate.items()
        if name.endswith(LIVE_STATE)
    )


async def _one_session(
    url: str,
    app: CompiledApp,
    index: int,
    arrive: Callable[[], None],
    go: asyncio.Event,
    reply_words: int,
) -> Outcome:
    session = ReflexSession(url, app)
    try:
        try:
            await session.connect(timeout=CONNECT_TIMEOUT)
        finally:
            arrive()
        await go.wait()
        return await chat_turn(session, _message(index), reply_words)
    except Exception as exc:  # noqa: BLE001 - a failed session is a result, not a crash of the bench
        return Outcome(None, f"{type(exc).__name__}: {exc}"[:200])
    finally:
        with suppress(Exception):
            await session.close()


async def chat_sessions(url: str, app: CompiledApp, n: int, reply_words: int) -> list[Outcome]:
    """N tabs connect (hydrate + on_load), then all send one message at the same moment."""
    arrived = 0
    all_in, go = asyncio.Event(), asyncio.Event()

    def arrive() -> None:  # connected, or gave up connecting
        nonlocal arrived
        arrived += 1
        if arrived == n:
            all_in.set()

    tasks = [
        asyncio.create_task(_one_session(url, app, i, arrive, go, reply_words)) for i in range(n)
    ]
    with suppress(TimeoutError):
        await asyncio.wait_for(all_in.wait(), CONNECT_TIMEOUT + 5)
    go.set()
    return list(await asyncio.gather(*tasks))


async def _upstream_call(
    client: httpx.AsyncClient, url: str, text: str, go: asyncio.Event
) -> Outcome:
    body = {
        "model": "fake",
        "messages": [
            {"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": text},
        ],
        "stream": True,
        "stream_options": {"include_usage": True},
        "temperature": 0.7,
    }
    await go.wait()
    started = time.perf_counter()
    try:
        async with client.stream("POST", url + "/chat/completions", json=body) as response:
            response.raise_for_status()
            async for line in response.aiter_lines():
                if line == "data: [DONE]":
                    return Outcome(time.perf_counter() - started)
        return Outcome(None, "stream ended without [DONE]")
    except httpx.HTTPError as exc:
        return Outcome(None, f"{type(exc).__name__}: {exc}"[:200])


async def upstream_calls(url: str, n: int) -> list[Outcome]:
    """The reference: N streaming completions straight to the fake, started together."""
    limits = httpx.Limits(max_connections=n + 10, max_keepalive_connections=n + 10)
    async with httpx.AsyncClient(limits=limits, timeout=REPLY_TIMEOUT) as client:
        go = asyncio.Event()
        calls = [_upstream_call(client, url, _message(i), go) for i in range(n)]
        tasks = [asyncio.create_task(call) for call in calls]
        await asyncio.sleep(0.1)
        go.set()
        return list(await asyncio.gather(*tasks))


# ----------------------------------------------------------------------------- reporting
@dataclass
class LevelResult:
    """One N, one round."""

    n: int
    served: int
    chat: list[float]
    upstream: list[float]
    upstream_ok: int
    errors: list[str]
    bytes_per_reply_byte: list[float]
    live_bytes_per_reply_byte: list[float]
    peak_rss: int
    server_cpu: float  # CPU seconds the server tree used during the chat phase
    client_cpu: float  # CPU seconds this process (the N websocket clients) used meanwhile


def _line(name: str, value: str, reference: str, ratio: float) -> str:
    return f"{name}: {value} (reference: {reference}, ratio {ratio:.3f})"


def report(results: list[LevelResult], idle_rss: int, label: str) -> list[str]:
    """The benchmark's lines for one N: medians over rounds of each round's figure.

    Latencies count the sessions that were served; failed ones (timeouts after
    ``REPLY_TIMEOUT``) show in the served line instead.
    """
    n = results[0].n
    tag = f"[n={n}{label}]"

    def med(fn) -> float:
        return statistics.median(fn(r) for r in results)

    # Served: the total over all rounds, so one bad round is never hidden by a median.
    served, started = sum(r.served for r in results), n * len(results)
    lines = [
        _line(
            f"concurrency_sessions_served{tag}",
            f"{served} of {started}",
            f"{started} started",
            served / started,
        ),
    ]
    if all(r.chat for r in results) and all(r.upstream for r in results):
        for q in (50, 95):
            chat = med(lambda r, q=q: percentile(r.chat, q))
            upstream = med(lambda r, q=q: percentile(r.upstream, q))
            lines.append(
                _line(
                    f"concurrency_reply_p{q}{tag}",
                    f"{chat * 1000:.0f} ms",
                    f"upstream alone {upstream * 1000:.0f} ms",
                    chat / upstream,
                )
            )
            lines.append(
                _line(
                    f"concurrency_added_latency_p{q}{tag}",
                    f"{(chat - upstream) * 1000:.0f} ms",
                    f"upstream alone {upstream * 1000:.0f} ms",
                    (chat - upstream) / upstream,
                )
            )
    if all(r.bytes_per_reply_byte for r in results):
        ratio = med(lambda r: statistics.median(r.bytes_per_reply_byte))
        lines.append(
            _line(
                f"concurrency_update_bytes_per_reply_byte{tag}",
                f"{ratio:.2f}",
                "1 byte of reply text",
                ratio,
            )
        )
        live = med(lambda r: statistics.median(r.live_bytes_per_reply_byte))
        lines.append(
            _line(
                f"concurrency_live_frame_bytes_per_reply_byte{tag}",
                f"{live:.2f}",
                "1 byte of reply text",
                live,
            )
        )
    server_cpu = med(lambda r: r.server_cpu / n * 1000)
    client_cpu = med(lambda r: r.client_cpu / n * 1000)
    lines.append(
        _line(
            f"concurrency_server_cpu_per_session{tag}",
            f"{server_cpu:.0f} ms",
            f"bench clients {client_cpu:.0f} ms",
            server_cpu / client_cpu,
        )
    )
    peak = med(lambda r: r.peak_rss)
    lines.append(
        _line(
            f"concurrency_server_rss_peak{tag}",
            f"{peak / 2**20:.0f} MiB",
            f"idle {idle_rss / 2**20:.0f} MiB",
            peak / idle_rss,
        )
    )
    return lines


# ----------------------------------------------------------------------------- main
async def smoke(url: str, app: CompiledApp, reply_words: int) -> None:
    """One tab, one message, the full reply: the protocol works before anything is timed."""
    session = ReflexSession(url, app)
    try:
        await session.connect()
        assert session.cookies.get("chatmon_id"), "the page did not set an identity cookie"
        outcome = await chat_turn(session, "smoke test", reply_words)
        if outcome.seconds is None:
            raise RuntimeError(f"single websocket session failed: {outcome.error}")
        print(
            f"# single session: full reply in {outcome.seconds * 1000:.0f} ms "
            f"after {session.updates} state updates",
            flush=True,
        )
    finally:
        await session.close()


async def breakdown_turns(url: str, app: CompiledApp, turns: int, reply_words: int) -> None:
    """One new tab, ``turns`` messages one after the other: every update each turn
    brought, classified (:mod:`bench.breakdown`)."""
    session = ReflexSession(url, app, keep_updates=True)
    try:
        await session.connect()
        for turn in range(turns):
            session.update_log.clear()
            outcome = await chat_turn(session, _message(turn), reply_words)
            if outcome.seconds is None:
                raise RuntimeError(f"breakdown turn {turn} failed: {outcome.error}")
            ratio = outcome.update_bytes / outcome.reply_bytes
            print(f"# breakdown, turn {turn}: {ratio:.2f} bytes per reply byte", flush=True)
            for line in breakdown.table(session.update_log, outcome.reply_bytes):
                print(line, flush=True)
    finally:
        await session.close()


async def single_session(
    url: str, app: CompiledApp, fake_url: str, turns: int, reply_words: int
) -> list[str]:
    """One tab on an idle, warm server, ``turns`` messages one after the other, each beside
    one call straight to the upstream: the steady-state latency chatmon adds to a reply
    (the first, cold call is the smoke line above)."""
    session = ReflexSession(url, app)
    chat: list[float] = []
    upstream: list[float] = []
    try:
        await session.connect()
        for turn in range(turns):
            direct = await upstream_calls(fake_url, 1)
            outcome = await chat_turn(session, _message(turn), reply_words)
            if outcome.seconds is None or direct[0].seconds is None:
                return [f"# single session: turn {turn} failed: {outcome.error}"]
            chat.append(outcome.seconds)
            upstream.append(direct[0].seconds)
    finally:
        await session.close()
    added = [c - u for c, u in zip(chat, upstream, strict=True)]
    p50_up, p50_added = statistics.median(upstream), statistics.median(added)
    return [
        _line(
            "concurrency_single_session_added_latency_p50",
            f"{p50_added * 1000:.1f} ms",
            f"upstream alone {p50_up * 1000:.0f} ms",
            p50_added / p50_up,
        ),
        _line(
            "concurrency_single_session_added_latency_p95",
            f"{percentile(added, 95) * 1000:.1f} ms",
            f"upstream alone {percentile(upstream, 95) * 1000:.0f} ms",
            percentile(added, 95) / percentile(upstream, 95),
        ),
    ]


async def run_level(
    server: Server, app: CompiledApp, fake_url: str, n: int, reply_words: int
) -> LevelResult:
    """One round at N: the upstream alone first, then N chat sessions through chatmon."""
    upstream = await upstream_calls(fake_url, n)
    await asyncio.sleep(1)
    me = psutil.Process()
    server_cpu, client_cpu = server.cpu_seconds(), sum(me.cpu_times()[:2])
    with PeakRss(server) as rss:
        outcomes = await chat_sessions(server.url, app, n, reply_words)
    server_cpu, client_cpu = server.cpu_seconds() - server_cpu, sum(me.cpu_times()[:2]) - client_cpu
    errors = [o.error for o in outcomes if o.seconds is None]
    return LevelResult(
        n=n,
        served=sum(o.seconds is not None for o in outcomes),
        chat=[o.seconds for o in outcomes if o.seconds is not None],
        upstream=[o.seconds for o in upstream if o.seconds is not None],
        upstream_ok=sum(o.seconds is not None for o in upstream),
        errors=errors,
        bytes_per_reply_byte=[
            o.update_bytes / o.reply_bytes for o in outcomes if o.seconds is not None
        ],
        live_bytes_per_reply_byte=[
            o.live_bytes / o.reply_bytes for o in outcomes if o.seconds is not None
        ],
        peak_rss=rss.peak,
        server_cpu=server_cpu,
        client_cpu=client_cpu,
    )


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


def _flush_redis_db() -> None:
    import redis  # installed with reflex

    from tests.services import redis_url

    redis.Redis.from_url(f"{redis_url()}/{REDIS_DB}").flushdb()


def _header(argv: list[str], args: argparse.Namespace, server: Server) -> None:
    per_process = sorted((rss for rss in server.process_rss()), reverse=True)
    print(f"# python -m bench.concurrency {' '.join(argv)}")
    print(
        f"# upstream: latency {args.latency} s, {args.tokens_per_second:g} tokens/s, "
        f"{args.reply_words} words; {os.cpu_count()} cpus; {args.rounds} rounds per N, "
        f"medians printed; load average {os.getloadavg()[0]:.1f}"
    )
    print(
        f"# server: {len(per_process)} processes, idle RSS "
        f"{' + '.join(f'{rss / 2**20:.0f}' for rss in per_process)} MiB "
        f"(PSS, shared pages split: {server.pss() / 2**20:.0f} MiB in all)",
        flush=True,
    )


def main(argv: list[str] | None = None) -> int:
    """Options, the Redis db and PostgreSQL database if asked for, then the run."""
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--sessions", default="1,50,200", help="comma-separated N (default: %(default)s)"
    )
    parser.add_argument(
        "--redis", action="store_true", help="REFLEX_REDIS_URL set: several workers"
    )
    parser.add_argument(
        "--workers", type=int, default=None, help="GRANIAN_WORKERS (default: Reflex's)"
    )
    parser.add_argument(
        "--postgres", action="store_true", help="a PostgreSQL database of its own instead of SQLite"
    )
    parser.add_argument("--rounds", type=int, default=3, help="rounds per N; medians are printed")
    parser.add_argument("--latency", type=float, default=0.2, help="upstream first-token delay, s")
    parser.add_argument("--tokens-per-second", type=float, default=50.0, help="upstream pace")
    parser.add_argument("--reply-words", type=int, default=50, help="words (chunks) per reply")
    parser.add_argument(
        "--single-turns",
        type=int,
        default=10,
        help="steady-state turns of one idle session, after warm-up (0: skip)",
    )
    parser.add_argument(
        "--breakdown",
        type=int,
        default=0,
        metavar="TURNS",
        help="only classify every update one new tab receives in TURNS turns, then stop",
    )
    parser.add_argument(
        "--profile",
        type=Path,
        default=None,
        help="after each N's rounds, one more (untimed) under py-spy, stacks "
        "written to PROFILE-n<N>.txt and summarised",
    )
    args = parser.parse_args(argv)
    # A killed bench (timeout, Ctrl-C) still stops the servers it started: exit via finally.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    levels = [int(n) for n in args.sessions.split(",") if n.strip()]

    env: dict[str, str] = {}
    if args.redis:
        from tests.services import redis_url

        env["REFLEX_REDIS_URL"] = f"{redis_url()}/{REDIS_DB}"
        _flush_redis_db()
    if args.workers:
        env["GRANIAN_WORKERS"] = str(args.workers)
    label = (",redis" if args.redis else "") + (",postgres" if args.postgres else "")

    with ExitStack() as stack:
        if args.postgres:
            env["DATABASE_URL"] = stack.enter_context(postgres_database())
        _run(argv, args, levels, env, label)
    if args.redis:
        _flush_redis_db()
    return 0


def _print_log_errors(log_file: Path, limit: int = 3) -> None:
    """The server's last few warnings, so a failed round says why."""
    try:
        lines = log_file.read_text(errors="replace").splitlines()
    except OSError:
        return
    for entry in [x for x in lines if '"WARNING"' in x or '"ERROR"' in x][-limit:]:
        print(f"#   server log: {entry[:300]}", flush=True)


def _profiled_round(
    server: Server, app: CompiledApp, fake_url: str, n: int, args: argparse.Namespace
) -> None:
    """One more round at N with py-spy sampling the server tree; prints the profile's top."""
    path = args.profile.with_name(f"{args.profile.stem}-n{n}.txt")
    with pyspy.record(server.process.pid, path):
        result = asyncio.run(run_level(server, app, fake_url, n, args.reply_words))
    print(
        f"# profiled round n={n} (untimed, py-spy attached): {result.served}/{n} served; "
        f"stacks in {path}",
        flush=True,
    )
    for line in pyspy.summary(path):
        print(line, flush=True)


def _run(
    argv: list[str], args: argparse.Namespace, levels: list[int], env: dict[str, str], label: str
) -> None:
    """Upstream and server up, smoke session, warm-up, then every N for every round."""
    with (
        tempfile.TemporaryDirectory(prefix="chatmon-bench-") as tmp,
        fake_llm(
            latency=args.latency,
            tokens_per_second=args.tokens_per_second,
            reply_words=args.reply_words,
        ) as fake_url,
        chatmon_server(workdir=Path(tmp), fake_llm_url=fake_url, env_overrides=env) as server,
    ):
        app = CompiledApp.from_web_dir(server.web_dir)
        asyncio.run(smoke(server.url, app, args.reply_words))
        if args.breakdown:
            asyncio.run(breakdown_turns(server.url, app, args.breakdown, args.reply_words))
            return
        time.sleep(1)
        idle_rss = server.rss()
        _header(argv, args, server)
        # Untimed: every worker imports LiteLLM and opens its pools on its first requests.
        warm = asyncio.run(chat_sessions(server.url, app, levels[0], args.reply_words))
        print(
            f"# warm-up (untimed): {sum(o.seconds is not None for o in warm)}/{levels[0]} served",
            flush=True,
        )
        if args.single_turns:
            single = asyncio.run(
                single_session(server.url, app, fake_url, args.single_turns, args.reply_words)
            )
            for line in single:
                print(line, flush=True)
        for n in levels:
            results = []
            for _ in range(args.rounds):
                result = asyncio.run(run_level(server, app, fake_url, n, args.reply_words))
                results.append(result)
                if result.errors:
                    print(
                        f"# n={n}: {len(result.errors)} failed, e.g. {result.errors[0]}", flush=True
                    )
                    _print_log_errors(Path(tmp) / "chatmon.log")
                if result.upstream_ok < n:
                    print(
                        f"# n={n}: {n - result.upstream_ok} direct upstream calls failed",
                        flush=True,
                    )
            for line in report(results, idle_rss, label):
                print(line, flush=True)
            if args.profile is not None:
                _profiled_round(server, app, fake_url, n, args)
        print(f"# load average at the end {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
