"""What part of a conversation is sent to the model."""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Turn:
    """One message as the model sees it."""

    role: str  # "user" | "assistant"
    content: str


class MessageTooLong(ValueError):
    """The user's message is over ``MAX_MESSAGE_CHARS``."""

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(
            f"Your message is {length:,} characters long; the limit is {limit:,}. "
            "Please shorten it."
        )


class EmptyMessage(ValueError):
    """The user's message has no visible characters."""

    def __init__(self) -> None:
        super().__init__("Type a message first.")


_CONTROL_CHARS = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def clean_text(text: str) -> str:
    """Text safe to store anywhere: control characters (NUL breaks PostgreSQL) removed,
    unpaired surrogates (not valid UTF-8) replaced; tabs and newlines kept."""
    text = text.encode("utf-8", errors="replace").decode("utf-8")
    return _CONTROL_CHARS.sub("", text)


def check_user_message(text: str, *, max_chars: int) -> str:
    """The message ready to send, or a ValueError with a message for the user."""
    if len(text) > max_chars:
        raise MessageTooLong(len(text), max_chars)
    text = clean_text(text).strip()
    if not text:
        raise EmptyMessage()
    return text


def build_messages(
    *, system_prompt: str, turns: list[Turn], max_history: int
) -> list[dict[str, str]]:
    """System prompt plus the most recent ``max_history`` turns, oldest first.

    The window never starts with an assistant turn: a reply without the question
    it answers only confuses the model.
    """
    recent = turns[-max_history:]
    while len(recent) > 1 and recent[0].role != "user":
        recent = recent[1:]
    return [{"role": "system", "content": system_prompt}] + [
        {"role": turn.role, "content": turn.content} for turn in recent
    ]
