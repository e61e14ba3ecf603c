"""Streaming replies from any LiteLLM model (litellm itself is loaded by ``litellm_import``).

Retries belong to tenacity alone: LiteLLM's and the OpenAI client's own retries are
switched off on every call (``max_retries=0``). A failed attempt is retried only
before the first token has streamed; after that a retry would duplicate text.

Beside it: ``llm_errors`` (a failure as a category), ``llm_credentials`` (keys known
missing before any call), ``provider_stream`` (reading the stream), ``stream_stats``.
"""

from __future__ import annotations

import asyncio
import importlib
import logging
import threading
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import Any

from tenacity import AsyncRetrying, RetryCallState, retry_if_exception, wait_exponential_jitter

from chatmon.services import pricing
from chatmon.services.breaker import CircuitBreaker, Permit
from chatmon.services.demo import demo_reply_words
from chatmon.services.errors import ErrorCategory, LLMCallError
from chatmon.services.litellm_import import litellm_module
from chatmon.services.llm_credentials import missing_credentials
from chatmon.services.llm_errors import categorize
from chatmon.services.provider_stream import (
    StallGuard,
    chunk_text,
    close_quietly,
    finish_reason,
    provider_iterator,
    reuse_provider_iterator,
    usage_after_finish,
)
from chatmon.services.stream_stats import StreamStats
from chatmon.settings import FallbackModel, Settings

log = logging.getLogger(__name__)

# Longest pause between two attempts. A provider asking for more (Retry-After) is not
# retried: the person gets the rate-limit message now rather than a silent minute.
MAX_BACKOFF_SECONDS = 8.0
_exponential_jitter = wait_exponential_jitter(initial=0.5, max=MAX_BACKOFF_SECONDS, jitter=0.5)


async def _litellm_ready() -> Any:
    """litellm, warmed up (in a worker thread) before the first call is timed.

    A request that arrives while the start-up warm-up is still importing would
    otherwise wait on the import lock with the event loop, stalling every user, and
    spend its REQUEST_TIMEOUT on imports instead of the provider.
    """
    if not _warm.is_set():
        await asyncio.to_thread(warm_up)
    return litellm_module()


# What LiteLLM's first OpenAI-compatible call imports lazily (~500 modules, 1-3 s): the
# OpenAI client's resources, the tokenizer, LiteLLM's proxy types. Imported by warm_up.
_FIRST_CALL_MODULES = (
    "openai.resources.chat",
    "litellm.llms.openai.openai",
    "litellm.proxy._types",
    "litellm._service_logger",
    "litellm.litellm_core_utils.default_encoding",
    "tiktoken_ext.openai_public",
    "anyio._backends._asyncio",
)


_warm = threading.Event()
_warm_lock = threading.Lock()


def warm_up() -> None:
    """Pay litellm's import costs now (call from a thread at startup), not on the first chat.

    Both the import itself and the lazy imports of the first call: done on the event
    loop they would stall every user for seconds and eat the first request's timeout.
    Idempotent; a second caller waits (in its own thread) for the first to finish.
    """
    with _warm_lock:
        if _warm.is_set():
            return
        litellm_module()
        for name in _FIRST_CALL_MODULES:
            try:
                importlib.import_module(name)
            except ImportError:  # a LiteLLM/OpenAI upgrade moved it: the first call pays
                log.debug("warm-up: %s not importable", name)
        import openai

        with openai.OpenAI(api_key="warm-up", base_url="http://127.0.0.1:9/v1") as client:
            client.chat.completions  # noqa: B018 - the attribute access is the lazy import
        _warm.set()


