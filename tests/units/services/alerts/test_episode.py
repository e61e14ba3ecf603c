"""A resolved message says how long the episode lasted, who it touched and what the
retried requests cost, counted from the request log as the error-rate rule counts."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlmodel import Session

from chatmon.services.alerts.channels import Channel
from chatmon.services.alerts.episode import summarize
from chatmon.services.alerts.lifecycle import Action
from chatmon.services.alerts.rules import Rule
from tests.peers import SMTPSink, WebhookReceiver, text_part
from tests.units.services.alerts.test_engine import (
    NOW,
    Clock,
    action_of,
    alert_engine,
    channels,  # noqa: F401 - fixture
    receiver,  # noqa: F401 - fixture
    sink,  # noqa: F401 - fixture
)
from tests.units.services.stats_factory import T0, make_call, record

M = timedelta(minutes=1)


def test_episode_summary_counts_failures_conversations_users_and_retry_cost(
    session: Session,
) -> None:
    record(
        session,
        make_call(
            at=M, status="error", error_category="timeout", session_id="u1", conversation_id="c1"
        ),
        make_call(
            at=2 * M,
            status="error",
            error_category="timeout",
            session_id="u1",
            conversation_id="c2",
        ),
        make_call(
            at=3 * M,
            status="error",
            error_category="server_error",
            session_id="u2",
            conversation_id="c3",
        ),
        make_call(at=4 * M, retries=2, cost_usd=0.25, session_id="u3", conversation_id="c4"),
        make_call(at=5 * M, status="error", error_category="rate_limited_local", session_id="u4"),
        make_call(at=6 * M, status="error", error_category="bad_request", session_id="u5"),
        make_call(at=20 * M, status="error", error_category="timeout", session_id="later"),
    )
    summary = summarize(session=session, start=T0, end=T0 + 10 * M)
    assert (summary.requests, summary.failed) == (5, 3)  # the refusal is not a request
    assert (summary.conversations, summary.users) == (3, 2)
    assert summary.retried_cost_usd == 0.25
    assert summary.lasted() == "10 min"
    assert summary.affected() == (
        "3 of 5 requests failed, in 3 conversations of 2 users; $0.2500 on retried requests"
    )


def test_resolved_message_says_how_long_and_who_was_affected(
    engine: Engine,
    session: Session,
    channels: list[Channel],  # noqa: F811
    sink: SMTPSink,  # noqa: F811
    receiver: WebhookReceiver,  # noqa: F811
) -> None:
    clock = Clock(NOW)
    record(
        session,
        *[
            make_call(
                at=M + i * timedelta(seconds=30),
                status="error" if i % 2 else "ok",
                error_category="server_error" if i % 2 else None,
                session_id=f"user-{i % 4}",
                conversation_id=f"conv-{i}",
            )
            for i in range(10)
        ],
    )
    checker = alert_engine(engine, channels, clock)
    assert action_of(checker.check(), Rule.ERROR_RATE) is Action.FIRE
    record(session, *[make_call(at=11 * M + i * timedelta(seconds=5)) for i in range(45)])
    clock.advance(5 * M)
    assert action_of(checker.check(), Rule.ERROR_RATE) is Action.RESOLVE
    text = text_part(sink.messages[1])
    assert "Lasted:" in text and "5 min" in text
    assert "5 of 55 requests failed, in 5 conversations of 2 users" in text
    assert "Lasted" in str(receiver.bodies[1]["blocks"])
