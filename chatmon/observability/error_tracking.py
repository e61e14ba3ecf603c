"""Unhandled backend exceptions to Sentry (or GlitchTip, which speaks the same protocol).

Through ``sentry-sdk`` with only the integrations chatmon chooses: Starlette (the
backend routes: an exception a route does not handle), logging (``ERROR`` records of
chatmon's own loops and listeners become events, lower levels breadcrumbs) and dedupe;
plus :func:`capture`, called by the app's Reflex backend exception handler for an
exception in a state's event handler, which Reflex catches itself. No default or
auto-enabled integration: none of them patches outbound HTTP (no ``sentry-trace`` or
``baggage`` headers reach the LLM provider or a webhook), reports installed modules,
or hooks LiteLLM (whose integration would send prompts).

What leaves never holds a secret or user text: ``send_default_pii=False`` (no cookies,
no client address, no ``Authorization`` header), no request bodies (the login form's
password), no local variables of stack frames (a message, a key), and ``before_send``
runs every string of an event through the caller's ``scrub`` (secret masking, and PII
redaction when enabled) before it is queued.

Reporting never delays a request: the SDK queues each event (bounded, dropping when
full) and one background thread sends them; :func:`flush` at shutdown is bounded.

A leaf: it imports nothing of chatmon; the caller passes the settings' values in.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

log = logging.getLogger(__name__)

# Loggers whose ERROR records are not events: Reflex logs each backend exception it
# catches as text, which :func:`capture` reports with its stack trace already.
# This module's own logger neither: an event that failed scrubbing must not come back.
IGNORED_LOGGERS = ("reflex.app", __name__)

_started = False


def dsn_key(dsn: str) -> str:
    """The DSN's public key (its user part), a value to mask wherever it appears."""
    return urlsplit(dsn).username or ""


def _scrubbed(value: Any, scrub: Callable[[str], str]) -> Any:
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {key: _scrubbed(item, scrub) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_scrubbed(item, scrub) for item in value]
    return value


def before_send_hook(scrub: Callable[[str], str]) -> Callable[[Any, Any], Any]:
    """The SDK's ``before_send``: every string of the event through ``scrub``.

    Messages, exception values, breadcrumbs, request URLs and query strings, tags
    and extra data alike; an event that cannot be scrubbed is dropped, never sent raw.
    """

    def before_send(event: Any, _hint: Any) -> Any:
        try:
            return _scrubbed(event, scrub)
        except Exception:
            log.exception("error tracking: an event could not be scrubbed; it is dropped")
            return None

    return before_send


def setup(
    *,
    dsn: str,
    release: str,
    environment: str,
    traces_sample_rate: float,
    scrub: Callable[[str], str],
) -> bool:
    """Start reporting to ``dsn`` (once per process; later calls change nothing).

    Returns:
        True when reporting is on.
    """
    global _started
    if _started:
        return True
    import sentry_sdk
    from sentry_sdk.integrations.dedupe import DedupeIntegration
    from sentry_sdk.integrations.logging import LoggingIntegration, ignore_logger
    from sentry_sdk.integrations.starlette import StarletteIntegration

    hook = before_send_hook(scrub)
    sentry_sdk.init(
        dsn=dsn,
        release=release,
        environment=environment,
        traces_sample_rate=traces_sample_rate,
        send_default_pii=False,
        include_local_variables=False,
        max_request_body_size="never",
        default_integrations=False,
        auto_enabling_integrations=False,
        integrations=[
            StarletteIntegration(),
            LoggingIntegration(level=logging.INFO, event_level=logging.ERROR),
            DedupeIntegration(),
        ],
        trace_propagation_targets=[],  # no tracing headers on any outbound request
        send_client_reports=False,
        before_send=hook,
        before_send_transaction=hook,
        shutdown_timeout=2,
    )
    for name in IGNORED_LOGGERS:
        ignore_logger(name)
    _started = True
    return True


def capture(exception: BaseException) -> None:
    """Report an exception the framework caught (no-op while reporting is off)."""
    if not _started:
        return
    import sentry_sdk

    sentry_sdk.capture_exception(exception)


def flush(timeout: float) -> None:
    """Send what is queued, waiting at most ``timeout`` seconds (server shutdown)."""
    if not _started:
        return
    import sentry_sdk

    sentry_sdk.flush(timeout=timeout)


def reset() -> None:
    """Stop reporting (tests): the SDK's client is closed, its integrations stay patched
    but report nothing without a client."""
    global _started
    if not _started:
        return
    import sentry_sdk

    client = sentry_sdk.get_client()
    if client.is_active():
        client.close(timeout=1.0)
    sentry_sdk.get_global_scope().set_client(None)
    _started = False
