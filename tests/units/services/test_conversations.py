"""Conversations persist, belong to one browser, and carry feedback."""

from __future__ import annotations

import pytest
from sqlmodel import Session

from chatmon.services import conversations as convo


def test_first_user_message_titles_the_conversation(session: Session) -> None:
    conversation = convo.create_conversation(session=session, owner_id="alice")
    convo.add_message(
        session=session, owner_id="alice", conversation_id=conversation.id,
        role="user", content="How do I  rotate\nlogs in Python?",
    )
    session.commit()
    [listed] = convo.list_conversations(session=session, owner_id="alice")
    assert listed.title == "How do I rotate logs in Python?"


def test_messages_come_back_in_order(session: Session) -> None:
    conversation = convo.create_conversation(session=session, owner_id="alice")
    for role, text in [("user", "q1"), ("assistant", "a1"), ("user", "q2")]:
        convo.add_message(session=session, owner_id="alice", conversation_id=conversation.id,
                          role=role, content=text)
    session.commit()
    messages = convo.list_messages(session=session, owner_id="alice",
                                   conversation_id=conversation.id)
    assert [m.content for m in messages] == ["q1", "a1", "q2"]


def test_other_owner_cannot_read_or_change_a_conversation(session: Session) -> None:
    conversation = convo.create_conversation(session=session, owner_id="alice")
    session.commit()
    with pytest.raises(convo.ConversationNotFound):
        convo.list_messages(session=session, owner_id="mallory", conversation_id=conversation.id)
    with pytest.raises(convo.ConversationNotFound):
        convo.delete_conversation(session=session, owner_id="mallory",
                                  conversation_id=conversation.id)
    with pytest.raises(convo.ConversationNotFound):
        convo.add_message(session=session, owner_id="mallory", conversation_id=conversation.id,
                          role="user", content="hi")
    assert convo.list_conversations(session=session, owner_id="mallory") == []


def test_delete_removes_conversation_and_messages(session: Session) -> None:
    conversation = convo.create_conversation(session=session, owner_id="alice")
    convo.add_message(session=session, owner_id="alice", conversation_id=conversation.id,
                      role="user", content="bye")
    session.commit()
    convo.delete_conversation(session=session, owner_id="alice", conversation_id=conversation.id)
    session.commit()
    assert convo.list_conversations(session=session, owner_id="alice") == []
    with pytest.raises(convo.ConversationNotFound):
        convo.list_messages(session=session, owner_id="alice", conversation_id=conversation.id)


def test_rename_trims_and_shortens_title(session: Session) -> None:
    conversation = convo.create_conversation(session=session, owner_id="alice")
    convo.rename_conversation(session=session, owner_id="alice",
                              conversation_id=conversation.id, title="  " + "x" * 100)
    session.commit()
    [listed] = convo.list_conversations(session=session, owner_id="alice")
    assert len(listed.title) == convo.TITLE_MAX_CHARS
    assert listed.title.endswith("…")


def test_feedback_is_stored_on_assistant_reply(session: Session) -> None:
    conversation = convo.create_conversation(session=session, owner_id="alice")
    reply = convo.add_message(session=session, owner_id="alice", conversation_id=conversation.id,
                              role="assistant", content="42")
    session.commit()
    convo.set_feedback(session=session, owner_id="alice", message_id=reply.id, rating=-1)
    session.commit()
    [stored] = convo.list_messages(session=session, owner_id="alice",
                                   conversation_id=conversation.id)
    assert stored.feedback == -1
    convo.set_feedback(session=session, owner_id="alice", message_id=reply.id, rating=0)
    session.commit()
    session.refresh(stored)
    assert stored.feedback is None


def test_feedback_refused_on_user_message_and_other_owner(session: Session) -> None:
    conversation = convo.create_conversation(session=session, owner_id="alice")
    question = convo.add_message(session=session, owner_id="alice",
                                 conversation_id=conversation.id, role="user", content="q")
    reply = convo.add_message(session=session, owner_id="alice",
                              conversation_id=conversation.id, role="assistant", content="a")
    session.commit()
    with pytest.raises(convo.ConversationNotFound):
        convo.set_feedback(session=session, owner_id="alice", message_id=question.id, rating=1)
    with pytest.raises(convo.ConversationNotFound):
        convo.set_feedback(session=session, owner_id="mallory", message_id=reply.id, rating=1)


def test_clear_keeps_conversation_but_drops_messages(session: Session) -> None:
    conversation = convo.create_conversation(session=session, owner_id="alice")
    convo.add_message(session=session, owner_id="alice", conversation_id=conversation.id,
                      role="user", content="q")
    session.commit()
    convo.clear_messages(session=session, owner_id="alice", conversation_id=conversation.id)
    session.commit()
    assert convo.list_messages(session=session, owner_id="alice",
                               conversation_id=conversation.id) == []
    assert len(convo.list_conversations(session=session, owner_id="alice")) == 1


def test_rename_with_control_characters_is_stored_clean(session: Session) -> None:
    conversation = convo.create_conversation(session=session, owner_id="alice")
    convo.rename_conversation(session=session, owner_id="alice",
                              conversation_id=conversation.id, title="nul\x00 byte\ud800")
    session.commit()
    [listed] = convo.list_conversations(session=session, owner_id="alice")
    assert listed.title == "nul byte?"


def test_a_long_conversation_comes_back_a_page_at_a_time(session: Session) -> None:
    conversation = convo.create_conversation(session=session, owner_id="alice")
    for i in range(7):
        convo.add_message(session=session, owner_id="alice", conversation_id=conversation.id,
                          role="user", content=f"m{i}")
    session.commit()
    newest = convo.list_messages(session=session, owner_id="alice",
                                 conversation_id=conversation.id, limit=3)
    assert [m.content for m in newest] == ["m4", "m5", "m6"]  # oldest first on screen
    earlier = convo.list_messages(session=session, owner_id="alice",
                                  conversation_id=conversation.id, limit=3,
                                  before_id=newest[0].id)
    assert [m.content for m in earlier] == ["m1", "m2", "m3"]
    first = convo.list_messages(session=session, owner_id="alice",
                                conversation_id=conversation.id, limit=3,
                                before_id=earlier[0].id)
    assert [m.content for m in first] == ["m0"]
    with pytest.raises(convo.ConversationNotFound):
        convo.list_messages(session=session, owner_id="mallory",
                            conversation_id=conversation.id, limit=3)
