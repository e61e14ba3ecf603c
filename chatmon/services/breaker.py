"""Circuit breaker per model, shared by every chat session of the process.

closed     requests flow; ``failure_threshold`` consecutive failed requests open it.
open       requests fail at once with ``circuit_open`` (no provider call) until
           ``reset_seconds`` have passed, then it turns half-open.
half_open  exactly one trial request goes through (without retries); its success
           closes the breaker, its failure opens it again for ``reset_seconds``.

A verdict counts for the state it was issued in: a request that started before the
breaker opened cannot close it (or re-open it) when it finally ends. Only failures
that say something about the provider count (see :data:`PROVIDER_FAILURES`); a
request the provider refused as too long or unsafe proves it is up.

``chatmon_circuit_breaker_state{model}`` follows every transition, including the
timed open -> half-open one. Other parts of the app read :func:`snapshot`.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum

from chatmon.observability import series
from chatmon.services.errors import ErrorCategory, LLMCallError

# Failures that say the provider (not this one request) is in trouble.
PROVIDER_FAILURES: frozenset[ErrorCategory] = frozenset(
    {
        ErrorCategory.RATE_LIMIT,
        ErrorCategory.TIMEOUT,
        ErrorCategory.CONNECTION,
        ErrorCategory.SERVER_ERROR,
        ErrorCategory.AUTH,
    }
)


class BreakerState(StrEnum):
    """The three states, as shown on /health and the monitor page."""

    CLOSED = "closed"
    HALF_OPEN = "half_open"
    OPEN = "open"


GAUGE_VALUES: dict[BreakerState, int] = {
    BreakerState.CLOSED: 0,
    BreakerState.HALF_OPEN: 1,
    BreakerState.OPEN: 2,
}


@dataclass(frozen=True)
class Permit:
    """Leave to call the provider, handed out by :meth:`CircuitBreaker.acquire`."""

    generation: int  # the breaker's state generation when it was issued
    trial: bool  # the one half-open trial request


class CircuitBreaker:
    """The breaker of one model. Thread-safe; cheap enough to consult on every request."""

    def __init__(
        self,
        model: str,
        *,
        failure_threshold: int,
        reset_seconds: float,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.model = model
        self.failure_threshold = failure_threshold
        self.reset_seconds = reset_seconds
        self._clock = clock
        self._lock = threading.Lock()
        self._state = BreakerState.CLOSED
        self._generation = 0
        self._failures = 0
        self._opened_at = 0.0
        self._trial_in_flight = False
        series.CIRCUIT_BREAKER_STATE.labels(model=model).set(0)

    @property
    def state(self) -> BreakerState:
        """The state now (an open breaker whose time is up reads as half-open)."""
        with self._lock:
            self._refresh()
            return self._state

    def acquire(self) -> Permit:
        """Leave for one request.

        Raises:
            LLMCallError: ``circuit_open``, with ``retry_after`` = seconds until a trial.
        """
        with self._lock:
            self._refresh()
            if self._state is BreakerState.CLOSED:
                return Permit(self._generation, trial=False)
            if self._state is BreakerState.HALF_OPEN and not self._trial_in_flight:
                self._trial_in_flight = True
                return Permit(self._generation, trial=True)
            remaining = self._opened_at + self.reset_seconds - self._clock()
        raise LLMCallError(ErrorCategory.CIRCUIT_OPEN, retry_after=max(remaining, 1.0))

    def allows_retry(self, permit: Permit) -> bool:
        """Whether a request may retry: never the trial, never once the breaker has moved."""
        with self._lock:
            return not permit.trial and permit.generation == self._generation

    def record_success(self, permit: Permit) -> None:
        """The provider answered: reset the failure count, close after a good trial."""
        with self._lock:
            if permit.generation != self._generation:
                return
            self._failures = 0
            if permit.trial:
                self._transition(BreakerState.CLOSED)

    def record_failure(self, permit: Permit, category: ErrorCategory) -> None:
        """A request failed; provider failures count towards opening."""
        if category not in PROVIDER_FAILURES:
            self.record_success(permit)
            return
        with self._lock:
            if permit.generation != self._generation:
                return
            self._failures += 1
            if permit.trial or self._failures >= self.failure_threshold:
                self._open()

    def release(self, permit: Permit) -> None:
        """The request ended without a verdict (cancelled before any answer)."""
        with self._lock:
            if permit.trial and permit.generation == self._generation:
                self._trial_in_flight = False

    # ----- internals (lock held) ---------------------------------------------------
    def _refresh(self) -> None:
        if (
            self._state is BreakerState.OPEN
            and self._clock() - self._opened_at >= self.reset_seconds
        ):
            self._transition(BreakerState.HALF_OPEN)

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._transition(BreakerState.OPEN)
        self._schedule_half_open()

    def _transition(self, state: BreakerState) -> None:
        self._state = state
        self._generation += 1
        self._failures = 0
        self._trial_in_flight = False
        series.CIRCUIT_BREAKER_STATE.labels(model=self.model).set(GAUGE_VALUES[state])

    def _schedule_half_open(self) -> None:
        """Move the gauge to half-open on time even when no request comes to look."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # not on an event loop: the next look refreshes it
            return
        loop.call_later(self.reset_seconds, self._refresh_locked)

    def _refresh_locked(self) -> None:
        with self._lock:
            self._refresh()


_breakers: dict[str, CircuitBreaker] = {}
_registry_lock = threading.Lock()


def for_model(model: str, *, failure_threshold: int, reset_seconds: float) -> CircuitBreaker:
    """The process-wide breaker of ``model`` (created on first use)."""
    with _registry_lock:
        breaker = _breakers.get(model)
        if breaker is None:
            breaker = CircuitBreaker(
                model, failure_threshold=failure_threshold, reset_seconds=reset_seconds
            )
            _breakers[model] = breaker
        return breaker


def discard(model: str) -> None:
    """Forget ``model``'s breaker (a model no longer served; tests)."""
    with _registry_lock:
        _breakers.pop(model, None)


def snapshot() -> dict[str, str]:
    """Every model's breaker state in this process: ``{model: closed|half_open|open}``.

    For ``/health`` and the monitor page. With several workers each has its own
    breakers; this is the answering worker's view.
    """
    with _registry_lock:
        breakers = list(_breakers.values())
    return {breaker.model: breaker.state.value for breaker in breakers}


def worst_state() -> BreakerState:
    """The most degraded state across models (closed when there are none)."""
    states = set(snapshot().values())
    for state in (BreakerState.OPEN, BreakerState.HALF_OPEN):
        if state.value in states:
            return state
    return BreakerState.CLOSED
