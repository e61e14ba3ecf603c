"""What part of a conversation is sent to the model."""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class ModelMessage:
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
    *, system_prompt: str, history: list[ModelMessage], max_history: int
) -> list[dict[str, str]]:
    """System prompt plus the most recent ``max_history`` messages of ``history``, oldest first.

    The window never starts with an assistant turn: a reply without the question
    it answers only confuses the model.
    """
    recent = history[-max_history:]
    while len(recent) > 1 and recent[0].role != "user":
        recent = recent[1:]
    return [{"role": "system", "content": system_prompt}] + [
        {"role": turn.role, "content": turn.content} for turn in recent
    ]


# ----- branches ------------------------------------------------------------------------
# A conversation is a tree of messages: regenerating a reply or editing a question adds
# an alternative beside it (same parent) instead of replacing it. The model, the page and
# an export follow one branch: from the first message, at each step the alternative
# marked active (the newest active one if several are; the newest if none is).


@dataclass(frozen=True)
class Node:
    """A message's place in its conversation's tree."""

    id: int
    parent_id: int | None
    active: bool


@dataclass(frozen=True)
class Position:
    """Where a message stands among its alternatives: ``index`` of ``count`` (from 1)."""

    index: int
    count: int


def visible_branch(nodes: Iterable[Node]) -> list[int]:
    """The ids of the visible branch, first message first.

    Nodes whose parent is not among ``nodes`` (deleted, or left out by the caller) are not
    reachable and so never shown; a malformed cycle ends the walk.
    """
    children: dict[int | None, list[Node]] = defaultdict(list)
    for node in sorted(nodes, key=lambda n: n.id):
        children[node.parent_id].append(node)
    path: list[int] = []
    seen: set[int] = set()
    parent: int | None = None
    while kids := children.get(parent):
        chosen = max((k for k in kids if k.active), key=lambda n: n.id, default=kids[-1])
        if chosen.id in seen:
            break
        seen.add(chosen.id)
        path.append(chosen.id)
        parent = chosen.id
    return path


def positions(nodes: Iterable[Node], ids: Iterable[int]) -> dict[int, Position]:
    """For each of ``ids``: its place among the nodes with the same parent, oldest first."""
    siblings: dict[int | None, list[int]] = defaultdict(list)
    parent_of: dict[int, int | None] = {}
    for node in sorted(nodes, key=lambda n: n.id):
        siblings[node.parent_id].append(node.id)
        parent_of[node.id] = node.parent_id
    result: dict[int, Position] = {}
    for message_id in ids:
        if message_id in parent_of:
            group = siblings[parent_of[message_id]]
            result[message_id] = Position(index=group.index(message_id) + 1, count=len(group))
    return result
