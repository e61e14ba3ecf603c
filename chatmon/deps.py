"""Process-wide service objects, created on first use from the settings."""

from __future__ import annotations

import functools
import time
from concurrent.futures import ThreadPoolExecutor

from sqlmodel import Session

from chatmon.db import get_engine
from chatmon.services import auth, breaker, first_start, instance_secrets
from chatmon.services.budget import BudgetConfig, BudgetGate
from chatmon.services.identity import IdentityIssuer
from chatmon.services.llm import LLMClient
from chatmon.services.login import LoginGuard
from chatmon.services.prompt_versions import PromptVersionBook
from chatmon.services.prompts import SystemPromptSource
from chatmon.services.ratelimit import RateLimiter
from chatmon.services.turn import TurnService
from chatmon.settings import get_settings


def _breaker_of(model: str) -> breaker.CircuitBreaker:
    settings = get_settings()
    return breaker.for_model(
        model,
        failure_threshold=settings.breaker_failure_threshold,
        reset_seconds=settings.breaker_reset_seconds,
    )


@functools.cache
def llm_client() -> LLMClient:
    """The one LLM client of this process, behind the model's shared circuit breaker."""
    settings = get_settings()
    if settings.is_demo:  # the offline model cannot fail
        return LLMClient(settings)
    return LLMClient(settings, breaker=_breaker_of(settings.llm_model))


@functools.cache
def fallback_model_clients() -> tuple[LLMClient, ...]:
    """The LLM_FALLBACK_MODELS clients in order, each behind its own breaker and with
    its own LLM_FALLBACK_<N>_API_BASE / _API_KEY."""
    settings = get_settings()
    return tuple(
        LLMClient(settings, breaker=_breaker_of(endpoint.model), endpoint=endpoint)
        for endpoint in settings.fallback_models
    )


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
    """The chat's request path: rate limits, budgets, breaker, retries, one LLMCall each."""
    return TurnService(
        settings=get_settings(),
        client=llm_client(),
        prompts=system_prompt_source(),
        limiter=rate_limiter(),
        budget=budget_gate(),
        fallback=fallback_client(),
        fallbacks=fallback_model_clients(),
    )


@functools.cache
def budget_gate() -> BudgetGate:
    """The process's budget decision (read from the shared database every few seconds)."""
    return BudgetGate(config=BudgetConfig.from_settings(get_settings()), engine=get_engine)


@functools.cache
def fallback_client() -> LLMClient | None:
    """The BUDGET_FALLBACK_MODEL client behind its own breaker, when one is configured."""
    settings = get_settings()
    model = settings.budget_fallback_model
    if model is None:
        return None
    return LLMClient(settings, breaker=_breaker_of(model), model=model)


@functools.cache
def system_prompt_source() -> SystemPromptSource:
    """The hot-reloaded system prompt of this process (each version served is kept in
    the ``prompt_version`` table)."""
    return SystemPromptSource(get_settings().system_prompt_path, listener=prompt_book().note)


@functools.cache
def prompt_book() -> PromptVersionBook:
    """Writes the system prompt versions this process serves to ``prompt_version``."""
    return PromptVersionBook(get_engine)


GATE_TTL_SECONDS = 30.0  # the generated password's hash is re-read at least this often
LOGIN_HASH_THREADS = 2
_monitor_gate: tuple[float, auth.Gate] | None = None


@functools.cache
def instance_secret() -> bytes:
    """The secret this installation signs with: SESSION_SECRET, or one generated once.

    Without SESSION_SECRET a random secret is created at the first start and kept in
    the database (table ``instance_secret``), so every worker and every instance on
    that database agrees on it and sessions survive restarts. It is never derived
    from a password. Other keys (e.g. browser identity) derive from it.
    """
    settings = get_settings()
    if settings.session_secret:
        return settings.session_secret.get_secret_value().encode()
    with Session(get_engine()) as session:
        return first_start.session_secret(session=session, settings=settings)


def monitor_gate() -> auth.Gate:
    """Credentials for the monitor page, /api/* and /metrics (re-read every 30 s).

    Closed unless MONITOR_AUTH=off: MONITOR_PASSWORD and/or MONITOR_USERS, else the
    password generated at the first start (its hash is in the database and changes
    with ``python -m chatmon reset-monitor-password``, hence the short cache).
    """
    cached = _monitor_gate
    if cached is not None and time.monotonic() - cached[0] < GATE_TTL_SECONDS:
        return cached[1]
    return refresh_monitor_gate()


def refresh_monitor_gate() -> auth.Gate:
    """Build the monitor gate from the settings and the database now (blocking)."""
    global _monitor_gate
    settings = get_settings()
    if not settings.monitor_auth:
        gate = auth.Gate()
    else:
        secret = settings.monitor_password
        password = secret.get_secret_value() if secret else None
        users = auth.parse_users(settings.monitor_users) if settings.monitor_users else None
        gate = auth.Gate(
            password=password,
            users=users,
            password_hash=None if password or users else _generated_password_hash(),
            closed=True,
            key=instance_secret(),
        )
    _monitor_gate = (time.monotonic(), gate)
    return gate


def _generated_password_hash() -> str | None:
    with Session(get_engine()) as session:
        return instance_secrets.read_secret(
            session=session, name=instance_secrets.MONITOR_PASSWORD_HASH
        )


@functools.cache
def chat_gate() -> auth.Gate:
    """Credentials for the chat page (CHAT_PASSWORD; open when unset)."""
    settings = get_settings()
    password = settings.chat_password.get_secret_value() if settings.chat_password else None
    return auth.Gate(password=password, key=instance_secret() if password else b"")


@functools.cache
def session_signer() -> auth.SessionSigner:
    """Signs login sessions with :func:`instance_secret` (shared by every instance)."""
    return auth.SessionSigner(instance_secret())


@functools.cache
def login_hash_executor() -> ThreadPoolExecutor:
    """The few threads password checks run on, apart from the database's threads."""
    return ThreadPoolExecutor(max_workers=LOGIN_HASH_THREADS, thread_name_prefix="chatmon-login")


@functools.cache
def login_guard() -> LoginGuard:
    """Throttles and checks every sign-in of this process (form and HTTP Basic)."""
    return LoginGuard(engine=get_engine, key=instance_secret(), executor=login_hash_executor())


@functools.cache
def identity_issuer() -> IdentityIssuer:
    """Signs and checks browser identity cookies; hashes ids into owner keys."""
    return IdentityIssuer(instance_secret())
