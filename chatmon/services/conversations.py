"""Conversations and their messages: create, list, rename, delete, rate, branch, export.

Every function takes the owner's id and refuses to touch another owner's
conversation, so a guessed conversation id reveals and changes nothing.

A conversation is a tree (``ChatMessage.parent_id``): regenerating a reply or editing a
question adds an alternative beside it, and the page, the model and an export follow the
visible branch (:func:`chatmon.services.history.visible_branch`).
"""

from __future__ import annotations

import re
from datetime import datetime

from sqlmodel import Session, col, delete, select, update

from chatmon.models import ChatMessage, Conversation, utc_now
from chatmon.services import feedback
from chatmon.services.history import Node, Position, clean_text, positions, visible_branch

TITLE_MAX_CHARS = 60
LEAF = -1  # ``parent_id`` meaning "after the last message of the visible branch"
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


def _nodes(session: Session, conversation_id: str) -> list[Node]:
    """The conversation's finished messages as tree nodes.

    A reply still being written (``status == "streaming"``) is not one: the tab that
    streams it shows it live; other tabs meanwhile see the branch as it was.
    """
    rows = session.exec(
        select(ChatMessage.id, ChatMessage.parent_id, ChatMessage.active)
        .where(ChatMessage.conversation_id == conversation_id)
        .where(col(ChatMessage.status).is_(None) | (col(ChatMessage.status) != STREAMING))
    ).all()
    return [Node(id=row[0] or 0, parent_id=row[1], active=bool(row[2])) for row in rows]


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
    nodes = _nodes(session, conversation_id)
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


def branch_to(*, session: Session, message: ChatMessage, limit: int) -> list[ChatMessage]:
    """``message`` and up to ``limit - 1`` messages before it on its own branch (what the
    model was sent before it, not the alternatives beside it), oldest first. No owner
    check: for the monitor's audited review, which reads any conversation."""
    parents = dict(
        session.exec(
            select(ChatMessage.id, ChatMessage.parent_id).where(
                ChatMessage.conversation_id == message.conversation_id
            )
        ).all()
    )
    chain: list[int] = []
    current: int | None = message.id
    while current is not None and current not in chain and len(chain) < limit:
        chain.append(current)
        current = parents.get(current)
    rows = session.exec(
        select(ChatMessage).where(col(ChatMessage.id).in_(chain)).order_by(col(ChatMessage.id))
    ).all()
    return list(rows)


def position_of(*, session: Session, message: ChatMessage) -> Position:
    """Where a finished message stands among its alternatives."""
    nodes = _nodes(session, message.conversation_id)
    return positions(nodes, [message.id or 0]).get(message.id or 0, Position(1, 1))


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
    parent_id: int | None = LEAF,
) -> ChatMessage:
    """Add a message after ``parent_id`` (default :data:`LEAF`: the last message of the
    visible branch; ``None``: as a first message). It becomes the shown alternative; the
    other messages after the same parent stay, hidden. A parent that is not a message of
    this conversation counts as :data:`LEAF`. The first user message also names the
    conversation."""
    conversation = get_conversation(
        session=session, owner_id=owner_id, conversation_id=conversation_id
    )
    nodes = _nodes(session, conversation.id)
    if parent_id is not None and parent_id != LEAF:
        if not any(node.id == parent_id for node in nodes):
            parent_id = LEAF
        else:
            _show_path_to(session, conversation.id, nodes, parent_id)
    if parent_id == LEAF:
        path = visible_branch(nodes)
        parent_id = path[-1] if path else None
    _hide_alternatives(session, conversation.id, parent_id)
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


# ----- branches ------------------------------------------------------------------------
def _hide_alternatives(session: Session, conversation_id: str, parent_id: int | None) -> None:
    """Mark every message after ``parent_id`` as not shown."""
    same_parent = (
        col(ChatMessage.parent_id).is_(None)
        if parent_id is None
        else col(ChatMessage.parent_id) == parent_id
    )
    session.exec(
        update(ChatMessage)
        .where(col(ChatMessage.conversation_id) == conversation_id)
        .where(same_parent)
        .values(active=False)
    )


def _show_path_to(
    session: Session, conversation_id: str, nodes: list[Node], message_id: int
) -> None:
    """Make message ``message_id`` part of the visible branch (a tab that still shows an
    older alternative writes after it: that alternative is what the user sees)."""
    shown = set(visible_branch(nodes))
    by_id = {node.id: node for node in nodes}
    node = by_id.get(message_id)
    while node is not None and node.id not in shown:
        _hide_alternatives(session, conversation_id, node.parent_id)
        session.exec(update(ChatMessage).where(col(ChatMessage.id) == node.id).values(active=True))
        node = by_id.get(node.parent_id) if node.parent_id is not None else None


