"""The plumbing of reading a provider's stream: one iterator, the stall guard, closing.

Split from ``chatmon.services.llm`` (the client: breaker, retries, accounting), which
is the only user besides the CPU benchmark (``bench.litellm_cpu``).
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

log = logging.getLogger(__name__)


class StallGuard:
    """Cancels the task reading a stream when the provider sends nothing for ``seconds``.

    Only time spent waiting for the provider counts, never the consumer's. One timer,
    re-armed at most once per ``seconds``, instead of a timeout context around every
    chunk: those were the largest cost of the request path. Like ``asyncio.timeout``,
    it cancels only while the task waits for a chunk, so the cancellation lands there.
    """

    def __init__(self, seconds: float) -> None:
        self._seconds = seconds
        self._loop = asyncio.get_running_loop()
        self.task = asyncio.current_task()
        self._waiting_since: float | None = None
        self.fired = False
        self._handle = self._loop.call_later(seconds, self._check)

    def waiting(self) -> None:
        """The reader is about to wait for the next chunk."""
        self._waiting_since = self._loop.time()

    def received(self) -> None:
        """A chunk arrived; the consumer's time from now on is not a stall."""
        self._waiting_since = None

    def stop(self) -> None:
        self._handle.cancel()

    def caused_cancellation(self) -> bool:
        """Whether the ``CancelledError`` the reader just caught is this guard's (a stall),
        not a person's Stop; if so, the task's cancellation is withdrawn."""
        return self.fired and self.task is not None and self.task.uncancel() == 0

    def _check(self) -> None:
        now, since = self._loop.time(), self._waiting_since
        if since is not None and now - since >= self._seconds and self.task is not None:
            self.fired = True
            self.task.cancel()
            return
        due = (since if since is not None else now) + self._seconds
        self._handle = self._loop.call_at(due, self._check)


class SameIterator:
    """The OpenAI client's stream, iterated as one iterator however often it is looped over.

    ``AsyncStream.__aiter__`` is an async generator function, and LiteLLM runs a fresh
    ``async for`` over it for every chunk, leaving each generator behind unfinished: the
    event loop then finalizes one generator per chunk (a task and a self-pipe write
    each, ~5 % of a streaming worker's CPU in the py-spy profile). Handing LiteLLM the
    stream's own ``__anext__`` keeps one iterator for the whole reply.
    """

    __slots__ = ("_stream",)

    def __init__(self, stream: Any) -> None:
        self._stream = stream

    def __aiter__(self) -> SameIterator:
        return self

    def __anext__(self) -> Any:
        return self._stream.__anext__()

    async def aclose(self) -> None:
        await self._stream.close()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def reuse_provider_iterator(response: Any) -> None:
    """Give LiteLLM's stream wrapper a single iterator (see :class:`SameIterator`).

    Only for the OpenAI client's ``AsyncStream`` (which has ``__anext__``); any other
    provider stream is left as LiteLLM built it.
    """
    stream = getattr(response, "completion_stream", None)
    if type(stream).__name__ == "AsyncStream" and hasattr(stream, "__anext__"):
        response.completion_stream = SameIterator(stream)


def provider_iterator(response: Any) -> SameIterator | None:
    """The OpenAI stream under LiteLLM's wrapper, when :func:`reuse_provider_iterator` set it."""
    stream = getattr(response, "completion_stream", None)
    return stream if isinstance(stream, SameIterator) else None


async def usage_after_finish(stream: SameIterator) -> Any:
    """The provider's usage report, read straight from its stream after the finish chunk.

    With ``include_usage`` the provider sends one last chunk with no choices, only the
    usage. Read through LiteLLM, that chunk and the end of the stream set off its
    end-of-stream work (the whole response rebuilt from its chunks in a worker thread,
    priced, and logged for callbacks chatmon does not register): ~15 % of a bare
    stream's CPU and a thread round trip before the reply can end. Returns the OpenAI
    client's ``CompletionUsage``, or None when the provider sent none.
    """
    usage = None
    async for chunk in stream:
        usage = getattr(chunk, "usage", None) or usage
    return usage


def finish_reason(chunk: Any) -> str | None:
    """The chunk's finish reason (``"stop"``, ``"length"``...), None while the reply goes on."""
    choices = getattr(chunk, "choices", None) or []
    return getattr(choices[0], "finish_reason", None) if choices else None


async def close_quietly(response: Any) -> None:
    """Release the provider connection of a stream we stop reading."""
    close = getattr(response, "aclose", None)
    if close is None:
        return
    try:
        await close()
    except Exception:  # noqa: BLE001 - closing a broken stream may fail; nothing to do
        log.debug("closing the provider stream failed", exc_info=True)


def chunk_text(chunk: Any) -> str:
    """The text delta of one streamed chunk (empty for usage-only chunks)."""
    choices = getattr(chunk, "choices", None) or []
    if not choices:
        return ""
    delta = getattr(choices[0], "delta", None)
    return getattr(delta, "content", None) or ""
