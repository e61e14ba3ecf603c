"""Process-wide service objects, created on first use from the settings."""

from __future__ import annotations

import functools

from chatmon.services import breaker
from chatmon.services.llm import LLMClient
from chatmon.services.prompts import SystemPromptSource
from chatmon.services.ratelimit import RateLimiter
from chatmon.services.turn import TurnService
from chatmon.settings import get_settings


@functools.cache
def llm_client() -> LLMClient:
    """The one LLM client of this process, behind the model's shared circuit breaker."""
    settings = get_settings()
    if settings.is_demo:  # the offline model cannot fail
        return LLMClient(settings)
    model_breaker = breaker.for_model(
        settings.llm_model,
        failure_threshold=settings.breaker_failure_threshold,
        reset_seconds=settings.breaker_reset_seconds,
    )
    return LLMClient(settings, breaker=model_breaker)


@functools.cache
def rate_limiter() -> RateLimiter:
    """chatmon's own rate limits for this process (per session and global)."""
    settings = get_settings()
    return RateLimiter(
        per_session_per_minute=settings.rate_limit_per_minute,
        global_per_minute=settings.global_rate_limit_per_minute,
    )


@functools.cache
def turn_service() -> TurnService:
    """The chat's request path: rate limits, breaker, retries, one LLMCall event each."""
    return TurnService(
        settings=get_settings(),
        client=llm_client(),
        prompts=system_prompt_source(),
        limiter=rate_limiter(),
    )


@functools.cache
def system_prompt_source() -> SystemPromptSource:
    """The hot-reloaded system prompt of this process."""
    return SystemPromptSource(get_settings().system_prompt_path)
