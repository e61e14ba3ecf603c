"""Conversations and their messages: create, list, rename, delete, rate.

Every function takes the owner's id and refuses to touch another owner's
conversation, so a guessed conversation id reveals and changes nothing.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, delete, select, update

from chatmon.models import ChatMessage, Conversation, utc_now
from chatmon.services import feedback
from chatmon.services.history import clean_text

TITLE_MAX_CHARS = 60
STREAMING = "streaming"  # ChatMessage.status of a reply being written
INTERRUPTED = "interrupted"  # ... of a reply whose writer stopped before finishing
INTERRUPTED_NOTE = "\n\n*(reply interrupted: the server restarted; this is what was saved)*"


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


def list_messages(
    *,
    session: Session,
    owner_id: str,
    conversation_id: str,
    limit: int | None = None,
    before_id: int | None = None,
) -> list[ChatMessage]:
    """The conversation's finished messages in the order they were written.

    With ``limit``, only the newest ``limit`` of them (older than message ``before_id``
    when given): a long conversation opens with its recent messages, the rest on request.
    A reply still being written (``status == "streaming"``) is left out: the tab that
    streams it shows it live, and it is listed once finished or interrupted.
    """
    get_conversation(session=session, owner_id=owner_id, conversation_id=conversation_id)
    query = (
        select(ChatMessage)
        .where(ChatMessage.conversation_id == conversation_id)
        .where(col(ChatMessage.status).is_(None) | (col(ChatMessage.status) != STREAMING))
    )
    if before_id is not None:
        query = query.where(col(ChatMessage.id) < before_id)
    if limit is None:
        return list(session.exec(query.order_by(col(ChatMessage.id))))
    newest = list(session.exec(query.order_by(col(ChatMessage.id).desc()).limit(limit)))
    return newest[::-1]


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


def start_reply(
    *, session: Session, owner_id: str, conversation_id: str, correlation_id: str
) -> ChatMessage:
    """An empty assistant message marked as streaming: the reply's checkpoint row."""
    now = utc_now()
    return add_message(
        session=session,
        owner_id=owner_id,
        conversation_id=conversation_id,
        role="assistant",
        content="",
        correlation_id=correlation_id,
        status=STREAMING,
        updated_at=now,
    )


def save_reply(
    *,
    session: Session,
    message_id: int,
    content: str,
    done: bool,
    error_category: str | None = None,
) -> bool:
    """Write a streaming reply's text so far (``done=False``) or its final text.

    Only a reply that is still streaming is written: one that was interrupted (its
    writer presumed gone) or deleted with its conversation stays as it is. Returns
    whether the row was written.
    """
    values: dict[str, object] = {"content": content, "updated_at": utc_now()}
    if done:
        values |= {"status": None, "error_category": error_category}
    result = session.exec(
        update(ChatMessage)
        .where(col(ChatMessage.id) == message_id)
        .where(col(ChatMessage.status) == STREAMING)
        .values(**values)
    )
    return bool(result.rowcount)


def interrupt_stale_replies(
    *, session: Session, owner_id: str, stale_before: datetime
) -> list[ChatMessage]:
    """Mark the owner's replies whose writer stopped checkpointing as interrupted.

    A reply is stale when its last checkpoint is older than ``stale_before``. Each is
    claimed with a conditional update, so when several tabs or workers look at once,
    exactly one of them gets it (and records it). Returns the replies it claimed.
    """
    candidates = session.exec(
        select(ChatMessage)
        .join(Conversation, col(Conversation.id) == col(ChatMessage.conversation_id))
        .where(col(Conversation.owner_id) == owner_id)
        .where(col(ChatMessage.status) == STREAMING)
        .where(col(ChatMessage.updated_at) < stale_before)
    ).all()
    claimed = []
    for message in candidates:
        content = message.content + INTERRUPTED_NOTE
        result = session.exec(
            update(ChatMessage)
            .where(col(ChatMessage.id) == message.id)
            .where(col(ChatMessage.status) == STREAMING)
            .values(status=INTERRUPTED, content=content, updated_at=utc_now())
        )
        if result.rowcount:
            message.status, message.content = INTERRUPTED, content
            claimed.append(message)
    return claimed


def add_message(
    *,
    session: Session,
    owner_id: str,
    conversation_id: str,
    role: str,
    content: str,
    error_category: str | None = None,
    correlation_id: str | None = None,
    status: str | None = None,
    updated_at: datetime | None = None,
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
        status=status,
        updated_at=updated_at,
    )
    if role == "user" and conversation.title == "New chat":
        conversation.title = title_from_message(content)
    conversation.updated_at = utc_now()
    session.add(conversation)
    session.add(message)
    session.flush()
    return message


def set_feedback(
    *,
    session: Session,
    owner_id: str,
    message_id: int,
    rating: int,
    reasons: tuple[str, ...] = (),
    comment: str = "",
) -> ChatMessage:
    """Record thumbs up (+1) or down (-1) on an assistant reply; 0 clears it.

    Reasons (``feedback.REASONS``) go only with a thumbs-down; a comment with either
    thumb. Clearing the rating clears both.
    """
    if rating not in (-1, 0, 1):
        raise ValueError("rating must be -1, 0 or 1")
    if reasons and rating != -1:
        raise ValueError("reasons go with a thumbs-down only")
    stored_reasons = feedback.encode_reasons(reasons)
    stored_comment = feedback.clean_comment(comment) if rating else ""
    message = session.get(ChatMessage, message_id)
    if message is None or message.role != "assistant":
        raise ConversationNotFound(str(message_id))
    get_conversation(session=session, owner_id=owner_id, conversation_id=message.conversation_id)
    message.feedback = rating or None
    message.feedback_reasons = stored_reasons
    message.feedback_comment = stored_comment or None
    session.add(message)
    return message
