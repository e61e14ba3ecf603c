"""Where a bare LiteLLM stream's CPU goes, and what LiteLLM's own switches change.

    python -m bench.litellm_cpu [--calls 20] [--chunks 120] [--tokens-per-second 50]

Streams ``--calls`` replies of ``--chunks`` chunks one after the other from the fake
upstream (its own process; unpaced, or at ``--tokens-per-second`` like the upstream of
``bench.concurrency``, where the client reads each chunk as it comes) with
``litellm.acompletion(stream=True)`` and measures this process's CPU per stream (all
threads: LiteLLM finishes a stream in a worker thread):

- as chatmon calls it (defaults), and the part of it spent in ``stream_chunk_builder``,
  which LiteLLM runs once at the end of every stream to rebuild the whole response from
  its chunks for its logging callbacks, cache and cost (chatmon needs none of these: it
  prices the provider's own usage report);
- with ``litellm.disable_streaming_logging = True`` and no callbacks registered;
- as ``chatmon.services.llm`` reads it: one iterator over the OpenAI stream (no async
  generator left behind per chunk), and after the finish chunk the provider's usage
  report read from that stream itself (LiteLLM's end-of-stream rebuild never runs);
- per chunk: (total - end of stream) / chunks.

``--together N`` prints only the CPU per stream of N streams started at once, read as a
LiteLLM user reads them (to the end) and as chatmon reads them: ``bench.concurrency``'s
references for the server's CPU per session.

Prints ``name: value (reference: value, ratio)`` lines; the reference is the default.
"""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.request_path import line
from bench.servers import fake_llm
from chatmon.services import llm, provider_stream
from chatmon.services.litellm_import import litellm_module

os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
MESSAGES = [{"role": "user", "content": "count the chunks"}]


async def _stream(litellm: Any, url: str, chatmon_way: bool) -> str:
    response = await litellm.acompletion(
        model="openai/fake",
        messages=MESSAGES,
        api_base=url,
        api_key="sk-bench",
        stream=True,
        stream_options={"include_usage": True},
        max_retries=0,
        timeout=30,
    )
    if chatmon_way:
        provider_stream.reuse_provider_iterator(response)
    parts = []
    async for chunk in response:
        if chunk.choices and chunk.choices[0].delta.content:
            parts.append(chunk.choices[0].delta.content)
        if chatmon_way and provider_stream.finish_reason(chunk):
            # what chatmon.services.llm does: the usage report straight from the provider
            raw = provider_stream.provider_iterator(response)
            if raw is not None:
                await provider_stream.usage_after_finish(raw)
            await response.aclose()
            break
    return "".join(parts)


def _timed(builder: Callable[..., Any], spent: list[float]) -> Callable[..., Any]:
    @functools.wraps(builder)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        started = time.thread_time()
        try:
            return builder(*args, **kwargs)
        finally:
            spent.append(time.thread_time() - started)

    return wrapper


async def cpu_per_stream(
    litellm: Any, url: str, calls: int, chatmon_way: bool = False
) -> tuple[float, float]:
    """(median CPU seconds per stream, mean CPU seconds in stream_chunk_builder per stream)."""
    spent: list[float] = []
    original = litellm.stream_chunk_builder
    litellm.stream_chunk_builder = _timed(original, spent)
    per_call = []
    try:
        for _ in range(calls):
            started = time.process_time()
            await _stream(litellm, url, chatmon_way)
            await asyncio.sleep(0.05)  # the end-of-stream thread and logging tasks finish
            per_call.append(time.process_time() - started)
    finally:
        litellm.stream_chunk_builder = original
    return statistics.median(per_call), sum(spent) / calls


async def cpu_per_stream_together(litellm: Any, url: str, n: int, chatmon_way: bool) -> float:
    """CPU seconds per stream of ``n`` streams started at once (``chatmon_way``: read as
    chatmon reads them): the references for ``bench.concurrency``'s server CPU per
    session at N = n."""
    await asyncio.gather(*(_stream(litellm, url, chatmon_way) for _ in range(min(n, 5))))
    started = time.process_time()
    await asyncio.gather(*(_stream(litellm, url, chatmon_way) for _ in range(n)))
    await asyncio.sleep(0.2)  # the end-of-stream threads and logging tasks finish
    return (time.process_time() - started) / n


