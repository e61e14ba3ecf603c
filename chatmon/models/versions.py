"""What changed and whether it helped: the system prompt's versions, the changes an alert
check saw (version, model, prompt, alert configuration), and the per-hour rollups of each
prompt version that compare the two sides of a change (``chatmon.services.versions``)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel


class PromptVersion(SQLModel, table=True):
    """One version of the system prompt, as the chat served it: its short hash (what
    ``llm_request.prompt_version`` holds), when a request first and last used it, and
    its text (the monitor's before/after card and ``/api/versions`` show it). Kept by
    :mod:`chatmon.services.prompt_versions`: an upsert when a worker first serves a
    version, then ``last_seen`` at most once a minute per worker."""

    __tablename__ = "prompt_version"

    hash: str = Field(primary_key=True, max_length=64)
    first_seen: datetime = Field(index=True)
    last_seen: datetime = Field(index=True)
    text: str


class ChangeEvent(SQLModel, table=True):
    """Something an incident review asks about first: a new version, model, system
    prompt or alert configuration, seen by an alert check. ``old`` is NULL for the first
    value ever seen (a baseline, not a change). Values are names and short hashes, never
    prompt text or secrets."""

    __tablename__ = "change_event"

    id: int | None = Field(default=None, primary_key=True)
    kind: str = Field(max_length=16, index=True)  # version | model | prompt | alert_config
    old: str | None = Field(default=None, max_length=200)
    new: str = Field(max_length=200)
    at: datetime = Field(index=True)


class LLMVersionHourly(SQLModel, table=True):
    """Per-hour figures of each prompt version and model, for "Did the change help?"
    (``chatmon.services.versions``), kept in step by the recorder like the rollups of
    :mod:`chatmon.models.rollups`.

    ``errors`` counts ``error`` and ``interrupted``; ``flagged`` the requests with any
    implicit flag (OR-ed in after the fact: counted once, when the first bit lands);
    ``costed`` / ``cost_usd`` / ``cost_squares`` the requests with a known cost, their
    sum and sum of squares (a mean with its interval needs nothing else). The key
    starts with ``hour``, so any side of a change, of one version or of all, is one
    contiguous key range (WITHOUT ROWID on SQLite).
    """

    __tablename__ = "llm_version_hourly"
    __table_args__ = {"sqlite_with_rowid": False}

    hour: int = Field(primary_key=True)
    prompt_version: str = Field(primary_key=True, max_length=64)
    model: str = Field(primary_key=True, max_length=200)
    requests: int = 0
    errors: int = 0
    feedback_up: int = 0
    feedback_down: int = 0
    flagged: int = 0
    costed: int = 0
    cost_usd: float = 0.0
    cost_squares: float = 0.0


class LLMVersionLatencyHourly(SQLModel, table=True):
    """Per-hour latency histograms of each prompt version and model (the ``latency_bin``
    counts of :class:`LLMVersionHourly`'s requests)."""

    __tablename__ = "llm_version_latency_hourly"
    __table_args__ = {"sqlite_with_rowid": False}

    hour: int = Field(primary_key=True)
    prompt_version: str = Field(primary_key=True, max_length=64)
    model: str = Field(primary_key=True, max_length=200)
    bin: int = Field(primary_key=True)
    count: int = 0
