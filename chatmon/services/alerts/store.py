"""Alert state in the database: rule states, notifications, deliveries and attempts.

What is guaranteed, across any number of workers and instances sharing the database:

- **each rule transition is claimed exactly once.** A transition is applied only if
  the rule's ``version`` is still the one the worker read (``UPDATE ... WHERE rule = :r
  AND version = :seen``); the one worker whose UPDATE changes a row inserts the
  notification (and its deliveries) in the same transaction.
- **each delivery is sent at least once, by one lease holder at a time.** A process
  claims a delivery with ``UPDATE ... WHERE due_at <= db_now()``, which moves ``due_at``
  to the end of a lease and writes a fresh ``claim_token`` (PostgreSQL re-checks the
  WHERE clause after waiting on the row lock; SQLite runs one writer at a time), so
  while the lease is live nobody else's claim finds it due. ``due_at`` is always on the
  database's clock (:mod:`chatmon.services.alerts.db_clock`), so hosts whose clocks
  disagree still agree on whether a lease is live.
- **only the current claim records an outcome.** :func:`finish_delivery` updates the
  row only ``WHERE claim_token = :token``: a sender that was paused past its lease and
  taken over records nothing over the process that took over.

What is *not* guaranteed: exactly-once *arrival*. A process that dies after its message
left but before :func:`finish_delivery` committed is taken over when its lease ends, and
the message goes out again. The repeat carries the same dedupe key (the email's
``Message-ID``, the key in the Slack payload; see ``messages.delivery_key``), so it can
be recognised as the same alert.

Each function takes an explicit session; the caller commits. Datetimes are aware UTC.
Timestamps other than ``due_at`` (created, updated, sent, attempted) are the calling
process's clock: they are for people, and no decision between processes rests on them.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import overload

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from chatmon.models import AlertAttempt, AlertDelivery, AlertNotification, AlertRuleState
from chatmon.services.alerts.db_clock import db_now
from chatmon.services.alerts.lifecycle import RuleState
from chatmon.services.alerts.messages import AlertMessage, delivery_key
from chatmon.services.sql_time import to_utc

PENDING, SENDING, SENT, FAILED = "pending", "sending", "sent", "failed"


@overload
def as_utc(moment: datetime) -> datetime: ...
@overload
def as_utc(moment: None) -> None: ...
def as_utc(moment: datetime | None) -> datetime | None:
    """``moment`` as aware UTC (alert columns refuse naive datetimes)."""
    return None if moment is None else to_utc(moment)


# ----------------------------------------------------------------------------- rule states


def ensure_rules(*, session: Session, rules: Iterable[str], now: datetime) -> None:
    """Create the state row of every rule that has none yet (concurrency-safe)."""
    dialect = session.get_bind().dialect.name
    module = {"sqlite": sqlite, "postgresql": postgresql}.get(dialect)
    if module is None:
        raise NotImplementedError(f"alerts need SQLite or PostgreSQL, not {dialect}")
    stamp = as_utc(now)
    rows = [{"rule": rule, "created_at": stamp, "updated_at": stamp} for rule in rules]
    if rows:
        statement = module.insert(AlertRuleState).on_conflict_do_nothing(index_elements=["rule"])
        session.execute(statement, rows)


def rule_state(*, session: Session, rule: str) -> RuleState:
    """The stored state of ``rule`` (the default state if it has no row)."""
    row = session.get(AlertRuleState, rule, populate_existing=True)
    if row is None:
        return RuleState()
    return RuleState(
        firing=row.firing,
        firing_since=row.firing_since,
        notified_at=row.notified_at,
        episode_notified=row.episode_notified,
        version=row.version,
    )


def claim_transition(
    *, session: Session, rule: str, seen: RuleState, new: RuleState, now: datetime
) -> bool:
    """Store ``new`` if ``rule`` is still at ``seen.version``; True if this call won."""
    statement = (
        update(AlertRuleState)
        .where(col(AlertRuleState.rule) == rule, col(AlertRuleState.version) == seen.version)
        .values(
            firing=new.firing,
            firing_since=as_utc(new.firing_since),
            notified_at=as_utc(new.notified_at),
            episode_notified=new.episode_notified,
            version=seen.version + 1,
            updated_at=as_utc(now),
        )
    )
    return session.exec(statement).rowcount == 1


def all_states(*, session: Session) -> list[AlertRuleState]:
    """Every rule's row, for the monitor page."""
    return list(session.execute(select(AlertRuleState).order_by(AlertRuleState.rule)).scalars())


