"""Regenerate, edit and resend, flip between alternatives, export: the conversation tree."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlmodel import Session

from chatmon.models import ChatMessage
from chatmon.services import branches, chat_messages, conversation_export
from chatmon.services import conversations as convo
from chatmon.services.history import Node, Position, visible_branch


def _say(session: Session, conversation_id: str, role: str, text: str, **kw: object) -> int:
    message = chat_messages.add_message(
        session=session,
        owner_id="alice",
        conversation_id=conversation_id,
        role=role,
        content=text,
        **kw,  # type: ignore[arg-type]  # parent_id only
    )
    session.commit()
    return message.id or 0


def _reply(session: Session, conversation_id: str, parent_id: int, text: str) -> int:
    row = chat_messages.start_reply(
        session=session,
        owner_id="alice",
        conversation_id=conversation_id,
        correlation_id=f"c-{text}",
        parent_id=parent_id,
    )
    chat_messages.save_reply(session=session, message_id=row.id or 0, content=text, done=True)
    session.commit()
    return row.id or 0


def _shown(session: Session, conversation_id: str, owner: str = "alice") -> list[str]:
    return [
        m.content
        for m in chat_messages.list_messages(
            session=session, owner_id=owner, conversation_id=conversation_id
        )
    ]


@pytest.fixture
def chat(session: Session) -> tuple[str, int, int]:
    """q1 → a1 → q2 → a2; returns the conversation id, q1's id and a1's id."""
    conversation = convo.create_conversation(session=session, owner_id="alice")
    q1 = _say(session, conversation.id, "user", "q1")
    a1 = _reply(session, conversation.id, q1, "a1")
    q2 = _say(session, conversation.id, "user", "q2")
    _reply(session, conversation.id, q2, "a2")
    return conversation.id, q1, a1


def test_the_visible_branch_follows_the_active_alternatives() -> None:
    nodes = [
        Node(1, None, True),
        Node(2, 1, False),
        Node(3, 2, True),  # under a hidden alternative: not shown
        Node(4, 1, True),
        Node(5, 4, True),
        Node(9, 77, True),  # its parent is gone: unreachable
    ]
    assert visible_branch(nodes) == [1, 4, 5]
    # none active: the newest; several active: the newest active
    assert visible_branch([Node(1, None, False), Node(2, None, False)]) == [2]
    assert visible_branch([Node(1, None, True), Node(2, None, True), Node(3, None, False)]) == [2]
    assert visible_branch([]) == []


def test_regenerate_keeps_the_old_reply_as_an_alternative(session: Session, chat) -> None:
    conversation_id, q1, a1 = chat
    assert branches.reply_target(session=session, owner_id="alice", message_id=a1).id == q1
    assert branches.mark_regenerated(session=session, owner_id="alice", message_id=a1) == "c-a1"
    b1 = _reply(session, conversation_id, q1, "b1")
    # the new reply starts a branch of its own: q2/a2 belonged to the old one
    assert _shown(session, conversation_id) == ["q1", "b1"]
    rows, places = chat_messages.list_visible(
        session=session, owner_id="alice", conversation_id=conversation_id
    )
    assert places[b1] == Position(2, 2) and places[q1] == Position(1, 1)
    # flip back: the old reply and everything after it are shown again
    back = branches.show_alternative(session=session, owner_id="alice", message_id=b1, step=-1)
    session.commit()
    assert back is not None and back.id == a1
    assert _shown(session, conversation_id) == ["q1", "a1", "q2", "a2"]
    assert (
        branches.show_alternative(session=session, owner_id="alice", message_id=a1, step=-1) is None
    )
    assert (
        branches.show_alternative(session=session, owner_id="alice", message_id=a1, step=2) is None
    )
    forward = branches.show_alternative(session=session, owner_id="alice", message_id=a1, step=1)
    session.commit()
    assert forward is not None and _shown(session, conversation_id) == ["q1", "b1"]


def test_edit_and_resend_branches_from_the_edited_question(session: Session, chat) -> None:
    conversation_id, q1, _ = chat
    edited = chat_messages.edit_message(
        session=session, owner_id="alice", message_id=q1, text="q1 again"
    )
    session.commit()
    assert edited.parent_id is None  # q1 was the first message: so is its edit
    assert _shown(session, conversation_id) == ["q1 again"]
    _reply(session, conversation_id, edited.id or 0, "new answer")
    assert _shown(session, conversation_id) == ["q1 again", "new answer"]
    branches.show_alternative(session=session, owner_id="alice", message_id=edited.id or 0, step=-1)
    session.commit()
    assert _shown(session, conversation_id) == ["q1", "a1", "q2", "a2"]


def test_a_new_message_follows_what_the_tab_shows(session: Session, chat) -> None:
    conversation_id, q1, a1 = chat
    b1 = _reply(session, conversation_id, q1, "b1")
    _say(session, conversation_id, "user", "after b1")  # default: after the visible branch
    assert _shown(session, conversation_id) == ["q1", "b1", "after b1"]
    _say(session, conversation_id, "user", "after a1", parent_id=a1)  # a tab that showed a1
    assert _shown(session, conversation_id) == ["q1", "a1", "after a1"]
    assert b1


def test_history_and_paging_see_only_the_visible_branch(session: Session, chat) -> None:
    conversation_id, q1, _ = chat
    _reply(session, conversation_id, q1, "b1")
    q3 = _say(session, conversation_id, "user", "q3")
    _reply(session, conversation_id, q3, "a3")
    newest = chat_messages.list_messages(
        session=session, owner_id="alice", conversation_id=conversation_id, limit=2
    )
    assert [m.content for m in newest] == ["q3", "a3"]
    earlier = chat_messages.list_messages(
        session=session,
        owner_id="alice",
        conversation_id=conversation_id,
        limit=10,
        before_id=newest[0].id,
    )
    assert [m.content for m in earlier] == ["q1", "b1"]


def test_a_streaming_alternative_is_not_shown_until_it_is_finished(session: Session, chat) -> None:
    conversation_id, q1, a1 = chat
    row = chat_messages.start_reply(
        session=session,
        owner_id="alice",
        conversation_id=conversation_id,
        correlation_id="c-live",
        parent_id=q1,
    )
    session.commit()
    # another tab meanwhile: the old reply, alone
    rows, places = chat_messages.list_visible(
        session=session, owner_id="alice", conversation_id=conversation_id
    )
    assert [m.content for m in rows] == ["q1", "a1", "q2", "a2"] and places[a1] == Position(1, 1)
    assert (
        branches.show_alternative(
            session=session, owner_id="alice", message_id=row.id or 0, step=-1
        )
        is None
    )
    with pytest.raises(convo.ConversationNotFound):
        branches.reply_target(session=session, owner_id="alice", message_id=row.id or 0)


def test_another_owner_can_do_none_of_it(session: Session, chat) -> None:
    conversation_id, q1, a1 = chat
    before = _shown(session, conversation_id)
    with pytest.raises(convo.ConversationNotFound):
        branches.reply_target(session=session, owner_id="mallory", message_id=a1)
    with pytest.raises(convo.ConversationNotFound):
        chat_messages.edit_message(session=session, owner_id="mallory", message_id=q1, text="pwned")
    with pytest.raises(convo.ConversationNotFound):
        conversation_export.conversation_markdown(
            session=session,
            owner_id="mallory",
            conversation_id=conversation_id,
            exported_at=datetime.now(UTC),
        )
    assert branches.mark_regenerated(session=session, owner_id="mallory", message_id=a1) is None
    assert (
        branches.show_alternative(session=session, owner_id="mallory", message_id=a1, step=1)
        is None
    )
    session.commit()
    assert _shown(session, conversation_id) == before
    # and the wrong kind of message for the owner, too
    with pytest.raises(convo.ConversationNotFound):
        branches.reply_target(session=session, owner_id="alice", message_id=q1)
    with pytest.raises(convo.ConversationNotFound):
        chat_messages.edit_message(session=session, owner_id="alice", message_id=a1, text="x")
    assert session.get(ChatMessage, 10**9) is None
    with pytest.raises(convo.ConversationNotFound):
        branches.reply_target(session=session, owner_id="alice", message_id=10**9)


def test_export_is_the_visible_branch_in_markdown(session: Session, chat) -> None:
    conversation_id, q1, _ = chat
    _reply(session, conversation_id, q1, "b1 with **bold**")
    name, text = conversation_export.conversation_markdown(
        session=session,
        owner_id="alice",
        conversation_id=conversation_id,
        exported_at=datetime(2026, 12, 2, 4, 50, tzinfo=UTC),
    )
    assert name == "chatmon-q1.md"
    assert text == (
        "# q1\n\n*Exported from chatmon on 2026-12-02 04:50 UTC*\n\n"
        "---\n\n**You:**\n\nq1\n\n---\n\n**Assistant:**\n\nb1 with **bold**\n"
    )
    assert (
        conversation_export.export_filename("../../etc/passwd <script>")
        == "chatmon-etc-passwd-script.md"
    )
    assert conversation_export.export_filename("😀") == "chatmon-conversation.md"


def test_a_reply_under_review_shows_its_own_branch(session: Session, chat) -> None:
    from chatmon.services.feedback_review import conversation_around

    conversation_id, q1, a1 = chat
    edited = chat_messages.edit_message(
        session=session, owner_id="alice", message_id=q1, text="q1 again"
    )
    session.commit()
    b1 = _reply(session, conversation_id, edited.id or 0, "b1")
    for reply_id, expected in [(b1, ["q1 again", "b1"]), (a1, ["q1", "a1"])]:
        reply = session.get(ChatMessage, reply_id)
        assert reply is not None
        shown = conversation_around(
            session=session,
            correlation_id=reply.correlation_id or "",
            viewer="operator",
            enabled=True,
            redact_pii=False,
        )
        assert shown is not None and [m.content for m in shown] == expected
        assert shown[-1].rated
    later = chat_messages.list_messages(
        session=session, owner_id="alice", conversation_id=conversation_id
    )
    a2 = branches.branch_to(session=session, message=later[-1], limit=3)
    assert [m.content for m in a2] == ["q1 again", "b1"]
