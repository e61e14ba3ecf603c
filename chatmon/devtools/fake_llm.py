"""Fake OpenAI-compatible LLM upstream with fault injection: what it does.

Used by tests, benchmarks and demos in place of a real provider. The reply is
deterministic (it echoes the last user message, then filler words) and so is
the reported token usage, so callers can assert on both. This module holds those
scripted behaviours: the knobs (:class:`FakeLLMConfig`, faults included), the live
counters and request log (:class:`FakeLLMState`), and the reply itself
(:func:`expected_reply`, :func:`reply_chunks`).

Its HTTP side: :mod:`chatmon.devtools.fake_llm_app` (the endpoints),
:mod:`chatmon.devtools.fake_llm_responses` (OpenAI's JSON and SSE shapes, and the raw
ASGI responders that hang or cut a connection), :mod:`chatmon.devtools.fake_llm_server`
(serving it: :class:`~chatmon.devtools.fake_llm_server.FakeLLMServer` for tests,
``serve`` for ``python -m chatmon fake-llm``).

This module must stay plain Python: it must not import reflex or litellm.
"""

from __future__ import annotations

import collections
import dataclasses
import random
import threading
from collections.abc import Iterable, Mapping
from typing import Any

MODEL_ID = "fake"
FAIL_MODES: tuple[str, ...] = (
    "429",
    "500",
    "503",
    "401",
    "400",
    "context_length",
    "timeout",
    "drop",
    "drop-mid",
)
REQUEST_LOG_SIZE = 50
DROP_MID_AFTER_CHUNKS = 3
CONTEXT_WINDOW = 8192

_FILLER = [
    "lorem",
    "ipsum",
    "dolor",
    "sit",
    "amet",
    "consectetur",
    "adipiscing",
    "elit",
    "sed",
    "do",
    "eiusmod",
    "tempor",
    "incididunt",
    "ut",
    "labore",
    "et",
    "dolore",
    "magna",
    "aliqua",
]


@dataclasses.dataclass
class FakeLLMConfig:
    """Behaviour knobs of the fake upstream. Mutable: changes apply to the next request.

    Attributes:
        latency: Seconds to wait before responding (before the first chunk when
            streaming). Also applies to injected HTTP errors and drops, not to
            ``timeout`` (which never answers anyway).
        tokens_per_second: Pace of streamed chunks; 0 or None = as fast as possible.
            Non-streaming replies wait ``chunks / tokens_per_second`` in total.
        fail_rate: Probability (0..1) that a request fails with ``fail_with``.
        fail_with: Failure kind, one of ``FAIL_MODES`` (ints such as 429 are accepted).
        retry_after: Seconds sent as ``Retry-After`` with 429 and 503 errors; None = no header.
        reply_words: Words in the reply (more if the echoed message alone is longer).
        fail_first: Fail exactly the next N requests with ``fail_with``, then
            fall back to ``fail_rate``. Deterministic alternative to ``fail_rate``.
        cached_tokens: Prompt tokens reported as served from the provider's cache
            (``usage.prompt_tokens_details.cached_tokens``, at most the prompt's tokens),
            so cost tests can check cached input is priced as such. 0 = field omitted.
        usage_report: Whether a streamed reply ends with its usage when the request
            asks for it (``stream_options.include_usage``); False: a provider (or proxy)
            that ignores the option and never reports usage in a stream.
    """

    latency: float = 0.0
    tokens_per_second: float | None = None
    fail_rate: float = 0.0
    fail_with: str = "500"
    retry_after: float | None = None
    reply_words: int = 12
    fail_first: int = 0
    cached_tokens: int = 0
    usage_report: bool = True

    def __post_init__(self) -> None:
        """Normalises JSON/CLI values and rejects nonsense early."""
        self.latency = float(self.latency)
        self.fail_rate = float(self.fail_rate)
        self.fail_with = str(self.fail_with)
        self.reply_words = int(self.reply_words)
        self.fail_first = int(self.fail_first)
        self.cached_tokens = int(self.cached_tokens)
        if self.tokens_per_second is not None:
            self.tokens_per_second = float(self.tokens_per_second)
        if self.retry_after is not None:
            self.retry_after = float(self.retry_after)
        self._validate()

    def _validate(self) -> None:
        if self.latency < 0:
            raise ValueError("latency must be >= 0")
        if self.tokens_per_second is not None and self.tokens_per_second < 0:
            raise ValueError("tokens_per_second must be >= 0")
        if not 0.0 <= self.fail_rate <= 1.0:
            raise ValueError("fail_rate must be between 0 and 1")
        if self.fail_with not in FAIL_MODES:
            raise ValueError(f"fail_with must be one of {', '.join(FAIL_MODES)}")
        if self.retry_after is not None and self.retry_after < 0:
            raise ValueError("retry_after must be >= 0")
        if not isinstance(self.usage_report, bool):
            raise ValueError("usage_report must be true or false")
        if self.reply_words < 1:
            raise ValueError("reply_words must be >= 1")
        if self.fail_first < 0:
            raise ValueError("fail_first must be >= 0")
        if self.cached_tokens < 0:
            raise ValueError("cached_tokens must be >= 0")

    def update(self, **changes: Any) -> None:
        """Applies a partial update atomically: either every field changes or none.

        Raises:
            ValueError: On an unknown field or an invalid value.
        """
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ValueError(f"unknown config field(s): {', '.join(unknown)}")
        updated = dataclasses.replace(self, **changes)  # validates via __post_init__
        for name in changes:
            setattr(self, name, getattr(updated, name))

    def to_dict(self) -> dict[str, Any]:
        """Returns the config as a JSON-serialisable dict."""
        return dataclasses.asdict(self)


