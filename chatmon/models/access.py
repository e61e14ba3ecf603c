"""Who gets in, and what operators read: the installation's generated secrets, failed
sign-ins for the login throttle, and the audit of conversations opened in the review
queue."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel

from chatmon.models.base import utc_now


class InstanceSecret(SQLModel, table=True):
    """Secrets this installation generated for itself, shared by every worker and instance.

    ``session_secret`` (when SESSION_SECRET is unset) signs login sessions;
    ``monitor_password_hash`` is the PBKDF2 hash of the monitor password generated at
    the first start (the password itself is printed once and stored nowhere). Rows are
    created with ``INSERT ... ON CONFLICT DO NOTHING``: the first writer wins, and
    everyone then reads the winner's value.
    """

    __tablename__ = "instance_secret"

    name: str = Field(primary_key=True, max_length=64)
    value: str = Field(max_length=512)
    created_at: datetime = Field(default_factory=utc_now)


class LoginFailure(SQLModel, table=True):
    """Failed sign-ins counted per client address and per account, for every worker.

    ``key`` is ``ip:`` or ``account:`` and a keyed hash (never the address or the name
    typed, which is sometimes a password typed in the wrong field). Times are epoch
    seconds. Rows of keys quiet for longer than the throttle's memory are pruned.
    """

    __tablename__ = "login_failure"

    key: str = Field(primary_key=True, max_length=80)
    failures: int = 0
    last_failure_at: float = Field(index=True)
    blocked_until: float = 0.0


class FeedbackReviewAudit(SQLModel, table=True):
    """One read of a conversation by an operator in the review queue: who (the monitor
    account), when, and which conversation (and the rated request it was opened for).
    Never the text that was shown."""

    __tablename__ = "feedback_review_audit"

    id: int | None = Field(default=None, primary_key=True)
    viewer: str = Field(max_length=64)
    viewed_at: datetime = Field(index=True)
    conversation_id: str = Field(max_length=32, index=True)
    correlation_id: str = Field(max_length=32)
