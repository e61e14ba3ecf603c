"""Finding the requests that carry ``rephrased`` and ``abandoned_after_error``.

Rephrases are found by the recorder as it writes requests (:func:`after_insert`, in its
transaction), abandoned errors by a periodic check (:func:`flag_abandoned`). What the
signals mean is in :mod:`chatmon.services.implicit_signals`.
"""

from __future__ import annotations

import functools
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, literal, select
from sqlalchemy.orm import aliased
from sqlmodel import Session, col

from chatmon.models import ChatMessage, LLMRequest
from chatmon.services.implicit_flags import has_signal, in_chunks, set_flag
from chatmon.services.implicit_signals import (
    ABANDONED,
    FLAGS,
    MAX_TEXT_CHARS,
    REPHRASE_MIN_WORDS,
    REPHRASE_WITHIN_SECONDS,
    REPHRASED,
    STOPPED,
)
from chatmon.services.implicit_text import is_rephrase, words
from chatmon.services.sql_time import to_utc

# The longest a failed request may have taken: bounds how far back the abandoned check
# looks for errors whose wait just ran out.
LONGEST_REPLY = timedelta(hours=1)
# The abandoned check looks at errors whose wait ran out in this band before now: a
# chatmon down for longer leaves those errors unflagged rather than rescanning forever.
ABANDON_SCAN_BACK = timedelta(minutes=30)
_REPLY_SEEN = ("ok", "cancelled")
_WAIT = timedelta(seconds=REPHRASE_WITHIN_SECONDS)


# ----------------------------------------------------------------------------- rephrases


@dataclass(frozen=True)
class _Request:
    correlation_id: str
    conversation_id: str
    started_at: datetime
    ended_at: datetime
    status: str
    flags: int


# The recorder's statements are built once: building a SQLAlchemy statement with
# aliases costs milliseconds of Python, per batch, on the thread that shares the GIL
# with the event loop. Each takes its id lists as expanding parameters.


@functools.cache
def _neighbours_statement() -> Any:
    """Each written row's predecessor and successor in its conversation: index lookups
    inside the database (``ix_llm_request_conversation_started_at``), so the cost is
    per written row, however long its conversation is."""
    r = LLMRequest

    def adjacent(*, before: bool) -> Any:
        other = aliased(LLMRequest)
        beside = (
            col(other.started_at) < col(r.started_at)
            if before
            else col(other.started_at) > col(r.started_at)
        )
        return (
            select(col(other.correlation_id))
            .where(col(other.conversation_id) == col(r.conversation_id), beside)
            .where(col(other.synthetic).is_(False))
            .order_by(col(other.started_at).desc() if before else col(other.started_at))
            .limit(1)
            .correlate(r)
            .scalar_subquery()
        )

    return (
        select(col(r.correlation_id), adjacent(before=True), adjacent(before=False))
        .where(col(r.correlation_id).in_(bindparam("ids", expanding=True)))
        .where(col(r.conversation_id) != "", col(r.synthetic).is_(False))
    )


@functools.cache
def _requests_statement() -> Any:
    r = LLMRequest
    return select(
        col(r.correlation_id),
        col(r.conversation_id),
        col(r.started_at),
        col(r.latency_seconds),
        col(r.status),
        col(r.implicit_flags),
    ).where(col(r.correlation_id).in_(bindparam("ids", expanding=True)))


@functools.cache
def _asked_statement() -> Any:
    """Each reply's message and the user message before it (walking back from the
    reply, stopping at the first)."""
    reply, asked = aliased(ChatMessage), aliased(ChatMessage)
    prior_user = (
        select(col(asked.id))
        .where(col(asked.conversation_id) == col(reply.conversation_id))
        .where(col(asked.role) == "user", col(asked.id) < col(reply.id))
        .order_by(col(asked.id).desc())
        .limit(1)
        .correlate(reply)
        .scalar_subquery()
    )
    return (
        select(col(reply.correlation_id), prior_user)
        .where(col(reply.conversation_id).in_(bindparam("conversations", expanding=True)))
        .where(col(reply.correlation_id).in_(bindparam("ids", expanding=True)))
        .where(col(reply.role) == "assistant")
    )


@functools.cache
def _texts_statement() -> Any:
    m = ChatMessage
    return select(col(m.id), func.substr(col(m.content), 1, MAX_TEXT_CHARS)).where(
        col(m.id).in_(bindparam("ids", expanding=True))
    )


def _neighbours(session: Session, written: Sequence[str]) -> set[tuple[str, str]]:
    """(earlier, later) correlation ids of adjacent real requests of a conversation,
    where one of the two is in ``written``."""
    pairs: set[tuple[str, str]] = set()
    for chunk in in_chunks(written):
        rows = session.connection().execute(_neighbours_statement(), {"ids": chunk})
        for cid, previous, following in rows:
            if previous is not None:
                pairs.add((previous, cid))
            if following is not None:
                pairs.add((cid, following))
    return pairs


def _requests(session: Session, ids: Collection[str]) -> dict[str, _Request]:
    found: dict[str, _Request] = {}
    for chunk in in_chunks(sorted(ids)):
        rows = session.connection().execute(_requests_statement(), {"ids": chunk})
        for cid, conversation, started, latency, status, flags in rows:
            started = to_utc(started)
            ended = started + timedelta(seconds=latency)
            found[cid] = _Request(cid, conversation, started, ended, status, flags)
    return found


def _within_the_wait(earlier: _Request, later: _Request) -> bool:
    """The earlier is a reply the person saw, not yet flagged rephrased, and the later
    request started at most ``REPHRASE_WITHIN_SECONDS`` after it ended."""
    if earlier.status not in _REPLY_SEEN or earlier.flags & FLAGS[REPHRASED]:
        return False
    return later.started_at - earlier.ended_at <= _WAIT


