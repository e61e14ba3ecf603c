"""Token-bucket rate limits per session and for the process, on a clock the test moves."""

from __future__ import annotations

import pytest

from chatmon.services.ratelimit import RateLimiter


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def limiter(clock: Clock, per_session: int = 3, global_: int = 600) -> RateLimiter:
    return RateLimiter(per_session_per_minute=per_session, global_per_minute=global_, clock=clock)


def test_session_may_burst_up_to_its_limit_then_waits() -> None:
    clock = Clock()
    limits = limiter(clock, per_session=3)
    assert [limits.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limits.acquire("a") == pytest.approx(20.0)  # one token every 60/3 s


def test_refused_message_tells_the_remaining_wait() -> None:
    clock = Clock()
    limits = limiter(clock, per_session=3)
    for _ in range(3):
        limits.acquire("a")
    clock.now += 15
    assert limits.acquire("a") == pytest.approx(5.0)
    clock.now += 5
    assert limits.acquire("a") == 0.0


def test_sessions_have_separate_buckets() -> None:
    clock = Clock()
    limits = limiter(clock, per_session=1)
    assert limits.acquire("a") == 0.0
    assert limits.acquire("a") > 0
    assert limits.acquire("b") == 0.0


def test_global_limit_refuses_every_session() -> None:
    clock = Clock()
    limits = limiter(clock, per_session=10, global_=2)
    assert limits.acquire("a") == 0.0
    assert limits.acquire("b") == 0.0
    assert limits.acquire("c") == pytest.approx(30.0)


def test_global_refusal_does_not_cost_the_session_a_token() -> None:
    clock = Clock()
    limits = limiter(clock, per_session=1, global_=1)
    assert limits.acquire("a") == 0.0
    assert limits.acquire("b") > 0  # global bucket empty
    clock.now += 60  # both refilled; "b" still has its own token
    assert limits.acquire("b") == 0.0


def test_zero_turns_a_limit_off() -> None:
    clock = Clock()
    limits = limiter(clock, per_session=0, global_=0)
    assert all(limits.acquire("a") == 0.0 for _ in range(1000))


def test_idle_sessions_are_forgotten() -> None:
    clock = Clock()
    limits = limiter(clock, per_session=5)
    for i in range(3000):
        limits.acquire(f"s{i}")
        clock.now += 1
    assert len(limits._sessions) < 1100  # only the recently active ones are kept
