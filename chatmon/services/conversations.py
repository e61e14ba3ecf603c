"""Conversations as rows: create, find, list, rename, delete, clear, adopt.

Every function takes the owner's id and refuses to touch another owner's
conversation, so a guessed conversation id reveals and changes nothing.

Their messages are in :mod:`chatmon.services.chat_messages`, the tree of alternatives
they form in :mod:`chatmon.services.branches`, the Markdown export in
:mod:`chatmon.services.conversation_export`.
"""

from __future__ import annotations

from sqlmodel import Session, col, delete, select, update

from chatmon.models import ChatMessage, Conversation, utc_now
from chatmon.services.history import clean_text

TITLE_MAX_CHARS = 60


class ConversationNotFound(LookupError):
    """No conversation with that id belongs to this owner."""


def title_from_message(text: str) -> str:
    """A short one-line title made from the first user message."""
    line = " ".join(clean_text(text).split())
    if len(line) <= TITLE_MAX_CHARS:
        return line or "New chat"
    return line[: TITLE_MAX_CHARS - 1].rstrip() + "…"


def create_conversation(
    *, session: Session, owner_id: str, title: str = "New chat"
) -> Conversation:
    """Start an empty conversation for ``owner_id``."""
    conversation = Conversation(owner_id=owner_id, title=title)
    session.add(conversation)
    session.flush()
    return conversation


def get_conversation(*, session: Session, owner_id: str, conversation_id: str) -> Conversation:
    """The owner's conversation, or :class:`ConversationNotFound`."""
    conversation = session.get(Conversation, conversation_id)
    if conversation is None or conversation.owner_id != owner_id:
        raise ConversationNotFound(conversation_id)
    return conversation


def list_conversations(*, session: Session, owner_id: str, limit: int = 100) -> list[Conversation]:
    """The owner's conversations, most recently active first."""
    query = (
        select(Conversation)
        .where(Conversation.owner_id == owner_id)
        .order_by(col(Conversation.updated_at).desc())
        .limit(limit)
    )
    return list(session.exec(query))


def rename_conversation(
    *, session: Session, owner_id: str, conversation_id: str, title: str
) -> Conversation:
    """Give a conversation a new (non-empty, trimmed) title."""
    conversation = get_conversation(
        session=session, owner_id=owner_id, conversation_id=conversation_id
    )
    conversation.title = title_from_message(title)
    session.add(conversation)
    return conversation


def delete_conversation(*, session: Session, owner_id: str, conversation_id: str) -> None:
    """Delete a conversation and its messages."""
    conversation = get_conversation(
        session=session, owner_id=owner_id, conversation_id=conversation_id
    )
    session.exec(delete(ChatMessage).where(col(ChatMessage.conversation_id) == conversation.id))
    session.delete(conversation)


def clear_messages(*, session: Session, owner_id: str, conversation_id: str) -> None:
    """Remove every message of a conversation, keeping the conversation itself."""
    conversation = get_conversation(
        session=session, owner_id=owner_id, conversation_id=conversation_id
    )
    session.exec(delete(ChatMessage).where(col(ChatMessage.conversation_id) == conversation.id))
    conversation.title = "New chat"
    conversation.updated_at = utc_now()
    session.add(conversation)


def get_or_create_conversation(
    *, session: Session, owner_id: str, conversation_id: str
) -> Conversation:
    """The owner's conversation with that id, or a new one when there is none (or it is
    someone else's: a foreign id never reveals that it exists)."""
    try:
        return get_conversation(session=session, owner_id=owner_id, conversation_id=conversation_id)
    except ConversationNotFound:
        return create_conversation(session=session, owner_id=owner_id)


def adopt_legacy_conversations(*, session: Session, legacy_owner: str, owner_id: str) -> int:
    """Move a pre-upgrade browser's conversations to its new identity; returns how many.

    Runs once per legacy id in effect: afterwards the legacy key owns nothing, so
    presenting the old id again (or someone else's) finds nothing to take.
    """
    result = session.exec(
        update(Conversation)
        .where(col(Conversation.owner_id) == legacy_owner)
        .values(owner_id=owner_id)
    )
    return int(result.rowcount or 0)
