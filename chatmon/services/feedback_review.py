"""The operator's review queue: rated replies, and the conversation behind one.

Rows come from ``llm_request`` (numbers and ids only: the thumb, model, prompt version,
status, latency, cost). "owner" is the browser's owner key, the keyed hash the request
log and ``/api/usage`` already carry, never a raw browser id.

Reading a conversation is the one place an operator sees users' text, so every read
goes through :func:`conversation_around`, which records who read which conversation
(``feedback_review_audit``) in the same transaction as the read. ``FEEDBACK_REVIEW=off``
turns reading off entirely (the callers check :func:`review_enabled`).

:data:`COLUMNS` is the one list of row fields (JSON keys and CSV columns). A row's
``reasons`` are the thumbs-down reasons (:data:`chatmon.services.feedback.REASONS`), and
the queue filters by one of them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import func, or_, select
from sqlalchemy.sql.expression import ColumnElement
from sqlmodel import Session, col

from chatmon.models import ChatMessage, FeedbackReviewAudit, LLMRequest, utc_now
from chatmon.observability.call_status import CallStatus
from chatmon.services import branches, implicit_signals
from chatmon.services.feedback import REASONS, decode_reasons
from chatmon.services.redaction import redact

Order = Literal["newest", "worst"]
ORDERS: tuple[Order, ...] = ("newest", "worst")
RATINGS = {"up": 1, "down": -1}
FLAGGED = "flagged"  # the rating filter for replies nobody rated but an implicit signal flagged
RATING_FILTERS = (*RATINGS, FLAGGED)
COLUMNS = (
    "correlation_id",
    "started_at",
    "rating",
    "model",
    "prompt_version",
    "status",
    "error_category",
    "latency_seconds",
    "cost_usd",
    "conversation_id",
    "owner",
    "reasons",  # last ones: the CSV's earlier columns keep their places
    "signals",  # implicit dissatisfaction (chatmon.services.implicit_signals.FLAGS)
)
CONTEXT_MESSAGES = 20  # messages shown up to and including the rated reply


def _iso(moment: datetime) -> str:
    """ISO 8601 UTC (SQLite hands back naive UTC datetimes, PostgreSQL aware ones)."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


class ReviewOff(Exception):
    """Conversation review is turned off (FEEDBACK_REVIEW=off)."""


@dataclass(frozen=True)
class RatedReply:
    """One rated reply of the queue."""

    correlation_id: str
    started_at: datetime
    rating: str  # "up" | "down" | "" (not rated, but flagged by an implicit signal)
    reasons: tuple[str, ...]  # of a thumbs-down, in the fixed order of REASONS
    signals: tuple[str, ...]  # implicit signals: stopped, rephrased, regenerated, ...
    model: str
    prompt_version: str
    status: str
    error_category: str | None
    latency_seconds: float
    cost_usd: float | None
    conversation_id: str
    owner: str

    def to_json(self) -> dict[str, Any]:
        data = {name: getattr(self, name) for name in COLUMNS}
        data["started_at"] = _iso(self.started_at)
        data["reasons"] = list(self.reasons)
        data["signals"] = list(self.signals)
        return data


@dataclass(frozen=True)
class ShownMessage:
    """One message as the reviewer sees it (text redacted when redaction is on)."""

    id: int
    role: str
    content: str
    created_at: datetime
    rated: bool  # the reply the review was opened for

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "role": self.role,
            "content": self.content,
            "created_at": _iso(self.created_at),
            "rated": self.rated,
        }


@dataclass(frozen=True)
class ReviewView:
    """One recorded read of a conversation."""

    viewer: str
    viewed_at: datetime
    conversation_id: str
    correlation_id: str

    def to_json(self) -> dict[str, Any]:
        return {
            "viewer": self.viewer,
            "viewed_at": _iso(self.viewed_at),
            "conversation_id": self.conversation_id,
            "correlation_id": self.correlation_id,
        }


