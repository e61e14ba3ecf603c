"""LLMClient against the fake upstream over real HTTP: streaming, usage, errors, retries."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator

import pytest

from chatmon.devtools.fake_llm import DROP_MID_AFTER_CHUNKS, expected_reply, reply_chunks
from chatmon.devtools.fake_llm_server import FakeLLMServer
from chatmon.services.breaker import BreakerState, CircuitBreaker
from chatmon.services.errors import ErrorCategory, LLMCallError
from chatmon.services.llm import (
    MAX_BACKOFF_SECONDS,
    LLMClient,
    price_usd,
    warm_up,
)
from chatmon.services.llm_credentials import missing_credentials
from chatmon.services.stream_stats import StreamStats
from chatmon.settings import load_settings

MESSAGES = [{"role": "system", "content": "be brief"}, {"role": "user", "content": "ping pong"}]


@pytest.fixture(scope="module")
def upstream() -> Iterator[FakeLLMServer]:
    warm_up()  # as the app does at startup: the first call's imports are not the test's
    with FakeLLMServer() as server:
        yield server


@pytest.fixture(autouse=True)
def _reset(upstream: FakeLLMServer) -> None:
    upstream.reset()


def client_for(upstream: FakeLLMServer, **overrides: object) -> LLMClient:
    options: dict[str, object] = {
        "llm_model": "openai/fake",
        "llm_api_base": upstream.url,
        "llm_api_key": "sk-unit-test",
        "request_timeout": 15,  # a ceiling for a loaded machine; tests of timeouts set their own
        "llm_max_retries": 0,
    }
    settings = load_settings(**(options | overrides))
    return LLMClient(settings)


async def collect(client: LLMClient, stats: StreamStats | None = None) -> str:
    stats = stats or StreamStats()
    chunks = client.stream(messages=MESSAGES, temperature=0.3, stats=stats)
    return "".join([t async for t in chunks])


async def test_stream_returns_reply_and_provider_usage(upstream: FakeLLMServer) -> None:
    stats = StreamStats()
    text = await collect(
        client_for(upstream, llm_price_input_per_1m=1.0, llm_price_output_per_1m=2.0), stats
    )
    assert text.startswith("Echo: ping pong")
    assert stats.input_tokens == 4  # words of both messages, as the upstream counted them
    assert stats.output_tokens == 12
    assert stats.cost_usd == pytest.approx((4 * 1.0 + 12 * 2.0) / 1e6)
    assert 0 < stats.first_token_seconds <= stats.total_seconds
    assert upstream.requests[-1]["temperature"] == 0.3


async def test_unknown_model_price_is_none_not_zero(upstream: FakeLLMServer) -> None:
    settings = load_settings(llm_model="openai/fake")
    assert price_usd(settings, input_tokens=100, output_tokens=100) is None


def test_known_model_is_priced_from_litellm_map() -> None:
    settings = load_settings(llm_model="gpt-4o-mini")
    assert price_usd(settings, input_tokens=1_000_000, output_tokens=0) > 0


@pytest.mark.parametrize(
    ("fail_with", "category"),
    [
        ("429", ErrorCategory.RATE_LIMIT),
        ("401", ErrorCategory.AUTH),
        ("400", ErrorCategory.BAD_REQUEST),
        ("context_length", ErrorCategory.CONTEXT_LENGTH),
        ("500", ErrorCategory.SERVER_ERROR),
        ("503", ErrorCategory.SERVER_ERROR),
        ("timeout", ErrorCategory.TIMEOUT),
        ("drop", ErrorCategory.CONNECTION),
        ("drop-mid", ErrorCategory.CONNECTION),
    ],
)
async def test_failures_are_categorized(
    upstream: FakeLLMServer, fail_with: str, category: ErrorCategory
) -> None:
    upstream.configure(fail_with=fail_with, fail_rate=1.0)
    # Only the hang needs a short timeout; the others answer at once, and a 1 s limit on a
    # loaded machine turned a slow 429 into a timeout (seen once in a fresh-clone CI run).
    request_timeout = 1 if fail_with == "timeout" else 30
    with pytest.raises(LLMCallError) as caught:
        await collect(client_for(upstream, request_timeout=request_timeout))
    assert caught.value.category == category
    assert "injected" not in str(caught.value)  # provider text never reaches the user
    assert upstream.hits == 1  # LiteLLM's and the OpenAI client's own retries are off


async def test_refused_connection_is_a_connection_error() -> None:
    settings = load_settings(
        llm_model="openai/fake",
        llm_api_base="http://127.0.0.1:9/v1",
        llm_api_key="sk-x",
        llm_max_retries=0,
        request_timeout=2,
    )
    with pytest.raises(LLMCallError) as caught:
        await collect(LLMClient(settings))
    assert caught.value.category == ErrorCategory.CONNECTION


async def test_transient_failure_is_retried_then_succeeds(upstream: FakeLLMServer) -> None:
    upstream.configure(fail_with="503", fail_first=1)
    stats = StreamStats()
    text = await collect(client_for(upstream, llm_max_retries=2), stats)
    assert text.startswith("Echo: ping pong")
    assert upstream.hits == 2
    assert stats.retries == 1


async def test_auth_failure_is_never_retried(upstream: FakeLLMServer) -> None:
    upstream.configure(fail_with="401", fail_rate=1.0)
    with pytest.raises(LLMCallError):
        await collect(client_for(upstream, llm_max_retries=3))
    assert upstream.hits == 1


async def test_a_missing_key_is_an_auth_failure_without_a_provider_call(
    upstream: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """LiteLLM reports a missing key as a provider 500 ("Missing credentials"), which
    would read as the provider's fault and be retried: it is ``auth``, and no call."""
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    client = client_for(upstream, llm_api_key=None, llm_max_retries=3)
    assert missing_credentials(client._settings) == ["OPENAI_API_KEY"]
    with pytest.raises(LLMCallError) as caught:
        await collect(client)
    assert caught.value.category == ErrorCategory.AUTH
    assert upstream.hits == 0