def together(args: argparse.Namespace) -> int:
    """``--together N``: one line, the bare LiteLLM CPU per stream of N at once."""
    llm.warm_up()
    litellm = litellm_module()
    with fake_llm(
        latency=args.latency, tokens_per_second=args.tokens_per_second, reply_words=args.chunks
    ) as url:
        bare = asyncio.run(cpu_per_stream_together(litellm, url, args.together, False))
        ours = asyncio.run(cpu_per_stream_together(litellm, url, args.together, True))
    n = args.together
    print(line(f"litellm_cpu_per_stream_together[n={n}]", f"{bare * 1000:.1f} ms", "-", 1.0))
    print(
        line(
            f"litellm_cpu_per_stream_together_as_chatmon_reads_it[n={n}]",
            f"{ours * 1000:.1f} ms",
            f"defaults {bare * 1000:.1f} ms",
            ours / bare,
        )
    )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=20)
    parser.add_argument("--chunks", type=int, default=120)
    parser.add_argument(
        "--tokens-per-second", type=float, default=0.0, help="upstream pace (0: unpaced)"
    )
    parser.add_argument("--latency", type=float, default=0.0, help="upstream first-token delay")
    parser.add_argument(
        "--together", type=int, default=0, help="only: CPU per stream of N streams at once"
    )
    args = parser.parse_args(argv)
    if args.together:
        return together(args)
    llm.warm_up()
    litellm = litellm_module()
    with fake_llm(
        latency=args.latency, tokens_per_second=args.tokens_per_second, reply_words=args.chunks
    ) as url:
        asyncio.run(cpu_per_stream(litellm, url, 3))  # warm pools and caches
        default, builder = asyncio.run(cpu_per_stream(litellm, url, args.calls))
        ours, ours_builder = asyncio.run(cpu_per_stream(litellm, url, args.calls, chatmon_way=True))
        litellm.disable_streaming_logging = True
        saved = (
            list(litellm.callbacks),
            list(litellm.success_callback),
            list(litellm._async_success_callback),
        )
        litellm.callbacks, litellm.success_callback, litellm._async_success_callback = [], [], []
        try:
            switched, _ = asyncio.run(cpu_per_stream(litellm, url, args.calls))
        finally:
            litellm.disable_streaming_logging = False
            (litellm.callbacks, litellm.success_callback, litellm._async_success_callback) = saved
    ms = 1000
    print(
        f"# {args.calls} streams of {args.chunks} chunks, one after the other, "
        f"{args.tokens_per_second or 'unpaced'} tokens/s; "
        f"load average {os.getloadavg()[0]:.1f}"
    )
    print(line("litellm_cpu_per_stream", f"{default * ms:.1f} ms", "-", 1.0))
    print(
        line(
            "litellm_cpu_end_of_stream_rebuild",
            f"{builder * ms:.1f} ms",
            f"whole stream {default * ms:.1f} ms",
            builder / default,
        )
    )
    per_chunk = (default - builder) / args.chunks
    print(
        line(
            "litellm_cpu_per_chunk",
            f"{per_chunk * ms:.3f} ms",
            f"whole stream {default * ms:.1f} ms",
            per_chunk / default,
        )
    )
    print(
        line(
            "litellm_cpu_per_stream_logging_off",
            f"{switched * ms:.1f} ms",
            f"defaults {default * ms:.1f} ms",
            switched / default,
        )
    )
    print(
        line(
            "litellm_cpu_per_stream_as_chatmon_reads_it",
            f"{ours * ms:.1f} ms",
            f"defaults {default * ms:.1f} ms",
            ours / default,
        )
    )
    print(
        line(
            "litellm_cpu_end_of_stream_rebuild_as_chatmon_reads_it",
            f"{ours_builder * ms:.1f} ms",
            f"defaults {builder * ms:.1f} ms",
            ours_builder / builder if builder else 0.0,
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
