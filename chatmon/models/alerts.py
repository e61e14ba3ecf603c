"""The alert loop's state, shared by every worker and instance through the database: each
rule's memory, the notifications and their deliveries and attempts, silences, and the
once-per-period claims (heartbeat, probe, digests)."""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Field, SQLModel


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
