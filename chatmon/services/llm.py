"""Streaming replies from any LiteLLM model. The only module that imports litellm.

Retries belong to tenacity alone: LiteLLM's and the OpenAI client's own retries are
switched off on every call (``max_retries=0``). A failed attempt is retried only
before the first token has streamed; after that a retry would duplicate text.
"""

from __future__ import annotations

import asyncio
import functools
import os
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

from tenacity import (
    AsyncRetrying,
    retry_if_exception,
    stop_after_attempt,
    wait_exponential_jitter,
)

from chatmon.services.demo import demo_reply_words
from chatmon.services.errors import ErrorCategory, LLMCallError
from chatmon.settings import Settings

# Offline switch: without it `import litellm` fetches the model cost map from the network.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")


@functools.cache
def _litellm() -> Any:
    """Import litellm once (it takes seconds) with its network features switched off."""
    import litellm

    litellm.telemetry = False
    litellm.suppress_debug_info = True
    litellm.drop_params = True
    return litellm


def warm_up() -> None:
    """Pay litellm's import cost now (call from a thread at startup), not on the first chat."""
    _litellm()


@dataclass
class StreamStats:
    """What one reply cost and how long it took; filled in while it streams."""

    started: float = field(default_factory=time.perf_counter)
    first_token_seconds: float | None = None
    total_seconds: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    retries: int = 0
    provider: str | None = None


def categorize(exc: BaseException) -> LLMCallError:
    """Map a LiteLLM/httpx exception to one of the fixed error categories.

    Looks at the exception type first, then at its underlying cause: LiteLLM
    reports a refused or dropped connection as ``InternalServerError``.
    """
    if isinstance(exc, LLMCallError):
        return exc
    ll = _litellm()
    retry_after = _retry_after_seconds(exc)
    by_type: list[tuple[type[BaseException], ErrorCategory]] = [
        (ll.ContextWindowExceededError, ErrorCategory.CONTEXT_LENGTH),
        (ll.ContentPolicyViolationError, ErrorCategory.CONTENT_FILTER),
        (ll.RateLimitError, ErrorCategory.RATE_LIMIT),
        (ll.AuthenticationError, ErrorCategory.AUTH),
        (ll.PermissionDeniedError, ErrorCategory.AUTH),
        (ll.Timeout, ErrorCategory.TIMEOUT),
        (asyncio.TimeoutError, ErrorCategory.TIMEOUT),
        (ll.BadRequestError, ErrorCategory.BAD_REQUEST),
        (ll.NotFoundError, ErrorCategory.BAD_REQUEST),
        (ll.UnprocessableEntityError, ErrorCategory.BAD_REQUEST),
    ]
    if _caused_by_connection_failure(exc):
        return LLMCallError(ErrorCategory.CONNECTION)
    for exc_type, category in by_type:
        if isinstance(exc, exc_type):
            return LLMCallError(category, retry_after=retry_after)
    if isinstance(exc, ll.APIConnectionError):
        return LLMCallError(ErrorCategory.CONNECTION)
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and status >= 500:
        return LLMCallError(ErrorCategory.SERVER_ERROR, retry_after=retry_after)
    return LLMCallError(ErrorCategory.UNKNOWN)


def _caused_by_connection_failure(exc: BaseException) -> bool:
    """True when anything in the cause chain is a transport-level failure."""
    import httpx

    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (httpx.ConnectError, httpx.RemoteProtocolError, httpx.ReadError)):
            return True
        if isinstance(current, (ConnectionError, OSError)) and not isinstance(
            current, TimeoutError
        ):
            return True
        if type(current).__name__ in {"APIConnectionError", "RemoteProtocolError"}:
            return True
        current = current.__cause__ or current.__context__
    return False


def _retry_after_seconds(exc: BaseException) -> float | None:
    """The provider's ``Retry-After`` header, when it sent one."""
    response = getattr(exc, "response", None)
    headers = getattr(response, "headers", None)
    if not headers:
        return None
    try:
        return float(headers.get("retry-after"))
    except (TypeError, ValueError):
        return None