def test_only_missing_credentials_count() -> None:
    """Ollama's base URL has a default, so only keys and tokens are missing credentials."""
    assert missing_credentials(load_settings(llm_model="ollama/llama3")) == []
    assert missing_credentials(load_settings(llm_model="demo")) == []


async def test_api_key_is_sent_but_never_in_errors(upstream: FakeLLMServer) -> None:
    upstream.configure(fail_with="401", fail_rate=1.0)
    with pytest.raises(LLMCallError) as caught:
        await collect(client_for(upstream))
    assert "sk-unit-test" not in repr(caught.value)
    assert "sk-unit-test" not in caught.value.human_message


# ----- resilience: retries, timeouts, no retry after the first token, breaker ------------


async def test_rate_limit_with_retry_after_is_honoured_then_succeeds(
    upstream: FakeLLMServer,
) -> None:
    upstream.configure(fail_with="429", fail_first=1, retry_after=1)
    stats = StreamStats()
    started = time.perf_counter()
    text = await collect(client_for(upstream, llm_max_retries=2), stats)
    assert text == expected_reply("ping pong")  # one reply, nothing repeated
    assert time.perf_counter() - started >= 1.0  # waited as the provider asked
    assert upstream.hits == 2 and stats.retries == 1


async def test_retry_after_longer_than_a_person_should_wait_is_not_retried(
    upstream: FakeLLMServer,
) -> None:
    upstream.configure(fail_with="429", fail_first=1, retry_after=MAX_BACKOFF_SECONDS + 5)
    started = time.perf_counter()
    with pytest.raises(LLMCallError) as caught:
        await collect(client_for(upstream, llm_max_retries=3))
    assert caught.value.category == ErrorCategory.RATE_LIMIT
    assert upstream.hits == 1
    # it gave up at once instead of sleeping the provider's Retry-After (loose for a loaded box)
    assert time.perf_counter() - started < MAX_BACKOFF_SECONDS


async def test_retries_stop_at_the_configured_count(upstream: FakeLLMServer) -> None:
    upstream.configure(fail_with="500", fail_rate=1.0)
    stats = StreamStats()
    with pytest.raises(LLMCallError):
        await collect(client_for(upstream, llm_max_retries=2), stats)
    assert upstream.hits == 3  # tenacity's three attempts and no hidden client retries
    assert stats.retries == 2


async def test_hung_provider_times_out_within_the_budget(upstream: FakeLLMServer) -> None:
    upstream.configure(fail_with="timeout", fail_rate=1.0)
    started = time.perf_counter()
    with pytest.raises(LLMCallError) as caught:
        await collect(client_for(upstream, request_timeout=0.5, llm_max_retries=1))
    elapsed = time.perf_counter() - started
    assert caught.value.category == ErrorCategory.TIMEOUT
    assert upstream.hits == 2
    # two attempts of 0.5 s plus one backoff (0.5-1.0 s), never the 600 s client default;
    # the upper bound leaves room for a loaded machine
    assert 1.0 <= elapsed < 10


async def test_drop_mid_stream_is_not_retried_and_repeats_nothing(
    upstream: FakeLLMServer,
) -> None:
    upstream.configure(fail_with="drop-mid", fail_rate=1.0, reply_words=12)
    received: list[str] = []
    client = client_for(upstream, llm_max_retries=3)
    with pytest.raises(LLMCallError) as caught:
        async for text in client.stream(messages=MESSAGES, temperature=0.3, stats=StreamStats()):
            received.append(text)
    assert caught.value.category == ErrorCategory.CONNECTION
    full = reply_chunks([{"role": "user", "content": "ping pong"}], 12)
    assert received == full[:DROP_MID_AFTER_CHUNKS]
    assert upstream.hits == 1  # never retried after the first token


