"""Fallback: what a hand-over to LLM_FALLBACK_MODELS costs the person waiting.

    python -m bench.fallback [--requests 40]

Two fake upstreams over real HTTP, one per model; ``--requests`` messages one after the
other through ``TurnService``, three times: a healthy primary (the reference), the
primary's breaker open (straight to the fallback, no call to the primary), and the
primary answering 503 (``LLM_MAX_RETRIES=0``: one failed call, then the fallback).
Prints the median and p90 time to first token of each, and the upstream hits per model
(one per request where it was asked: never more).
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
from pathlib import Path

from chatmon.devtools.fake_llm_server import FakeLLMServer
from chatmon.services.breaker import CircuitBreaker
from chatmon.services.errors import ErrorCategory
from chatmon.services.history import ModelMessage
from chatmon.services.llm import LLMClient, warm_up
from chatmon.services.prompts import SystemPromptSource
from chatmon.services.turn import TurnRequest, TurnService
from chatmon.settings import Settings, load_settings

PRIMARY, FALLBACK = "openai/bench-primary", "openai/bench-fallback"


def _breaker(model: str, *, opened: bool = False) -> CircuitBreaker:
    breaker = CircuitBreaker(model, failure_threshold=1 if opened else 10**6, reset_seconds=3600)
    if opened:
        breaker.record_failure(breaker.acquire(), ErrorCategory.SERVER_ERROR)
    return breaker


def _service(settings: Settings, prompt: Path, primary_breaker: CircuitBreaker) -> TurnService:
    return TurnService(
        settings=settings,
        client=LLMClient(settings, breaker=primary_breaker),
        prompts=SystemPromptSource(prompt),
        fallbacks=[
            LLMClient(settings, breaker=_breaker(FALLBACK), endpoint=settings.fallback_models[0])
        ],
    )


async def _ttfts(service: TurnService, requests: int) -> list[float]:
    """Milliseconds to the first token of each reply (every one must succeed)."""
    seconds = []
    for _ in range(requests):
        request = TurnRequest(
            session_id="bench",
            conversation_id="bench",
            history=[ModelMessage(role="user", content="hello")],
            temperature=0.0,
        )
        async with service.reply(request) as reply:
            async for _text in reply:
                pass
        result = reply.result
        assert result.status == "ok" and result.stats.first_token_seconds is not None
        seconds.append(result.stats.first_token_seconds * 1000)
    return seconds


def _line(name: str, values: list[float], reference: list[float]) -> str:
    median, ref = statistics.median(values), statistics.median(reference)
    p90 = sorted(values)[int(0.9 * (len(values) - 1))]
    return (
        f"{name}: median TTFT {median:.1f} ms, p90 {p90:.1f} ms "
        f"(reference: {ref:.1f} ms, ratio {median / ref:.2f})"
    )


async def main(requests: int) -> None:
    warm_up()
    prompt = Path(tempfile.mkdtemp()) / "prompt.txt"
    prompt.write_text("be brief")
    with FakeLLMServer() as primary, FakeLLMServer() as backup:
        settings = load_settings(
            llm_model=PRIMARY,
            llm_api_base=primary.url,
            llm_api_key="sk-bench-primary",
            llm_fallback_models=FALLBACK,
            llm_fallback_1_api_base=backup.url,
            llm_fallback_1_api_key="sk-bench-fallback",
            llm_max_retries=0,
            request_timeout=5,
        )
        healthy = await _ttfts(_service(settings, prompt, _breaker(PRIMARY)), requests)
        primary.reset()
        backup.reset()
        opened = await _ttfts(_service(settings, prompt, _breaker(PRIMARY, opened=True)), requests)
        hits_open = (primary.hits, backup.hits)
        primary.reset()
        backup.reset()
        primary.configure(fail_with="503", fail_rate=1.0)
        failing = await _ttfts(_service(settings, prompt, _breaker(PRIMARY)), requests)
        hits_503 = (primary.hits, backup.hits)
    print(_line("healthy primary", healthy, healthy))
    print(_line("primary breaker open -> fallback", opened, healthy))
    print(_line("primary 503, no retries -> fallback", failing, healthy))
    print(f"upstream hits (primary, fallback) with the breaker open: {hits_open}")
    print(f"upstream hits (primary, fallback) with the primary failing: {hits_503}")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=40)
    asyncio.run(main(parser.parse_args().requests))