class LLMClient:
    """Streams replies from the configured model (or the offline demo model)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings

    @property
    def model(self) -> str:
        """The LiteLLM model string."""
        return self._settings.llm_model

    async def stream(
        self, *, messages: list[dict], temperature: float, stats: StreamStats
    ) -> AsyncIterator[str]:
        """Yield the reply's text as it arrives; fill ``stats`` along the way.

        Raises:
            LLMCallError: with the category of the failure.
        """
        if self._settings.is_demo:
            chunks = self._demo_stream(messages, stats)
        else:
            chunks = self._provider_stream(messages, temperature, stats)
        try:
            async for text in chunks:
                if stats.first_token_seconds is None:
                    stats.first_token_seconds = time.perf_counter() - stats.started
                yield text
        except (asyncio.CancelledError, GeneratorExit):
            raise
        except Exception as exc:  # noqa: BLE001 - every failure becomes a category
            raise categorize(exc) from None
        finally:
            stats.total_seconds = time.perf_counter() - stats.started

    async def _demo_stream(self, messages: list[dict], stats: StreamStats) -> AsyncIterator[str]:
        stats.provider = "demo"
        words = demo_reply_words(messages)
        stats.input_tokens = sum(len(str(m["content"]).split()) for m in messages)
        stats.output_tokens = len(words)
        stats.cost_usd = 0.0
        for word in words:
            await asyncio.sleep(0.02)
            yield word

    async def _provider_stream(
        self, messages: list[dict], temperature: float, stats: StreamStats
    ) -> AsyncIterator[str]:
        first_chunk, chunks = await self._open_with_retries(messages, temperature, stats)
        usage = None
        async for chunk in _prepend(first_chunk, chunks):
            usage = getattr(chunk, "usage", None) or usage
            text = _chunk_text(chunk)
            if text:
                yield text
        self._account(usage, stats)

    async def _open_with_retries(
        self, messages: list[dict], temperature: float, stats: StreamStats
    ) -> tuple[Any, AsyncIterator[Any]]:
        """Open the stream and read its first chunk, retrying transient failures."""
        retrying = AsyncRetrying(
            retry=retry_if_exception(lambda e: categorize(e).retryable),
            stop=stop_after_attempt(self._settings.llm_max_retries + 1),
            wait=wait_exponential_jitter(initial=0.5, max=8.0),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                stats.retries = attempt.retry_state.attempt_number - 1
                return await self._open(messages, temperature, stats)
        raise AssertionError("unreachable: tenacity re-raises the last failure")

    async def _open(
        self, messages: list[dict], temperature: float, stats: StreamStats
    ) -> tuple[Any, AsyncIterator[Any]]:
        settings = self._settings
        key = settings.llm_api_key.get_secret_value() if settings.llm_api_key else None
        response = await _litellm().acompletion(
            model=settings.llm_model,
            messages=messages,
            temperature=temperature,
            stream=True,
            stream_options={"include_usage": True},
            api_base=settings.llm_api_base,
            api_key=key,
            timeout=settings.request_timeout,
            max_retries=0,
        )
        stats.provider = settings.llm_model.split("/", 1)[0] if "/" in settings.llm_model else None
        chunks = response.__aiter__()
        first = await asyncio.wait_for(anext(chunks), timeout=settings.request_timeout)
        return first, chunks

    def _account(self, usage: Any, stats: StreamStats) -> None:
        """Tokens from the provider's usage report, and their price."""
        if usage is None:
            return
        stats.input_tokens = int(getattr(usage, "prompt_tokens", 0) or 0)
        stats.output_tokens = int(getattr(usage, "completion_tokens", 0) or 0)
        stats.cost_usd = price_usd(
            self._settings, input_tokens=stats.input_tokens, output_tokens=stats.output_tokens
        )


def price_usd(settings: Settings, *, input_tokens: int, output_tokens: int) -> float | None:
    """Cost of a call in USD, or None when the model has no known price.

    ``LLM_PRICE_*`` overrides win; otherwise LiteLLM's bundled price map. A model
    the map does not know is reported as None rather than silently costing $0.
    """
    if settings.llm_price_input_per_1m is not None and settings.llm_price_output_per_1m is not None:
        return (
            input_tokens * settings.llm_price_input_per_1m
            + output_tokens * settings.llm_price_output_per_1m
        ) / 1_000_000
    ll = _litellm()
    try:
        info = ll.get_model_info(settings.llm_model)
    except Exception:  # noqa: BLE001 - unknown model: no price
        return None
    input_price = info.get("input_cost_per_token")
    output_price = info.get("output_cost_per_token")
    if input_price is None or output_price is None:
        return None
    return input_tokens * input_price + output_tokens * output_price


async def _prepend(first: Any, rest: AsyncIterator[Any]) -> AsyncIterator[Any]:
    yield first
    async for item in rest:
        yield item


def _chunk_text(chunk: Any) -> str:
    """The text delta of one streamed chunk (empty for usage-only chunks)."""
    choices = getattr(chunk, "choices", None) or []
    if not choices:
        return ""
    delta = getattr(choices[0], "delta", None)
    return getattr(delta, "content", None) or ""
