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

This module is the run (its rounds and options); the processes are :mod:`bench.servers`,
the sessions and the direct upstream calls :mod:`bench.chat_load`, the printed figures
:mod:`bench.concurrency_report`.
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
import time
from contextlib import ExitStack
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `python bench/concurrency.py` as well as `-m bench.concurrency`
    sys.path.insert(0, str(ROOT))

import psutil

from bench import breakdown, pyspy
from bench.chat_load import chat_sessions, chat_turn, message_text, upstream_calls
from bench.concurrency_report import LevelResult, metric_line, report
from bench.figures import percentile
from bench.reflex_client import CompiledApp, ReflexSession
from bench.servers import (
    REDIS_DB,
    PeakRss,
    Server,
    chatmon_server,
    fake_llm,
    flush_redis_db,
    postgres_database,
)


# ----------------------------------------------------------------------------- the rounds
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
            outcome = await chat_turn(session, message_text(turn), reply_words)
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
            outcome = await chat_turn(session, message_text(turn), reply_words)
            if outcome.seconds is None or direct[0].seconds is None:
                return [f"# single session: turn {turn} failed: {outcome.error}"]
            chat.append(outcome.seconds)
            upstream.append(direct[0].seconds)
    finally:
        await session.close()
    added = [c - u for c, u in zip(chat, upstream, strict=True)]
    p50_up, p50_added = statistics.median(upstream), statistics.median(added)
    return [
        metric_line(
            "concurrency_single_session_added_latency_p50",
            f"{p50_added * 1000:.1f} ms",
            f"upstream alone {p50_up * 1000:.0f} ms",
            p50_added / p50_up,
        ),
        metric_line(
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


# ----------------------------------------------------------------------------- main
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
    parser.add_argument(
        "--profile-rate", type=int, default=100, help="py-spy samples per second (--profile)"
    )
    args = parser.parse_args(argv)
    # A killed bench (timeout, Ctrl-C) still stops the servers it started: exit via finally.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    levels = [int(n) for n in args.sessions.split(",") if n.strip()]

    env: dict[str, str] = {}
    if args.redis:
        from tests.services import redis_url

        env["REFLEX_REDIS_URL"] = f"{redis_url()}/{REDIS_DB}"
        flush_redis_db()
    if args.workers:
        env["GRANIAN_WORKERS"] = str(args.workers)
    label = (",redis" if args.redis else "") + (",postgres" if args.postgres else "")

    with ExitStack() as stack:
        if args.postgres:
            env["DATABASE_URL"] = stack.enter_context(postgres_database())
        _run(argv, args, levels, env, label)
    if args.redis:
        flush_redis_db()
    return 0


def _print_log_errors(log_file: Path, limit: int = 3) -> None:
    """The server's last few warnings, so a failed round says why."""
    try:
        lines = log_file.read_text(errors="replace").splitlines()
    except OSError:
        return
    for entry in [x for x in lines if '"WARNING"' in x or '"ERROR"' in x][-limit:]:
        print(f"#   server log: {entry[:300]}", flush=True)


def _against_bare_litellm(n: int, results: list[LevelResult], args: argparse.Namespace) -> str:
    """The server's CPU per session beside LiteLLM's alone for the same N streams of the
    same upstream (:mod:`bench.litellm_cpu`, its own process, run now while the server
    idles), read to the end as any LiteLLM user reads them (the issue's "bare LiteLLM")
    and as chatmon reads them: what chatmon adds to LiteLLM's own work."""
    command = [
        sys.executable, "-m", "bench.litellm_cpu", "--together", str(n),
        "--chunks", str(args.reply_words), "--tokens-per-second", str(args.tokens_per_second),
        "--latency", str(args.latency),
    ]  # fmt: skip
    done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=600)
    bare = re.search(r"together\[n=\d+\]: ([\d.]+) ms", done.stdout)
    ours = re.search(r"together_as_chatmon_reads_it\[n=\d+\]: ([\d.]+) ms", done.stdout)
    if bare is None or ours is None:
        return f"# bare LiteLLM reference failed: {(done.stderr or done.stdout)[-300:]}"
    server = statistics.median(r.server_cpu / r.n * 1000 for r in results)
    lines = []
    for name, label, match in (
        ("bare_litellm", "bare LiteLLM", bare),
        ("litellm_as_chatmon_reads_it", "LiteLLM as chatmon reads it", ours),
    ):
        reference = float(match.group(1))
        lines.append(
            metric_line(
                f"concurrency_server_cpu_over_{name}[n={n}]",
                f"{server - reference:+.1f} ms",
                f"{label} {reference:.1f} ms per stream, chatmon {server:.1f} ms per session",
                server / reference,
            )
        )
    return "\n".join(lines)


def _profiled_round(
    server: Server, app: CompiledApp, fake_url: str, n: int, args: argparse.Namespace
) -> None:
    """One more round at N with py-spy sampling the server tree; prints the profile's top."""
    path = args.profile.with_name(f"{args.profile.stem}-n{n}.txt")
    with pyspy.record(server.process.pid, path, rate=args.profile_rate):
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
            print(_against_bare_litellm(n, results, args), flush=True)
            if args.profile is not None:
                _profiled_round(server, app, fake_url, n, args)
        print(f"# load average at the end {os.getloadavg()[0]:.1f}", flush=True)


if __name__ == "__main__":
    raise SystemExit(main())
