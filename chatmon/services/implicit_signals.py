"""Implicit dissatisfaction: what people do instead of pressing thumbs-down (issue #15 §2).

Each signal is one bit of ``llm_request.implicit_flags``, OR-ed in when it is seen, so
a request can carry several and setting one twice changes nothing:

``stopped`` (1)
    The reply was stopped early: its request ended ``cancelled`` (the person's Stop,
    or the tab walking away mid-reply). Set when the row is inserted.
``rephrased`` (2)
    The next user message of the same conversation came within
    ``REPHRASE_WITHIN_SECONDS`` (60 s, inclusive) of the end of the reply, and says
    nearly the same thing: the Jaccard index of the two messages' word sets is at least
    ``REPHRASE_MIN_OVERLAP`` (0.5), both having at least ``REPHRASE_MIN_WORDS`` (3)
    distinct words. The *earlier* request is flagged (it is the reply that did not
    help). Only a reply the person saw counts (status ok or cancelled): asking again
    after an error is the error's figure, not the reply's. The same user message asked
    again (a regenerate) is not a rephrase. Found by the recorder when it writes a
    request, looking both ways (the next request may be written first by another
    worker), from the conversation's messages: the request log holds no text.
``regenerated`` (4)
    The person asked for another reply to the same message: the chat calls
    :func:`mark_regenerated`, which goes through the recorder's queue, so it is written
    after the reply's own row.
``abandoned_after_error`` (8)
    The conversation's last request failed and no further request came within
    ``IMPLICIT_ABANDON_MINUTES`` of its end: found by a periodic check
    (``chatmon.tasks.implicit_abandoned``), claimed once per period across workers.

Words are runs of letters and digits (``str.isalnum``), case-folded, from the first
``MAX_TEXT_CHARS`` characters: one linear pass, no regular expression. Synthetic
(probe) requests are never flagged and never counted.

Counting: the per-signal counts are not in the hourly rollups. Flagged rows are a
small share of all requests, and a partial index holds only them, so a window's counts
read just the flagged rows of the window. The prompt-version rollup
(:mod:`chatmon.services.version_rollup`) counts flagged requests (any signal), for the
before/after comparisons of ``chatmon.services.versions``.
"""

from __future__ import annotations

import functools
import logging
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam, func, literal, select, update
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col

from chatmon.models import ChatMessage, LLMRequest
from chatmon.observability import series
from chatmon.observability.call_status import CallStatus
from chatmon.services import events, version_rollup
from chatmon.services.sql_time import to_utc

log = logging.getLogger(__name__)

STOPPED = "stopped"
REPHRASED = "rephrased"
REGENERATED = "regenerated"
ABANDONED = "abandoned_after_error"
FLAGS: Mapping[str, int] = {STOPPED: 1, REPHRASED: 2, REGENERATED: 4, ABANDONED: 8}
SIGNALS: tuple[str, ...] = tuple(FLAGS)  # also the fixed label set of the Prometheus series

REPHRASE_WITHIN_SECONDS = 60.0
REPHRASE_MIN_OVERLAP = 0.5
REPHRASE_MIN_WORDS = 3
MAX_TEXT_CHARS = 2000
# The longest a failed request may have taken: bounds how far back the abandoned check
# looks for errors whose wait just ran out.
LONGEST_REPLY = timedelta(hours=1)
# The abandoned check looks at errors whose wait ran out in this band before now: a
# chatmon down for longer leaves those errors unflagged rather than rescanning forever.
ABANDON_SCAN_BACK = timedelta(minutes=30)
_REPLY_SEEN = ("ok", "cancelled")
_WAIT = timedelta(seconds=REPHRASE_WITHIN_SECONDS)
_CORRELATION_ID_MAX = 32
_IN_CHUNK = 500  # bound parameters per IN (...)


# ----------------------------------------------------------------------------- words


def words(text: str) -> frozenset[str]:
    """The distinct words of ``text`` (its first ``MAX_TEXT_CHARS`` characters), case-folded.

    A word is a run of alphanumeric characters; everything else separates words. One
    pass over the characters, so any input costs time linear in its (capped) length.
    """
    found: set[str] = set()
    current: list[str] = []
    for char in text[:MAX_TEXT_CHARS].casefold():
        if char.isalnum():
            current.append(char)
        elif current:
            found.add("".join(current))
            current.clear()
    if current:
        found.add("".join(current))
    return frozenset(found)