class LLMClient:
    """Streams replies from the configured model (or the offline demo model).

    Args:
        settings: model, provider, timeouts and retry budget.
        breaker: the model's circuit breaker, shared by the process; None = no breaker
            (unit tests of the retry layer alone).
        model: another model than LLM_MODEL on the same provider settings
            (BUDGET_FALLBACK_MODEL); its own price (LLM_PRICE_* are LLM_MODEL's).
        endpoint: a model of LLM_FALLBACK_MODELS with its own base URL and key (unset
            ones are the provider's defaults, never LLM_MODEL's settings).
    """

    def __init__(
        self,
        settings: Settings,
        *,
        breaker: CircuitBreaker | None = None,
        model: str | None = None,
        endpoint: FallbackModel | None = None,
    ) -> None:
        self._settings = settings
        self._breaker = breaker
        self._missing: list[str] | None = None  # provider variables, learned on first use
        if endpoint is not None:
            self._model = endpoint.model
            self._api_base, self._api_key = endpoint.api_base, endpoint.api_key
        else:
            self._model = model or settings.llm_model
            self._api_base, self._api_key = settings.llm_api_base, settings.llm_api_key

    @property
    def model(self) -> str:
        """The LiteLLM model string."""
        return self._model

    @property
    def breaker(self) -> CircuitBreaker | None:
        """The circuit breaker this client consults, if any."""
        return self._breaker

    async def stream(
        self, *, messages: list[dict[str, str]], temperature: float, stats: StreamStats
    ) -> AsyncGenerator[str, None]:
        """Yield the reply's text as it arrives; fill ``stats`` along the way.

        Raises:
            LLMCallError: with the category of the failure. After the first token has
                been yielded a failure is never retried (that would repeat text).
        """
        if self._settings.is_demo and self._model == self._settings.llm_model:
            chunks = self._demo_stream(messages, stats)
        else:
            chunks = self._guarded_stream(messages, temperature, stats)
        try:
            async with aclosing(chunks):
                async for text in chunks:
                    stats.token()
                    yield text
        except (asyncio.CancelledError, GeneratorExit):
            raise
        except Exception as exc:  # noqa: BLE001 - every failure becomes a category
            raise categorize(exc) from None
        finally:
            stats.finish()

    async def _demo_stream(
        self, messages: list[dict[str, str]], stats: StreamStats
    ) -> AsyncGenerator[str, None]:
        stats.opened("demo")
        words = demo_reply_words(messages)
        inputs = sum(len(str(m["content"]).split()) for m in messages)
        stats.used(input_tokens=inputs, output_tokens=len(words), cost_usd=0.0)
        for word in words:
            await asyncio.sleep(0.02)
            yield word

    async def _guarded_stream(
        self, messages: list[dict[str, str]], temperature: float, stats: StreamStats
    ) -> AsyncGenerator[str, None]:
        """The provider stream behind the circuit breaker, which learns how it ended."""
        if self._missing is None:
            self._missing = missing_credentials(
                self._settings, model=self._model, api_base=self._api_base, api_key=self._api_key
            )
        if self._missing:  # LiteLLM would call it a provider 500, and we would retry it
            raise LLMCallError(ErrorCategory.AUTH)
        if self._breaker is None:
            async with aclosing(self._provider_stream(messages, temperature, stats, None)) as it:
                async for text in it:
                    yield text
            return
        permit = self._breaker.acquire()  # raises circuit_open: no provider call at all
        answered = False
        try:
            async with aclosing(self._provider_stream(messages, temperature, stats, permit)) as it:
                async for text in it:
                    answered = True
                    yield text
        except LLMCallError as exc:
            self._breaker.record_failure(permit, exc.category)
            raise
        except BaseException:  # cancelled, or closed early by the consumer
            if answered:
                self._breaker.record_success(permit)
            else:
                self._breaker.release(permit)
            raise
        self._breaker.record_success(permit)

    async def _provider_stream(
        self,
        messages: list[dict[str, str]],
        temperature: float,
        stats: StreamStats,
        permit: Permit | None,
    ) -> AsyncGenerator[str, None]:
        response, first_chunk = await self._open_with_retries(messages, temperature, stats, permit)
        usage = getattr(first_chunk, "usage", None)
        finished = False
        guard = StallGuard(self._settings.stream_idle_timeout)
        try:
            text = chunk_text(first_chunk)
            if text:
                yield text
            chunks = response.__aiter__()
            while True:
                guard.waiting()
                try:
                    chunk = await chunks.__anext__()
                except StopAsyncIteration:
                    finished = True
                    break
                except asyncio.CancelledError:
                    if guard.caused_cancellation():
                        raise LLMCallError(ErrorCategory.TIMEOUT) from None  # stalled
                    raise
                except Exception as exc:  # noqa: BLE001 - mid-stream: categorize, never retry
                    raise categorize(exc) from None
                guard.received()
                usage = getattr(chunk, "usage", None) or usage
                text = chunk_text(chunk)
                if text:
                    yield text
                if finish_reason(chunk) and (raw := provider_iterator(response)) is not None:
                    # The text is complete: the usage report that follows is read from the
                    # provider's stream itself, past LiteLLM's end-of-stream work.
                    usage = await self._usage_tail(raw, response, messages, guard) or usage
                    finished = True
                    await close_quietly(response)
                    break
                if not text and getattr(chunk, "usage", None) is not None:
                    # LiteLLM strips usage from the chunks it passes on and reports it
                    # once, after the provider's stream has ended. Reading on would only
                    # run its end-of-stream logging (which rebuilds the whole response
                    # from its chunks a second time) for callbacks chatmon does not use:
                    # the reply, its usage and its price are all here already.
                    finished = True
                    await close_quietly(response)
                    break
        finally:
            guard.stop()
            if not finished:  # stopped, stalled or broken: free the connection now
                await close_quietly(response)
        self._account(usage, stats)

    async def _usage_tail(
        self, raw: Any, response: Any, messages: list[dict[str, str]], guard: StallGuard
    ) -> Any:
        """The provider's usage after the finish chunk, as a LiteLLM ``Usage`` (what
        ``pricing`` reads cached tokens from); when it sends none, LiteLLM's estimate
        from the chunks (its tokenizer, in a worker thread), as it would have made.

        The reply is complete by now: a stall or a broken connection here loses only
        the provider's report, never the reply.
        """
        litellm = litellm_module()
        reported = None
        guard.waiting()
        try:
            reported = await usage_after_finish(raw)
        except asyncio.CancelledError:
            if not guard.caused_cancellation():
                raise  # Stop, not the stall guard
            log.warning("the provider stalled after its reply; its usage is estimated")
        except Exception:  # noqa: BLE001 - see above
            log.warning("reading the provider's usage report failed", exc_info=True)
        guard.received()
        if reported is not None:
            return litellm.Usage(**reported.model_dump())
        chunks = list(getattr(response, "chunks", None) or [])
        if not chunks:
            return None
        rebuilt = await asyncio.to_thread(
            litellm.stream_chunk_builder, chunks=chunks, messages=messages
        )
        return getattr(rebuilt, "usage", None)

    async def _open_with_retries(
        self,
        messages: list[dict[str, str]],
        temperature: float,
        stats: StreamStats,
        permit: Permit | None,
    ) -> tuple[Any, Any]:
        """Open the stream and read its first chunk, retrying transient failures.

        Only before the first token, only retryable categories, with exponential
        backoff and jitter (or the provider's Retry-After, when longer), and within
        ``REQUEST_TIMEOUT x (LLM_MAX_RETRIES + 1)`` plus the backoff. An open circuit
        breaker (or being the half-open trial) stops the retries.
        """
        settings = self._settings
        budget = settings.request_timeout * (settings.llm_max_retries + 1)

        def stop(retry_state: RetryCallState) -> bool:
            if retry_state.attempt_number > settings.llm_max_retries:
                return True
            if retry_state.upcoming_sleep > MAX_BACKOFF_SECONDS:
                return True  # the provider asks for a longer pause than a person should wait
            if permit is not None and self._breaker and not self._breaker.allows_retry(permit):
                return True
            return (
                (retry_state.seconds_since_start or 0.0) + retry_state.upcoming_sleep
                >= budget + MAX_BACKOFF_SECONDS * settings.llm_max_retries
            )

        retrying = AsyncRetrying(
            retry=retry_if_exception(lambda e: isinstance(e, LLMCallError) and e.retryable),
            stop=stop,
            wait=_backoff,
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                stats.attempt(attempt.retry_state.attempt_number - 1)
                return await self._open(messages, temperature, stats)
        raise AssertionError("unreachable: tenacity re-raises the last failure")

    async def _open(
        self, messages: list[dict[str, str]], temperature: float, stats: StreamStats
    ) -> tuple[Any, Any]:
        """One attempt: send the request and wait for the first chunk, within REQUEST_TIMEOUT."""
        settings = self._settings
        key = self._api_key.get_secret_value() if self._api_key else None
        litellm = await _litellm_ready()  # outside the timeout: the first import takes seconds
        response = None
        try:
            async with asyncio.timeout(settings.request_timeout):
                response = await litellm.acompletion(
                    model=self._model,
                    messages=messages,
                    temperature=temperature,
                    stream=True,
                    stream_options={"include_usage": True},
                    api_base=self._api_base,
                    api_key=key,
                    timeout=settings.request_timeout,
                    max_retries=0,  # tenacity owns retries; the OpenAI client must not
                    **_max_tokens(settings),
                )
                stats.opened(_provider_of(self._model))
                reuse_provider_iterator(response)
                first = await anext(response.__aiter__())
            return response, first
        except (asyncio.CancelledError, GeneratorExit):
            await close_quietly(response)
            raise
        except Exception as exc:  # noqa: BLE001 - becomes a category, maybe retried
            await close_quietly(response)
            raise categorize(exc) from None

    def _account(self, usage: Any, stats: StreamStats) -> None:
        """Tokens from the provider's usage report, and their price."""
        if usage is None:
            return
        inputs = int(getattr(usage, "prompt_tokens", 0) or 0)
        outputs = int(getattr(usage, "completion_tokens", 0) or 0)
        cost = pricing.cost_usd(
            self._settings,
            input_tokens=inputs,
            output_tokens=outputs,
            usage=usage,
            model=self.model,
        )
        stats.used(input_tokens=inputs, output_tokens=outputs, cost_usd=cost)


def _backoff(retry_state: RetryCallState) -> float:
    """Exponential backoff with jitter, or the provider's Retry-After when that is longer."""
    delay = _exponential_jitter(retry_state)
    outcome = retry_state.outcome
    error = outcome.exception() if outcome is not None else None
    retry_after = getattr(error, "retry_after", None)
    if retry_after is not None:
        delay = max(delay, retry_after)
    return delay


def _max_tokens(settings: Settings) -> dict[str, int]:
    """``max_tokens`` for the provider when LLM_MAX_TOKENS caps replies, else nothing."""
    return {} if settings.llm_max_tokens is None else {"max_tokens": settings.llm_max_tokens}


def _provider_of(model: str) -> str | None:
    return model.split("/", 1)[0] if "/" in model else None


def price_usd(settings: Settings, *, input_tokens: int, output_tokens: int) -> float | None:
    """Cost of a call of LLM_MODEL in USD, or None when its price is unknown.

    Kept for callers that have only token counts; see ``chatmon.services.pricing``
    (a 0/0 map entry is unknown, not free).
    """
    return pricing.cost_usd(settings, input_tokens=input_tokens, output_tokens=output_tokens)
