"""Chaos: chatmon's request path while the provider fails 30 % of the time, mixed kinds.

    python -m bench.chaos [--sessions 20] [--requests 200] [--fail-rate 0.3]
                          [--kinds 429,500,503,timeout,drop,drop-mid] [--request-timeout 2]

``--sessions`` chat sessions, all at once, each sending its share of ``--requests``
messages one after the other (the next when the previous reply has ended, as a person
does), through ``deps.turn_service()`` with every listener the app subscribes (the
recorder writes to a real SQLite database). The fake upstream runs in its own process;
while the sessions chat, its failure kind is switched at random every 20 ms among
``--kinds`` (POST /_control), so each failing attempt gets a random kind: 429 and 503
with ``Retry-After: 0.5``, 500, a hang (``timeout``), a refused response (``drop``) and
a connection cut after three chunks (``drop-mid``). Client-side errors (401, 400,
context length) are left out: they are not a failing provider.

First the same load runs against a healthy upstream: its p95 is the latency reference.

Prints: replies delivered complete, user-visible errors by category, p95 latency,
LLMCall events and database rows recorded (both must equal the requests sent),
duplicated texts (a reply that is not a prefix of what the upstream sent, or repeats it:
must be 0), upstream hits against requests, retries, and the breaker's final state.
``REQUEST_TIMEOUT`` is lowered to ``--request-timeout`` (5 s; ``STREAM_IDLE_TIMEOUT`` with
it) so hung attempts cost seconds, not the production 30 s; everything else keeps
its defaults (3 retries, breaker 5 / 30 s, rate limits 20 per session / 600 per minute).
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import random
import sys
import tempfile
import time
from contextlib import nullcontext, suppress
from dataclasses import dataclass
from pathlib import Path

import httpx

from bench.figures import percentile
from bench.request_path import (
    Upstream,
    fake_upstream,
    install_listeners,
    langfuse_sink,
    line,
    prepare,
)

REPLY_WORDS = 12
SWITCH_EVERY = 0.02


@dataclass
class Outcome:
    """One request as the person saw it."""

    message: str
    status: str
    category: str | None
    text: str
    seconds: float


async def session(service: object, name: str, count: int) -> list[Outcome]:
    """One person: ``count`` messages, each sent when the previous reply has ended."""
    from chatmon.services.history import ModelMessage
    from chatmon.services.turn import TurnRequest

    outcomes = []
    for index in range(count):
        message = f"{name} asks question {index}"
        request = TurnRequest(
            session_id=name,
            conversation_id=f"{name}-conversation",
            history=[ModelMessage(role="user", content=message)],
            temperature=0.7,
        )
        started = time.perf_counter()
        async with service.reply(request) as reply:  # type: ignore[attr-defined]  # imported lazily, passed as object
            async for _ in reply:
                pass
        result = reply.result
        outcomes.append(
            Outcome(
                message=message,
                status=result.status,
                category=result.category.value if result.category else None,
                text=result.text,
                seconds=time.perf_counter() - started,
            )
        )
    return outcomes


async def load(service: object, prefix: str, sessions: int, requests: int) -> list[Outcome]:
    """All sessions at once; requests shared out as evenly as possible."""
    shares = [requests // sessions + (i < requests % sessions) for i in range(sessions)]
    results = await asyncio.gather(
        *(session(service, f"{prefix}-{i}", share) for i, share in enumerate(shares))
    )
    return [outcome for outcomes in results for outcome in outcomes]


async def switch_failure_kinds(upstream: Upstream, kinds: list[str], stop: asyncio.Event) -> int:
    """Give the upstream a random failure kind every ``SWITCH_EVERY`` seconds until ``stop``."""
    rng = random.Random(4)
    switches = 0
    async with httpx.AsyncClient(timeout=5) as client:
        while not stop.is_set():
            response = await client.post(upstream.control, json={"fail_with": rng.choice(kinds)})
            response.raise_for_status()
            switches += 1
            with suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), SWITCH_EVERY)
    return switches


async def run(upstream: Upstream, args: argparse.Namespace) -> tuple[list[Outcome], list[Outcome]]:
    from chatmon import deps

    service = deps.turn_service()
    calm = await load(service, "calm", args.sessions, args.requests)
    from chatmon.services import breaker

    print(f"# breaker before the chaos phase: {breaker.snapshot()}", flush=True)
    upstream.configure(fail_rate=args.fail_rate, retry_after=0.5, fail_with=args.kinds[0])
    upstream.reset_counters()
    stop = asyncio.Event()
    switcher = asyncio.create_task(switch_failure_kinds(upstream, args.kinds, stop))
    try:
        chaos = await load(service, "chaos", args.sessions, args.requests)
    finally:
        stop.set()
        await switcher
    upstream.configure(fail_rate=0.0)
    return calm, chaos


def duplicated(outcome: Outcome) -> bool:
    """Text the upstream did not send in this order: a repeat, or anything but a prefix."""
    from chatmon.devtools.fake_llm import expected_reply

    expected = expected_reply(outcome.message, REPLY_WORDS)
    return not expected.startswith(outcome.text) or outcome.text.count("Echo:") > 1


def database_rows() -> int:
    from sqlalchemy import func
    from sqlmodel import Session, select

    from chatmon.db import get_engine
    from chatmon.models import LLMRequest
    from chatmon.services import recorder

    recorder.get_recorder().flush(timeout=60)
    with Session(get_engine()) as db:
        return db.exec(select(func.count()).select_from(LLMRequest)).one()


def report(
    calm: list[Outcome], chaos: list[Outcome], calls: list, rows: int, hits: int
) -> list[str]:
    from chatmon.devtools.fake_llm import expected_reply

    sent, events = len(chaos), len(calls)
    retries = sum(call.retries for call in calls)
    refused = {"circuit_open", "rate_limited_local"}  # never reach the provider
    expected_hits = sum(1 + call.retries for call in calls if call.error_category not in refused)
    delivered = sum(
        o.status == "ok" and o.text == expected_reply(o.message, REPLY_WORDS) for o in chaos
    )
    errors = collections.Counter(o.category for o in chaos if o.status == "error")
    p95, calm_p95 = (
        percentile([o.seconds for o in chaos], 95),
        percentile([o.seconds for o in calm], 95),
    )
    per_request = f"{sent} requests sent"
    lines = [line("chaos_replies_delivered", str(delivered), per_request, delivered / sent)]
    for category, count in sorted(errors.items(), key=lambda item: -item[1]):
        lines.append(
            line(f"chaos_user_visible_errors[{category}]", str(count), per_request, count / sent)
        )
    if not errors:
        lines.append(line("chaos_user_visible_errors", "0", per_request, 0.0))
    lines += [
        line(
            "chaos_latency_p95",
            f"{p95:.2f} s",
            f"healthy upstream p95 {calm_p95:.2f} s",
            p95 / calm_p95,
        ),
        line("chaos_recorded_events", str(events), per_request, events / sent),
        line(
            "chaos_recorded_rows",
            str(rows),
            f"{sent + len(calm)} requests sent (calm + chaos)",
            rows / (sent + len(calm)),
        ),
        line(
            "chaos_duplicated_texts",
            str(sum(map(duplicated, chaos))),
            f"{sent} replies checked",
            sum(map(duplicated, chaos)) / sent,
        ),
        line("chaos_upstream_hits", str(hits), per_request, hits / sent),
        line("chaos_retries", str(retries), per_request, retries / sent),
        line(
            "chaos_upstream_hits_unaccounted",
            str(hits - expected_hits),
            f"{expected_hits} attempts chatmon made (requests sent to the provider + retries)",
            (hits - expected_hits) / expected_hits,
        ),
    ]
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sessions", type=int, default=20)
    parser.add_argument("--requests", type=int, default=200)
    parser.add_argument("--fail-rate", type=float, default=0.3)
    parser.add_argument("--kinds", default="429,500,503,timeout,drop,drop-mid")
    parser.add_argument("--request-timeout", type=float, default=5.0)
    parser.add_argument("--no-tracing", action="store_true", help="without the Langfuse sink")
    args = parser.parse_args(argv)
    args.kinds = [kind.strip() for kind in args.kinds.split(",") if kind.strip()]
    print(
        f"# {sys.executable} -m bench.chaos {' '.join(argv if argv is not None else sys.argv[1:])}"
    )

    with (
        tempfile.TemporaryDirectory(prefix="chatmon-chaos-") as tmp,
        fake_upstream(reply_words=REPLY_WORDS) as upstream,
        langfuse_sink() if not args.no_tracing else nullcontext() as sink_url,
    ):
        prepare(
            Path(tmp),
            upstream=upstream,
            langfuse_url=sink_url,
            REQUEST_TIMEOUT=str(args.request_timeout),
            STREAM_IDLE_TIMEOUT=str(args.request_timeout),
        )
        from chatmon.services import breaker, events
        from chatmon.services.events import LLMCall

        published: list[LLMCall] = []
        listeners = install_listeners()
        events.on_call(published.append)
        print(f"# LLMCall listeners: {', '.join(listeners)} (+ this bench's counter)")
        print(
            f"# {args.sessions} sessions, {args.requests} requests, upstream failing "
            f"{args.fail_rate:.0%} ({', '.join(args.kinds)}), "
            f"REQUEST_TIMEOUT={args.request_timeout:g} s",
            flush=True,
        )
        calm, chaos = asyncio.run(run(upstream, args))
        counters = upstream.counters()
        chaos_calls = [call for call in published if call.session_id.startswith("chaos-")]
        rows = database_rows()
        calm_errors = collections.Counter(o.category for o in calm if o.status != "ok")
        print(
            f"# healthy phase: {len(calm) - sum(calm_errors.values())}/{len(calm)} ok"
            + (f", errors {dict(calm_errors)}" if calm_errors else "")
        )
        for text in report(calm, chaos, chaos_calls, rows, counters["hits"]):
            print(text, flush=True)
        print(
            f"# upstream: {counters['failures']} injected failures in {counters['hits']} hits; "
            f"breaker at the end: {breaker.snapshot()}"
        )
        _shutdown()
    return 0


def _shutdown() -> None:
    """Flush the recorder and tracing while their peers still run."""
    from chatmon.services import recorder, tracing

    recorder.get_recorder().close(timeout=30)
    tracing.shutdown(5.0)


if __name__ == "__main__":
    sys.exit(main())
