"""What one streamed reply cost and how long it took: :class:`StreamStats`.

Its fields are read by whoever turns a reply into an ``LLMCall`` (the turn service, the
probe); they are written only through its methods, each of which records one fact
the moment it is known, so the rules (the first token counts once; the total is the
first end; times count from ``started``) live here and nowhere else.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field


@dataclass
class StreamStats:
    """What one reply cost and how long it took; filled in while it streams.

    One per model asked: a reply handed on to a fallback model goes on with
    :meth:`handed_over`, which keeps the start (what the person waited counts from
    their request) and forgets the failed model's provider, tokens and retries.
    """

    started: float = field(default_factory=time.perf_counter)
    first_token_seconds: float | None = None
    total_seconds: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None
    cost_usd: float | None = None
    retries: int = 0
    provider: str | None = None

    def attempt(self, retries: int) -> None:
        """An attempt to open the stream begins, after ``retries`` failed ones."""
        self.retries = retries

    def opened(self, provider: str | None) -> None:
        """The provider (LiteLLM's prefix of the model; None without one) took the request."""
        self.provider = provider

    def token(self) -> None:
        """Text arrived; the first call of a reply is its time to first token."""
        if self.first_token_seconds is None:
            self.first_token_seconds = time.perf_counter() - self.started

    def used(self, *, input_tokens: int, output_tokens: int, cost_usd: float | None) -> None:
        """The provider's usage report, and its price (None: unknown, not free)."""
        self.input_tokens, self.output_tokens, self.cost_usd = input_tokens, output_tokens, cost_usd

    def finish(self) -> float:
        """The reply ended (in full, failed or stopped); the first end is its total.

        The stream ends it; a request that never reached a model (refused, or stopped
        before it was sent) is ended when its call is published. Returns the total.
        """
        if self.total_seconds is None:
            self.total_seconds = time.perf_counter() - self.started
        return self.total_seconds

    def handed_over(self) -> StreamStats:
        """Fresh stats for the next model of a fallback chain, from the same start."""
        return StreamStats(started=self.started)
