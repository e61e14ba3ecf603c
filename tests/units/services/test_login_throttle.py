"""Failed sign-ins counted in the database (SQLite and PostgreSQL)."""

from __future__ import annotations

import threading

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from chatmon.models import LoginFailure
from chatmon.services import login_throttle
from chatmon.services.login_throttle import ACCOUNT_POLICY, IP_POLICY, MEMORY_SECONDS, Policy


def test_policy_grows_exponentially_to_a_cap() -> None:
    policy = Policy(free_failures=3, base_delay=2.0, max_delay=30.0)
    assert [policy.delay_after(n) for n in range(1, 9)] == [0, 0, 2, 4, 8, 16, 30, 30]
    assert IP_POLICY.delay_after(10_000) == IP_POLICY.max_delay


def test_account_limit_is_gentler_than_the_address_limit() -> None:
    assert ACCOUNT_POLICY.free_failures > IP_POLICY.free_failures
    assert ACCOUNT_POLICY.max_delay < IP_POLICY.max_delay


def test_failures_block_after_the_free_ones(session: Session) -> None:
    now = 1_000_000.0
    for n in range(1, IP_POLICY.free_failures):
        assert (
            login_throttle.record_failure(session=session, key="ip:a", policy=IP_POLICY, now=now)
            == n
        )
    assert login_throttle.blocked_for(session=session, keys=["ip:a"], now=now) == {}
    login_throttle.record_failure(session=session, key="ip:a", policy=IP_POLICY, now=now)
    blocked = login_throttle.blocked_for(session=session, keys=["ip:a", "ip:b"], now=now)
    assert blocked == {"ip:a": IP_POLICY.base_delay}
    assert login_throttle.blocked_for(session=session, keys=["ip:a"], now=now + 60) == {}


def test_quiet_key_starts_again_from_one(session: Session) -> None:
    for _ in range(3):
        login_throttle.record_failure(session=session, key="k", policy=IP_POLICY, now=100.0)
    later = 100.0 + MEMORY_SECONDS + 1
    assert login_throttle.record_failure(session=session, key="k", policy=IP_POLICY, now=later) == 1


def test_forget_and_prune(session: Session) -> None:
    login_throttle.record_failure(session=session, key="a", policy=IP_POLICY, now=100.0)
    login_throttle.record_failure(session=session, key="b", policy=IP_POLICY, now=100.0)
    login_throttle.forget(session=session, keys=["a"])
    assert session.get(LoginFailure, "a") is None
    assert login_throttle.prune(session=session, now=100.0 + MEMORY_SECONDS / 2) == 0
    assert login_throttle.prune(session=session, now=100.0 + MEMORY_SECONDS + 1) == 1
    assert session.get(LoginFailure, "b", populate_existing=True) is None


def test_concurrent_failures_are_all_counted(engine: Engine) -> None:
    """Several workers failing at once: the upsert counts every one (no lost update)."""
    errors: list[BaseException] = []

    def fail_twice() -> None:
        try:
            with Session(engine) as session:
                for _ in range(2):
                    login_throttle.record_failure(
                        session=session, key="race", policy=IP_POLICY, now=500.0
                    )
        except BaseException as exc:  # noqa: BLE001 - reported below
            errors.append(exc)

    threads = [threading.Thread(target=fail_twice) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    with Session(engine) as session:
        assert session.get(LoginFailure, "race").failures == 8  # type: ignore[union-attr]  # the row exists: a None fails the test


@pytest.fixture(autouse=True)
def _fresh(session: Session) -> None:
    """Each test starts without counts (the PostgreSQL database is shared)."""
    login_throttle.forget(session=session, keys=["ip:a", "ip:b", "k", "a", "b", "race"])
