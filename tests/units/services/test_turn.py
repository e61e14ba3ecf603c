"""The request path without Reflex, against the fake upstream over real HTTP.

Every request ends in exactly one LLMCall event, whatever happened: a reply, a
provider failure, a local refusal (rate limit, open breaker) or a Stop.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from chatmon.devtools.fake_llm import DROP_MID_AFTER_CHUNKS, reply_chunks
from chatmon.devtools.fake_llm_server import FakeLLMServer
from chatmon.services import events
from chatmon.services.breaker import CircuitBreaker
from chatmon.services.errors import ErrorCategory, human_message, user_message
from chatmon.services.events import LLMCall
from chatmon.services.history import ModelMessage
from chatmon.services.llm import LLMClient, warm_up
from chatmon.services.prompts import SystemPromptSource
from chatmon.services.ratelimit import RateLimiter
from chatmon.services.turn import (
    INTERRUPTED_MARKER,
    STOPPED_MARKER,
    TurnRequest,
    TurnResult,
    TurnService,
)
from chatmon.settings import load_settings


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeLLMServer]:
    warm_up()  # as the app does at startup: the first call's imports are not the test's
    with FakeLLMServer() as server:
        yield server


@pytest.fixture(autouse=True)
def _reset(upstream: FakeLLMServer) -> None:
    upstream.reset()


@pytest.fixture
def calls() -> Iterator[list[LLMCall]]:
    """Every LLMCall published during the test."""
    seen: list[LLMCall] = []
    events.on_call(seen.append)
    yield seen
    events.off_call(seen.append)


def service_for(
    upstream: FakeLLMServer,
    tmp_path: Path,
    *,
    limiter: RateLimiter | None = None,
    breaker: CircuitBreaker | None = None,
    **overrides: object,
) -> TurnService:
    options: dict[str, object] = {
        "llm_model": "openai/fake",
        "llm_api_base": upstream.url,
        "llm_api_key": "sk-unit",
        "request_timeout": 15,  # a ceiling for a loaded machine; tests of timeouts set their own
        "llm_max_retries": 0,
    }
    settings = load_settings(**(options | overrides))
    prompt_file = tmp_path / "prompt.txt"
    prompt_file.write_text("be brief")
    return TurnService(
        settings=settings,
        client=LLMClient(settings, breaker=breaker),
        prompts=SystemPromptSource(prompt_file),
        limiter=limiter,
    )


def request(text: str = "hello there", session_id: str = "browser-1") -> TurnRequest:
    return TurnRequest(
        session_id=session_id,
        conversation_id="conv-1",
        history=[ModelMessage(role="user", content=text)],
        temperature=0.2,
    )


async def run(service: TurnService, req: TurnRequest) -> tuple[list[str], TurnResult]:
    received: list[str] = []
    async with service.reply(req) as reply:
        async for text in reply:
            received.append(text)
    return received, reply.result


async def test_reply_streams_and_publishes_one_ok_call(
    upstream: FakeLLMServer, tmp_path: Path, calls: list[LLMCall]
) -> None:
    req = request("hello there")
    received, result = await run(service_for(upstream, tmp_path), req)
    assert "".join(received) == result.text == result.final_text()
    assert result.text.startswith("Echo: hello there.")
    [call] = calls
    assert call.status == "ok" and call.error_category is None
    assert call.correlation_id == req.correlation_id == result.correlation_id
    assert call.output_text == result.text and call.input_text == "hello there"
    assert call.output_tokens == 12 and call.first_token_seconds is not None


async def test_provider_failure_is_one_error_call_with_its_message(
    upstream: FakeLLMServer, tmp_path: Path, calls: list[LLMCall]
) -> None:
    upstream.configure(fail_with="401", fail_rate=1.0)
    received, result = await run(service_for(upstream, tmp_path, llm_max_retries=3), request())
    assert received == []
    assert result.category is ErrorCategory.AUTH
    assert result.final_text() == human_message(ErrorCategory.AUTH)
    assert [(c.status, c.error_category, c.retries) for c in calls] == [("error", "auth", 0)]
    assert upstream.hits == 1


async def test_retried_request_is_one_call_with_its_retries(
    upstream: FakeLLMServer, tmp_path: Path, calls: list[LLMCall]
) -> None:
    upstream.configure(fail_with="429", fail_first=1, retry_after=0.2)
    _, result = await run(service_for(upstream, tmp_path, llm_max_retries=2), request())
    assert result.status == "ok"
    assert [(c.status, c.retries) for c in calls] == [("ok", 1)]
    assert upstream.hits == 2


async def test_drop_mid_stream_keeps_the_text_once_and_marks_the_end(
    upstream: FakeLLMServer, tmp_path: Path, calls: list[LLMCall]
) -> None:
    upstream.configure(fail_with="drop-mid", fail_rate=1.0)
    received, result = await run(service_for(upstream, tmp_path, llm_max_retries=3), request())
    partial = "".join(
        reply_chunks([{"role": "user", "content": "hello there"}])[:DROP_MID_AFTER_CHUNKS]
    )
    assert "".join(received) == result.text == partial
    final = result.final_text()
    assert final.startswith(partial) and final.count("Echo:") == 1
    assert INTERRUPTED_MARKER in final and human_message(ErrorCategory.CONNECTION) in final
    [call] = calls
    assert (call.status, call.error_category, call.output_text) == ("error", "connection", partial)
    assert upstream.hits == 1


async def test_over_the_session_limit_is_refused_locally(
    upstream: FakeLLMServer, tmp_path: Path, calls: list[LLMCall]
) -> None:
    limiter = RateLimiter(per_session_per_minute=3, global_per_minute=600)
    service = service_for(upstream, tmp_path, limiter=limiter)
    refused_before = REGISTRY.get_sample_value("chatmon_rate_limited_total") or 0.0
    for _ in range(3):
        req = request()
        assert service.admit(req, client_ip="10.0.0.1") is None
        await run(service, req)
    refusal = service.admit(request(), client_ip="10.0.0.1")
    assert refusal is not None and refusal.category is ErrorCategory.RATE_LIMITED_LOCAL
    assert "You can send again in 20 seconds." in user_message(
        refusal.category, retry_after=refusal.retry_after
    )
    assert upstream.hits == 3  # the refused message never reached the provider
    assert [c.error_category for c in calls] == [None, None, None, "rate_limited_local"]
    assert calls[-1].status == "error" and calls[-1].input_text == "hello there"
    assert REGISTRY.get_sample_value("chatmon_rate_limited_total") == refused_before + 1
    # another browser is not affected
    assert service.admit(request(session_id="browser-2"), client_ip="10.0.0.2") is None


async def test_per_address_limit_counts_a_client_that_changes_identity(
    upstream: FakeLLMServer, tmp_path: Path, calls: list[LLMCall]
) -> None:
    limiter = RateLimiter(per_session_per_minute=3, per_ip_per_minute=3, global_per_minute=600)
    service = service_for(upstream, tmp_path, limiter=limiter)
    verdicts = [
        service.admit(request(session_id=f"fresh-identity-{n}"), client_ip="192.0.2.7")
        for n in range(4)
    ]
    assert verdicts[:3] == [None, None, None]
    assert verdicts[3] is not None and verdicts[3].category is ErrorCategory.RATE_LIMITED_LOCAL
    # the same fresh identity from another address is fine
    assert service.admit(request(session_id="fresh-identity-9"), client_ip="192.0.2.8") is None
    assert upstream.hits == 0


async def test_open_breaker_refuses_fast_and_is_recorded(
    upstream: FakeLLMServer, tmp_path: Path, calls: list[LLMCall]
) -> None:
    breaker = CircuitBreaker("test/breaker-under-test", failure_threshold=2, reset_seconds=60)
    service = service_for(upstream, tmp_path, breaker=breaker)
    upstream.configure(fail_with="500", fail_rate=1.0)
    for _ in range(2):
        await run(service, request())
    started = time.perf_counter()
    _, result = await run(service, request())
    assert time.perf_counter() - started < 2.0  # no provider call, no backoff (loose: a loaded box)
    assert result.category is ErrorCategory.CIRCUIT_OPEN
    assert "Next try in about" in result.final_text()
    assert [c.error_category for c in calls] == ["server_error", "server_error", "circuit_open"]
    assert upstream.hits == 2


async def test_stop_mid_reply_is_one_cancelled_call(
    upstream: FakeLLMServer, tmp_path: Path, calls: list[LLMCall]
) -> None:
    upstream.configure(tokens_per_second=20, reply_words=40)
    service = service_for(upstream, tmp_path)
    reply = service.reply(request())

    streaming = asyncio.Event()

    async def consume() -> None:
        async with reply:
            async for _ in reply:
                streaming.set()

    task = asyncio.create_task(consume())
    await streaming.wait()
    assert reply.result.text
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert reply.result.final_text().endswith(STOPPED_MARKER)
    [call] = calls
    assert call.status == "cancelled" and call.output_text == reply.result.text


async def test_consumer_leaving_early_is_recorded_as_cancelled(
    upstream: FakeLLMServer, tmp_path: Path, calls: list[LLMCall]
) -> None:
    async with service_for(upstream, tmp_path).reply(request()) as reply:
        async for _ in reply:
            break
    assert [c.status for c in calls] == ["cancelled"]


async def test_stop_before_the_model_was_asked_is_one_cancelled_call_of_llm_model(
    upstream: FakeLLMServer, tmp_path: Path, calls: list[LLMCall]
) -> None:
    """A Stop that lands before the first chunk was asked for: nothing reaches the
    provider, and the request log still has its one row, naming the configured model."""
    hits = upstream.hits
    async with service_for(upstream, tmp_path).reply(request()) as reply:
        pass
    [call] = calls
    assert (call.status, call.model, call.output_text) == ("cancelled", "openai/fake", "")
    assert call.total_seconds >= 0 and call.first_token_seconds is None
    assert reply.result.final_text() == STOPPED_MARKER
    assert upstream.hits == hits
