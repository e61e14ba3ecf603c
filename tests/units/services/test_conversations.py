"""Conversations persist, belong to one browser, and carry feedback."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from chatmon.services import chat_messages
from chatmon.services import conversations as convo


def test_first_user_message_titles_the_conversation(session: Session) -> None:
    conversation = convo.create_conversation(session=session, owner_id="alice")
    chat_messages.add_message(
        session=session,
        owner_id="alice",
        conversation_id=conversation.id,
        role="user",
        content="How do I  rotate\nlogs in Python?",
    )
    session.commit()
    [listed] = convo.list_conversations(session=session, owner_id="alice")
    assert listed.title == "How do I rotate logs in Python?"


def test_messages_come_back_in_order(session: Session) -> None:
    conversation = convo.create_conversation(session=session, owner_id="alice")
    for role, text in [("user", "q1"), ("assistant", "a1"), ("user", "q2")]:
        chat_messages.add_message(
            session=session,
            owner_id="alice",
            conversation_id=conversation.id,
            role=role,
            content=text,
        )
    session.commit()
    messages = chat_messages.list_messages(
        session=session, owner_id="alice", conversation_id=conversation.id
    )
    assert [m.content for m in messages] == ["q1", "a1", "q2"]


def test_other_owner_cannot_read_or_change_a_conversation(session: Session) -> None:
    conversation = convo.create_conversation(session=session, owner_id="alice")
    session.commit()
    with pytest.raises(convo.ConversationNotFound):
        chat_messages.list_messages(
            session=session, owner_id="mallory", conversation_id=conversation.id
        )
    with pytest.raises(convo.ConversationNotFound):
        convo.delete_conversation(
            session=session, owner_id="mallory", conversation_id=conversation.id
        )
    with pytest.raises(convo.ConversationNotFound):
        chat_messages.add_message(
            session=session,
            owner_id="mallory",
            conversation_id=conversation.id,
            role="user",
            content="hi",
        )
    assert convo.list_conversations(session=session, owner_id="mallory") == []


def test_delete_removes_conversation_and_messages(session: Session) -> None:
    conversation = convo.create_conversation(session=session, owner_id="alice")
    chat_messages.add_message(
        session=session,
        owner_id="alice",
        conversation_id=conversation.id,
        role="user",
        content="bye",
    )
    session.commit()
    convo.delete_conversation(session=session, owner_id="alice", conversation_id=conversation.id)
    session.commit()
    assert convo.list_conversations(session=session, owner_id="alice") == []
    with pytest.raises(convo.ConversationNotFound):
        chat_messages.list_messages(
            session=session, owner_id="alice", conversation_id=conversation.id
        )


def test_rename_trims_and_shortens_title(session: Session) -> None:
    conversation = convo.create_conversation(session=session, owner_id="alice")
    convo.rename_conversation(
        session=session, owner_id="alice", conversation_id=conversation.id, title="  " + "x" * 100
    )
    session.commit()
    [listed] = convo.list_conversations(session=session, owner_id="alice")
    assert len(listed.title) == convo.TITLE_MAX_CHARS
    assert listed.title.endswith("…")


def test_feedback_is_stored_on_assistant_reply(session: Session) -> None:
    conversation = convo.create_conversation(session=session, owner_id="alice")
    reply = chat_messages.add_message(
        session=session,
        owner_id="alice",
        conversation_id=conversation.id,
        role="assistant",
        content="42",
    )
    session.commit()
    chat_messages.set_feedback(session=session, owner_id="alice", message_id=reply.id, rating=-1)
    session.commit()
    [stored] = chat_messages.list_messages(
        session=session, owner_id="alice", conversation_id=conversation.id
    )
    assert stored.feedback == -1
    chat_messages.set_feedback(session=session, owner_id="alice", message_id=reply.id, rating=0)
    session.commit()
    session.refresh(stored)
    assert stored.feedback is None


def test_feedback_refused_on_user_message_and_other_owner(session: Session) -> None:
    conversation = convo.create_conversation(session=session, owner_id="alice")
    question = chat_messages.add_message(
        session=session, owner_id="alice", conversation_id=conversation.id, role="user", content="q"
    )
    reply = chat_messages.add_message(
        session=session,
        owner_id="alice",
        conversation_id=conversation.id,
        role="assistant",
        content="a",
    )
    session.commit()
    with pytest.raises(convo.ConversationNotFound):
        chat_messages.set_feedback(
            session=session, owner_id="alice", message_id=question.id, rating=1
        )
    with pytest.raises(convo.ConversationNotFound):
        chat_messages.set_feedback(
            session=session, owner_id="mallory", message_id=reply.id, rating=1
        )


def test_clear_keeps_conversation_but_drops_messages(session: Session) -> None:
    conversation = convo.create_conversation(session=session, owner_id="alice")
    chat_messages.add_message(
        session=session, owner_id="alice", conversation_id=conversation.id, role="user", content="q"
    )
    session.commit()
    convo.clear_messages(session=session, owner_id="alice", conversation_id=conversation.id)
    session.commit()
    assert (
        chat_messages.list_messages(
            session=session, owner_id="alice", conversation_id=conversation.id
        )
        == []
    )
    assert len(convo.list_conversations(session=session, owner_id="alice")) == 1


def test_rename_with_control_characters_is_stored_clean(session: Session) -> None:
    conversation = convo.create_conversation(session=session, owner_id="alice")
    convo.rename_conversation(
        session=session,
        owner_id="alice",
        conversation_id=conversation.id,
        title="nul\x00 byte\ud800",
    )
    session.commit()
    [listed] = convo.list_conversations(session=session, owner_id="alice")
    assert listed.title == "nul byte?"


# ----- pre-upgrade browsers ------------------------------------------------------------
def test_legacy_conversations_move_to_the_new_identity_once(session: Session) -> None:
    from chatmon.services.identity import legacy_owner_key

    legacy = legacy_owner_key("0123456789abcdef0123456789abcdef")
    assert legacy is not None
    convo.create_conversation(session=session, owner_id=legacy, title="old chat")
    session.commit()
    moved = convo.adopt_legacy_conversations(session=session, legacy_owner=legacy, owner_id="b_new")
    session.commit()
    assert moved == 1
    assert [c.title for c in convo.list_conversations(session=session, owner_id="b_new")] == [
        "old chat"
    ]
    # the same legacy id presented again (by anyone) finds nothing left to take
    again = convo.adopt_legacy_conversations(
        session=session, legacy_owner=legacy, owner_id="b_thief"
    )
    session.commit()
    assert again == 0
    assert convo.list_conversations(session=session, owner_id="b_thief") == []


# ----- checkpointed replies -------------------------------------------------------------
def _conversation_with_question(session: Session) -> str:
    conversation = convo.create_conversation(session=session, owner_id="alice")
    chat_messages.add_message(
        session=session,
        owner_id="alice",
        conversation_id=conversation.id,
        role="user",
        content="tell me a story",
    )
    session.commit()
    return conversation.id


def test_a_streaming_reply_is_listed_only_once_finished(session: Session) -> None:
    conversation_id = _conversation_with_question(session)
    reply = chat_messages.start_reply(
        session=session, owner_id="alice", conversation_id=conversation_id, correlation_id="c1"
    )
    session.commit()
    assert chat_messages.save_reply(
        session=session, message_id=reply.id, content="Once", done=False
    )
    session.commit()
    listed = chat_messages.list_messages(
        session=session, owner_id="alice", conversation_id=conversation_id
    )
    assert [m.role for m in listed] == ["user"]
    assert chat_messages.save_reply(
        session=session, message_id=reply.id, content="Once upon", done=True
    )
    session.commit()
    listed = chat_messages.list_messages(
        session=session, owner_id="alice", conversation_id=conversation_id
    )
    assert [(m.role, m.content, m.status) for m in listed][-1] == ("assistant", "Once upon", None)


def test_a_stale_reply_is_kept_marked_interrupted_and_claimed_once(session: Session) -> None:
    from datetime import timedelta

    from chatmon.models import utc_now

    conversation_id = _conversation_with_question(session)
    reply = chat_messages.start_reply(
        session=session, owner_id="alice", conversation_id=conversation_id, correlation_id="c2"
    )
    chat_messages.save_reply(
        session=session, message_id=reply.id, content="Once upon a", done=False
    )
    session.commit()
    # still fresh: nobody may take it
    assert (
        chat_messages.interrupt_stale_replies(
            session=session, owner_id="alice", stale_before=utc_now() - timedelta(seconds=10)
        )
        == []
    )
    # another browser never takes it, stale or not
    later = utc_now() + timedelta(seconds=1)
    assert (
        chat_messages.interrupt_stale_replies(session=session, owner_id="bob", stale_before=later)
        == []
    )
    [claimed] = chat_messages.interrupt_stale_replies(
        session=session, owner_id="alice", stale_before=later
    )
    session.commit()
    assert claimed.correlation_id == "c2" and claimed.content.startswith("Once upon a")
    assert (
        chat_messages.interrupt_stale_replies(session=session, owner_id="alice", stale_before=later)
        == []
    )
    listed = chat_messages.list_messages(
        session=session, owner_id="alice", conversation_id=conversation_id
    )
    assert listed[-1].status == chat_messages.INTERRUPTED
    assert listed[-1].content == "Once upon a" + chat_messages.INTERRUPTED_NOTE
    # the writer, back too late, does not overwrite what the user was shown
    assert not chat_messages.save_reply(
        session=session, message_id=reply.id, content="late", done=True
    )


def test_a_long_conversation_comes_back_a_page_at_a_time(session: Session) -> None:
    conversation = convo.create_conversation(session=session, owner_id="alice")
    for i in range(7):
        chat_messages.add_message(
            session=session,
            owner_id="alice",
            conversation_id=conversation.id,
            role="user",
            content=f"m{i}",
        )
    session.commit()
    newest = chat_messages.list_messages(
        session=session, owner_id="alice", conversation_id=conversation.id, limit=3
    )
    assert [m.content for m in newest] == ["m4", "m5", "m6"]  # oldest first on screen
    earlier = chat_messages.list_messages(
        session=session,
        owner_id="alice",
        conversation_id=conversation.id,
        limit=3,
        before_id=newest[0].id,
    )
    assert [m.content for m in earlier] == ["m1", "m2", "m3"]
    first = chat_messages.list_messages(
        session=session,
        owner_id="alice",
        conversation_id=conversation.id,
        limit=3,
        before_id=earlier[0].id,
    )
    assert [m.content for m in first] == ["m0"]
    with pytest.raises(convo.ConversationNotFound):
        chat_messages.list_messages(
            session=session, owner_id="mallory", conversation_id=conversation.id, limit=3
        )