# ----------------------------------------------------------------------------- notifications


def new_claim_token() -> str:
    """A claim token: random, so no two claims (of any process) ever share one."""
    return uuid.uuid4().hex


def add_notification(
    *,
    session: Session,
    message: AlertMessage,
    value: float | None,
    threshold: float | None,
    channels: Iterable[str],
    now: datetime,
    claimed_by: str | None = None,
) -> AlertNotification:
    """Record a notification and one delivery per channel.

    The deliveries are due at once (on the database's clock), for any process to claim;
    with ``claimed_by`` (a claim token) they are instead already claimed by the caller,
    which sends them itself (a test message) and is never taken over by a check.
    """
    stamp = as_utc(now)
    note = AlertNotification(
        rule=message.rule,
        kind=message.kind,
        created_at=stamp,
        value=value,
        threshold=threshold,
        summary=message.summary[:500],
        message=message.to_json(),
    )
    session.add(note)
    session.flush()
    assert note.id is not None  # the flush assigned it
    for channel in channels:
        session.add(
            AlertDelivery(
                notification_id=note.id,
                channel=channel,
                rule=message.rule,
                status=PENDING if claimed_by is None else SENDING,
                due_at=db_now() if claimed_by is None else None,  # type: ignore[arg-type]  # SQL: the database's clock at INSERT
                claim_token=claimed_by,
                created_at=stamp,
                updated_at=stamp,
            )
        )
    return note


@dataclass(frozen=True)
class Outgoing:
    """What a claimed delivery sends: the stored message and its dedupe key."""

    message: AlertMessage
    key: str


def outgoing(*, session: Session, notification_id: int, channel: str) -> Outgoing:
    """The stored message of a notification, and the key every attempt on ``channel``
    sends it with (the same in every process: it is made of stored values only)."""
    note = session.get(AlertNotification, notification_id)
    if note is None:
        raise LookupError(f"no alert notification {notification_id}")
    key = delivery_key(notification_id=notification_id, created_at=note.created_at, channel=channel)
    return Outgoing(AlertMessage.from_json(note.message), key)


# ----------------------------------------------------------------------------- deliveries


@dataclass(frozen=True)
class DueDelivery:
    """A delivery some process should attempt now."""

    notification_id: int
    channel: str
    rule: str


@dataclass(frozen=True)
class Claim:
    """A delivery this process holds until its lease ends: ``token`` proves it."""

    notification_id: int
    channel: str
    rule: str
    attempt: int  # 1 for the first attempt, whoever made the earlier ones
    token: str


def due_deliveries(
    *, session: Session, channels: Iterable[str], now: datetime, max_age: timedelta
) -> list[DueDelivery]:
    """Deliveries on ``channels`` due now (database clock), oldest first (firing before
    resolved); those created more than ``max_age`` before ``now`` are given up."""
    names = list(channels)
    if not names:
        return []
    query = (
        select(
            col(AlertDelivery.notification_id), col(AlertDelivery.channel), col(AlertDelivery.rule)
        )
        .where(col(AlertDelivery.channel).in_(names))
        .where(col(AlertDelivery.status).in_((PENDING, SENDING, FAILED)))
        .where(col(AlertDelivery.due_at) <= db_now())
        .where(col(AlertDelivery.created_at) >= as_utc(now - max_age))
        .order_by(col(AlertDelivery.created_at), col(AlertDelivery.notification_id))
    )
    return [DueDelivery(*row) for row in session.execute(query)]


