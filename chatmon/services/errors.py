"""The fixed list of error categories, and what the chat tells a person for each.

The category names are a contract: they appear in the database, in
``chatmon_llm_requests_total{error_type=...}`` and in alerts.
"""

from __future__ import annotations

import math
from enum import StrEnum


class ErrorCategory(StrEnum):
    """Why a request to the model failed."""

    RATE_LIMIT = "rate_limit"
    AUTH = "auth"
    TIMEOUT = "timeout"
    CONNECTION = "connection"
    BAD_REQUEST = "bad_request"
    CONTENT_FILTER = "content_filter"
    CONTEXT_LENGTH = "context_length"
    SERVER_ERROR = "server_error"
    CIRCUIT_OPEN = "circuit_open"
    RATE_LIMITED_LOCAL = "rate_limited_local"
    BUDGET_EXCEEDED = "budget_exceeded"  # chatmon's own refusal: BUDGET_ACTION=refuse
    UNKNOWN = "unknown"


RETRYABLE: frozenset[ErrorCategory] = frozenset(
    {
        ErrorCategory.RATE_LIMIT,
        ErrorCategory.TIMEOUT,
        ErrorCategory.CONNECTION,
        ErrorCategory.SERVER_ERROR,
    }
)

HUMAN_MESSAGES: dict[ErrorCategory, str] = {
    ErrorCategory.RATE_LIMIT: "The model provider is rate-limiting us right now. "
    "Please wait a moment and try again.",
    ErrorCategory.AUTH: "The model provider rejected our credentials. "
    "An administrator needs to check the API key.",
    ErrorCategory.TIMEOUT: "The model took too long to answer. Please try again.",
    ErrorCategory.CONNECTION: "We could not reach the model provider. "
    "Please try again in a moment.",
    ErrorCategory.BAD_REQUEST: "The model provider could not process this request. "
    "Try rephrasing your message.",
    ErrorCategory.CONTENT_FILTER: "The model provider's safety filter blocked this "
    "request or its answer.",
    ErrorCategory.CONTEXT_LENGTH: "This conversation is too long for the model. "
    "Start a new chat or clear this one.",
    ErrorCategory.SERVER_ERROR: "The model provider had an internal error. "
    "Please try again in a moment.",
    ErrorCategory.CIRCUIT_OPEN: "The model provider is failing right now, so we are "
    "pausing requests briefly. Please try again shortly.",
    ErrorCategory.RATE_LIMITED_LOCAL: "You are sending messages too quickly. "
    "Please wait before sending another.",
    ErrorCategory.BUDGET_EXCEEDED: "This chat's spending budget is used up, so no more "
    "requests are sent to the model until it resets.",
    ErrorCategory.UNKNOWN: "Something went wrong while getting a reply. Please try again.",
}


def human_message(category: ErrorCategory | str) -> str:
    """The message shown in the chat for ``category``."""
    try:
        return HUMAN_MESSAGES[ErrorCategory(category)]
    except ValueError:
        return HUMAN_MESSAGES[ErrorCategory.UNKNOWN]


def user_message(category: ErrorCategory | str, *, retry_after: float | None = None) -> str:
    """The chat message for ``category``, telling the person when to try again if we know.

    Only chatmon's own refusals (rate limit, open circuit) carry a wait the person can
    rely on; a provider's Retry-After has already been spent on our retries.
    """
    message = human_message(category)
    if retry_after is None or retry_after <= 0:
        return message
    seconds = max(1, math.ceil(retry_after))
    unit = "second" if seconds == 1 else "seconds"
    if category == ErrorCategory.RATE_LIMITED_LOCAL:
        return f"{message} You can send again in {seconds} {unit}."
    if category == ErrorCategory.CIRCUIT_OPEN:
        return f"{message} Next try in about {seconds} {unit}."
    if category == ErrorCategory.BUDGET_EXCEEDED:
        return f"{message} It resets in {format_duration(seconds)}."
    return message


def format_duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``3 h 5 min`` - a wait as people read it."""
    seconds = max(0, math.ceil(seconds))
    if seconds < 60:
        return f"{seconds} s"
    minutes = math.ceil(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes} min" if minutes else f"{hours} h"


class LLMCallError(Exception):
    """A model call failed; ``category`` says why. ``str()`` never holds provider text."""

    def __init__(self, category: ErrorCategory, *, retry_after: float | None = None) -> None:
        super().__init__(category.value)
        self.category = category
        self.retry_after = retry_after

    @property
    def retryable(self) -> bool:
        """Whether trying again may succeed."""
        return self.category in RETRYABLE

    @property
    def human_message(self) -> str:
        """What the chat shows."""
        return human_message(self.category)