def overlap(first: frozenset[str], second: frozenset[str]) -> float:
    """The Jaccard index of two word sets: shared words over all words (0 when both empty)."""
    union = len(first | second)
    return len(first & second) / union if union else 0.0


def is_rephrase(earlier: str, later: str) -> bool:
    """Whether ``later`` says nearly what ``earlier`` said (see the module docstring)."""
    first, second = words(earlier), words(later)
    if min(len(first), len(second)) < REPHRASE_MIN_WORDS:
        return False
    return overlap(first, second) >= REPHRASE_MIN_OVERLAP


# ----------------------------------------------------------------------------- flags


def bits(flags: int) -> list[str]:
    """The signals set in a flags value, in ``SIGNALS`` order."""
    return [name for name in SIGNALS if flags & FLAGS[name]]


def flags_on_insert(*, status: str, synthetic: bool) -> int:
    """The flags a new row is born with: ``stopped`` for a cancelled real request."""
    return FLAGS[STOPPED] if status == CallStatus.CANCELLED and not synthetic else 0


def _has(signal: str) -> ColumnElement[bool]:
    return col(LLMRequest.implicit_flags).op("&")(FLAGS[signal]) != 0


def _flagged() -> ColumnElement[bool]:
    # Spelled exactly like the partial index's predicate (a literal, not a bound
    # parameter), so SQLite's planner can use it.
    return col(LLMRequest.implicit_flags) != literal(0, literal_execute=True)


def set_flag(*, session: Session, signal: str, correlation_ids: Collection[str]) -> int:
    """OR ``signal`` into the flags of those requests (synthetic ones excepted).

    Returns how many rows newly got it (already flagged rows are not counted again).
    A request's first flag, whatever the signal, also counts it in the prompt-version
    rollup's ``flagged`` (in this transaction). The caller commits, then counts the
    result (:func:`count`).
    """
    changed = 0
    for chunk in _chunks(sorted(set(correlation_ids))):
        # Rows without any flag first, returning their rollup keys: the database decides
        # which rows were unflagged (a concurrent writer's flag is seen, not guessed).
        first = session.connection().execute(_first_flag_statement(signal), {"ids": chunk})
        keys = [
            version_rollup.key_of(started_at=started, prompt_version=version, model=model)
            for started, version, model in first.all()
        ]
        version_rollup.add_flagged(session, keys)
        result = session.connection().execute(_set_flag_statement(signal), {"ids": chunk})
        changed += len(keys) + int(result.rowcount or 0)
    return changed


@functools.cache
def _first_flag_statement(signal: str) -> Any:
    r = LLMRequest
    return (
        update(r)
        .where(col(r.correlation_id).in_(bindparam("ids", expanding=True)))
        .where(col(r.synthetic).is_(False), col(r.implicit_flags) == 0)
        .values(implicit_flags=FLAGS[signal])
        .returning(col(r.started_at), col(r.prompt_version), col(r.model))
    )


@functools.cache
def _set_flag_statement(signal: str) -> Any:
    flags = col(LLMRequest.implicit_flags)
    return (
        update(LLMRequest)
        .where(col(LLMRequest.correlation_id).in_(bindparam("ids", expanding=True)))
        .where(col(LLMRequest.synthetic).is_(False))
        .where(~_has(signal))
        .values(implicit_flags=flags.op("|")(FLAGS[signal]))
    )


def count(found: Mapping[str, int]) -> None:
    """Add newly set flags to ``chatmon_implicit_feedback_total`` (after the commit)."""
    for signal, number in found.items():
        if number > 0 and signal in FLAGS:
            series.IMPLICIT_FEEDBACK.labels(signal=signal).inc(number)


def mark_regenerated(correlation_id: str) -> bool:
    """Flag the reply ``correlation_id`` as regenerated (the person asked for another).

    Never blocks: the flag is queued to the recorder, behind the reply's own row, and
    written with it (a reply not recorded at all is ignored, logged). The caller must
    pass only the id of a reply the asking browser owns. Returns False (and does
    nothing) for a value that cannot be a correlation id.
    """
    if not valid_correlation_id(correlation_id):
        return False
    events.publish_signal(events.ImplicitSignal(correlation_id=correlation_id, signal=REGENERATED))
    return True