def rated_replies(
    *,
    session: Session,
    start: datetime,
    end: datetime,
    model: str | None = None,
    prompt_version: str | None = None,
    rating: str | None = None,
    reason: str | None = None,
    order: Order = "newest",
    limit: int = 100,
) -> list[RatedReply]:
    """The window's rated or implicitly flagged requests (by when they started), newest
    first, or worst first (thumbs down, then flagged but unrated, then up; then errors
    before successes, then slowest, then newest).

    ``rating`` keeps one kind: ``up``, ``down`` or ``flagged`` (unrated, flagged).
    ``reason`` keeps only the replies rated down with that reason among theirs.

    Raises:
        ValueError: ``rating`` is not one of RATING_FILTERS, ``reason`` not one of
            REASONS, or ``order`` is not one of ORDERS.
    """
    if rating is not None and rating not in RATING_FILTERS:
        raise ValueError("rating must be up, down or flagged")
    if reason is not None and reason not in REASONS:
        raise ValueError(f"reason must be one of {', '.join(REASONS)}")
    if order not in ORDERS:
        raise ValueError(f"order must be one of {', '.join(ORDERS)}")
    r = LLMRequest
    rated = col(r.feedback).in_((1, -1))
    flagged = col(r.implicit_flags) != 0
    query = select(r).where(
        or_(rated, flagged), col(r.started_at) >= start, col(r.started_at) < end
    )
    if model is not None:
        query = query.where(col(r.model) == model)
    if prompt_version is not None:
        query = query.where(col(r.prompt_version) == prompt_version)
    if rating == FLAGGED:
        query = query.where(col(r.feedback).is_(None), flagged)
    elif rating is not None:
        query = query.where(col(r.feedback) == RATINGS[rating])
    if reason is not None:
        query = query.where(has_reason(reason))
    newest = (col(r.started_at).desc(), col(r.id).desc())
    if order == "worst":
        ok_last = col(r.status) == CallStatus.OK  # False (errors) sorts first
        kind = func.coalesce(col(r.feedback), 0)  # -1 down, 0 flagged only, +1 up
        query = query.order_by(kind, ok_last, col(r.latency_seconds).desc(), *newest)
    else:
        query = query.order_by(*newest)
    return [_reply(row) for row in session.execute(query.limit(limit)).scalars()]


def has_reason(reason: str) -> ColumnElement[bool]:
    """``llm_request.feedback_reasons`` (``wrong,unsafe``: fixed order, no commas inside
    a reason, no LIKE wildcards in any) names ``reason``."""
    stored = col(LLMRequest.feedback_reasons)
    return or_(
        stored == reason,
        stored.startswith(reason + ",", autoescape=True),
        stored.endswith("," + reason, autoescape=True),
        stored.contains("," + reason + ",", autoescape=True),
    )


def _reply(row: LLMRequest) -> RatedReply:
    return RatedReply(
        correlation_id=row.correlation_id,
        started_at=row.started_at,
        rating={1: "up", -1: "down"}.get(row.feedback or 0, ""),
        reasons=decode_reasons(row.feedback_reasons),
        signals=tuple(implicit_signals.bits(row.implicit_flags or 0)),
        model=row.model,
        prompt_version=row.prompt_version,
        status=row.status,
        error_category=row.error_category,
        latency_seconds=row.latency_seconds,
        cost_usd=row.cost_usd,
        conversation_id=row.conversation_id,
        owner=row.session_id,
    )


def conversation_around(
    *,
    session: Session,
    correlation_id: str,
    viewer: str,
    enabled: bool,
    redact_pii: bool,
    limit: int = CONTEXT_MESSAGES,
    now: datetime | None = None,
) -> list[ShownMessage] | None:
    """The rated reply of ``correlation_id`` and the messages before it, oldest first,
    recording the read (the caller commits). None when no message has that id (the
    conversation was deleted, or the request never produced a stored reply): nothing is
    recorded then, as nothing was shown.

    Raises:
        ReviewOff: ``enabled`` is False; nothing is read or recorded.
    """
    if not enabled:
        raise ReviewOff("conversation review is off (FEEDBACK_REVIEW=off)")
    reply = session.execute(
        select(ChatMessage).where(col(ChatMessage.correlation_id) == correlation_id).limit(1)
    ).scalar_one_or_none()
    if reply is None or reply.id is None:
        return None
    # the reply's own branch: not the alternatives of a regenerated reply or edited question
    rows = branches.branch_to(session=session, message=reply, limit=limit)
    shown = [
        ShownMessage(
            id=m.id or 0,
            role=m.role,
            content=redact(m.content) if redact_pii else m.content,
            created_at=m.created_at,
            rated=m.id == reply.id,
        )
        for m in rows
    ]
    session.add(
        FeedbackReviewAudit(
            viewer=viewer[:64],
            viewed_at=now or utc_now(),
            conversation_id=reply.conversation_id,
            correlation_id=correlation_id[:32],
        )
    )
    return shown


def recent_views(*, session: Session, limit: int = 50) -> list[ReviewView]:
    """The latest recorded conversation reads, newest first."""
    a = FeedbackReviewAudit
    rows = session.execute(
        select(a).order_by(col(a.viewed_at).desc(), col(a.id).desc()).limit(limit)
    ).scalars()
    return [
        ReviewView(
            viewer=v.viewer,
            viewed_at=v.viewed_at,
            conversation_id=v.conversation_id,
            correlation_id=v.correlation_id,
        )
        for v in rows
    ]