def claim_delivery(
    *, session: Session, notification_id: int, channel: str, lease: timedelta, now: datetime
) -> Claim | None:
    """Take a due delivery for sending until ``lease`` has passed on the database's clock;
    None if another process holds it (or it is no longer due)."""
    token = new_claim_token()
    statement = (
        update(AlertDelivery)
        .where(
            col(AlertDelivery.notification_id) == notification_id,
            col(AlertDelivery.channel) == channel,
            col(AlertDelivery.status).in_((PENDING, SENDING, FAILED)),
            col(AlertDelivery.due_at) <= db_now(),
        )
        .values(
            status=SENDING,
            due_at=db_now(lease.total_seconds()),
            claim_token=token,
            attempts=AlertDelivery.attempts + 1,
            updated_at=as_utc(now),
        )
        .returning(col(AlertDelivery.attempts), col(AlertDelivery.rule))
    )
    row = session.execute(statement).one_or_none()
    if row is None:
        return None
    return Claim(notification_id, channel, rule=row.rule, attempt=row.attempts, token=token)


LATE_NOTE = "outcome not recorded: the lease had passed to another process"


def finish_delivery(
    *,
    session: Session,
    claim: Claim,
    error: str | None,
    retry_after: timedelta | None,
    now: datetime,
) -> bool:
    """Record one attempt's outcome, if ``claim`` is still the delivery's current claim:
    sent (``error`` None), or failed and due again ``retry_after`` from now (database
    clock; None: never retried). Returns whether the delivery row took the outcome.

    The attempt is logged in ``alert_attempt`` either way, since it happened (a late
    sender's message may well have arrived, and the history should explain a repeat);
    a late one is marked with :data:`LATE_NOTE` and changes nothing else.
    """
    stamp = as_utc(now)
    sent = error is None
    retry = None if sent or retry_after is None else db_now(retry_after.total_seconds())
    recorded = (
        session.exec(
            update(AlertDelivery)
            .where(
                col(AlertDelivery.notification_id) == claim.notification_id,
                col(AlertDelivery.channel) == claim.channel,
                col(AlertDelivery.status) == SENDING,
                col(AlertDelivery.claim_token) == claim.token,
            )
            .values(
                status=SENT if sent else FAILED,
                due_at=retry,
                claim_token=None,
                last_error=None if sent else error,
                sent_at=stamp if sent else None,
                updated_at=stamp,
            )
        ).rowcount
        == 1
    )
    note = error if recorded else "; ".join(filter(None, (error, LATE_NOTE)))
    session.add(
        AlertAttempt(
            notification_id=claim.notification_id,
            rule=claim.rule,
            channel=claim.channel,
            result=SENT if sent else FAILED,
            error=note[:500] if note else None,
            attempted_at=stamp,
        )
    )
    return recorded


# ----------------------------------------------------------------------------- history


def recent_notifications(*, session: Session, limit: int = 20) -> list[AlertNotification]:
    """The latest notifications, newest first."""
    query = select(AlertNotification).order_by(
        col(AlertNotification.created_at).desc(), col(AlertNotification.id).desc()
    )
    return list(session.execute(query.limit(limit)).scalars())


def deliveries_of(*, session: Session, notification_ids: Iterable[int]) -> list[AlertDelivery]:
    """The deliveries of the given notifications."""
    ids = list(notification_ids)
    if not ids:
        return []
    query = select(AlertDelivery).where(col(AlertDelivery.notification_id).in_(ids))
    return list(session.execute(query).scalars())


def recent_attempts(*, session: Session, limit: int = 50) -> list[AlertAttempt]:
    """The latest delivery attempts, newest first."""
    query = select(AlertAttempt).order_by(
        col(AlertAttempt.attempted_at).desc(), col(AlertAttempt.id).desc()
    )
    return list(session.execute(query.limit(limit)).scalars())
