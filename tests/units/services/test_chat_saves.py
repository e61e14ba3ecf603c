"""The chat's one-trip saves (chatmon.services.chat_saves) and the request recorded for a
reply whose worker died (chatmon.services.interrupted)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from sqlmodel import Session

from chatmon.models import ChatMessage, Conversation, utc_now
from chatmon.observability.call_status import CallStatus
from chatmon.services import branches, chat_messages, chat_saves, events
from chatmon.services import conversations as convo
from chatmon.services.events import LLMCall
from chatmon.services.history import Position
from chatmon.services.interrupted import publish_interrupted


def _send(
    session: Session, text: str, *, conversation_id: str = "", top_id: str = ""
) -> tuple[ChatMessage, ChatMessage, list[Conversation] | None]:
    saved = chat_saves.save_user_message(
        session=session,
        owner_id="alice",
        conversation_id=conversation_id,
        text=text,
        parent_id=branches.LEAF,
        correlation_id=f"c-{text}",
        top_id=top_id,
    )
    session.commit()
    return saved


def test_a_first_message_starts_a_conversation_with_its_reply_row_and_lists_it(
    session: Session,
) -> None:
    question, reply, listed = _send(session, "hello")
    assert question.role == "user" and question.content == "hello"
    assert reply.parent_id == question.id and reply.status == branches.STREAMING
    assert reply.correlation_id == "c-hello" and reply.conversation_id == question.conversation_id
    assert listed is not None and [c.id for c in listed] == [question.conversation_id]
    # the next message of the conversation on top leaves the sidebar as it is
    again, _, unchanged = _send(
        session,
        "more",
        conversation_id=question.conversation_id,
        top_id=question.conversation_id,
    )
    assert again.conversation_id == question.conversation_id and unchanged is None


def test_a_finished_reply_is_saved_once_with_its_place(session: Session) -> None:
    _, reply, _ = _send(session, "hello")
    assert chat_saves.save_finished(
        session=session, message_id=reply.id, content="hi there", error_category=None
    ) == (True, Position(1, 1))
    row = chat_saves.get_message(session=session, message_id=reply.id)
    assert row is not None and row.content == "hi there" and row.status is None
    # finished already (or interrupted, or deleted): nothing is written
    assert chat_saves.save_finished(
        session=session, message_id=reply.id, content="again", error_category="timeout"
    ) == (False, Position(1, 1))
    assert chat_saves.get_message(session=session, message_id=reply.id).content == "hi there"
    assert chat_saves.get_message(session=session, message_id=10**9) is None


def test_a_send_after_an_answered_question_keeps_the_tree_whole(session: Session) -> None:
    """The reply row of a sent message is written without reading the tree again: the
    conversation's visible branch is still question, reply, question, reply, in order."""
    question, reply, _ = _send(session, "one")
    chat_saves.save_finished(session=session, message_id=reply.id, content="1", error_category=None)
    second, second_reply, _ = _send(session, "two", conversation_id=question.conversation_id)
    assert second.parent_id == reply.id and second_reply.parent_id == second.id
    assert chat_saves.save_finished(
        session=session,
        message_id=second_reply.id,
        content="2",
        error_category=None,
        place=Position(1, 1),
    ) == (True, Position(1, 1))
    session.commit()
    shown, places = chat_messages.list_visible(
        session=session, owner_id="alice", conversation_id=question.conversation_id
    )
    assert [m.content for m in shown] == ["one", "1", "two", "2"]
    assert set(places.values()) == {Position(1, 1)}
    # a known place is not a licence to write twice: a finished reply stays as it is
    assert chat_saves.save_finished(
        session=session,
        message_id=second_reply.id,
        content="x",
        error_category=None,
        place=Position(1, 1),
    ) == (False, Position(1, 1))


def test_an_edit_is_a_second_alternative_of_the_question(session: Session) -> None:
    question, reply, _ = _send(session, "hello")
    chat_saves.save_finished(
        session=session, message_id=reply.id, content="hi", error_category=None
    )
    edited, place = chat_saves.save_edit(
        session=session, owner_id="alice", message_id=question.id, text="hello, again"
    )
    session.commit()
    assert edited.content == "hello, again" and edited.id != question.id
    assert place == Position(2, 2)
    with pytest.raises(convo.ConversationNotFound):
        chat_saves.save_edit(session=session, owner_id="bob", message_id=question.id, text="x")


@pytest.fixture
def calls() -> Iterator[list[LLMCall]]:
    seen: list[LLMCall] = []
    events.on_call(seen.append)
    yield seen
    events.off_call(seen.append)


def test_a_dead_workers_reply_is_recorded_as_one_interrupted_request(
    session: Session, calls: list[LLMCall]
) -> None:
    _, reply, _ = _send(session, "hello")
    [claimed] = chat_messages.interrupt_stale_replies(
        session=session, owner_id="alice", stale_before=utc_now() + timedelta(seconds=1)
    )
    publish_interrupted(claimed, owner="alice", model="gpt-test")
    [call] = calls
    assert call.status == CallStatus.INTERRUPTED and call.model == "gpt-test"
    assert call.correlation_id == "c-hello" and call.session_id == "alice"
    assert call.conversation_id == reply.conversation_id and call.total_seconds >= 0.0
    assert call.input_tokens is None and call.cost_usd is None and call.error_category is None
