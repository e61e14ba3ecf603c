"""Implicit dissatisfaction: stopped, rephrased, regenerated and abandoned replies.

Requests are written the recorder's way (``request_log.insert_calls`` then
``implicit_detection.after_insert`` in one transaction), with the conversation's
messages saved as the chat saves them, on SQLite and PostgreSQL.
"""

from __future__ import annotations

import itertools
from datetime import timedelta

import pytest
from prometheus_client import REGISTRY
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from chatmon.models import LLMRequest
from chatmon.services import (
    chat_messages,
    conversations,
    events,
    implicit_detection,
    implicit_flags,
    implicit_signals,
    request_log,
)
from chatmon.services.events import LLMCall
from chatmon.services.implicit_signals import ABANDONED, REGENERATED, REPHRASED, STOPPED
from chatmon.services.implicit_text import is_rephrase, overlap, words
from chatmon.services.recorder import Recorder
from tests.units.services.stats_factory import T0, make_call

S = timedelta(seconds=1)
MIN = timedelta(minutes=1)
_ids = itertools.count(1)
QUESTION = "how do I reset my router password"
REPHRASED_QUESTION = "how can I reset the router password please"


def _conversation(session: Session, owner: str = "owner-1") -> str:
    conversation = conversations.create_conversation(session=session, owner_id=owner)
    return conversation.id


def _exchange(
    session: Session,
    conversation_id: str,
    question: str | None,
    *,
    at: timedelta,
    latency: float = 2.0,
    status: str = "ok",
    owner: str = "owner-1",
    **fields: object,
) -> LLMCall:
    """The user's message (None: the same one as before, asked again), the reply's
    message and its request, saved as the chat saves them."""
    if question is not None:
        chat_messages.add_message(
            session=session,
            owner_id=owner,
            conversation_id=conversation_id,
            role="user",
            content=question,
        )
    correlation_id = f"imp{next(_ids):010d}"
    chat_messages.add_message(
        session=session,
        owner_id=owner,
        conversation_id=conversation_id,
        role="assistant",
        content="a reply",
        correlation_id=correlation_id,
    )
    session.commit()
    return make_call(
        correlation_id=correlation_id,
        conversation_id=conversation_id,
        at=at,
        total_seconds=latency,
        status=status,
        input_text=question or "",
        **fields,
    )


def _record(session: Session, *calls: LLMCall) -> dict[str, int]:
    """Write the calls as the recorder does; the newly set signal counts."""
    rows = request_log.insert_calls(session=session, calls=list(calls), price_known=lambda _m: True)
    asked = {call.correlation_id: call.input_text for call in calls}  # as the recorder does
    found = implicit_detection.after_insert(session=session, rows=rows, asked=asked)
    session.commit()
    return {name: n for name, n in found.items() if n}


def _flags(session: Session, call: LLMCall) -> list[str]:
    session.expire_all()
    value = session.execute(
        select(col(LLMRequest.implicit_flags)).where(
            col(LLMRequest.correlation_id) == call.correlation_id
        )
    ).scalar_one()
    return implicit_signals.bits(value)


# ----------------------------------------------------------------------------- words


@pytest.mark.parametrize(
    ("earlier", "later", "expected"),
    [
        (QUESTION, REPHRASED_QUESTION, True),  # 5 shared of 9 words: 0.56
        (QUESTION, QUESTION, True),  # asked again word for word
        ("What is the capital of France?", "what's the CAPITAL city of france", True),
        ("a b c d", "a b e f", False),  # 2 of 6: 0.33
        ("one two three four", "one two five six", False),
        ("one two three", "one two four", True),  # exactly 0.5: the boundary counts
        ("one two three four", "one two five six seven", False),  # 2 of 7
        ("tell me more", "tell me more", True),  # three words: enough
        ("go on", "go on", False),  # two words are too few to call it a rephrase
        ("", "", False),
        ("!!! ???", "... ---", False),  # no words at all
    ],
)
def test_rephrase_needs_half_the_words_shared(earlier: str, later: str, expected: bool) -> None:
    assert is_rephrase(earlier, later) is expected


