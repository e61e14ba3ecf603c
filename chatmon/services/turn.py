"""One user request to the model: admission, the streamed reply, and exactly one LLMCall event.

This is the chat's request path without any UI: ``ChatState`` forwards the text into
the page and saves messages; benchmarks and tests drive it directly. Every request
ends in exactly one :class:`~chatmon.services.events.LLMCall` (ok, error or
cancelled), published when the ``async with`` block closes, including requests
refused by chatmon's own rate limits or by an open circuit breaker, which never
reach the provider.

With ``LLM_FALLBACK_MODELS``, a request whose model fails before any text has streamed
(its breaker is open, or a transient failure outlasted its retries) is sent on to the
next model, with that model's own breaker and retries: the upstream sees the primary
once plus its retries, then each fallback once plus its retries, never more. The one
LLMCall names the model that served it (or the last one tried) and says it was a
fallback; the chat's notice says which model answered.

Example:
    >>> async with service.reply(request) as reply:
    ...     async for text in reply:
    ...         show(text)
    >>> reply.result.final_text()
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator, AsyncIterator, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from types import TracebackType

from chatmon.models import utc_now
from chatmon.observability import series
from chatmon.observability.call_status import CallStatus
from chatmon.observability.log_context import log_context
from chatmon.services import events
from chatmon.services.budget import BudgetGate
from chatmon.services.errors import ErrorCategory, LLMCallError, user_message
from chatmon.services.events import LLMCall
from chatmon.services.history import ModelMessage, build_messages
from chatmon.services.llm import LLMClient
from chatmon.services.model_chain import (
    ModelChain,
    exhausted_notice,
    fallback_notice,
    falls_back,
    hand_over,
)
from chatmon.services.prompts import SystemPrompt, SystemPromptSource
from chatmon.services.ratelimit import RateLimiter
from chatmon.services.stream_stats import StreamStats
from chatmon.settings import Settings

STOPPED_MARKER = "\n\n*(stopped)*"
INTERRUPTED_MARKER = "*(reply interrupted)*"


def new_correlation_id() -> str:
    """A short random id that ties a reply, its LLMCall, its trace and its rating together."""
    return uuid.uuid4().hex[:16]


@dataclass(frozen=True)
class TurnRequest:
    """What the chat asks for: the conversation so far (last turn = the user's message)."""

    session_id: str  # the browser's owner key (a keyed hash); rate limits apply per session
    conversation_id: str
    history: list[ModelMessage]
    temperature: float
    correlation_id: str = field(default_factory=new_correlation_id)


@dataclass
class TurnResult:
    """How a request ended; filled in while it streams, final once the block closes."""

    correlation_id: str
    text: str = ""
    status: CallStatus = CallStatus.OK  # OK, ERROR or CANCELLED
    error: LLMCallError | None = None
    stats: StreamStats = field(default_factory=StreamStats)
    started_at: datetime = field(default_factory=utc_now)
    model: str = ""  # the model that served it, or was asked last (before any: LLM_MODEL)
    notice: str = ""  # a small note for the chat (e.g. answered by the fallback model)
    fallback: bool = False  # a model of LLM_FALLBACK_MODELS served it (or was tried last)

    @property
    def category(self) -> ErrorCategory | None:
        """The error category, or None when the request did not fail."""
        return self.error.category if self.error else None

    def final_text(self) -> str:
        """The reply as it should be saved and shown once finished.

        A reply cut short keeps what arrived (never repeated) and says why: a
        ``(stopped)`` marker for a person's Stop, or an ``(reply interrupted)``
        marker plus the category's message for a failure after the first token.
        """
        if self.status == CallStatus.CANCELLED:
            return self.text + STOPPED_MARKER
        if self.error is None:
            return self.text
        message = user_message(self.error.category, retry_after=self.error.retry_after)
        if not self.text:
            return message
        return f"{self.text}\n\n{INTERRUPTED_MARKER} {message}"


@dataclass(frozen=True)
class ReplyPlan:
    """Everything one admitted request's reply needs, resolved when it is asked for.

    Read once, so the prompt a reply was sent with is the one its call names, and the
    models it asks are the ones the budget chose at that moment.
    """

    prompt: SystemPrompt
    messages: list[dict[str, str]]  # what every model of the chain is sent (not changed)
    chain: tuple[LLMClient, ...]  # the models to try in order (see model_chain)
    budget_notice: str  # the budget's note for the chat ("" when none applies)
    default_model: str  # LLM_MODEL: what the call names until a model is asked


class TurnService:
    """Runs user requests against the process's models.

    Args:
        settings: the configuration (model name, history window).
        client: streams from the provider; its circuit breaker, if any, is shared by
            every session of the process.
        prompts: the hot-reloaded system prompt.
        limiter: chatmon's own rate limits (per session and global); None = unlimited.
        budget: the budget gate (``BUDGET_ACTION`` at 100 %); None = no budgets.
        fallback: the client of ``BUDGET_FALLBACK_MODEL``, used once a budget is spent
            when the action is ``fallback``.
        fallbacks: the clients of ``LLM_FALLBACK_MODELS`` in order, each behind its own
            breaker, asked when the model before them fails (see
            :func:`~chatmon.services.model_chain.falls_back`).
    """

    def __init__(
        self,
        *,
        settings: Settings,
        client: LLMClient,
        prompts: SystemPromptSource,
        limiter: RateLimiter | None = None,
        budget: BudgetGate | None = None,
        fallback: LLMClient | None = None,
        fallbacks: Sequence[LLMClient] = (),
    ) -> None:
        self._max_history = settings.max_history_messages
        self._model = client.model
        self._prompts = prompts
        self._limiter = limiter
        self._budget = budget
        self._chain = ModelChain(
            client=client, budget=budget, budget_fallback=fallback, fallbacks=tuple(fallbacks)
        )

    def reply(self, request: TurnRequest) -> ReplyStream:
        """The reply to an admitted ``request`` (see :meth:`admit`); use it as
        ``async with`` and iterate it for text."""
        prompt = self._prompts.current()
        chain, budget_notice = self._chain.for_now()
        messages = build_messages(
            system_prompt=prompt.text, history=request.history, max_history=self._max_history
        )
        plan = ReplyPlan(
            prompt=prompt,
            messages=messages,
            chain=chain,
            budget_notice=budget_notice,
            default_model=self._model,
        )
        return ReplyStream(request, plan)

    def admit(self, request: TurnRequest, *, client_ip: str = "") -> LLMCallError | None:
        """Count ``request`` against chatmon's own rate limits, before anything is saved.

        Returns None when it may go on (then stream it with :meth:`reply`), or the
        refusal, which is already recorded as one call (``rate_limited_local``). Limits
        apply per browser (``request.session_id``) and per client address, so a client
        that drops its identity cookie is still counted.
        """
        refusal = self._rate_limited(request, client_ip) or self._over_budget()
        if refusal is None:
            return None
        result = TurnResult(
            correlation_id=request.correlation_id,
            status=CallStatus.ERROR,
            error=refusal,
            model=self._model,
        )
        publish_result(request, result, self._prompts.current())
        return refusal

    def _rate_limited(self, request: TurnRequest, client_ip: str) -> LLMCallError | None:
        if self._limiter is None:
            return None
        wait = self._limiter.acquire(request.session_id, client_ip=client_ip)
        if wait <= 0:
            return None
        series.RATE_LIMITED.inc()
        return LLMCallError(ErrorCategory.RATE_LIMITED_LOCAL, retry_after=wait)

    def _over_budget(self) -> LLMCallError | None:
        """``budget_exceeded`` when a budget is used up and BUDGET_ACTION=refuse."""
        if self._budget is None:
            return None
        decision = self._budget.current()
        if decision.action != "refuse":
            return None
        return LLMCallError(ErrorCategory.BUDGET_EXCEEDED, retry_after=decision.seconds_to_reset())


def publish_result(request: TurnRequest, result: TurnResult, prompt: SystemPrompt) -> None:
    """Publish the one :class:`LLMCall` of ``request``, which ended as ``result``.

    A request that never reached a model (refused, or stopped before it was sent)
    ends here: its duration runs from the request until now.
    """
    stats = result.stats
    total_seconds = stats.finish()
    events.publish_call(
        LLMCall(
            correlation_id=request.correlation_id,
            session_id=request.session_id,
            conversation_id=request.conversation_id,
            model=result.model,
            provider=stats.provider,
            started_at=result.started_at,
            first_token_seconds=stats.first_token_seconds,
            total_seconds=total_seconds,
            input_tokens=stats.input_tokens,
            output_tokens=stats.output_tokens,
            cost_usd=stats.cost_usd,
            status=result.status,
            error_category=result.category.value if result.category else None,
            retries=stats.retries,
            temperature=request.temperature,
            fallback=result.fallback,
            prompt_version=prompt.version,
            input_text=request.history[-1].content if request.history else "",
            output_text=result.text,
        )
    )


class ReplyStream:
    """One request in flight: iterate for text; leaving the ``async with`` publishes the call.

    It owns the request from here on: it streams from the models of its
    :class:`ReplyPlan` in turn, fills in ``result``, and publishes the one call.
    Failures never escape: they end the iteration and land in ``result`` (status
    "error" and the category). Cancellation (a person's Stop) propagates as usual
    and is recorded as "cancelled".
    """

    def __init__(self, request: TurnRequest, plan: ReplyPlan) -> None:
        self._request = request
        self._plan = plan
        self.result = TurnResult(correlation_id=request.correlation_id, model=plan.default_model)
        self._chunks: AsyncGenerator[str, None] | None = None
        self._exhausted = False  # the reply ended (completely or in an error)
        self._published = False

    async def __aenter__(self) -> ReplyStream:
        # Every log line of this request (ours, litellm's, the event listeners') carries
        # its ids; closed in _finish, after the call was published.
        self._log_scope = log_context(
            correlation_id=self._request.correlation_id, session_id=self._request.session_id
        )
        self._log_scope.__enter__()
        return self

    def __aiter__(self) -> AsyncIterator[str]:
        if self._chunks is None:
            self._chunks = self._stream()
        return self._chunks

    async def _stream(self) -> AsyncGenerator[str, None]:
        plan, result = self._plan, self.result
        failed: list[str] = []  # the models that did not answer, in order
        result.notice = plan.budget_notice
        try:
            for index, client in enumerate(plan.chain):
                result.model = client.model
                try:
                    async for text in client.stream(
                        messages=plan.messages,
                        temperature=self._request.temperature,
                        stats=result.stats,
                    ):
                        result.text += text
                        yield text
                    break
                except LLMCallError as exc:
                    if result.text or index + 1 == len(plan.chain) or not falls_back(exc):
                        raise
                    to = plan.chain[index + 1].model
                    failed.append(client.model)
                    result.stats = hand_over(
                        failed=client.model, to=to, error=exc, stats=result.stats
                    )
                    result.fallback = True
                    result.notice = fallback_notice(plan.budget_notice, failed, to)
        except LLMCallError as exc:
            result.status, result.error = CallStatus.ERROR, exc
            if result.fallback:  # the bubble says why the last one failed
                result.notice = exhausted_notice(plan.budget_notice, [*failed, result.model])
        self._exhausted = True

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        if exc is not None and not isinstance(exc, (asyncio.CancelledError, GeneratorExit)):
            if self.result.error is None:  # a bug in the consumer: still one recorded call
                self.result.status = CallStatus.ERROR
                self.result.error = LLMCallError(ErrorCategory.UNKNOWN)
        elif not self._exhausted:  # Stop, or the consumer walked away mid-reply
            self.result.status = CallStatus.CANCELLED
        try:
            if self._chunks is not None:
                await self._chunks.aclose()
        finally:
            self._finish()

    def _finish(self) -> None:
        if self._published:
            return
        self._published = True
        try:
            publish_result(self._request, self.result, self._plan.prompt)
        finally:
            if getattr(self, "_log_scope", None) is not None:
                self._log_scope.__exit__(None, None, None)
