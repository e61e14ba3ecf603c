"""The review queue: rated replies, the conversation behind one, and the audit of reads."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlmodel import Session, select

from chatmon.models import ChatMessage, Conversation, FeedbackReviewAudit
from chatmon.services import feedback_review, implicit_flags, implicit_signals, request_log
from tests.units.services.stats_factory import T0, make_call, record

END = T0 + timedelta(hours=3)


def _rated(session: Session) -> None:
    calls = [
        make_call(at=timedelta(minutes=10), correlation_id="up-old", model="m-a"),
        make_call(at=timedelta(minutes=20), correlation_id="down-fast", model="m-a"),
        make_call(
            at=timedelta(minutes=30),
            correlation_id="down-slow",
            model="m-b",
            total_seconds=9.0,
            prompt_version="v2",
        ),
        make_call(
            at=timedelta(minutes=40),
            correlation_id="down-error",
            model="m-b",
            status="error",
            error_category="timeout",
            input_tokens=None,
            output_tokens=None,
            cost_usd=None,
        ),
        make_call(at=timedelta(minutes=50), correlation_id="up-new", model="m-a"),
        make_call(at=timedelta(minutes=55), correlation_id="unrated"),
        make_call(at=timedelta(hours=5), correlation_id="outside"),
    ]
    record(session, *calls)
    for cid, rating in [
        ("up-old", 1),
        ("down-fast", -1),
        ("down-slow", -1),
        ("down-error", -1),
        ("up-new", 1),
        ("outside", -1),
    ]:
        assert request_log.record_feedback(session=session, correlation_id=cid, rating=rating)
    session.commit()


def _ids(rows: list[feedback_review.RatedReply]) -> list[str]:
    return [r.correlation_id for r in rows]


def test_rated_replies_newest_first_only_rated_in_window(session: Session) -> None:
    _rated(session)
    rows = feedback_review.rated_replies(session=session, start=T0, end=END)
    assert _ids(rows) == ["up-new", "down-error", "down-slow", "down-fast", "up-old"]
    assert rows[0].rating == "up" and rows[1].rating == "down"
    assert rows[0].owner == "browser-1"  # the owner key the request log holds
    assert rows[0].started_at.isoformat().startswith("2025-03-10T12:50")


def test_rated_replies_worst_first(session: Session) -> None:
    _rated(session)
    rows = feedback_review.rated_replies(session=session, start=T0, end=END, order="worst")
    assert _ids(rows) == ["down-error", "down-slow", "down-fast", "up-new", "up-old"]


def test_rated_replies_filters(session: Session) -> None:
    _rated(session)
    by_model = feedback_review.rated_replies(session=session, start=T0, end=END, model="m-b")
    assert _ids(by_model) == ["down-error", "down-slow"]
    by_version = feedback_review.rated_replies(
        session=session, start=T0, end=END, prompt_version="v2"
    )
    assert _ids(by_version) == ["down-slow"]
    ups = feedback_review.rated_replies(session=session, start=T0, end=END, rating="up")
    assert _ids(ups) == ["up-new", "up-old"]
    limited = feedback_review.rated_replies(session=session, start=T0, end=END, limit=2)
    assert _ids(limited) == ["up-new", "down-error"]


def test_rated_replies_bad_rating_or_order(session: Session) -> None:
    with pytest.raises(ValueError):
        feedback_review.rated_replies(session=session, start=T0, end=END, rating="meh")
    with pytest.raises(ValueError):
        feedback_review.rated_replies(
            session=session,
            start=T0,
            end=END,
            order="best",  # type: ignore[arg-type]  # a caller's bad value
        )


def _conversation(session: Session) -> None:
    session.add(Conversation(id="conv1", owner_id="owner-key"))
    session.add(Conversation(id="conv2", owner_id="other"))
    session.flush()
    texts = [
        ("conv1", "user", "hello, I am ann@example.com", None),
        ("conv1", "assistant", "hi", "r1"),
        ("conv2", "user", "elsewhere", None),
        ("conv1", "user", "call me on +44 20 7946 0958", None),
        ("conv1", "assistant", "bad answer", "r2"),
        ("conv1", "user", "after the rated reply", None),
    ]
    last: dict[str, int | None] = {}  # each message follows the one before it
    for conv, role, content, cid in texts:
        message = ChatMessage(
            conversation_id=conv,
            role=role,
            content=content,
            correlation_id=cid,
            parent_id=last.get(conv),
        )
        session.add(message)
        session.flush()
        last[conv] = message.id
    session.commit()


def test_conversation_around_shows_before_and_reply_redacted(session: Session) -> None:
    _conversation(session)
    shown = feedback_review.conversation_around(
        session=session, correlation_id="r2", viewer="alice", enabled=True, redact_pii=True
    )
    session.commit()
    assert shown is not None
    assert [m.content for m in shown] == [
        "hello, I am [EMAIL]",
        "hi",
        "call me on [PHONE]",
        "bad answer",
    ]
    assert [m.rated for m in shown] == [False, False, False, True]


def test_conversation_around_unredacted_when_redaction_off(session: Session) -> None:
    _conversation(session)
    shown = feedback_review.conversation_around(
        session=session,
        correlation_id="r2",
        viewer="alice",
        enabled=True,
        redact_pii=False,
        limit=2,
    )
    assert shown is not None
    assert [m.content for m in shown] == ["call me on +44 20 7946 0958", "bad answer"]


def test_conversation_around_records_each_read(session: Session) -> None:
    _conversation(session)
    for viewer in ("alice", "bob"):
        feedback_review.conversation_around(
            session=session, correlation_id="r2", viewer=viewer, enabled=True, redact_pii=True
        )
        session.commit()
    views = feedback_review.recent_views(session=session)
    assert [(v.viewer, v.conversation_id, v.correlation_id) for v in views] == [
        ("bob", "conv1", "r2"),
        ("alice", "conv1", "r2"),
    ]
    assert views[0].viewed_at >= views[1].viewed_at


def test_conversation_around_unknown_id_shows_and_records_nothing(session: Session) -> None:
    _conversation(session)
    shown = feedback_review.conversation_around(
        session=session, correlation_id="nope", viewer="alice", enabled=True, redact_pii=True
    )
    session.commit()
    assert shown is None
    assert session.exec(select(FeedbackReviewAudit)).all() == []


def test_conversation_around_off_reads_and_records_nothing(session: Session) -> None:
    _conversation(session)
    with pytest.raises(feedback_review.ReviewOff):
        feedback_review.conversation_around(
            session=session, correlation_id="r2", viewer="alice", enabled=False, redact_pii=True
        )
    session.commit()
    assert session.exec(select(FeedbackReviewAudit)).all() == []


def test_the_queue_filters_by_a_thumbs_down_reason(session: Session) -> None:
    record(
        session,
        *[
            make_call(at=timedelta(minutes=m), correlation_id=cid)
            for m, cid in [(5, "wrong-only"), (6, "too-slow-too"), (7, "unsafe-last"), (8, "none")]
        ],
    )
    for cid, reasons in [
        ("wrong-only", ("wrong",)),
        ("too-slow-too", ("wrong", "too slow", "other")),
        ("unsafe-last", ("unhelpful", "unsafe")),
        ("none", ()),
    ]:
        request_log.record_feedback(session=session, correlation_id=cid, rating=-1, reasons=reasons)
    session.commit()

    def by(reason: str) -> list[str]:
        rows = feedback_review.rated_replies(session=session, start=T0, end=END, reason=reason)
        return sorted(_ids(rows))

    assert by("wrong") == ["too-slow-too", "wrong-only"]
    assert by("too slow") == ["too-slow-too"]  # in the middle of the list
    assert by("other") == ["too-slow-too"]  # at its end
    assert by("unsafe") == ["unsafe-last"]
    assert by("unhelpful") == ["unsafe-last"]  # at its start
    (row,) = feedback_review.rated_replies(session=session, start=T0, end=END, reason="too slow")
    assert row.reasons == ("wrong", "too slow", "other")
    assert row.to_json()["reasons"] == ["wrong", "too slow", "other"]
    with pytest.raises(ValueError, match="reason must be one of"):
        feedback_review.rated_replies(session=session, start=T0, end=END, reason="wro%")


def test_the_queue_lists_flagged_replies_nobody_rated(session: Session) -> None:
    """A reply the person stopped, or asked again in other words, is in the queue though
    nobody pressed a thumb: worst first it comes after the thumbs-down, before the ups."""
    _rated(session)
    implicit_flags.set_flag(
        session=session, signal=implicit_signals.STOPPED, correlation_ids=["unrated"]
    )
    implicit_flags.set_flag(
        session=session, signal=implicit_signals.REPHRASED, correlation_ids=["up-new"]
    )
    session.commit()
    rows = feedback_review.rated_replies(session=session, start=T0, end=END)
    assert _ids(rows) == ["unrated", "up-new", "down-error", "down-slow", "down-fast", "up-old"]
    flagged = {r.correlation_id: r for r in rows}
    assert flagged["unrated"].rating == "" and flagged["unrated"].signals == ("stopped",)
    assert flagged["up-new"].rating == "up" and flagged["up-new"].signals == ("rephrased",)
    assert flagged["up-new"].to_json()["signals"] == ["rephrased"]
    worst = feedback_review.rated_replies(session=session, start=T0, end=END, order="worst")
    assert _ids(worst)[3:5] == ["unrated", "up-new"]
    only = feedback_review.rated_replies(session=session, start=T0, end=END, rating="flagged")
    assert _ids(only) == ["unrated"]
