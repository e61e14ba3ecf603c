"""Alert state in the database: rule states, notifications, deliveries and attempts.

Exactly-once across workers and instances rests on two conditional UPDATEs, which
both SQLite and PostgreSQL execute atomically:

- a rule transition is applied only if the rule's ``version`` is still the one the
  worker read (``UPDATE ... WHERE rule = :r AND version = :seen``); the one worker
  whose UPDATE changes a row inserts the notification in the same transaction;
- a delivery is sent only by the worker whose ``UPDATE ... WHERE due_at <= :now``
  moved its ``due_at`` past the lease (PostgreSQL re-checks the WHERE clause after
  waiting on the row lock; SQLite runs one writer at a time), so a second worker's
  UPDATE finds nothing due.

Each function takes an explicit session; the caller commits. Datetimes are aware UTC.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from chatmon.models import AlertAttempt, AlertDelivery, AlertNotification, AlertRuleState
from chatmon.services.alerts.lifecycle import RuleState
from chatmon.services.alerts.messages import AlertMessage
from chatmon.services.sql_time import to_utc

PENDING, SENDING, SENT, FAILED = "pending", "sending", "sent", "failed"


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
    return session.execute(statement).rowcount == 1


def all_states(*, session: Session) -> list[AlertRuleState]:
    """Every rule's row, for the monitor page."""
    return list(session.execute(select(AlertRuleState).order_by(AlertRuleState.rule)).scalars())


# ----------------------------------------------------------------------------- notifications


def add_notification(
    *,
    session: Session,
    message: AlertMessage,
    value: float | None,
    threshold: float | None,
    channels: Iterable[str],
    now: datetime,
    status: str = PENDING,
) -> AlertNotification:
    """Record a notification and one delivery per channel.

    Pending deliveries are due now, for any process to claim; any other status (a
    test message being sent by its caller) is never claimed by a check.
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
    for channel in channels:
        session.add(
            AlertDelivery(
                notification_id=note.id,
                channel=channel,
                rule=message.rule,
                status=status,
                due_at=stamp if status == PENDING else None,
                created_at=stamp,
                updated_at=stamp,
            )
        )
    return note


def message_of(*, session: Session, notification_id: int) -> AlertMessage:
    """The stored message of a notification."""
    note = session.get(AlertNotification, notification_id)
    if note is None:
        raise LookupError(f"no alert notification {notification_id}")
    return AlertMessage.from_json(note.message)


# ----------------------------------------------------------------------------- deliveries


@dataclass(frozen=True)
class DueDelivery:
    """A delivery some process should attempt now."""

    notification_id: int
    channel: str
    rule: str


def due_deliveries(
    *, session: Session, channels: Iterable[str], now: datetime, max_age: timedelta
) -> list[DueDelivery]:
    """Deliveries on ``channels`` due at ``now``, oldest first (firing before resolved)."""
    names = list(channels)
    if not names:
        return []
    stamp = as_utc(now)
    query = (
        select(AlertDelivery.notification_id, AlertDelivery.channel, AlertDelivery.rule)
        .where(col(AlertDelivery.channel).in_(names))
        .where(col(AlertDelivery.status).in_((PENDING, SENDING, FAILED)))
        .where(col(AlertDelivery.due_at) <= stamp)
        .where(col(AlertDelivery.created_at) >= as_utc(now - max_age))
        .order_by(col(AlertDelivery.created_at), col(AlertDelivery.notification_id))
    )
    return [DueDelivery(*row) for row in session.execute(query)]


def claim_delivery(
    *, session: Session, notification_id: int, channel: str, now: datetime, lease: timedelta
) -> int | None:
    """Take a due delivery for sending; returns its attempt number, None if another
    process took it first (or it is no longer due)."""
    stamp = as_utc(now)
    statement = (
        update(AlertDelivery)
        .where(
            col(AlertDelivery.notification_id) == notification_id,
            col(AlertDelivery.channel) == channel,
            col(AlertDelivery.status).in_((PENDING, SENDING, FAILED)),
            col(AlertDelivery.due_at) <= stamp,
        )
        .values(
            status=SENDING,
            due_at=as_utc(now + lease),
            attempts=AlertDelivery.attempts + 1,
            updated_at=stamp,
        )
        .returning(AlertDelivery.attempts)
    )
    return session.execute(statement).scalar_one_or_none()


def finish_delivery(
    *,
    session: Session,
    notification_id: int,
    channel: str,
    rule: str,
    error: str | None,
    now: datetime,
    retry_at: datetime | None,
) -> None:
    """Record one attempt's outcome: sent (``error`` None) or failed, retried at ``retry_at``."""
    stamp = as_utc(now)
    sent = error is None
    session.execute(
        update(AlertDelivery)
        .where(
            col(AlertDelivery.notification_id) == notification_id,
            col(AlertDelivery.channel) == channel,
        )
        .values(
            status=SENT if sent else FAILED,
            due_at=None if sent else as_utc(retry_at),
            last_error=None if sent else error,
            sent_at=stamp if sent else None,
            updated_at=stamp,
        )
    )
    session.add(
        AlertAttempt(
            notification_id=notification_id,
            rule=rule,
            channel=channel,
            result=SENT if sent else FAILED,
            error=error,
            attempted_at=stamp,
        )
    )


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
