"""SQLModel tables, and nothing else.

Tables live here rather than in the app module because Reflex's test harness
re-imports the app module, which would register the tables twice.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import sqlalchemy
from sqlalchemy import Table
from sqlmodel import Field, SQLModel


def utc_now() -> datetime:
    """Timezone-aware now in UTC (stored naive-UTC by SQLite, aware by PostgreSQL)."""
    return datetime.now(UTC)


def new_id() -> str:
    """A random, URL-safe identifier."""
    return uuid.uuid4().hex


class Conversation(SQLModel, table=True):
    """One chat thread, owned by the browser that started it.

    ``owner_id`` is the browser's owner key (``chatmon.services.identity``): a keyed
    hash of its server-issued id, never the id itself.
    """

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    owner_id: str = Field(index=True, max_length=64)
    title: str = Field(default="New chat", max_length=200)
    created_at: datetime = Field(default_factory=utc_now)
    updated_at: datetime = Field(default_factory=utc_now, index=True)


class ChatMessage(SQLModel, table=True):
    """One message of a conversation: the user's, or the assistant's reply."""

    id: int | None = Field(default=None, primary_key=True)
    conversation_id: str = Field(
        foreign_key="conversation.id", index=True, max_length=32, ondelete="CASCADE"
    )
    role: str = Field(max_length=16)  # "user" | "assistant"
    content: str = ""
    created_at: datetime = Field(default_factory=utc_now)
    feedback: int | None = None  # +1 thumbs up, -1 thumbs down
    # reasons of a rating (comma-separated, chatmon.services.feedback.REASONS) and the
    # user's comment on it; NULL when none
    feedback_reasons: str | None = Field(default=None, max_length=64)
    feedback_comment: str | None = None
    error_category: str | None = Field(default=None, max_length=32)
    correlation_id: str | None = Field(default=None, max_length=32)
    # None: complete. "streaming": a reply being written, checkpointed every few
    # seconds (``updated_at``); "interrupted": its writer stopped before finishing.
    status: str | None = Field(default=None, max_length=16)
    updated_at: datetime | None = None
    # The conversation is a tree: each message follows ``parent_id`` (None: the first).
    # Messages with the same parent are alternatives (a regenerated reply, an edited
    # question); ``active`` marks the one shown. The visible branch is the path from the
    # first message through the active alternatives (chatmon.services.history).
    parent_id: int | None = Field(default=None, index=True)
    active: bool = Field(default=True, sa_column_kwargs={"server_default": sqlalchemy.true()})


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


class LLMRequestHourly(SQLModel, table=True):
    """Per-hour totals of ``llm_request``, kept in step by the recorder.

    ``hour`` is whole hours since the Unix epoch (UTC); ``error_category`` is "" for
    requests without one, so the key never holds NULL. On SQLite the table is stored
    in primary-key order (WITHOUT ROWID): a window's hours are one contiguous range.
    """

    __tablename__ = "llm_request_hourly"
    __table_args__ = {"sqlite_with_rowid": False}

    hour: int = Field(primary_key=True)
    model: str = Field(primary_key=True, max_length=200)
    status: str = Field(primary_key=True, max_length=16)
    error_category: str = Field(primary_key=True, max_length=32)
    requests: int = 0
    tokens_input: int = 0
    tokens_output: int = 0
    cost_usd: float = 0.0
    unpriced: int = 0
    retries: int = 0
    feedback_up: int = 0
    feedback_down: int = 0


class LLMLatencyHourly(SQLModel, table=True):
    """Per-hour latency histograms: how many requests fell into each bin.

    ``metric`` is "latency" (total) or "ttft" (time to first token). Each model has
    its rows, and ``model = "*"`` (``ALL_MODELS``) holds every model's requests
    together, so a window's histogram over all models reads one row per bin and hour
    whatever the number of models. The key order (metric, model, hour, bin) makes any
    window one contiguous key range, read in order (WITHOUT ROWID on SQLite).
    """

    __tablename__ = "llm_latency_hourly"
    __table_args__ = {"sqlite_with_rowid": False}

    metric: str = Field(primary_key=True, max_length=8)
    model: str = Field(primary_key=True, max_length=200)
    hour: int = Field(primary_key=True)
    bin: int = Field(primary_key=True)
    count: int = 0


ALL_MODELS = "*"  # the model of LLMLatencyHourly rows that count every model


class LLMVersionHourly(SQLModel, table=True):
    """Per-hour figures of each prompt version and model, for "Did the change help?"
    (``chatmon.services.versions``), kept in step by the recorder like the others.

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