def _owned_message(session: Session, *, owner_id: str, message_id: int, role: str) -> ChatMessage:
    """The owner's finished message with that id and role, or :class:`ConversationNotFound`."""
    message = session.get(ChatMessage, message_id)
    if message is None or message.role != role or message.status == STREAMING:
        raise ConversationNotFound(str(message_id))
    get_conversation(session=session, owner_id=owner_id, conversation_id=message.conversation_id)
    return message


def reply_target(*, session: Session, owner_id: str, message_id: int) -> ChatMessage:
    """The user message that reply ``message_id`` answers: what a regenerated reply answers.

    :class:`ConversationNotFound` for a message that is not the owner's finished reply.
    """
    reply = _owned_message(session, owner_id=owner_id, message_id=message_id, role="assistant")
    question = session.get(ChatMessage, reply.parent_id) if reply.parent_id else None
    if (
        question is None
        or question.role != "user"
        or (question.conversation_id != reply.conversation_id)
    ):
        raise ConversationNotFound(str(message_id))
    return question


def mark_regenerated(*, session: Session, owner_id: str, message_id: int) -> str | None:
    """The user asked for another reply instead of reply ``message_id``.

    Returns the correlation id of that reply's request (None: not the owner's reply, or
    it has none), the request an implicit-dissatisfaction flag belongs to. The regenerate
    handler calls it once the new reply is accepted (past the rate limits), before it
    streams: the one place where a request is known to have been regenerated, and so
    where such a flag is set on it.
    """
    try:
        reply = _owned_message(session, owner_id=owner_id, message_id=message_id, role="assistant")
    except ConversationNotFound:
        return None
    return reply.correlation_id


def edit_message(*, session: Session, owner_id: str, message_id: int, text: str) -> ChatMessage:
    """The owner's user message ``message_id`` asked again as ``text`` (already checked
    like the composer's): a new message beside it, the old one and what followed it kept
    as the alternative branch."""
    old = _owned_message(session, owner_id=owner_id, message_id=message_id, role="user")
    return add_message(
        session=session,
        owner_id=owner_id,
        conversation_id=old.conversation_id,
        role="user",
        content=text,
        parent_id=old.parent_id,
    )


def show_alternative(
    *, session: Session, owner_id: str, message_id: int, step: int
) -> ChatMessage | None:
    """Show the alternative ``step`` places before (-1) or after (+1) message ``message_id``.

    None (and nothing changed) when there is none that way or the message is not the
    owner's. Alternatives still being written are skipped.
    """
    if step not in (-1, 1):
        return None
    message = session.get(ChatMessage, message_id)
    if message is None or message.status == STREAMING:
        return None
    try:
        get_conversation(
            session=session, owner_id=owner_id, conversation_id=message.conversation_id
        )
    except ConversationNotFound:
        return None
    siblings = sorted(
        node.id
        for node in _nodes(session, message.conversation_id)
        if node.parent_id == message.parent_id
    )
    index = siblings.index(message_id) + step
    if not 0 <= index < len(siblings):
        return None
    target = session.get(ChatMessage, siblings[index])
    if target is None:
        return None
    _hide_alternatives(session, message.conversation_id, message.parent_id)
    target.active = True
    session.add(target)
    session.flush()
    return target


# ----- export --------------------------------------------------------------------------
_NOT_A_NAME = re.compile(r"[^A-Za-z0-9]+")


def export_filename(title: str) -> str:
    """A safe file name for a conversation's export: ``chatmon-<title>.md``."""
    slug = _NOT_A_NAME.sub("-", title[:200]).strip("-").lower()[:40].strip("-")
    return f"chatmon-{slug or 'conversation'}.md"


def conversation_markdown(
    *, session: Session, owner_id: str, conversation_id: str, exported_at: datetime
) -> tuple[str, str]:
    """The visible branch of the owner's conversation as Markdown: (file name, text)."""
    conversation = get_conversation(
        session=session, owner_id=owner_id, conversation_id=conversation_id
    )
    messages = list_messages(session=session, owner_id=owner_id, conversation_id=conversation_id)
    parts = [
        f"# {' '.join(conversation.title.split()) or 'New chat'}",
        f"*Exported from chatmon on {exported_at:%Y-%m-%d %H:%M} UTC*",
    ]
    for message in messages:
        who = "You" if message.role == "user" else "Assistant"
        if message.error_category:
            who += f" (error: {message.error_category})"
        parts.append(f"---\n\n**{who}:**\n\n{message.content.strip()}")
    return export_filename(conversation.title), "\n\n".join(parts) + "\n"