async def test_stalled_stream_times_out_after_the_idle_limit(upstream: FakeLLMServer) -> None:
    upstream.configure(tokens_per_second=1, reply_words=10)  # a chunk per second
    received: list[str] = []
    client = client_for(upstream, stream_idle_timeout=0.3, request_timeout=30)
    started = time.perf_counter()
    with pytest.raises(LLMCallError) as caught:
        async for text in client.stream(messages=MESSAGES, temperature=0.3, stats=StreamStats()):
            received.append(text)
    assert caught.value.category == ErrorCategory.TIMEOUT
    assert received == ["Echo: "]
    # the idle timeout (0.3 s) ended it, not the request timeout (30 s); loose for a loaded box
    assert time.perf_counter() - started < 15
    assert upstream.hits == 1


async def test_slow_reader_is_not_a_stalled_stream(upstream: FakeLLMServer) -> None:
    upstream.configure(reply_words=4)
    client = client_for(upstream, stream_idle_timeout=0.2)
    received = []
    async for text in client.stream(messages=MESSAGES, temperature=0.3, stats=StreamStats()):
        received.append(text)
        await asyncio.sleep(0.3)  # the page is slow to paint: not the provider's fault
    assert "".join(received) == expected_reply("ping pong", 4)


async def test_open_breaker_fails_fast_without_calling_the_provider(
    upstream: FakeLLMServer,
) -> None:
    breaker = CircuitBreaker("test/breaker-under-test", failure_threshold=2, reset_seconds=0.5)
    client = LLMClient(client_for(upstream)._settings, breaker=breaker)
    upstream.configure(fail_with="503", fail_rate=1.0)
    for _ in range(2):
        with pytest.raises(LLMCallError):
            await collect(client)
    assert breaker.state is BreakerState.OPEN and upstream.hits == 2

    started = time.perf_counter()
    with pytest.raises(LLMCallError) as caught:
        await collect(client)
    assert caught.value.category == ErrorCategory.CIRCUIT_OPEN
    assert time.perf_counter() - started < 2.0  # no connection attempt, no backoff
    assert upstream.hits == 2

    await asyncio.sleep(0.5)
    assert breaker.state is BreakerState.HALF_OPEN
    upstream.configure(fail_rate=0.0)
    assert (await collect(client)).startswith("Echo: ping pong")  # the trial
    assert breaker.state is BreakerState.CLOSED
    assert upstream.hits == 3


async def test_half_open_trial_is_not_retried(upstream: FakeLLMServer) -> None:
    breaker = CircuitBreaker("test/breaker-under-test", failure_threshold=1, reset_seconds=0.1)
    opener = LLMClient(client_for(upstream, llm_max_retries=0)._settings, breaker=breaker)
    client = LLMClient(client_for(upstream, llm_max_retries=3)._settings, breaker=breaker)
    upstream.configure(fail_with="500", fail_first=1)
    with pytest.raises(LLMCallError):
        await collect(opener)
    await asyncio.sleep(0.1)
    upstream.configure(fail_with="500", fail_first=1)
    hits = upstream.hits
    with pytest.raises(LLMCallError):
        await collect(client)
    assert upstream.hits == hits + 1
    assert breaker.state is BreakerState.OPEN


async def test_max_tokens_caps_the_reply_at_the_provider(upstream: FakeLLMServer) -> None:
    text = await collect(client_for(upstream, llm_max_tokens=3))
    assert upstream.requests[-1]["max_tokens"] == 3
    assert text == "".join(reply_chunks(MESSAGES, upstream.config.reply_words)[:3])


async def test_no_max_tokens_sent_when_unset(upstream: FakeLLMServer) -> None:
    text = await collect(client_for(upstream))
    assert "max_tokens" not in upstream.requests[-1]
    assert text == expected_reply("ping pong", upstream.config.reply_words)


async def test_usage_is_read_from_the_provider_not_rebuilt_by_litellm(
    upstream: FakeLLMServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The provider's own usage report prices the reply; LiteLLM's end-of-stream rebuild
    of the whole response (a worker thread and ~15 % of a stream's CPU) never runs."""
    from chatmon.services.litellm_import import litellm_module

    litellm = litellm_module()
    rebuilds: list[int] = []
    original = litellm.stream_chunk_builder
    monkeypatch.setattr(
        litellm,
        "stream_chunk_builder",
        lambda *a, **k: rebuilds.append(1) or original(*a, **k),
    )
    stats = StreamStats()
    text = await collect(client_for(upstream), stats)
    assert text == expected_reply("ping pong", upstream.config.reply_words)
    assert (stats.input_tokens, stats.output_tokens) == (4, 12)  # as the upstream counted
    assert rebuilds == []


async def test_a_provider_that_reports_no_usage_still_gets_token_counts(
    upstream: FakeLLMServer,
) -> None:
    """A proxy that ignores ``stream_options.include_usage``: LiteLLM's estimate from the
    chunks, as before, rather than a reply recorded with no tokens at all."""
    upstream.configure(usage_report=False)
    stats = StreamStats()
    text = await collect(client_for(upstream), stats)
    assert text == expected_reply("ping pong", upstream.config.reply_words)
    assert upstream.requests[-1]["stream_options"] == {"include_usage": True}
    assert stats.output_tokens > 0 and stats.input_tokens > 0