def test_words_are_case_folded_runs_of_letters_and_digits() -> None:
    assert words("Hello, WORLD! hello 42x-ray") == {"hello", "world", "42x", "ray"}
    assert words("Straße STRASSE") == {"strasse"}
    assert words("日本語 テスト") == {"日本語", "テスト"}


def test_words_read_a_bounded_prefix_in_linear_time() -> None:
    huge = "a" * 1_000_000 + " tail"
    assert words(huge) == {"a" * implicit_signals.MAX_TEXT_CHARS}
    hostile = "a!" * 500_000  # alternating separators: still one pass over 2,000 chars
    assert words(hostile) == {"a"}


def test_overlap_is_the_jaccard_index() -> None:
    assert overlap(frozenset("ab"), frozenset("bc")) == pytest.approx(1 / 3)
    assert overlap(frozenset(), frozenset()) == 0.0
    assert overlap(frozenset("ab"), frozenset("ab")) == 1.0


# ----------------------------------------------------------------------------- stopped


def test_a_stopped_reply_is_flagged_when_recorded(session: Session) -> None:
    conversation = _conversation(session)
    stopped = _exchange(session, conversation, QUESTION, at=0 * S, status="cancelled")
    finished = _exchange(session, conversation, "something else entirely", at=10 * MIN)
    assert _record(session, stopped, finished) == {STOPPED: 1}
    assert _flags(session, stopped) == [STOPPED]
    assert _flags(session, finished) == []


def test_interrupted_and_synthetic_requests_are_not_stopped(session: Session) -> None:
    interrupted = make_call(status="interrupted")
    probe = make_call(status="cancelled", synthetic=True)
    assert _record(session, interrupted, probe) == {}
    assert _flags(session, interrupted) == [] and _flags(session, probe) == []


# ----------------------------------------------------------------------------- rephrased


def test_a_rephrase_within_a_minute_flags_the_earlier_reply(session: Session) -> None:
    conversation = _conversation(session)
    first = _exchange(session, conversation, QUESTION, at=0 * S, latency=5.0)
    second = _exchange(session, conversation, REPHRASED_QUESTION, at=35 * S)
    assert _record(session, first) == {}
    assert _record(session, second) == {REPHRASED: 1}
    assert _flags(session, first) == [REPHRASED]
    assert _flags(session, second) == []


@pytest.mark.parametrize(
    ("gap_seconds", "flagged"),
    [(59.0, True), (60.0, True), (60.5, False), (600.0, False)],
)
def test_the_minute_is_counted_from_the_end_of_the_reply(
    session: Session, gap_seconds: float, flagged: bool
) -> None:
    conversation = _conversation(session)
    first = _exchange(session, conversation, QUESTION, at=0 * S, latency=4.0)
    second = _exchange(
        session, conversation, REPHRASED_QUESTION, at=timedelta(seconds=4.0 + gap_seconds)
    )
    _record(session, first, second)
    assert (_flags(session, first) == [REPHRASED]) is flagged


def test_a_different_question_is_not_a_rephrase(session: Session) -> None:
    conversation = _conversation(session)
    first = _exchange(session, conversation, QUESTION, at=0 * S)
    second = _exchange(session, conversation, "thanks, and what about the wifi name", at=10 * S)
    _record(session, first, second)
    assert _flags(session, first) == []


def test_the_same_question_in_another_conversation_is_not_a_rephrase(session: Session) -> None:
    mine, other = _conversation(session), _conversation(session, owner="owner-2")
    first = _exchange(session, mine, QUESTION, at=0 * S)
    second = _exchange(session, other, QUESTION, at=10 * S, owner="owner-2")
    _record(session, first, second)
    assert _flags(session, first) == [] and _flags(session, second) == []