def valid_correlation_id(value: object) -> bool:
    """A non-empty string of at most 32 ASCII letters and digits."""
    return (
        isinstance(value, str)
        and 0 < len(value) <= _CORRELATION_ID_MAX
        and value.isascii()
        and value.isalnum()
    )


# ----------------------------------------------------------------------------- rephrases


@dataclass(frozen=True)
class _Request:
    correlation_id: str
    conversation_id: str
    started_at: datetime
    ended_at: datetime
    status: str
    flags: int


def _chunks(values: Sequence[Any]) -> Iterable[list[Any]]:
    for start in range(0, len(values), _IN_CHUNK):
        yield list(values[start : start + _IN_CHUNK])


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
    for chunk in _chunks(written):
        rows = session.connection().execute(_neighbours_statement(), {"ids": chunk})
        for cid, previous, following in rows:
            if previous is not None:
                pairs.add((previous, cid))
            if following is not None:
                pairs.add((cid, following))
    return pairs


def _requests(session: Session, ids: Collection[str]) -> dict[str, _Request]:
    found: dict[str, _Request] = {}
    for chunk in _chunks(sorted(ids)):
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
    for chunk in _chunks(sorted(requests)):
        rows = session.connection().execute(
            _asked_statement(), {"conversations": conversations, "ids": chunk}
        )
        for correlation_id, message_id in rows:
            if correlation_id is not None and message_id is not None:
                message_of[correlation_id] = int(message_id)
    texts: dict[int, str] = {}
    for chunk in _chunks(sorted(set(message_of.values()))):
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
    Returns the newly set counts, for :func:`count` once the caller has committed."""
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
        # literal: the partial index's predicate, spelled as it is (see _flagged)
        .where(col(r.status) == literal("error", literal_execute=True))
        .where(col(r.started_at) >= now - after - ABANDON_SCAN_BACK - LONGEST_REPLY)
        .where(col(r.started_at) <= now - after)
        .where(col(r.synthetic).is_(False), col(r.conversation_id) != "")
        .where(~_has(ABANDONED))
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


# ----------------------------------------------------------------------------- counts


@dataclass(frozen=True)
class FlagCounts:
    """A window's implicit signals: requests carrying each, and carrying any."""

    stopped: int = 0
    rephrased: int = 0
    regenerated: int = 0
    abandoned_after_error: int = 0
    flagged: int = 0  # requests with at least one signal (one request may carry several)

    def by_signal(self) -> dict[str, int]:
        """``{signal: requests}`` in ``SIGNALS`` order."""
        return {name: getattr(self, name) for name in SIGNALS}


def flag_counts(
    *, session: Session, start: datetime, end: datetime, model: str | None = None
) -> FlagCounts:
    """How many real requests that started in ``[start, end)`` carry each signal."""
    r = LLMRequest
    query = (
        select(col(r.implicit_flags), func.count())
        .where(_flagged())
        .where(col(r.started_at) >= to_utc(start), col(r.started_at) < to_utc(end))
        .where(col(r.synthetic).is_(False))
        .group_by(col(r.implicit_flags))
    )
    if model is not None:
        query = query.where(col(r.model) == model)
    per_signal: Counter[str] = Counter()
    flagged = 0
    for flags, number in session.execute(query):
        flagged += number
        for name in bits(flags):
            per_signal[name] += number
    return FlagCounts(**{name: per_signal[name] for name in SIGNALS}, flagged=flagged)


def unrated_flags_by_version(
    *, session: Session, start: datetime, end: datetime
) -> tuple[Counter[str], dict[str, Counter[str]]]:
    """Per prompt version, the real requests of ``[start, end)`` that carry a signal and
    were not rated (the ``dissatisfaction`` rule weighs them), and each signal's count."""
    r = LLMRequest
    query = (
        select(col(r.prompt_version), col(r.implicit_flags), func.count())
        .where(_flagged())
        .where(col(r.started_at) >= to_utc(start), col(r.started_at) < to_utc(end))
        .where(col(r.synthetic).is_(False), col(r.feedback).is_(None))
        .group_by(col(r.prompt_version), col(r.implicit_flags))
    )
    flagged: Counter[str] = Counter()
    signals: dict[str, Counter[str]] = {}
    for version, flags, number in session.execute(query):
        flagged[version] += number
        named = signals.setdefault(version, Counter())
        for name in bits(flags):
            named[name] += number
    return flagged, signals
