"""Failed sign-ins, counted in the database so every worker and instance sees them.

Two counters per attempt: the client's address and the account being tried. Each
failure past a few free ones blocks the key for a delay that doubles with every
further failure, up to a cap; a key quiet for ``MEMORY_SECONDS`` starts again from
zero. Attempts while blocked are refused without checking the password and are not
counted, so a blocked client costs one indexed read and no write.

Why the database and not Redis: it is the one store every deployment has and every
instance shares (Redis is optional, and only needed for several workers), and the
throttle bounds its own write rate.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import case, delete, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session

from chatmon.models import LoginFailure, table_of

MEMORY_SECONDS = 3600.0  # a key without a failure for this long is forgotten


@dataclass(frozen=True)
class Policy:
    """How fast one key's delay grows: free failures, then base x 2^n, capped."""

    free_failures: int
    base_delay: float
    max_delay: float

    def delay_after(self, failures: int) -> float:
        """Seconds the key is blocked after its ``failures``-th failure in a row."""
        if failures < self.free_failures:
            return 0.0
        return min(self.max_delay, self.base_delay * 2.0 ** min(failures - self.free_failures, 30))


# A client address is the strong limit: 4 free failures, then 2 s, 4 s ... 15 min.
IP_POLICY = Policy(free_failures=5, base_delay=2.0, max_delay=900.0)
# An account is tried from anywhere: it slows down later and is capped low (5 min), and
# never applies to a browser that signed in to that account before (device cookie), so
# strangers cannot keep its owner out.
ACCOUNT_POLICY = Policy(free_failures=10, base_delay=1.0, max_delay=300.0)


def _insert(session: Session) -> sqlite.Insert | postgresql.Insert:
    name = session.get_bind().dialect.name
    if name == "sqlite":
        return sqlite.insert(table_of(LoginFailure))
    if name == "postgresql":
        return postgresql.insert(table_of(LoginFailure))
    raise NotImplementedError(f"the login throttle needs SQLite or PostgreSQL, not {name}")


def blocked_for(*, session: Session, keys: Sequence[str], now: float) -> dict[str, float]:
    """Seconds each of ``keys`` is still blocked (keys not blocked are left out)."""
    table = table_of(LoginFailure)
    rows = session.execute(
        select(table.c.key, table.c.blocked_until).where(table.c.key.in_(list(keys)))
    ).all()
    return {key: until - now for key, until in rows if until > now}


def record_failure(*, session: Session, key: str, policy: Policy, now: float) -> int:
    """Count one failure of ``key`` and block it as ``policy`` says; commits.

    Returns:
        The key's failures in a row, this one included.
    """
    table = table_of(LoginFailure)
    insert = _insert(session).values(key=key, failures=1, last_failure_at=now, blocked_until=0.0)
    statement = insert.on_conflict_do_update(
        index_elements=["key"],
        set_={
            "failures": case(
                (table.c.last_failure_at < now - MEMORY_SECONDS, 1),
                else_=table.c.failures + 1,
            ),
            "last_failure_at": now,
        },
    ).returning(table.c.failures)
    failures = int(session.execute(statement).scalar_one())
    delay = policy.delay_after(failures)
    if delay > 0:
        until = now + delay
        session.execute(
            update(table)
            .where(table.c.key == key, table.c.blocked_until < until)
            .values(blocked_until=until)
        )
    session.commit()
    return failures


def forget(*, session: Session, keys: Sequence[str]) -> None:
    """Drop the counts of ``keys`` (after a successful sign-in); commits."""
    table = table_of(LoginFailure)
    session.execute(delete(table).where(table.c.key.in_(list(keys))))
    session.commit()


def prune(*, session: Session, now: float) -> int:
    """Delete keys that are neither blocked nor remembered any more; commits."""
    table = table_of(LoginFailure)
    result = session.exec(
        delete(table).where(
            table.c.last_failure_at < now - MEMORY_SECONDS, table.c.blocked_until < now
        )
    )
    session.commit()
    return int(result.rowcount or 0)
