"""The chat's saves: each is one transaction, made in one trip to a worker thread.

Built from the steps of :mod:`~chatmon.services.conversations`,
:mod:`~chatmon.services.chat_messages` and :mod:`~chatmon.services.branches` for the
moments the chat state waits on the database: a sent message (with its reply's
checkpoint row and, when the sidebar changes, the conversation list), an edited
question, a finished reply (with its place among its alternatives), and reading one
message back.
"""

from __future__ import annotations

import logging

from sqlmodel import Session

from chatmon.models import ChatMessage, Conversation
from chatmon.services import branches, chat_messages
from chatmon.services import conversations as convo
from chatmon.services.history import Position

log = logging.getLogger(__name__)


def get_message(*, session: Session, message_id: int) -> ChatMessage | None:
    """Message ``message_id`` (None: there is none); the caller checks whose it is."""
    return session.get(ChatMessage, message_id)


def save_user_message(
    *,
    session: Session,
    owner_id: str,
    conversation_id: str,
    text: str,
    parent_id: int,
    correlation_id: str,
    top_id: str,
) -> tuple[ChatMessage, ChatMessage, list[Conversation] | None]:
    """The user's message after ``parent_id``, in its conversation (a new one when there
    is none yet); the checkpoint row of its reply (``chat_messages.start_reply_to``); and the
    owner's conversation list when the sidebar must change: the conversation is new or
    not the one on top (``top_id``), else None. One transaction, one trip to a worker
    thread, before the model is asked."""
    conversation = convo.get_or_create_conversation(
        session=session, owner_id=owner_id, conversation_id=conversation_id
    )
    saved = chat_messages.add_message(
        session=session,
        owner_id=owner_id,
        conversation_id=conversation.id,
        role="user",
        content=text,
        parent_id=parent_id,
    )
    reply = chat_messages.start_reply_to(
        session=session, question=saved, correlation_id=correlation_id
    )
    listed = (
        None
        if conversation.id == top_id
        else convo.list_conversations(session=session, owner_id=owner_id)
    )
    return saved, reply, listed


def save_edit(
    *, session: Session, owner_id: str, message_id: int, text: str
) -> tuple[ChatMessage, Position]:
    """The edited question (``chat_messages.edit_message``) and its place among its alternatives."""
    saved = chat_messages.edit_message(
        session=session, owner_id=owner_id, message_id=message_id, text=text
    )
    return saved, branches.position_of(session=session, message=saved)


def save_finished(
    *,
    session: Session,
    message_id: int,
    content: str,
    error_category: str | None,
    place: Position | None = None,
) -> tuple[bool, Position]:
    """Save the finished reply, then read its place among its alternatives (a
    regenerated reply is "2 of 2"; a reply counts only once finished): one trip to a
    worker thread instead of two. A caller that knows the place passes it as ``place``
    (the reply to a question just sent is its only one) and nothing is read."""
    saved = chat_messages.save_reply(
        session=session,
        message_id=message_id,
        content=content,
        done=True,
        error_category=error_category,
    )
    if place is not None or not saved:
        return saved, place or Position(1, 1)
    session.commit()  # the reply is saved whatever reading its place does next
    message = session.get(ChatMessage, message_id)
    if message is None:
        return saved, Position(1, 1)
    try:
        return saved, branches.position_of(session=session, message=message)
    except Exception:  # noqa: BLE001 - only the ‹ › control is missing then
        log.warning("could not read a reply's alternatives", exc_info=True)
        session.rollback()  # nothing left to undo: the reply was committed above
        return saved, Position(1, 1)
