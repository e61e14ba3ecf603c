"""chatmon's own rate limits: token buckets per browser, per client address and for the
whole process.

A bucket holds up to ``per_minute`` tokens and refills at ``per_minute / 60`` per
second, so a person may send a short burst, then one message every few seconds.
A message takes one token from each of its buckets (its browser's, its address's and
the global one), or from none: a refusal by one limit never costs the others. The
address bucket is what still counts a client that throws its identity away.

In-memory and per process: with several workers each enforces its own limits (the
global limit is then per worker). Buckets of idle sessions are dropped once full.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

_PRUNE_EVERY = 1024  # new sessions between sweeps of idle buckets


class TokenBucket:
    """``capacity`` tokens, refilled continuously at ``rate`` tokens per second."""

    __slots__ = ("capacity", "rate", "tokens", "updated")

    def __init__(self, *, capacity: float, rate: float, now: float) -> None:
        self.capacity = capacity
        self.rate = rate
        self.tokens = capacity
        self.updated = now

    def refill(self, now: float) -> None:
        """Add what has trickled in since the last look."""
        self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
        self.updated = now

    def wait_seconds(self) -> float:
        """0 when a token is available now, else how long until one is (after ``refill``)."""
        return 0.0 if self.tokens >= 1.0 else (1.0 - self.tokens) / self.rate

    @property
    def full(self) -> bool:
        return self.tokens >= self.capacity


class RateLimiter:
    """Per-session and global limits, in messages per minute (0 turns a limit off).

    Args:
        per_session_per_minute: ``RATE_LIMIT_PER_MINUTE``.
        global_per_minute: ``GLOBAL_RATE_LIMIT_PER_MINUTE``.
        clock: seconds, monotonic (tests pass a fake one).
    """

    def __init__(
        self,
        *,
        per_session_per_minute: int,
        global_per_minute: int,
        per_ip_per_minute: int = 0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._per_session = per_session_per_minute
        self._per_ip = per_ip_per_minute
        self._clock = clock
        self._lock = threading.Lock()
        self._sessions: dict[str, TokenBucket] = {}
        self._new_sessions = 0
        self._global = (
            TokenBucket(capacity=global_per_minute, rate=global_per_minute / 60, now=clock())
            if global_per_minute > 0
            else None
        )

    def acquire(self, session_id: str, *, client_ip: str = "") -> float:
        """Take a token for one message of ``session_id`` sent from ``client_ip``.

        Returns:
            0.0 when the message may go, else the seconds until the person can send again.
        """
        now = self._clock()
        with self._lock:
            candidates = (
                self._bucket(session_id, now, self._per_session),
                self._bucket("ip:" + client_ip, now, self._per_ip) if client_ip else None,
                self._global,
            )
            buckets = [b for b in candidates if b]
            for bucket in buckets:
                bucket.refill(now)
            wait = max((bucket.wait_seconds() for bucket in buckets), default=0.0)
            if wait == 0.0:
                for bucket in buckets:
                    bucket.tokens -= 1.0
            return wait

    def _bucket(self, key: str, now: float, per_minute: int) -> TokenBucket | None:
        if per_minute <= 0:
            return None
        bucket = self._sessions.get(key)
        if bucket is None:
            self._new_sessions += 1
            if self._new_sessions % _PRUNE_EVERY == 0:
                self._prune(now)
            bucket = TokenBucket(capacity=per_minute, rate=per_minute / 60, now=now)
            self._sessions[key] = bucket
        return bucket

    def _prune(self, now: float) -> None:
        """Forget sessions whose bucket has refilled: they would start full anyway."""
        for session_id, bucket in list(self._sessions.items()):
            bucket.refill(now)
            if bucket.full:
                del self._sessions[session_id]
