"""Call overhead: chatmon's request path vs a bare ``litellm.acompletion`` (BENCHMARKS.md #1).

    python -m bench.overhead [--calls 150] [--rounds 3] [--latencies 0,0.05] [--no-tracing]

Both sides stream the same messages from the same fake upstream (its own process) in
this one process, interleaved call by call (ABBA order) so drift and noise on the shared
machine hit both alike:

- bare: ``litellm.acompletion(stream=True, max_retries=0)``, reading each chunk's text;
- chatmon: ``TurnService.reply`` as the chat page drives it (``deps.turn_service()``):
  system prompt, history window, rate limiter, circuit breaker, tenacity retry wrapper,
  stream with idle timeout, usage and price, one LLMCall event to every listener the app
  subscribes (Prometheus series, the recorder's queue and writer thread, Langfuse
  tracing queue and export to a local sink), JSON logging configured.

Also printed: the event loop's own CPU per call (``time.thread_time``), chatmon vs bare,
which a busy shared machine disturbs less than wall time. The recorder's and tracing's
threads work off the loop and are not in that figure (LiteLLM's own executor threads
run for both sides); their GIL share shows in the wall-time figures.

The rate limits stay on but are set high (``GLOBAL_RATE_LIMIT_PER_MINUTE``) and each call
uses another session id, so no call is refused. Prints per upstream latency the p50 and
p95 overhead in ms (reference: the bare call) and chatmon/bare as the ratio; medians
over ``--rounds``. Targets: p50 overhead <= 2 ms, and <= 5 % of the bare call at 50 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from contextlib import nullcontext
from dataclasses import dataclass
from pathlib import Path

from bench.figures import percentile
from bench.request_path import (
    fake_upstream,
    install_listeners,
    langfuse_sink,
    line,
    prepare,
)

MESSAGE = "How do I rotate the API key without downtime?"
TARGET_P50_MS = 2.0
TARGET_RATIO_AT_50MS = 1.05


@dataclass
class Round:
    bare: list[float]
    chatmon: list[float]
    bare_cpu: list[float]  # event-loop thread CPU seconds per call
    chatmon_cpu: list[float]


@dataclass
class Timing:
    wall: float
    cpu: float  # this thread's CPU: the event loop's own work, not waiting for the GIL


async def bare_call(litellm: object, settings: object, messages: list[dict]) -> Timing:
    """The reference: LiteLLM alone, streamed to the end."""
    started, cpu = time.perf_counter(), time.thread_time()
    response = await litellm.acompletion(  # type: ignore[attr-defined]  # imported lazily, passed as object
        model=settings.llm_model,  # type: ignore[attr-defined]  # imported lazily, passed as object
        messages=messages,
        temperature=0.7,
        stream=True,
        stream_options={"include_usage": True},
        api_base=settings.llm_api_base,  # type: ignore[attr-defined]  # imported lazily, passed as object
        api_key=settings.llm_api_key.get_secret_value(),  # type: ignore[attr-defined]  # imported lazily, passed as object
        timeout=settings.request_timeout,  # type: ignore[attr-defined]  # imported lazily, passed as object
        max_retries=0,
    )
    text = ""
    async for chunk in response:  # read the text, as any chat has to
        if chunk.choices and chunk.choices[0].delta.content:
            text += chunk.choices[0].delta.content
    return Timing(time.perf_counter() - started, time.thread_time() - cpu)


async def chatmon_call(service: object, index: int) -> Timing:
    """chatmon's request path, consumed as ChatState consumes it."""
    from chatmon.services.history import ModelMessage
    from chatmon.services.turn import TurnRequest

    request = TurnRequest(
        session_id=f"bench-session-{index}",
        conversation_id="bench",
        history=[ModelMessage(role="user", content=MESSAGE)],
        temperature=0.7,
    )
    started, cpu = time.perf_counter(), time.thread_time()
    async with service.reply(request) as reply:  # type: ignore[attr-defined]  # imported lazily, passed as object
        async for _ in reply:
            pass
    timing = Timing(time.perf_counter() - started, time.thread_time() - cpu)
    if reply.result.status != "ok":
        raise RuntimeError(f"chatmon call failed: {reply.result.category}")
    return timing


async def measure(calls: int, rounds: int, warmup: int) -> list[Round]:
    from chatmon import deps
    from chatmon.services import recorder
    from chatmon.services.history import ModelMessage, build_messages
    from chatmon.services.litellm_import import litellm_module
    from chatmon.settings import get_settings

    settings = get_settings()
    service = deps.turn_service()
    litellm = litellm_module()
    prompt = deps.system_prompt_source().current()
    messages = build_messages(
        system_prompt=prompt.text,
        history=[ModelMessage(role="user", content=MESSAGE)],
        max_history=settings.max_history_messages,
    )
    counter = 0

    async def pair(order: int) -> tuple[Timing, Timing]:
        nonlocal counter
        counter += 1
        if order % 2 == 0:
            bare = await bare_call(litellm, settings, messages)
            ours = await chatmon_call(service, counter)
        else:
            ours = await chatmon_call(service, counter)
            bare = await bare_call(litellm, settings, messages)
        return bare, ours

    for i in range(warmup):
        await pair(i)
    results = []
    for _ in range(rounds):
        timings = [await pair(i) for i in range(calls)]
        await asyncio.to_thread(recorder.get_recorder().flush, 30)  # between rounds, not in them
        results.append(
            Round(
                bare=[b.wall for b, _ in timings],
                chatmon=[c.wall for _, c in timings],
                bare_cpu=[b.cpu for b, _ in timings],
                chatmon_cpu=[c.cpu for _, c in timings],
            )
        )
    return results


