"""LoginGuard: throttled per address and per account, checked on its own threads."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import delete
from sqlalchemy.engine import Engine
from sqlmodel import Session

from chatmon.models import LoginFailure
from chatmon.services import auth
from chatmon.services.login import LoginGuard
from chatmon.services.login_throttle import ACCOUNT_POLICY, IP_POLICY

MONITOR = [
    (
        "monitor",
        auth.Gate(
            users={"alice": auth.hash_password("right", iterations=1000)},
            closed=True,
            key=b"k" * 32,
        ),
    )
]


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def executor() -> Iterator[ThreadPoolExecutor]:
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="test-login-hash")
    yield pool
    pool.shutdown()


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def guard(engine: Engine, executor: ThreadPoolExecutor, clock: Clock) -> LoginGuard:
    with Session(engine) as session:
        session.execute(delete(LoginFailure))
        session.commit()
    return LoginGuard(engine=lambda: engine, key=b"k" * 32, executor=executor, clock=clock)


async def _try(
    guard: LoginGuard,
    password: str,
    *,
    user: str = "alice",
    ip: str = "10.0.0.1",
    device: str | None = None,
):
    return await guard.attempt(
        gates=MONITOR, user=user, password=password, client_ip=ip, trusted_account=device
    )


async def test_right_password_signs_in_with_a_credential(guard: LoginGuard) -> None:
    result = await _try(guard, "right")
    assert result.ok and result.user == "alice" and result.area == "monitor"
    assert result.credential == MONITOR[0][1].fingerprint("alice")


async def test_address_is_blocked_after_its_free_failures(guard: LoginGuard, clock: Clock) -> None:
    for _ in range(IP_POLICY.free_failures):
        assert (await _try(guard, "guess", user="someone")).retry_after == 0
    refused = await _try(guard, "right")  # even the right password waits now
    assert not refused.ok and refused.retry_after == pytest.approx(IP_POLICY.base_delay)
    assert (await _try(guard, "right", ip="10.0.0.2")).ok  # another client is not affected
    clock.now += IP_POLICY.base_delay + 0.1
    assert (await _try(guard, "right")).ok


async def test_account_is_blocked_across_addresses_but_not_for_its_own_browser(
    guard: LoginGuard,
) -> None:
    for n in range(ACCOUNT_POLICY.free_failures):  # a distributed guesser: a new address each time
        assert (await _try(guard, f"guess{n}", ip=f"10.1.0.{n}")).retry_after == 0
    stranger = await _try(guard, "right", ip="10.2.0.1")
    assert not stranger.ok and stranger.retry_after > 0
    own_browser = await _try(guard, "right", ip="10.2.0.2", device=stranger.account)
    assert own_browser.ok  # the device cookie of an earlier sign-in is not locked out
    assert (await _try(guard, "right", ip="10.2.0.3")).ok  # and the success cleared the count


async def test_account_lockout_is_a_delay_not_a_ban(guard: LoginGuard, clock: Clock) -> None:
    for n in range(ACCOUNT_POLICY.free_failures + 20):
        await _try(guard, "guess", ip=f"10.3.{n // 250}.{n % 250}")
        clock.now += ACCOUNT_POLICY.max_delay + 1  # the attacker waits out every block
    clock.now += 1
    result = await _try(guard, "right", ip="10.4.0.1")
    assert result.ok


async def test_unknown_and_known_user_names_count_and_block_alike(guard: LoginGuard) -> None:
    known = [
        await _try(guard, "guess", user="alice", ip=f"10.5.0.{n}")
        for n in range(ACCOUNT_POLICY.free_failures + 1)
    ]
    unknown = [
        await _try(guard, "guess", user="mallory", ip=f"10.6.0.{n}")
        for n in range(ACCOUNT_POLICY.free_failures + 1)
    ]
    assert [r.retry_after > 0 for r in known] == [r.retry_after > 0 for r in unknown]


async def test_shared_password_is_one_account_whatever_the_name(
    engine: Engine, executor: ThreadPoolExecutor, clock: Clock
) -> None:
    gate = auth.Gate(password="shared-secret", closed=True, key=b"k" * 32)
    guard = LoginGuard(engine=lambda: engine, key=b"k" * 32, executor=executor, clock=clock)
    with Session(engine) as session:
        session.execute(delete(LoginFailure))
        session.commit()
    for n in range(ACCOUNT_POLICY.free_failures):
        await guard.attempt(
            gates=[("monitor", gate)], user=f"name{n}", password="guess", client_ip=f"10.7.0.{n}"
        )
    result = await guard.attempt(
        gates=[("monitor", gate)], user="yet-another", password="guess", client_ip="10.7.1.1"
    )
    assert result.retry_after > 0


async def test_password_checks_run_on_the_guards_own_threads(
    guard: LoginGuard, monkeypatch: pytest.MonkeyPatch
) -> None:
    threads: list[str] = []
    gate = MONITOR[0][1]
    real = type(gate).check

    def recording(self: auth.Gate, user: str, password: str) -> str | None:
        threads.append(threading.current_thread().name)
        return real(self, user, password)

    monkeypatch.setattr(auth.Gate, "check", recording)
    await _try(guard, "guess")
    await _try(guard, "right")
    assert len(threads) == 2 and all(name.startswith("test-login-hash") for name in threads)


async def test_a_flood_is_refused_beyond_the_pending_limit(engine: Engine, clock: Clock) -> None:
    started = threading.Event()
    release = threading.Event()

    class SlowGate(auth.Gate):
        def check(self, user: str, password: str) -> str | None:
            started.set()
            release.wait(5)
            return None

    pool = ThreadPoolExecutor(max_workers=1)
    guard = LoginGuard(
        engine=lambda: engine, key=b"k" * 32, executor=pool, max_pending=2, clock=clock
    )
    gates = [("monitor", SlowGate(password="x", key=b"k"))]
    first = [
        asyncio.create_task(
            guard.attempt(gates=gates, user="u", password="p", client_ip=f"10.8.0.{n}")
        )
        for n in range(2)
    ]
    assert await asyncio.to_thread(started.wait, 10)  # the hash threads are both busy
    busy = await guard.attempt(gates=gates, user="u", password="p", client_ip="10.8.1.1")
    assert busy.retry_after > 0 and not busy.ok
    release.set()
    await asyncio.gather(*first)
    pool.shutdown()


async def test_verified_credentials_are_remembered_until_the_gate_changes(
    guard: LoginGuard, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert (await _try(guard, "right")).ok
    calls: list[str] = []
    monkeypatch.setattr(auth, "verify_password", lambda *a: calls.append("pbkdf2") or False)
    assert (await _try(guard, "right")).ok  # from memory: no PBKDF2
    assert calls == []
    changed = [
        (
            "monitor",
            auth.Gate(
                users={"alice": auth.hash_password("new", iterations=1000)},
                closed=True,
                key=b"k" * 32,
            ),
        )
    ]
    result = await guard.attempt(
        gates=changed, user="alice", password="right", client_ip="10.0.0.1"
    )
    assert not result.ok  # the password changed: memory does not count, the check ran
    assert calls == ["pbkdf2"]


async def test_throttle_failure_refuses_rather_than_guess(executor: ThreadPoolExecutor) -> None:
    def broken() -> Engine:
        raise RuntimeError("database gone")

    guard = LoginGuard(engine=broken, key=b"k" * 32, executor=executor)
    result = await _try(guard, "right")
    assert not result.ok and result.retry_after > 0


async def test_a_blocked_client_cannot_test_guesses_against_memory(guard: LoginGuard) -> None:
    """Remembered credentials spare the PBKDF2, never the throttle: otherwise a blocked
    client would learn which guess is right (200 vs 429) at no cost."""
    assert (await _try(guard, "right")).ok  # now remembered
    for _ in range(IP_POLICY.free_failures):
        await _try(guard, "guess", ip="10.9.0.1")
    refused = await _try(guard, "right", ip="10.9.0.1")
    assert not refused.ok and refused.retry_after > 0
