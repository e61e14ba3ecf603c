"""A conversation's tree of alternatives, as stored: which messages are shown, and moving
between alternatives.

A conversation is a tree (``ChatMessage.parent_id``): regenerating a reply or editing a
question adds an alternative beside it, and the page, the model and an export follow the
visible branch (:func:`chatmon.services.history.visible_branch`, the pure part). This
module reads and flips the ``active`` flags that pick it; writing messages into the tree
is :mod:`chatmon.services.chat_messages`.
"""

from __future__ import annotations

from sqlmodel import Session, col, select, update

from chatmon.models import ChatMessage
from chatmon.services.conversations import ConversationNotFound, get_conversation
from chatmon.services.history import Node, Position, positions, visible_branch

LEAF = -1  # ``parent_id`` meaning "after the last message of the visible branch"
STREAMING = "streaming"  # ChatMessage.status of a reply being written


def finished_nodes(session: Session, conversation_id: str) -> list[Node]:
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


def hide_alternatives(session: Session, conversation_id: str, parent_id: int | None) -> None:
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


def show_path_to(
    session: Session, conversation_id: str, nodes: list[Node], message_id: int
) -> None:
    """Make message ``message_id`` part of the visible branch (a tab that still shows an
    older alternative writes after it: that alternative is what the user sees)."""
    shown = set(visible_branch(nodes))
    by_id = {node.id: node for node in nodes}
    node = by_id.get(message_id)
    while node is not None and node.id not in shown:
        hide_alternatives(session, conversation_id, node.parent_id)
        session.exec(update(ChatMessage).where(col(ChatMessage.id) == node.id).values(active=True))
        node = by_id.get(node.parent_id) if node.parent_id is not None else None


def owned_message(session: Session, *, owner_id: str, message_id: int, role: str) -> ChatMessage:
    """The owner's finished message with that id and role, or :class:`ConversationNotFound`."""
    message = session.get(ChatMessage, message_id)
    if message is None or message.role != role or message.status == STREAMING:
        raise ConversationNotFound(str(message_id))
    get_conversation(session=session, owner_id=owner_id, conversation_id=message.conversation_id)
    return message


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
    nodes = finished_nodes(session, message.conversation_id)
    return positions(nodes, [message.id or 0]).get(message.id or 0, Position(1, 1))


def reply_target(*, session: Session, owner_id: str, message_id: int) -> ChatMessage:
    """The user message that reply ``message_id`` answers: what a regenerated reply answers.

    :class:`ConversationNotFound` for a message that is not the owner's finished reply.
    """
    reply = owned_message(session, owner_id=owner_id, message_id=message_id, role="assistant")
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
        reply = owned_message(session, owner_id=owner_id, message_id=message_id, role="assistant")
    except ConversationNotFound:
        return None
    return reply.correlation_id


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
        for node in finished_nodes(session, message.conversation_id)
        if node.parent_id == message.parent_id
    )
    index = siblings.index(message_id) + step
    if not 0 <= index < len(siblings):
        return None
    target = session.get(ChatMessage, siblings[index])
    if target is None:
        return None
    hide_alternatives(session, message.conversation_id, message.parent_id)
    target.active = True
    session.add(target)
    session.flush()
    return target