class LLMUsageHourly(SQLModel, table=True):
    """Per-hour spend grouped by who or what drove it (``chatmon.services.usage``).

    ``dimension`` is "user" (the browser's owner key: a keyed hash, never a raw id),
    "conversation", "model" or "prompt_version"; ``key`` its value. Kept in step with
    ``llm_request`` by the recorder, in the same transaction, so "top spenders" over
    a long window reads rollups rather than millions of rows.

    The counter columns (``requests`` .. ``feedback_down``) are written out in each of
    the three usage rollups on purpose, not inherited from a shared non-table base:
    SQLModel puts a base's fields before the subclass's, so the tables' metadata would
    list the counters before ``dimension``/period/``key``, unlike the migrations that
    created them (c76112512e5e, f3b9d2c6a0e4, a4c8e1f6b2d9). Alembic's comparison does not
    see column order, but anything built from the metadata would (a ``create_all``, a
    future autogenerated table). ``tests/units/test_usage_models.py`` keeps the three
    copies equal to ``usage_rollups.COUNTERS``, name, type and default, in order.
    """

    __tablename__ = "llm_usage_hourly"
    __table_args__ = {"sqlite_with_rowid": False}

    dimension: str = Field(primary_key=True, max_length=16)
    hour: int = Field(primary_key=True)
    key: str = Field(primary_key=True, max_length=200)
    requests: int = 0
    errors: int = 0
    tokens_input: int = 0
    tokens_output: int = 0
    cost_usd: float = 0.0
    unpriced: int = 0
    feedback_up: int = 0
    feedback_down: int = 0


class LLMUsageSixHourly(SQLModel, table=True):
    """:class:`LLMUsageHourly` per 6-hour block (``block`` = ``hour // 6``: 00-06,
    06-12, 12-18 and 18-24 UTC).

    Each row is the sum of its six hourly rows, kept so by the same writes as the days.
    It is there for the edge of a window that starts mid-day: without it that edge is
    read as up to 12 hourly row sets per key (its hours, or its day minus the others),
    with it as at most two blocks and three hours (``chatmon.services.usage_plan``).
    """

    __tablename__ = "llm_usage_6h"
    __table_args__ = {"sqlite_with_rowid": False}

    dimension: str = Field(primary_key=True, max_length=16)
    block: int = Field(primary_key=True)
    key: str = Field(primary_key=True, max_length=200)
    requests: int = 0
    errors: int = 0
    tokens_input: int = 0
    tokens_output: int = 0
    cost_usd: float = 0.0
    unpriced: int = 0
    feedback_up: int = 0
    feedback_down: int = 0


class LLMUsageDaily(SQLModel, table=True):
    """:class:`LLMUsageHourly` per UTC day (``day`` = whole days since the epoch).

    Each row is the sum of that day's hourly rows, kept so by the same writes (the
    recorder, feedback, retention, rebuild): a long window by a high-cardinality
    dimension ("user", "conversation") then reads one row per key and day instead of
    one per key and hour (``chatmon.services.usage_plan``).
    """

    __tablename__ = "llm_usage_daily"
    __table_args__ = {"sqlite_with_rowid": False}

    dimension: str = Field(primary_key=True, max_length=16)
    day: int = Field(primary_key=True)
    key: str = Field(primary_key=True, max_length=200)
    requests: int = 0
    errors: int = 0
    tokens_input: int = 0
    tokens_output: int = 0
    cost_usd: float = 0.0
    unpriced: int = 0
    feedback_up: int = 0
    feedback_down: int = 0


class AlertRuleState(SQLModel, table=True):
    """One alert rule's memory between checks, shared by every worker and instance.

    ``version`` is bumped by every transition; a worker applies a transition only
    if the version it read is still current (see ``chatmon.services.alerts.store``),
    which is how several processes agree that each transition is acted on once (one
    notification; its delivery is then at least once, see ``AlertDelivery``).
    """

    __tablename__ = "alert_rule_state"

    rule: str = Field(primary_key=True, max_length=32)
    firing: bool = False
    firing_since: datetime | None = None
    notified_at: datetime | None = None  # last firing/repeat message: the cooldown's start
    episode_notified: bool = False
    version: int = 0
    created_at: datetime
    updated_at: datetime


