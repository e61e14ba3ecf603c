"""A conversation's messages: add one (a question, an edit, a reply's checkpoint), write a
streaming reply, mark dead replies interrupted, read the visible branch, rate a reply.

Every function takes the owner's id and refuses another owner's messages (the check is
:func:`chatmon.services.conversations.get_conversation`). Where a new message goes in the
tree of alternatives, and which one is shown, is :mod:`chatmon.services.branches`.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select, update

from chatmon.models import ChatMessage, Conversation, utc_now
from chatmon.services import feedback
from chatmon.services.branches import (
    LEAF,
    STREAMING,
    finished_nodes,
    hide_alternatives,
    owned_message,
    show_path_to,
)
from chatmon.services.conversations import (
    ConversationNotFound,
    get_conversation,
    title_from_message,
)
from chatmon.services.history import Position, positions, visible_branch

INTERRUPTED = "interrupted"  # ChatMessage.status of a reply whose writer stopped before finishing
INTERRUPTED_NOTE = "\n\n*(reply interrupted: the server restarted; this is what was saved)*"


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
    parent_id: int | None = LEAF,
) -> ChatMessage:
    """Add a message after ``parent_id`` (default :data:`~chatmon.services.branches.LEAF`:
    the last message of the visible branch; ``None``: as a first message). It becomes the
    shown alternative; the other messages after the same parent stay, hidden. A parent that
    is not a message of this conversation counts as ``LEAF``. The first user message also
    names the conversation."""
    conversation = get_conversation(
        session=session, owner_id=owner_id, conversation_id=conversation_id
    )
    nodes = finished_nodes(session, conversation.id)
    if parent_id is not None and parent_id != LEAF:
        if not any(node.id == parent_id for node in nodes):
            parent_id = LEAF
        else:
            show_path_to(session, conversation.id, nodes, parent_id)
    if parent_id == LEAF:
        path = visible_branch(nodes)
        parent_id = path[-1] if path else None
    hide_alternatives(session, conversation.id, parent_id)
    message = ChatMessage(
        conversation_id=conversation.id,
        role=role,
        content=content,
        error_category=error_category,
        correlation_id=correlation_id,
        status=status,
        updated_at=updated_at,
        parent_id=parent_id,
        active=True,
    )
    if role == "user" and conversation.title == "New chat":
        conversation.title = title_from_message(content)
    return _insert(session, conversation, message)


def _insert(session: Session, conversation: Conversation, message: ChatMessage) -> ChatMessage:
    """Write ``message`` (its id is set on return) and mark its conversation active now."""
    conversation.updated_at = utc_now()
    session.add(conversation)
    session.add(message)
    session.flush()
    return message


def edit_message(*, session: Session, owner_id: str, message_id: int, text: str) -> ChatMessage:
    """The owner's user message ``message_id`` asked again as ``text`` (already checked
    like the composer's): a new message beside it, the old one and what followed it kept
    as the alternative branch."""
    old = owned_message(session, owner_id=owner_id, message_id=message_id, role="user")
    return add_message(
        session=session,
        owner_id=owner_id,
        conversation_id=old.conversation_id,
        role="user",
        content=text,
        parent_id=old.parent_id,
    )


def start_reply(
    *,
    session: Session,
    owner_id: str,
    conversation_id: str,
    correlation_id: str,
    parent_id: int | None = LEAF,
) -> ChatMessage:
    """An empty assistant message marked as streaming: the reply's checkpoint row.

    It answers message ``parent_id`` (default: the last of the visible branch); other
    replies to that message stay, as its alternatives.
    """
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
        parent_id=parent_id,
    )


def start_reply_to(*, session: Session, question: ChatMessage, correlation_id: str) -> ChatMessage:
    """:func:`start_reply` for ``question``, a message added in this same transaction
    (a sent message): nothing follows it yet, so there is no alternative to hide and no
    branch to show, and the tree is not read again."""
    conversation = session.get(Conversation, question.conversation_id)
    if conversation is None or question.id is None:
        raise ConversationNotFound(question.conversation_id)
    message = ChatMessage(
        conversation_id=conversation.id,
        role="assistant",
        content="",
        correlation_id=correlation_id,
        status=STREAMING,
        updated_at=utc_now(),
        parent_id=question.id,
        active=True,
    )
    return _insert(session, conversation, message)


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


def list_visible(
    *,
    session: Session,
    owner_id: str,
    conversation_id: str,
    limit: int | None = None,
    before_id: int | None = None,
) -> tuple[list[ChatMessage], dict[int, Position]]:
    """The visible branch's finished messages, oldest first, and each one's
    place among its alternatives (``Position(2, 3)``: the second of three).

    With ``limit``, only the newest ``limit`` of them (older than message ``before_id``
    when given): a long conversation opens with its recent messages, the rest on request.
    """
    get_conversation(session=session, owner_id=owner_id, conversation_id=conversation_id)
    nodes = finished_nodes(session, conversation_id)
    path = visible_branch(nodes)
    if before_id is not None:
        path = [message_id for message_id in path if message_id < before_id]
    if limit is not None:
        path = path[-limit:] if limit > 0 else []
    if not path:
        return [], {}
    rows = session.exec(
        select(ChatMessage).where(col(ChatMessage.id).in_(path)).order_by(col(ChatMessage.id))
    ).all()
    return list(rows), positions(nodes, path)


def list_messages(
    *,
    session: Session,
    owner_id: str,
    conversation_id: str,
    limit: int | None = None,
    before_id: int | None = None,
) -> list[ChatMessage]:
    """The visible branch's finished messages in the order they were written
    (:func:`list_visible` without the alternatives' positions)."""
    rows, _ = list_visible(
        session=session,
        owner_id=owner_id,
        conversation_id=conversation_id,
        limit=limit,
        before_id=before_id,
    )
    return rows


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
