"""Once per period across every worker and instance: the claim behind the heartbeat.

Every worker runs the alert loop, and several instances may share the database, but the
watcher outside chatmon wants one ping per interval (Healthchecks counts pings; a
flood of them hides nothing but costs quota). So the work is claimed the way alert
transitions are: ``UPDATE periodic_claim SET due_at = db_now() + period WHERE name = :n
AND due_at <= db_now()``. The one process whose UPDATE changes the row does the work;
the others see it is not due. Times are on the database's clock, so hosts whose clocks
disagree do not both think the period is over.

A failed run releases its claim (``due_at = db_now()``): the next check, in any worker,
tries again at once instead of waiting a whole period.

A job due at moments of the calendar rather than every N seconds (the digest: 08:00
each day) passes ``first_due`` (when a new row is first due) and, on success,
``next_due_at`` (the next such moment); its claim's ``period`` is then a lease, long
enough for one run, after which a run that never finished may be taken over.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from chatmon.models import PeriodicClaim
from chatmon.services.alerts.db_clock import db_now

SENT = "sent"
FAILED = "failed"


@dataclass(frozen=True)
class LastRun:
    """How the latest claimed run went (for /health and the CLI)."""

    result: str | None  # sent | failed | None (never ran)
    error: str | None
    at: datetime | None
    due_at: datetime
    consecutive_failures: int = 0


def _ensure(*, session: Session, name: str, first_due: datetime | None = None) -> None:
    dialect = session.get_bind().dialect.name
    module = {"sqlite": sqlite, "postgresql": postgresql}.get(dialect)
    if module is None:
        raise NotImplementedError(f"periodic claims need SQLite or PostgreSQL, not {dialect}")
    statement = (
        module.insert(PeriodicClaim)
        .values(name=name, due_at=db_now() if first_due is None else first_due)
        .on_conflict_do_nothing(index_elements=["name"])
    )
    session.execute(statement)


def claim(
    *, session: Session, name: str, period: float, first_due: datetime | None = None
) -> str | None:
    """Take the run of ``name`` for the next ``period`` seconds; returns the claim's token,
    or None when another process already ran it within the period. A row made now is
    first due at ``first_due`` (default: at once). The caller commits."""
    _ensure(session=session, name=name, first_due=first_due)
    token = uuid.uuid4().hex
    changed = session.exec(
        update(PeriodicClaim)
        .where(col(PeriodicClaim.name) == name, col(PeriodicClaim.due_at) <= db_now())
        .values(due_at=db_now(period), claim_token=token)
    ).rowcount
    return token if changed == 1 else None


def finish(
    *,
    session: Session,
    name: str,
    token: str,
    error: str | None,
    retry_now: bool = True,
    next_due_at: datetime | None = None,
) -> bool:
    """Record the outcome of the run ``token`` claimed, and count consecutive failures.
    A failure makes the job due again now (``retry_now``: a heartbeat ping is retried at
    the next check; a probe waits its interval). A success makes it due at
    ``next_due_at`` when given (else the claim's period stands). Returns False if a later
    claim took the row over (its outcome stands). The caller commits."""
    values: dict[str, object] = {
        "last_result": SENT if error is None else FAILED,
        "last_error": None if error is None else error[:300],
        "last_run_at": db_now(),
    }
    if error is not None and retry_now:
        values["due_at"] = db_now()
    if error is None and next_due_at is not None:
        values["due_at"] = next_due_at
    values["consecutive_failures"] = 0 if error is None else PeriodicClaim.consecutive_failures + 1
    changed = session.exec(
        update(PeriodicClaim)
        .where(col(PeriodicClaim.name) == name, col(PeriodicClaim.claim_token) == token)
        .values(**values)
    ).rowcount
    return changed == 1


def last_run(*, session: Session, name: str) -> LastRun | None:
    """The latest recorded run of ``name``, or None if it was never claimed."""
    row = session.exec(select(PeriodicClaim).where(col(PeriodicClaim.name) == name)).first()
    if row is None:
        return None
    return LastRun(
        result=row.last_result,
        error=row.last_error,
        at=row.last_run_at,
        due_at=row.due_at,
        consecutive_failures=row.consecutive_failures,
    )
