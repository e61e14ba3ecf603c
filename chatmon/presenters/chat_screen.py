"""What the chat page shows: its bubbles, and which of the chat state's lists hold them.

Reflex resends a whole var every time it is set, so the open conversation is kept in
four lists, shown in this order: ``messages`` (the loaded page: a load, "Load earlier",
a branch), then what the tab added since: ``recent`` (earlier turns), ``question`` (the
last question) and ``answer`` (its reply). A send sets ``question`` alone (the turn
before it moves to ``recent``), a finished reply ``answer`` alone; past ``RECENT_MAX``
messages in ``recent`` everything folds into ``messages`` (one resend of the page every
``RECENT_MAX / 2`` turns), so ``recent`` stays small.

The functions here take the lists on screen (a :class:`Screen`) and return the
assignments to make (:data:`Changes`: var name -> new value), no more: the state sets
exactly those, and the page is sent exactly those. No Reflex: the tests call them directly.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from chatmon.models import ChatMessage, Conversation
from chatmon.services.history import ModelMessage, Position
from chatmon.settings import get_settings

# A conversation opens with its newest messages; "Load earlier" adds a page at a time,
# and a tab that keeps chatting drops its oldest beyond MAX_ON_SCREEN (they stay one
# "Load earlier" away). Never fewer than the history the model is sent.
MESSAGE_PAGE = max(50, get_settings().max_history_messages)
MAX_ON_SCREEN = 4 * MESSAGE_PAGE
# Messages ``recent`` holds before everything folds into ``messages``.
RECENT_MAX = 8


@dataclasses.dataclass
class MessageView:
    """One chat bubble."""

    id: int
    role: str
    content: str
    feedback: int = 0
    feedback_reasons: str = ""  # "wrong,unsafe" (feedback.REASONS order); "" none
    feedback_comment: str = ""
    error_category: str = ""
    correlation_id: str = ""
    status: str = ""  # "" complete, "interrupted" cut short by a server restart
    # its place among its alternatives (regenerated replies, edited questions): 1 of 1
    alt_index: int = 1
    alt_count: int = 1
    # The page holds the first live_chars of content from live frame live_seq (-1: no);
    # server-side bookkeeping for the wire form (chatmon.states.message_wire).
    live_seq: int = -1
    live_chars: int = 0


@dataclasses.dataclass
class ConversationView:
    """One entry of the sidebar."""

    id: str
    title: str


def message_view(message: ChatMessage, position: Position | None = None) -> MessageView:
    """The bubble of a saved message (``position``: its place among its alternatives)."""
    place = position or Position(1, 1)
    return MessageView(
        id=message.id or 0,
        role=message.role,
        content=message.content,
        feedback=message.feedback or 0,
        feedback_reasons=message.feedback_reasons or "",
        feedback_comment=message.feedback_comment or "",
        error_category=message.error_category or "",
        correlation_id=message.correlation_id or "",
        status=message.status or "",
        alt_index=place.index,
        alt_count=place.count,
    )


def conversation_view(conversation: Conversation) -> ConversationView:
    """The sidebar entry of a conversation."""
    return ConversationView(id=conversation.id, title=conversation.title)


def model_messages(messages: Sequence[MessageView]) -> list[ModelMessage]:
    """What the model is sent of ``messages``: the finished, successful ones."""
    return [
        ModelMessage(role=m.role, content=m.content)
        for m in messages
        if not m.error_category and not m.status
    ]


def index_of(messages: Sequence[MessageView], message_id: int, role: str) -> int | None:
    """Where message ``message_id`` with that role is in ``messages`` (None: it is not)."""
    return next(
        (i for i, m in enumerate(messages) if m.id == message_id and m.role == role),
        None,
    )


# The lists on screen, oldest first; Changes: one of them or "has_earlier" -> its new value.
LISTS = ("messages", "recent", "question", "answer")
Changes = dict[str, Any]


@dataclasses.dataclass(frozen=True)
class Screen:
    """The chat state's lists as they are now (read only)."""

    messages: Sequence[MessageView] = ()
    recent: Sequence[MessageView] = ()
    question: Sequence[MessageView] = ()  # 0 or 1
    answer: Sequence[MessageView] = ()  # 0 or 1
    has_earlier: bool = False

    def shown(self) -> list[MessageView]:
        """Every message on screen, oldest first."""
        return [*self.messages, *self.recent, *self.question, *self.answer]

    def after(self, changes: Changes) -> Screen:
        """This screen with ``changes`` made."""
        return dataclasses.replace(self, **changes)


def show(
    screen: Screen, messages: list[MessageView], *, has_earlier: bool | None = None
) -> Changes:
    """Replace what is on screen (a load, a branch): all of it in ``messages``.

    ``messages`` is always set (the page is resent); the other lists only when they
    are not empty already, ``has_earlier`` only when given and different.
    """
    changes: Changes = {"messages": messages}
    for name in ("recent", "question", "answer"):
        if getattr(screen, name):
            changes[name] = []
    if has_earlier is not None and screen.has_earlier != has_earlier:
        changes["has_earlier"] = has_earlier
    return changes


def fold_if_full(screen: Screen) -> Changes | None:
    """A tab at ``MAX_ON_SCREEN`` keeps its newest ``MESSAGE_PAGE`` (the rest stays one
    "Load earlier" away), all in ``messages``; None when it is not full."""
    shown = screen.shown()
    if len(shown) < MAX_ON_SCREEN:
        return None
    return show(screen, shown[-MESSAGE_PAGE + 1 :], has_earlier=True)


def ask(screen: Screen, message: MessageView) -> Changes:
    """Show the question the tab just sent (in ``question``).

    The last turn's question and answer move to ``recent`` first (a resend of
    ``recent`` only); past ``RECENT_MAX`` everything moves to ``messages``.
    """
    done = [*screen.question, *screen.answer]
    changes = fold_if_full(screen)
    if changes is None:
        if done and len(screen.recent) + len(done) <= RECENT_MAX:
            changes = {"recent": [*screen.recent, *done], "question": [], "answer": []}
        elif done:
            changes = show(screen, screen.shown())
        else:
            changes = {}
    return {**changes, "question": [message]}


def answered(screen: Screen, message: MessageView) -> Changes:
    """Show a finished reply (in ``answer``: the only var that changes)."""
    changes = fold_if_full(screen)
    if changes is None and screen.answer:  # not expected: a reply follows a question
        changes = show(screen, screen.shown())
    return {**(changes or {}), "answer": [message]}


def replace_shown(
    screen: Screen, message_id: int, **fields: Any
) -> tuple[Changes, MessageView | None]:
    """Change ``fields`` of message ``message_id`` where it is shown: only the list that
    holds it changes. ``({}, None)`` when it is not on screen."""
    for name in ("answer", "question", "recent", "messages"):
        views = list(getattr(screen, name))
        index = next((i for i, m in enumerate(views) if m.id == message_id), None)
        if index is not None:
            views[index] = dataclasses.replace(views[index], **fields)
            return {name: views}, views[index]
    return {}, None


def with_whole_texts(screen: Screen) -> Changes:
    """Every list holding a reply sent by reference to the live frames (``live_seq >= 0``,
    see ``chatmon.states.message_wire``), with those replies marked to go whole: for a
    page that could not rebuild their text. ``{}`` when there is none (nothing to send)."""
    changes: Changes = {}
    for name in LISTS:
        views = list(getattr(screen, name))
        if any(m.live_seq >= 0 for m in views):
            changes[name] = [
                dataclasses.replace(m, live_seq=-1, live_chars=0) if m.live_seq >= 0 else m
                for m in views
            ]
    return changes
