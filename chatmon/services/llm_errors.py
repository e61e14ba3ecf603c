"""What went wrong with a model call: a LiteLLM/httpx failure as an :class:`ErrorCategory`.

The provider's ``Retry-After`` is read here too, because the category and the wait
arrive together (a rate limit says how long; a server error may).
"""

from __future__ import annotations

import asyncio
import email.utils
from datetime import UTC, datetime
from typing import Any

from chatmon.services.errors import ErrorCategory, LLMCallError
from chatmon.services.litellm_import import litellm_module


def categorize(exc: BaseException) -> LLMCallError:
    """Map a LiteLLM/httpx exception to one of the fixed error categories.

    Looks at the exception type first, then at its underlying cause: LiteLLM
    reports a refused or dropped connection as ``InternalServerError``.
    """
    if isinstance(exc, LLMCallError):
        return exc
    ll = litellm_module()
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
    """The provider's ``Retry-After`` (seconds or an HTTP date), when it sent one.

    LiteLLM keeps the provider's headers in ``litellm_response_headers`` (its own
    ``response`` is rebuilt without them); the OpenAI error in the cause chain has them too.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        for headers in (
            getattr(current, "litellm_response_headers", None),
            getattr(getattr(current, "response", None), "headers", None),
        ):
            seconds = _parse_retry_after(headers)
            if seconds is not None:
                return seconds
        current = current.__cause__ or current.__context__
    return None


def _parse_retry_after(headers: Any) -> float | None:
    if not headers:
        return None
    try:
        if (millis := headers.get("retry-after-ms")) is not None:
            return max(0.0, float(millis) / 1000)
        value = headers.get("retry-after")
    except (AttributeError, TypeError, ValueError):
        return None
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, (when - datetime.now(UTC)).total_seconds())
