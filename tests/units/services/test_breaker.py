"""The circuit breaker's state machine, on a clock the test moves."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY

from chatmon.services import breaker as breakers
from chatmon.services.breaker import BreakerState, CircuitBreaker
from chatmon.services.errors import ErrorCategory, LLMCallError

FAIL = ErrorCategory.SERVER_ERROR


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


def make(clock: Clock, threshold: int = 3, reset: float = 30.0) -> CircuitBreaker:
    model = f"test/{uuid.uuid4().hex[:8]}"
    return CircuitBreaker(model, failure_threshold=threshold, reset_seconds=reset, clock=clock)


def gauge(model: str) -> float | None:
    return REGISTRY.get_sample_value("chatmon_circuit_breaker_state", {"model": model})


def fail_times(breaker: CircuitBreaker, n: int, category: ErrorCategory = FAIL) -> None:
    for _ in range(n):
        breaker.record_failure(breaker.acquire(), category)


def test_breaker_opens_after_threshold_consecutive_failures(clock: Clock) -> None:
    breaker = make(clock, threshold=3)
    fail_times(breaker, 2)
    assert breaker.state is BreakerState.CLOSED
    fail_times(breaker, 1)
    assert breaker.state is BreakerState.OPEN
    assert gauge(breaker.model) == 2


def test_breaker_success_resets_the_count(clock: Clock) -> None:
    breaker = make(clock, threshold=3)
    fail_times(breaker, 2)
    breaker.record_success(breaker.acquire())
    fail_times(breaker, 2)
    assert breaker.state is BreakerState.CLOSED


@pytest.mark.parametrize(
    "category",
    [ErrorCategory.BAD_REQUEST, ErrorCategory.CONTEXT_LENGTH, ErrorCategory.CONTENT_FILTER],
)
def test_breaker_ignores_failures_of_the_request_itself(
    clock: Clock, category: ErrorCategory
) -> None:
    breaker = make(clock, threshold=2)
    fail_times(breaker, 5, category)
    assert breaker.state is BreakerState.CLOSED


def test_open_breaker_refuses_with_time_until_trial(clock: Clock) -> None:
    breaker = make(clock, threshold=1, reset=30)
    fail_times(breaker, 1)
    clock.now += 10
    with pytest.raises(LLMCallError) as caught:
        breaker.acquire()
    assert caught.value.category is ErrorCategory.CIRCUIT_OPEN
    assert caught.value.retry_after == pytest.approx(20)


def test_half_open_lets_exactly_one_trial_through(clock: Clock) -> None:
    breaker = make(clock, threshold=1, reset=30)
    fail_times(breaker, 1)
    clock.now += 30
    assert breaker.state is BreakerState.HALF_OPEN
    assert gauge(breaker.model) == 1
    trial = breaker.acquire()
    assert trial.trial and not breaker.allows_retry(trial)
    with pytest.raises(LLMCallError):
        breaker.acquire()


def test_successful_trial_closes(clock: Clock) -> None:
    breaker = make(clock, threshold=1, reset=30)
    fail_times(breaker, 1)
    clock.now += 30
    breaker.record_success(breaker.acquire())
    assert breaker.state is BreakerState.CLOSED
    assert gauge(breaker.model) == 0


def test_failed_trial_reopens_for_another_period(clock: Clock) -> None:
    breaker = make(clock, threshold=3, reset=30)
    fail_times(breaker, 3)
    clock.now += 30
    breaker.record_failure(breaker.acquire(), FAIL)
    assert breaker.state is BreakerState.OPEN
    clock.now += 29
    assert breaker.state is BreakerState.OPEN
    clock.now += 1
    assert breaker.state is BreakerState.HALF_OPEN


def test_cancelled_trial_frees_the_slot(clock: Clock) -> None:
    breaker = make(clock, threshold=1, reset=30)
    fail_times(breaker, 1)
    clock.now += 30
    breaker.release(breaker.acquire())
    assert breaker.acquire().trial


def test_verdict_of_a_request_older_than_the_state_is_ignored(clock: Clock) -> None:
    breaker = make(clock, threshold=1, reset=30)
    slow = breaker.acquire()  # started while closed, ends after the breaker opened
    fail_times(breaker, 1)
    breaker.record_success(slow)
    assert breaker.state is BreakerState.OPEN


def test_no_retry_once_the_breaker_has_opened(clock: Clock) -> None:
    breaker = make(clock, threshold=1)
    permit = breaker.acquire()
    assert breaker.allows_retry(permit)
    fail_times(breaker, 1)
    assert not breaker.allows_retry(permit)


async def test_gauge_turns_half_open_on_time_without_traffic() -> None:
    breaker = CircuitBreaker("test/timer", failure_threshold=1, reset_seconds=0.05)
    breaker.record_failure(breaker.acquire(), FAIL)
    assert gauge("test/timer") == 2
    await asyncio.sleep(0.15)
    assert gauge("test/timer") == 1


@pytest.fixture
def registered_model() -> Iterator[str]:
    """A model in the process-wide registry, removed afterwards (others read snapshot())."""
    model = f"test/{uuid.uuid4().hex[:8]}"
    yield model
    breakers.discard(model)


def test_snapshot_names_every_model_state(registered_model: str) -> None:
    model = registered_model
    breaker = breakers.for_model(model, failure_threshold=1, reset_seconds=60)
    assert breakers.for_model(model, failure_threshold=9, reset_seconds=1) is breaker
    assert breakers.snapshot()[model] == "closed"
    breaker.record_failure(breaker.acquire(), FAIL)
    assert breakers.snapshot()[model] == "open"
    assert breakers.worst_state() is BreakerState.OPEN
