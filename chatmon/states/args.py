"""Checks for event-handler arguments, which any client can send with any shape.

Reflex converts a few types from their annotations, but it does not reject a dict
where a string was expected, a list where a number was, or a megabyte-long "id". Each
checker returns the value in the shape the handler needs, or None for anything else,
so a handler can ignore a malformed call without raising (and without logging the
client's payload in a traceback).
"""

from __future__ import annotations

import math
import re

from chatmon.services.feedback import MAX_COMMENT_CHARS, REASONS

_ID = re.compile(r"[0-9a-f]{32}")
_MAX_SAFE_INT = 2**53  # what a browser's JSON numbers can carry exactly


def record_id(value: object) -> str | None:
    """A conversation id (32 lowercase hex characters), or None."""
    return value if isinstance(value, str) and _ID.fullmatch(value) else None


def whole_number(value: object) -> int | None:
    """A JSON integer (not a bool, not a float, within JavaScript's safe range), or None."""
    if isinstance(value, bool) or not isinstance(value, int):
        return None
    return value if -_MAX_SAFE_INT < value < _MAX_SAFE_INT else None


def finite_number(value: object) -> float | None:
    """A finite number from a slider ([x] or x), or None (NaN and infinities included)."""
    if isinstance(value, list) and len(value) == 1:
        value = value[0]
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def form_text(form_data: object, field: str) -> str | None:
    """A text field of a submitted form ("" when absent), or None when malformed."""
    if not isinstance(form_data, dict):
        return None
    value = form_data.get(field, "")
    return value if isinstance(value, str) else None


def feedback_reasons(value: object) -> tuple[str, ...] | None:
    """A list of distinct reasons from the fixed set (``feedback.REASONS``), or None."""
    if not isinstance(value, list) or len(value) > len(REASONS):
        return None
    if not all(isinstance(item, str) and item in REASONS for item in value):
        return None
    if len(set(value)) != len(value):
        return None
    return tuple(r for r in REASONS if r in value)


def feedback_comment(value: object) -> str | None:
    """A comment of at most ``feedback.MAX_COMMENT_CHARS`` characters (trimmed), or None."""
    if not isinstance(value, str) or len(value) > MAX_COMMENT_CHARS:
        return None
    return value.strip()