async def measure_all(
    upstream: object, latencies: list[float], args: argparse.Namespace
) -> dict[float, list[Round]]:
    """Every latency in one event loop (LiteLLM keeps its HTTP clients per loop)."""
    results = {}
    for latency in latencies:
        upstream.configure(latency=latency)  # type: ignore[attr-defined]  # imported lazily, passed as object
        results[latency] = await measure(args.calls, args.rounds, args.warmup)
    return results


def report(latency: float, results: list[Round]) -> list[str]:
    tag = f"[upstream {latency * 1000:.0f} ms]"
    lines = []
    bare_cpu = statistics.median(statistics.median(r.bare_cpu) for r in results)
    ours_cpu = statistics.median(statistics.median(r.chatmon_cpu) for r in results)
    for q in (50, 95):
        bare = statistics.median(percentile(r.bare, q) for r in results)
        ours = statistics.median(percentile(r.chatmon, q) for r in results)
        lines.append(
            line(
                f"overhead_p{q}_ms{tag}",
                f"{(ours - bare) * 1000:.2f} ms",
                f"bare litellm.acompletion p{q} {bare * 1000:.2f} ms",
                ours / bare,
            )
        )
    lines.append(
        line(
            f"overhead_event_loop_cpu_p50_ms{tag}",
            f"{(ours_cpu - bare_cpu) * 1000:.2f} ms",
            f"bare litellm.acompletion {bare_cpu * 1000:.2f} ms CPU",
            ours_cpu / bare_cpu,
        )
    )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=100, help="calls per side per round")
    parser.add_argument("--rounds", type=int, default=3, help="rounds; medians are printed")
    parser.add_argument("--warmup", type=int, default=20, help="unmeasured pairs first")
    parser.add_argument("--latencies", default="0,0.05", help="upstream first-byte delays, s")
    parser.add_argument("--no-tracing", action="store_true", help="without the Langfuse sink")
    args = parser.parse_args(argv)
    latencies = [float(x) for x in args.latencies.split(",") if x.strip()]
    command = " ".join(argv if argv is not None else sys.argv[1:])
    print(f"# {sys.executable} -m bench.overhead {command}")

    failed: list[str] = []
    with (
        tempfile.TemporaryDirectory(prefix="chatmon-overhead-") as tmp,
        fake_upstream() as upstream,
        langfuse_sink() if not args.no_tracing else nullcontext() as sink_url,
    ):
        prepare(
            Path(tmp),
            upstream=upstream,
            langfuse_url=sink_url,
            GLOBAL_RATE_LIMIT_PER_MINUTE="1000000",
        )
        listeners = install_listeners()
        print(f"# LLMCall listeners: {', '.join(listeners) or 'none'}")
        print(
            f"# {args.rounds} rounds x {args.calls} calls per side, ABBA order, "
            f"{args.warmup} warm-up pairs; 12-word streamed replies",
            flush=True,
        )
        by_latency = asyncio.run(measure_all(upstream, latencies, args))
        for latency, results in by_latency.items():
            for text in report(latency, results):
                print(text, flush=True)
            p50_bare = statistics.median(percentile(r.bare, 50) for r in results)
            p50_ours = statistics.median(percentile(r.chatmon, 50) for r in results)
            rounds = [percentile(r.bare, 50) * 1000 for r in results]
            if len(rounds) > 1:
                print(
                    f"# upstream {latency * 1000:.0f} ms: bare p50 per round "
                    + " / ".join(f"{value:.1f}" for value in rounds)
                    + f" ms (a wall-time difference below {max(rounds) - min(rounds):.1f}"
                    " ms is within this machine's noise)",
                    flush=True,
                )
            overhead_ms = (p50_ours - p50_bare) * 1000
            if overhead_ms > TARGET_P50_MS:
                failed.append(f"p50 overhead {overhead_ms:.2f} ms at {latency * 1000:.0f} ms")
            if latency >= 0.05 and p50_ours / p50_bare > TARGET_RATIO_AT_50MS:
                failed.append(f"ratio {p50_ours / p50_bare:.3f} at {latency * 1000:.0f} ms")
        _shutdown()
    print(
        "# targets (p50 overhead <= 2 ms; <= 5 % at 50 ms): "
        + ("met" if not failed else "MISSED: " + "; ".join(failed))
    )
    return 0


def _shutdown() -> None:
    """Flush the recorder and tracing while their peers still run."""
    from chatmon.services import recorder, tracing

    recorder.get_recorder().close(timeout=30)
    tracing.shutdown(5.0)


if __name__ == "__main__":
    sys.exit(main())