def test_only_the_next_message_counts_not_one_further_on(session: Session) -> None:
    conversation = _conversation(session)
    first = _exchange(session, conversation, QUESTION, at=0 * S, latency=1.0)
    between = _exchange(session, conversation, "ok and the wifi channel", at=10 * S, latency=1.0)
    third = _exchange(session, conversation, REPHRASED_QUESTION, at=20 * S)
    _record(session, first, between, third)
    assert _flags(session, first) == []


def test_asking_again_after_an_error_is_not_a_rephrase(session: Session) -> None:
    conversation = _conversation(session)
    failed = _exchange(session, conversation, QUESTION, at=0 * S, status="error")
    again = _exchange(session, conversation, QUESTION, at=5 * S)
    _record(session, failed, again)
    assert _flags(session, failed) == []


def test_a_second_reply_to_the_same_message_is_not_a_rephrase(session: Session) -> None:
    conversation = _conversation(session)
    first = _exchange(session, conversation, QUESTION, at=0 * S)
    regenerated = _exchange(session, conversation, None, at=10 * S)  # no new user message
    _record(session, first, regenerated)
    assert _flags(session, first) == []


def test_the_later_request_written_first_is_still_paired(session: Session) -> None:
    """Another worker may record the next request before this one's row lands."""
    conversation = _conversation(session)
    first = _exchange(session, conversation, QUESTION, at=0 * S)
    second = _exchange(session, conversation, REPHRASED_QUESTION, at=20 * S)
    assert _record(session, second) == {}
    assert _record(session, first) == {REPHRASED: 1}
    assert _flags(session, first) == [REPHRASED]


def test_a_stopped_reply_rephrased_carries_both_flags(session: Session) -> None:
    conversation = _conversation(session)
    first = _exchange(session, conversation, QUESTION, at=0 * S, status="cancelled")
    second = _exchange(session, conversation, REPHRASED_QUESTION, at=8 * S)
    assert _record(session, first, second) == {STOPPED: 1, REPHRASED: 1}
    assert _flags(session, first) == [STOPPED, REPHRASED]


def test_without_the_texts_the_saved_messages_decide(session: Session) -> None:
    """Callers without the calls' texts (tests, tools) still find rephrases."""
    conversation = _conversation(session)
    first = _exchange(session, conversation, QUESTION, at=0 * S)
    second = _exchange(session, conversation, REPHRASED_QUESTION, at=20 * S)
    rows = request_log.insert_calls(session=session, calls=[first, second], price_known=bool)
    assert implicit_detection.find_rephrased(session=session, rows=rows) == [first.correlation_id]


def test_requests_without_saved_messages_are_left_alone(session: Session) -> None:
    """Benchmarks and the turn service alone record requests with no conversation rows."""
    first = make_call(conversation_id="bare", input_text=QUESTION)
    second = make_call(conversation_id="bare", at=5 * S, input_text=QUESTION)
    assert _record(session, first, second) == {}


# ----------------------------------------------------------------------------- regenerated


def test_set_flag_counts_each_request_once_and_skips_synthetic(session: Session) -> None:
    real, probe = make_call(), make_call(synthetic=True)
    _record(session, real, probe)
    ids = [real.correlation_id, probe.correlation_id, "unknown"]
    assert implicit_flags.set_flag(session=session, signal=REGENERATED, correlation_ids=ids) == 1
    assert implicit_flags.set_flag(session=session, signal=REGENERATED, correlation_ids=ids) == 0
    session.commit()
    assert _flags(session, real) == [REGENERATED] and _flags(session, probe) == []


def _counter(signal: str) -> float:
    value = REGISTRY.get_sample_value("chatmon_implicit_feedback_total", {"signal": signal})
    return value or 0.0


def test_mark_regenerated_goes_through_the_recorder_after_the_reply(engine: Engine) -> None:
    recorder = Recorder(engine=lambda: engine, price_known=lambda _m: True)
    events.on_signal(recorder.submit_signal)
    before = _counter(REGENERATED)
    try:
        call = make_call()
        recorder.submit_call(call)
        assert implicit_signals.mark_regenerated(call.correlation_id)
        assert implicit_signals.mark_regenerated(call.correlation_id)  # twice: one flag
        assert recorder.flush(timeout=10)
    finally:
        events.off_signal(recorder.submit_signal)
        recorder.close(timeout=10)
    with Session(engine) as session:
        assert _flags(session, call) == [REGENERATED]
    assert _counter(REGENERATED) == before + 1
    assert recorder.stats.signals == 1


