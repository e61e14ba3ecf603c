"""Conversations and their messages: create, list, rename, delete, rate.

Every function takes the owner's id and refuses to touch another owner's
conversation, so a guessed conversation id reveals and changes nothing.
"""

from __future__ import annotations

from sqlmodel import Session, col, delete, select

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


def create_conversation(*, session: Session, owner_id: str, title: str = "New chat") -> Conversation:
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


def list_messages(
    *,
    session: Session,
    owner_id: str,
    conversation_id: str,
    limit: int | None = None,
    before_id: int | None = None,
) -> list[ChatMessage]:
    """The conversation's messages in the order they were written.

    With ``limit``, only the newest ``limit`` of them (older than message ``before_id``
    when given): a long conversation opens with its recent messages, the rest on request.
    """
    get_conversation(session=session, owner_id=owner_id, conversation_id=conversation_id)
    query = select(ChatMessage).where(ChatMessage.conversation_id == conversation_id)
    if before_id is not None:
        query = query.where(col(ChatMessage.id) < before_id)
    if limit is None:
        return list(session.exec(query.order_by(col(ChatMessage.id))))
    newest = list(session.exec(query.order_by(col(ChatMessage.id).desc()).limit(limit)))
    return newest[::-1]


def add_message(
    *,
    session: Session,
    owner_id: str,
    conversation_id: str,
    role: str,
    content: str,
    error_category: str | None = None,
    correlation_id: str | None = None,
) -> ChatMessage:
    """Append a message; the first user message also names the conversation."""
    conversation = get_conversation(
        session=session, owner_id=owner_id, conversation_id=conversation_id
    )
    message = ChatMessage(
        conversation_id=conversation.id,
        role=role,
        content=content,
        error_category=error_category,
        correlation_id=correlation_id,
    )
    if role == "user" and conversation.title == "New chat":
        conversation.title = title_from_message(content)
    conversation.updated_at = utc_now()
    session.add(conversation)
    session.add(message)
    session.flush()
    return message


def set_feedback(*, session: Session, owner_id: str, message_id: int, rating: int) -> ChatMessage:
    """Record thumbs up (+1) or down (-1) on an assistant reply; 0 clears it."""
    if rating not in (-1, 0, 1):
        raise ValueError("rating must be -1, 0 or 1")
    message = session.get(ChatMessage, message_id)
    if message is None or message.role != "assistant":
        raise ConversationNotFound(str(message_id))
    get_conversation(session=session, owner_id=owner_id, conversation_id=message.conversation_id)
    message.feedback = rating or None
    session.add(message)
    return message
