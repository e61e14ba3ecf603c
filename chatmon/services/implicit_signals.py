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

Where each part lives: the words and the rephrase test in
:mod:`chatmon.services.implicit_text`; setting a flag (and the rollup's ``flagged``) in
:mod:`chatmon.services.implicit_flags`; finding rephrased and abandoned requests in
:mod:`chatmon.services.implicit_detection`; a window's counts in
:mod:`chatmon.services.implicit_counts`. This module holds the vocabulary and the
calls made from outside the recorder (the chat's regenerate, the counter).

Counting: the per-signal counts are not in the hourly rollups. Flagged rows are a
small share of all requests, and a partial index holds only them, so a window's counts
read just the flagged rows of the window. The prompt-version rollup
(:mod:`chatmon.services.version_rollup`) counts flagged requests (any signal), for the
before/after comparisons of ``chatmon.services.versions``.
"""

from __future__ import annotations

from collections.abc import Mapping

from chatmon.observability import series
from chatmon.observability.call_status import CallStatus
from chatmon.services import events

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
_CORRELATION_ID_MAX = 32


def bits(flags: int) -> list[str]:
    """The signals set in a flags value, in ``SIGNALS`` order."""
    return [name for name in SIGNALS if flags & FLAGS[name]]


def flags_on_insert(*, status: str, synthetic: bool) -> int:
    """The flags a new row is born with: ``stopped`` for a cancelled real request."""
    return FLAGS[STOPPED] if status == CallStatus.CANCELLED and not synthetic else 0


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
