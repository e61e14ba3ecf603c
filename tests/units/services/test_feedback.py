"""Feedback reasons and comments: the fixed set, the handler's argument checks, storage."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from sqlmodel import Session

from chatmon.models import LLMRequest
from chatmon.services import chat_messages, feedback, request_log
from chatmon.services import conversations as convo
from chatmon.states import args
from tests.units.services.stats_factory import make_call, record


def test_reasons_are_stored_in_the_fixed_order_without_repeats() -> None:
    assert feedback.encode_reasons(["unsafe", "wrong", "unsafe"]) == "wrong,unsafe"
    assert feedback.encode_reasons([]) is None
    assert feedback.decode_reasons("wrong,unsafe,bogus") == ("wrong", "unsafe")
    assert feedback.decode_reasons(None) == ()
    with pytest.raises(ValueError):
        feedback.encode_reasons(["wrong", "rude"])


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (["too slow", "wrong"], ("wrong", "too slow")),
        ([], ()),
        (list(feedback.REASONS), feedback.REASONS),
        (["wrong", "wrong"], None),  # a repeat is not a choice a form makes
        (["rude"], None),
        (["Wrong"], None),
        ([1], None),
        ("wrong", None),
        (None, None),
        ({"wrong": True}, None),
        (["wrong"] * 1000, None),
    ],
)
def test_reason_argument_accepts_only_the_fixed_set(value: object, expected: object) -> None:
    assert args.feedback_reasons(value) == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("  too long an answer  ", "too long an answer"),
        ("", ""),
        ("x" * feedback.MAX_COMMENT_CHARS, "x" * feedback.MAX_COMMENT_CHARS),
        ("x" * (feedback.MAX_COMMENT_CHARS + 1), None),
        (["a"], None),
        (None, None),
        (7, None),
    ],
)
def test_comment_argument_is_length_capped(value: object, expected: object) -> None:
    assert args.feedback_comment(value) == expected


def _reply(session: Session) -> int:
    conversation = convo.create_conversation(session=session, owner_id="alice")
    reply = chat_messages.add_message(
        session=session,
        owner_id="alice",
        conversation_id=conversation.id,
        role="assistant",
        content="42",
    )
    session.commit()
    assert reply.id is not None
    return reply.id


def test_reasons_and_comment_are_stored_with_the_message(session: Session) -> None:
    reply = _reply(session)
    stored = chat_messages.set_feedback(
        session=session,
        owner_id="alice",
        message_id=reply,
        rating=-1,
        reasons=("unsafe", "wrong"),
        comment=" it told me to mix bleach ",
    )
    session.commit()
    assert (stored.feedback_reasons, stored.feedback_comment) == (
        "wrong,unsafe",
        "it told me to mix bleach",
    )
    chat_messages.set_feedback(session=session, owner_id="alice", message_id=reply, rating=0)
    session.commit()
    assert (stored.feedback, stored.feedback_reasons, stored.feedback_comment) == (None, None, None)


def test_a_thumbs_up_carries_a_comment_but_no_reasons(session: Session) -> None:
    reply = _reply(session)
    stored = chat_messages.set_feedback(
        session=session, owner_id="alice", message_id=reply, rating=1, comment="spot on"
    )
    assert stored.feedback_comment == "spot on"
    with pytest.raises(ValueError):
        chat_messages.set_feedback(
            session=session, owner_id="alice", message_id=reply, rating=1, reasons=("wrong",)
        )


def test_reasons_are_refused_for_another_owner_and_past_the_cap(session: Session) -> None:
    reply = _reply(session)
    with pytest.raises(convo.ConversationNotFound):
        chat_messages.set_feedback(
            session=session, owner_id="mallory", message_id=reply, rating=-1, reasons=("wrong",)
        )
    with pytest.raises(ValueError):
        chat_messages.set_feedback(
            session=session,
            owner_id="alice",
            message_id=reply,
            rating=-1,
            comment="x" * (feedback.MAX_COMMENT_CHARS + 1),
        )


def test_reasons_reach_the_request_row_and_go_with_the_thumbs_down(session: Session) -> None:
    call = make_call()
    record(session, call)
    cid = call.correlation_id
    assert request_log.record_feedback(
        session=session, correlation_id=cid, rating=-1, reasons=("too slow",)
    )
    session.commit()
    row = session.execute(select(LLMRequest)).scalar_one()
    assert (row.feedback, row.feedback_reasons) == (-1, "too slow")
    # the same rating with other reasons replaces them (the rollups count the thumb once)
    request_log.record_feedback(
        session=session, correlation_id=cid, rating=-1, reasons=("wrong", "other")
    )
    session.commit()
    session.refresh(row)
    assert row.feedback_reasons == "wrong,other"
    request_log.record_feedback(session=session, correlation_id=cid, rating=1)
    session.commit()
    session.refresh(row)
    assert (row.feedback, row.feedback_reasons) == (1, None)