def _asked_by(session: Session, requests: Mapping[str, _Request]) -> dict[str, tuple[int, str]]:
    """For each request, the user message it answered: ``correlation_id -> (id, text)``.

    That is the conversation's last user message before the reply's own message (the
    assistant message carrying the correlation id). Requests without one (no saved
    messages) are left out.
    """
    conversations = sorted({r.conversation_id for r in requests.values()})
    message_of: dict[str, int] = {}
    for chunk in in_chunks(sorted(requests)):
        rows = session.connection().execute(
            _asked_statement(), {"conversations": conversations, "ids": chunk}
        )
        for correlation_id, message_id in rows:
            if correlation_id is not None and message_id is not None:
                message_of[correlation_id] = int(message_id)
    texts: dict[int, str] = {}
    for chunk in in_chunks(sorted(set(message_of.values()))):
        rows = session.connection().execute(_texts_statement(), {"ids": chunk})
        texts.update({int(i): text or "" for i, text in rows})
    return {cid: (mid, texts.get(mid, "")) for cid, mid in message_of.items()}


def find_rephrased(
    *,
    session: Session,
    rows: Sequence[Mapping[str, Any]],
    asked: Mapping[str, str] | None = None,
) -> list[str]:
    """The requests to flag ``rephrased`` now that ``rows`` (just inserted) are recorded.

    Each written request is compared with the conversation's request before it and the
    one after it (when already recorded). Reads only: the caller sets the flags.
    ``asked`` (correlation id -> the user's message, as the chat sent it) lets a request
    whose message has fewer than ``REPHRASE_MIN_WORDS`` words skip the lookups: it can
    be neither side of a rephrase.
    """
    written = sorted(
        row["correlation_id"]
        for row in rows
        if not row["synthetic"]
        and row["conversation_id"]
        and (
            asked is None or len(words(asked.get(row["correlation_id"], ""))) >= REPHRASE_MIN_WORDS
        )
    )
    if not written:
        return []
    adjacent = _neighbours(session, written)
    if not adjacent:
        return []
    known = _requests(session, {cid for pair in adjacent for cid in pair})
    pairs = [
        (a, b)
        for a, b in adjacent
        if a in known and b in known and _within_the_wait(known[a], known[b])
    ]
    if not pairs:
        return []
    messages = _asked_by(session, {cid: known[cid] for pair in pairs for cid in pair})
    flagged = set()
    for earlier, later in pairs:
        first, second = messages.get(earlier), messages.get(later)
        if first is None or second is None or first[0] == second[0]:
            continue  # no saved messages, or the same message asked again (regenerate)
        if is_rephrase(first[1], second[1]):
            flagged.add(earlier)
    return sorted(flagged)


def after_insert(
    *,
    session: Session,
    rows: Sequence[Mapping[str, Any]],
    asked: Mapping[str, str] | None = None,
) -> Counter[str]:
    """Signals found because ``rows`` were just inserted: their ``stopped`` flags (set on
    insert) and the ``rephrased`` flags set now (``asked``: see :func:`find_rephrased`).
    Returns the newly set counts, for :func:`~chatmon.services.implicit_signals.count`
    once the caller has committed."""
    found: Counter[str] = Counter()
    found[STOPPED] = sum(1 for row in rows if row.get("implicit_flags", 0) & FLAGS[STOPPED])
    rephrased = find_rephrased(session=session, rows=rows, asked=asked)
    if rephrased:
        found[REPHRASED] = set_flag(session=session, signal=REPHRASED, correlation_ids=rephrased)
    return found


# ----------------------------------------------------------------------------- abandoned


def find_abandoned(*, session: Session, now: datetime, after: timedelta) -> list[str]:
    """Errors that ended a conversation: no further request came within ``after`` of the
    error's end, and that wait is over by ``now``. Only errors whose wait ran out within
    ``ABANDON_SCAN_BACK`` are looked at (the partial index of errors keeps this cheap).
    """
    now = to_utc(now)
    r, later = LLMRequest, aliased(LLMRequest)
    next_start = (
        select(func.min(col(later.started_at)))
        .where(col(later.conversation_id) == col(r.conversation_id))
        .where(col(later.started_at) > col(r.started_at), col(later.synthetic).is_(False))
        .correlate(r)
        .scalar_subquery()
    )
    query = (
        select(col(r.correlation_id), col(r.started_at), col(r.latency_seconds), next_start)
        # literal: the partial index's predicate, spelled as it is (implicit_counts.any_signal)
        .where(col(r.status) == literal("error", literal_execute=True))
        .where(col(r.started_at) >= now - after - ABANDON_SCAN_BACK - LONGEST_REPLY)
        .where(col(r.started_at) <= now - after)
        .where(col(r.synthetic).is_(False), col(r.conversation_id) != "")
        .where(~has_signal(ABANDONED))
    )
    found = []
    for cid, started, latency, following in session.execute(query):
        deadline = to_utc(started) + timedelta(seconds=latency) + after
        if deadline > now or deadline < now - ABANDON_SCAN_BACK:
            continue
        if following is None or to_utc(following) > deadline:
            found.append(cid)
    return found


def flag_abandoned(*, session: Session, now: datetime, after: timedelta) -> int:
    """Flag :func:`find_abandoned`'s requests; returns how many were newly flagged.
    The caller commits, then counts."""
    found = find_abandoned(session=session, now=now, after=after)
    return set_flag(session=session, signal=ABANDONED, correlation_ids=found) if found else 0