class FakeLLMState:
    """Live config, counters and request log shared by the app and its controller.

    Counters are plain ints mutated on the server's event loop; reading them from
    another thread is safe under the GIL. The request log has a lock because
    copying a deque while it is appended to raises.
    """

    def __init__(self, config: FakeLLMConfig | None = None) -> None:
        self.config = config if config is not None else FakeLLMConfig()
        self.hits = 0
        self.failures = 0
        self.successes = 0
        self.closing = False  # set on shutdown so hung requests let go
        self._requests: collections.deque[Any] = collections.deque(maxlen=REQUEST_LOG_SIZE)
        self._lock = threading.Lock()
        self._rng = random.Random()
        self._completion_seq = 0

    def reset_counters(self) -> None:
        """Zeroes the counters and clears the request log."""
        self.hits = self.failures = self.successes = 0
        with self._lock:
            self._requests.clear()

    def record_request(self, body: Any) -> None:
        """Counts a chat-completion request and keeps its body for ``/_requests``."""
        self.hits += 1
        with self._lock:
            self._requests.append(body)

    @property
    def requests(self) -> list[Any]:
        """The last ``REQUEST_LOG_SIZE`` request bodies, oldest first."""
        with self._lock:
            return list(self._requests)

    def counters(self) -> dict[str, int]:
        """Returns ``{"hits", "failures", "successes"}``."""
        return {"hits": self.hits, "failures": self.failures, "successes": self.successes}

    def snapshot(self) -> dict[str, Any]:
        """Returns the ``GET /_control`` payload."""
        return {"config": self.config.to_dict(), "counters": self.counters()}

    def should_fail(self) -> bool:
        """Decides whether the current request gets the configured fault."""
        if self.config.fail_first > 0:
            self.config.fail_first -= 1
            return True
        rate = self.config.fail_rate
        return rate > 0 and self._rng.random() < rate

    def next_completion_id(self) -> str:
        """Returns a unique, predictable completion id."""
        self._completion_seq += 1
        return f"chatcmpl-fake-{self._completion_seq:06d}"


# --------------------------------------------------------------------------- reply


def message_text(content: Any) -> str:
    """Extracts the text of a message ``content`` (a string or a list of parts)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        parts = [
            p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"
        ]
        return " ".join(p for p in parts if isinstance(p, str))
    return ""


def prompt_tokens(messages: Iterable[Any]) -> int:
    """Counts whitespace-separated words over all message contents (the fake's 'tokens')."""
    return sum(len(message_text(m.get("content")).split()) for m in messages if isinstance(m, dict))


def reply_chunks(messages: Iterable[Any], reply_words: int = 12) -> list[str]:
    """Returns the reply split into streamed chunks, one word each.

    The reply is ``Echo: <last user message>.`` (whitespace normalised) followed by
    filler words up to ``reply_words`` words. Every chunk but the last keeps its
    trailing space, so ``"".join(chunks)`` is the full reply text.
    """
    users = [m for m in messages if isinstance(m, dict) and m.get("role") == "user"]
    echoed = message_text(users[-1].get("content")).split() if users else []
    if echoed:
        echoed[-1] += "."
    else:
        echoed = ["."]
    words = ["Echo:", *echoed]
    filler_needed = max(0, reply_words - len(words))
    words += [_FILLER[i % len(_FILLER)] for i in range(filler_needed)]
    return [w + " " for w in words[:-1]] + [words[-1]]


def expected_reply(user_message: str, reply_words: int = 12) -> str:
    """Returns the full reply text the fake sends for a single user message."""
    return "".join(reply_chunks([{"role": "user", "content": user_message}], reply_words))


@dataclasses.dataclass(frozen=True)
class Reply:
    """One reply: its streamed chunks (one word each), the prompt's tokens, why it ended."""

    chunks: tuple[str, ...]
    prompt_tokens: int
    finish_reason: str
    cached_tokens: int = 0

    @property
    def text(self) -> str:
        return "".join(self.chunks)

    def usage(self) -> dict[str, Any]:
        completion = len(self.chunks)
        usage: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": completion,
            "total_tokens": self.prompt_tokens + completion,
        }
        if self.cached_tokens:
            usage["prompt_tokens_details"] = {"cached_tokens": self.cached_tokens}
        return usage


def build_reply(body: Mapping[str, Any], config: FakeLLMConfig) -> Reply:
    """Builds the reply, truncated to ``max_tokens`` like a real model would."""
    messages = body.get("messages") or []
    chunks = reply_chunks(messages, config.reply_words)
    limits = [body.get(k) for k in ("max_tokens", "max_completion_tokens")]
    limit = min((v for v in limits if isinstance(v, int) and v > 0), default=None)
    finish_reason = "stop"
    if limit is not None and limit < len(chunks):
        chunks, finish_reason = chunks[:limit], "length"
    prompt = prompt_tokens(messages)
    return Reply(tuple(chunks), prompt, finish_reason, min(config.cached_tokens, prompt))