class AlertNotification(SQLModel, table=True):
    """A message that went (or goes) out: a firing, repeat, resolved or test message.

    ``message`` is the rendered facts as JSON, so a retry sends exactly what the first
    attempt did. It never holds a secret (no webhook URL, no SMTP password).
    """

    __tablename__ = "alert_notification"

    id: int | None = Field(default=None, primary_key=True)
    rule: str = Field(max_length=32, index=True)
    kind: str = Field(max_length=16)  # firing | repeat | resolved | test
    created_at: datetime = Field(index=True)
    value: float | None = None
    threshold: float | None = None
    summary: str = Field(default="", max_length=500)
    message: str = ""


class AlertDelivery(SQLModel, table=True):
    """One notification on one channel: sent, failed (retried when due), or in flight.

    ``due_at`` is when a process may next claim it, on the database server's clock
    (never a host's): now for a new one, after a backoff for a failed one, at the end of
    the lease for one being sent (so a crashed sender's delivery is taken over), NULL
    when it is done. ``claim_token`` is written by each claim; only the holder of the
    current token may record an outcome, so a sender whose lease was taken over records
    nothing over the process that took it.
    """

    __tablename__ = "alert_delivery"

    notification_id: int = Field(
        foreign_key="alert_notification.id", primary_key=True, ondelete="CASCADE"
    )
    channel: str = Field(primary_key=True, max_length=16)  # email | slack
    rule: str = Field(max_length=32)
    status: str = Field(max_length=16)  # pending | sending | sent | failed
    attempts: int = 0
    last_error: str | None = Field(default=None, max_length=500)
    due_at: datetime | None = Field(default=None, index=True)
    claim_token: str | None = Field(default=None, max_length=32)  # the current claim's
    created_at: datetime
    updated_at: datetime
    sent_at: datetime | None = None


class AlertAttempt(SQLModel, table=True):
    """Every delivery attempt, successful or not: the history on the monitor page."""

    __tablename__ = "alert_attempt"

    id: int | None = Field(default=None, primary_key=True)
    notification_id: int = Field(
        foreign_key="alert_notification.id", index=True, ondelete="CASCADE"
    )
    rule: str = Field(max_length=32)
    channel: str = Field(max_length=16)
    result: str = Field(max_length=16)  # sent | failed
    error: str | None = Field(default=None, max_length=500)
    attempted_at: datetime = Field(index=True)


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


def table_of(model: type[SQLModel]) -> Table:
    """The Core table of a table model, for Core statements (SQLModel does not type
    ``Model.__table__``)."""
    mapper = sqlalchemy.inspect(model, raiseerr=False)
    table = getattr(mapper, "local_table", None)
    if not isinstance(table, Table):
        raise TypeError(f"{model.__name__} is not a table model")
    return table


class PeriodicClaim(SQLModel, table=True):
    """A job that must run once per period across every worker and instance.

    The heartbeat ping (the synthetic probe, each channel's digest) runs in every worker's
    alert loop; the one whose ``UPDATE ... WHERE due_at <= db_now()`` changes the row does
    the work, so the outside watcher hears one ping per interval however many processes
    there are.
    ``due_at`` is on the database's clock (``chatmon.services.alerts.db_clock``).
    ``last_*`` records how the latest run went (shown by /health and the Alerts panel).
    """

    __tablename__ = "periodic_claim"

    name: str = Field(primary_key=True, max_length=32)  # heartbeat | probe | digest:daily:08:email
    due_at: datetime
    claim_token: str | None = Field(default=None, max_length=32)
    last_result: str | None = Field(default=None, max_length=16)  # sent | failed
    last_error: str | None = Field(default=None, max_length=300)
    last_run_at: datetime | None = None
    consecutive_failures: int = 0  # the probe's, for PROBE_FAILURES


class AlertSilence(SQLModel, table=True):
    """A rule silenced until a moment, by someone, for a reason.

    While a silence holds, the rule's state still moves (firing, resolved) and its
    messages are recorded with the silence noted, but no channel is sent them: who
    silenced it knows, and the history shows what was held back. ``cleared_at`` ends a
    silence early (``alerts unsilence``).
    """

    __tablename__ = "alert_silence"

    id: int | None = Field(default=None, primary_key=True)
    rule: str = Field(max_length=32, index=True)
    until: datetime = Field(index=True)
    reason: str = Field(max_length=200)
    created_by: str = Field(max_length=64)
    created_at: datetime
    cleared_at: datetime | None = None


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
