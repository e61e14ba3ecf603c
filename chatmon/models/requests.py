"""The request log: one ``llm_request`` row per request to the model, as it ended
(numbers and ids, never text). The rollups kept from it are in :mod:`chatmon.models.rollups`
and :mod:`chatmon.models.versions`."""

from __future__ import annotations

from datetime import datetime

import sqlalchemy
from sqlmodel import Field, SQLModel


class LLMRequest(SQLModel, table=True):
    """One user request to the model, as it ended: exactly one row per request.

    Holds numbers and ids only, never the user's or the model's text (the conversation
    tables hold that). ``started_at`` is an aware UTC datetime. The ``*_bin``
    columns are the request's latency histogram bins (``chatmon.services.histogram``),
    stored so window percentiles can be computed in SQL; NULL when the request is not
    part of the latency figures (cancelled, refused locally, no first token).
    """

    __tablename__ = "llm_request"
    # The review queue reads the rated rows of a window (chatmon.services.feedback_review).
    # Implicit signals (chatmon.services.implicit_signals) read a conversation's requests
    # in order, a window's flagged rows and its recent errors: the last two are partial
    # indexes, so they hold only the few rows they are about.
    __table_args__ = (
        sqlalchemy.Index("ix_llm_request_feedback_started_at", "feedback", "started_at"),
        # A prompt version's requests of a window (chatmon.services.versions).
        sqlalchemy.Index(
            "ix_llm_request_prompt_version_started_at", "prompt_version", "started_at"
        ),
        sqlalchemy.Index("ix_llm_request_conversation_started_at", "conversation_id", "started_at"),
        sqlalchemy.Index(
            "ix_llm_request_flagged_started_at",
            "started_at",
            sqlite_where=sqlalchemy.text("implicit_flags != 0"),
            postgresql_where=sqlalchemy.text("implicit_flags != 0"),
        ),
        sqlalchemy.Index(
            "ix_llm_request_errors_started_at",
            "started_at",
            sqlite_where=sqlalchemy.text("status = 'error'"),
            postgresql_where=sqlalchemy.text("status = 'error'"),
        ),
    )

    id: int | None = Field(default=None, primary_key=True)
    correlation_id: str = Field(max_length=32, unique=True)
    session_id: str = Field(default="", max_length=64)
    conversation_id: str = Field(default="", max_length=32)
    model: str = Field(max_length=200)
    provider: str | None = Field(default=None, max_length=64)
    started_at: datetime = Field(index=True)
    ttft_seconds: float | None = None
    latency_seconds: float = 0.0
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None  # NULL: no usage reported, or the model has no price
    priced: bool = True  # False: the model has no known price (cost is not $0, it is unknown)
    status: str = Field(max_length=16)  # ok | error | cancelled
    error_category: str | None = Field(default=None, max_length=32)
    retries: int = 0
    temperature: float = 0.0
    prompt_version: str = Field(default="", max_length=64)
    feedback: int | None = None  # +1 / -1, NULL when not rated
    feedback_reasons: str | None = Field(default=None, max_length=64)  # never the comment
    latency_bin: int | None = None
    ttft_bin: int | None = None
    # True: the synthetic probe's request (chatmon.services.probe). Kept in the log, but
    # out of the rollups and of every user-facing figure (stats, usage, budgets, alerts).
    synthetic: bool = Field(default=False, sa_column_kwargs={"server_default": sqlalchemy.false()})
    # True: the primary model failed and a model of LLM_FALLBACK_MODELS served the request
    # (``model`` is the one that served it, or the last one tried when all failed).
    fallback: bool = Field(default=False, sa_column_kwargs={"server_default": sqlalchemy.false()})
    # Implicit dissatisfaction (issue #15 §2), one bit per signal, OR-ed in as signals
    # arrive: 1 stopped, 2 rephrased, 4 regenerated, 8 abandoned after an error
    # (chatmon.services.implicit_signals.FLAGS). 0: none; never set on synthetic rows.
    implicit_flags: int = Field(default=0, sa_column_kwargs={"server_default": "0"})
