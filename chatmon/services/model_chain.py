"""Which models a reply asks, in which order, and what the chat says when one hands over.

The chain for now is the model for now (LLM_MODEL, or BUDGET_FALLBACK_MODEL once a
budget is spent and BUDGET_ACTION=fallback), then each model of LLM_FALLBACK_MODELS not
already in it. A model that fails before any text has streamed, in a way another model
might not (see :func:`falls_back`), hands the request to the next one; the turn
service (``chatmon.services.turn``) walks the chain, this module only decides.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

from chatmon.observability import series
from chatmon.services.budget import BudgetGate
from chatmon.services.errors import ErrorCategory, LLMCallError
from chatmon.services.llm import LLMClient
from chatmon.services.stream_stats import StreamStats

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class ModelChain:
    """The models of the process, and the budget that picks the first of them.

    Args:
        client: LLM_MODEL's client.
        budget: the budget gate; None = no budgets.
        budget_fallback: BUDGET_FALLBACK_MODEL's client, first once a budget is spent
            when the action is ``fallback``.
        fallbacks: LLM_FALLBACK_MODELS' clients in order, each behind its own breaker.
    """

    client: LLMClient
    budget: BudgetGate | None = None
    budget_fallback: LLMClient | None = None
    fallbacks: Sequence[LLMClient] = ()

    def for_now(self) -> tuple[tuple[LLMClient, ...], str]:
        """The models to try in order, and the budget's notice ("" when none applies)."""
        first, notice = self._first_for_now()
        rest = (c for c in self.fallbacks if c.model != first.model)
        return (first, *rest), notice

    def _first_for_now(self) -> tuple[LLMClient, str]:
        if self.budget is None or self.budget_fallback is None:
            return self.client, ""
        decision = self.budget.current()
        if decision.action != "fallback":
            return self.client, ""
        return self.budget_fallback, (
            f"The {decision.period} budget is used up: this reply comes from "
            f"{self.budget_fallback.model}, a cheaper model, until it resets."
        )


def falls_back(error: LLMCallError) -> bool:
    """Whether a failure before any text hands the request to the next model: an open
    breaker, or a transient failure (rate limit, timeout, connection, server error)
    that outlasted its retries. A request the provider refused for what it is (too long,
    unsafe, bad) or a rejected key would fail the same way anywhere, or needs a person."""
    return error.retryable or error.category is ErrorCategory.CIRCUIT_OPEN


def fallback_notice(budget_notice: str, failed: Sequence[str], serving: str) -> str:
    """What the chat says under a reply from a fallback model (after any budget notice)."""
    verb = "is" if len(failed) == 1 else "are"
    said = f"{' and '.join(failed)} {verb} not answering right now: this reply comes from"
    return f"{budget_notice} {said} the fallback model {serving}.".strip()


def exhausted_notice(budget_notice: str, tried: Sequence[str]) -> str:
    """What the chat says under the error when every model of the chain failed."""
    return f"{budget_notice} {' and '.join(tried)} are not answering right now.".strip()


def hand_over(*, failed: str, to: str, error: LLMCallError, stats: StreamStats) -> StreamStats:
    """Log and count a hand-over from model ``failed`` to ``to``; the stats ``to`` fills.

    The row is the serving model's: its provider, tokens, cost and retries; the
    latency and time to first token still count from the request's start (what the
    person waited). The failed model's retries go to its own retries series.
    """
    reason = error.category.value
    # an open breaker hands every request over: the breaker's opening was the news
    log.log(
        logging.INFO if error.category is ErrorCategory.CIRCUIT_OPEN else logging.WARNING,
        "model %s failed (%s, %d retries): falling back to %s",
        failed,
        reason,
        stats.retries,
        to,
    )
    if stats.retries:
        series.LLM_RETRIES.labels(model=failed).inc(stats.retries)
    series.LLM_FALLBACK_USED.labels(model=to, reason=reason).inc()
    return stats.handed_over()
