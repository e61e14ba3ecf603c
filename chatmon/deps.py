"""Process-wide service objects, created on first use from the settings."""

from __future__ import annotations

import functools
import hashlib

from chatmon.services import auth, breaker
from chatmon.services.identity import IdentityIssuer
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
        per_ip_per_minute=settings.rate_limit_per_ip_per_minute,
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


@functools.cache
def monitor_gate() -> auth.Gate:
    """Credentials for the monitor page and /api/* (disabled when none are configured)."""
    settings = get_settings()
    password = settings.monitor_password.get_secret_value() if settings.monitor_password else None
    users = auth.parse_users(settings.monitor_users) if settings.monitor_users else None
    return auth.Gate(password=password, users=users)


@functools.cache
def chat_gate() -> auth.Gate:
    """Credentials for the chat page (CHAT_PASSWORD; open when unset)."""
    settings = get_settings()
    password = settings.chat_password.get_secret_value() if settings.chat_password else None
    return auth.Gate(password=password)


@functools.cache
def session_signer() -> auth.SessionSigner:
    """Signs login sessions with SESSION_SECRET.

    Without SESSION_SECRET the key is derived from the configured credentials, which every
    worker and instance shares: sessions then survive restarts, and changing a password
    logs everybody out.
    """
    settings = get_settings()
    if settings.session_secret:
        return auth.SessionSigner(settings.session_secret.get_secret_value().encode())
    material = "|".join(
        [
            settings.monitor_password.get_secret_value() if settings.monitor_password else "",
            settings.monitor_users or "",
            settings.chat_password.get_secret_value() if settings.chat_password else "",
        ]
    )
    return auth.SessionSigner(hashlib.sha256(b"chatmon-session:" + material.encode()).digest())


@functools.cache
def instance_secret() -> bytes:
    """The instance's secret: SESSION_SECRET, else a random one for this process.

    TEMPORARY on this branch: the login work replaces the fallback with a secret
    generated once and kept in the database (shared by every worker and instance).
    """
    settings = get_settings()
    if settings.session_secret:
        return settings.session_secret.get_secret_value().encode()
    import secrets

    return secrets.token_bytes(32)


@functools.cache
def identity_issuer() -> IdentityIssuer:
    """Signs and checks browser identity cookies; hashes ids into owner keys."""
    return IdentityIssuer(instance_secret())
