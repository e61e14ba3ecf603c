"""Feedback with reasons: the fixed reason set, and the checks a submitted form passes.

A thumbs-down may carry one or more reasons from :data:`REASONS` and a comment; a
thumbs-up may carry a comment. Reasons are stored as a comma-separated list in a fixed
order (``wrong,unsafe``), so the same choice always reads the same. The comment is
capped at :data:`MAX_COMMENT_CHARS`; it is stored with the message (the conversation
tables hold user text) and goes to Langfuse PII-redacted. ``llm_request`` keeps only
the reasons (it holds numbers and ids, never text).
"""

from __future__ import annotations

from collections.abc import Iterable

# The reasons a thumbs-down can name; also the `reason` label set of
# chatmon_feedback_reasons_total (fixed: never anything the client sent).
REASONS: tuple[str, ...] = ("wrong", "unhelpful", "unsafe", "too slow", "other")
MAX_COMMENT_CHARS = 1000


def encode_reasons(reasons: Iterable[str]) -> str | None:
    """The stored form of a reason set (fixed order, no repeats), or None when empty."""
    chosen = set(reasons)
    unknown = chosen - set(REASONS)
    if unknown:
        raise ValueError(f"unknown feedback reasons: {sorted(unknown)}")
    return ",".join(r for r in REASONS if r in chosen) or None


def decode_reasons(stored: str | None) -> tuple[str, ...]:
    """The reasons of a stored value, in the fixed order (unknown ones dropped)."""
    parts = set((stored or "").split(","))
    return tuple(r for r in REASONS if r in parts)


def clean_comment(comment: str) -> str:
    """A comment as stored: whitespace trimmed; longer than the cap is refused."""
    text = comment.strip()
    if len(text) > MAX_COMMENT_CHARS:
        raise ValueError(f"comment longer than {MAX_COMMENT_CHARS} characters")
    return text