@pytest.mark.parametrize("bad", ["", "x" * 33, "abc;drop", "ünïcode", None, 42, ["a"]])
def test_mark_regenerated_refuses_what_cannot_be_a_correlation_id(bad: object) -> None:
    heard: list[events.ImplicitSignal] = []
    events.on_signal(heard.append)
    try:
        assert implicit_signals.mark_regenerated(bad) is False  # type: ignore[arg-type]  # what a client may send
    finally:
        events.off_signal(heard.append)
    assert heard == []


def test_the_recorder_counts_stops_and_rephrases_in_metrics(engine: Engine) -> None:
    with Session(engine) as session:
        conversation = _conversation(session)
        first = _exchange(session, conversation, QUESTION, at=0 * S, status="cancelled")
        second = _exchange(session, conversation, REPHRASED_QUESTION, at=8 * S)
    stopped, rephrased = _counter(STOPPED), _counter(REPHRASED)
    recorder = Recorder(engine=lambda: engine, price_known=lambda _m: True)
    recorder.submit_call(first)
    recorder.submit_call(second)
    recorder.close(timeout=10)
    assert (_counter(STOPPED), _counter(REPHRASED)) == (stopped + 1, rephrased + 1)
    with Session(engine) as session:
        assert _flags(session, first) == [STOPPED, REPHRASED]


# ----------------------------------------------------------------------------- abandoned

AFTER = timedelta(minutes=10)


def test_an_error_with_nothing_after_it_is_abandoned_once_the_wait_is_over(
    session: Session,
) -> None:
    conversation = _conversation(session)
    ok = _exchange(session, conversation, "first question here", at=0 * S)
    failed = _exchange(session, conversation, QUESTION, at=1 * MIN, latency=3.0, status="error")
    _record(session, ok, failed)
    end = T0 + 1 * MIN + 3 * S
    assert implicit_detection.flag_abandoned(session=session, now=end + 9 * MIN, after=AFTER) == 0
    assert implicit_detection.flag_abandoned(session=session, now=end + AFTER, after=AFTER) == 1
    session.commit()
    assert _flags(session, failed) == [ABANDONED] and _flags(session, ok) == []
    assert implicit_detection.flag_abandoned(session=session, now=end + 11 * MIN, after=AFTER) == 0


def test_an_error_followed_by_another_message_is_not_abandoned(session: Session) -> None:
    conversation = _conversation(session)
    failed = _exchange(session, conversation, QUESTION, at=0 * S, status="error")
    retried = _exchange(session, conversation, QUESTION, at=2 * MIN)
    _record(session, failed, retried)
    assert implicit_detection.flag_abandoned(session=session, now=T0 + 30 * MIN, after=AFTER) == 0


def test_a_message_after_the_wait_does_not_undo_the_abandonment(session: Session) -> None:
    """Checked late (chatmon was busy): what counts is whether they came back in time."""
    conversation = _conversation(session)
    failed = _exchange(session, conversation, QUESTION, at=0 * S, latency=0.0, status="error")
    later = _exchange(session, conversation, "back again a while later", at=15 * MIN)
    _record(session, failed, later)
    assert implicit_detection.flag_abandoned(session=session, now=T0 + 20 * MIN, after=AFTER) == 1


def test_errors_long_past_the_scan_band_and_probes_are_not_looked_at(session: Session) -> None:
    old = make_call(status="error", conversation_id="c-old")
    probe = make_call(status="error", conversation_id="c-probe", synthetic=True, at=2 * MIN)
    _record(session, old, probe)
    now = T0 + AFTER + implicit_detection.ABANDON_SCAN_BACK + 5 * MIN
    assert implicit_detection.find_abandoned(session=session, now=now, after=AFTER) == []
