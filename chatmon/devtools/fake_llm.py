"""Fake OpenAI-compatible LLM upstream with fault injection.

Used by tests, benchmarks and demos in place of a real provider. The reply is
deterministic (it echoes the last user message, then filler words) and so is
the reported token usage, so callers can assert on both.

Endpoints:
    POST /v1/chat/completions (and /chat/completions): OpenAI chat completions,
        streaming (SSE) or not.
    GET /v1/models (and /models): lists the single model "fake".
    GET /_control: current config and counters.
    POST /_control: partial config update; ``{"reset_counters": true}`` zeroes
        the counters and clears the request log.
    GET /_requests: the last 50 chat-completion request bodies, oldest first.

Faults (``FakeLLMConfig.fail_with``) are HTTP errors with OpenAI-shaped bodies,
a hang (``timeout``), a connection closed before any response (``drop``) and a
connection cut in the middle of the body (``drop-mid``).

This module must stay plain Python: it must not import reflex or litellm.
"""

from __future__ import annotations

import asyncio
import collections
import dataclasses
import json
import random
import socket
import sys
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterable, Mapping
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

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

_TRANSPORT_KEY = "chatmon.fake_llm.transport"
_DISCONNECT_GRACE = 2.0
_HANG_POLL_INTERVAL = 0.1
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

# status, error type, error code, message
_HTTP_FAULTS: dict[str, tuple[int, str, str | None, str]] = {
    "429": (
        429,
        "requests",
        "rate_limit_exceeded",
        "Rate limit reached for fake on requests per min (RPM): Limit 3, Used 3, Requested 1. "
        "Please try again later. (injected by fake-llm)",
    ),
    "500": (
        500,
        "server_error",
        "server_error",
        "The server had an error while processing your request. Sorry about that!"
        " (injected by fake-llm)",
    ),
    "503": (
        503,
        "server_error",
        "service_unavailable",
        "The engine is currently overloaded, please try again later. (injected by fake-llm)",
    ),
    "401": (
        401,
        "invalid_request_error",
        "invalid_api_key",
        "Incorrect API key provided. You can find your API key at "
        "https://platform.openai.com/account/api-keys. (injected by fake-llm)",
    ),
    "400": (
        400,
        "invalid_request_error",
        "invalid_request_error",
        "Invalid request. (injected by fake-llm)",
    ),
}


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
    """

    latency: float = 0.0
    tokens_per_second: float | None = None
    fail_rate: float = 0.0
    fail_with: str = "500"
    retry_after: float | None = None
    reply_words: int = 12
    fail_first: int = 0
    cached_tokens: int = 0

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
class _Reply:
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


def _build_reply(body: Mapping[str, Any], config: FakeLLMConfig) -> _Reply:
    """Builds the reply, truncated to ``max_tokens`` like a real model would."""
    messages = body.get("messages") or []
    chunks = reply_chunks(messages, config.reply_words)
    limits = [body.get(k) for k in ("max_tokens", "max_completion_tokens")]
    limit = min((v for v in limits if isinstance(v, int) and v > 0), default=None)
    finish_reason = "stop"
    if limit is not None and limit < len(chunks):
        chunks, finish_reason = chunks[:limit], "length"
    prompt = prompt_tokens(messages)
    return _Reply(tuple(chunks), prompt, finish_reason, min(config.cached_tokens, prompt))


# --------------------------------------------------------------------------- OpenAI shapes


def _error_body(
    message: str, err_type: str, code: str | None, param: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": err_type, "param": param, "code": code}}


def _error_response(
    status: int,
    message: str,
    err_type: str,
    code: str | None,
    *,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(_error_body(message, err_type, code), status_code=status, headers=headers)


def _completion(completion_id: str, model: str, reply: _Reply) -> dict[str, Any]:
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_fake",
        "choices": [
            {
                "index": 0,
                "message": {"role": "assistant", "content": reply.text, "refusal": None},
                "logprobs": None,
                "finish_reason": reply.finish_reason,
            }
        ],
        "usage": reply.usage(),
    }


def _chunk(
    completion_id: str,
    model: str,
    choices: list[dict[str, Any]],
    *,
    with_usage_field: bool,
    usage: dict[str, Any] | None = None,
) -> bytes:
    payload: dict[str, Any] = {
        "id": completion_id,
        "object": "chat.completion.chunk",
        "created": int(time.time()),
        "model": model,
        "system_fingerprint": "fp_fake",
        "choices": choices,
    }
    if with_usage_field:  # OpenAI sends "usage": null on every chunk when include_usage is on
        payload["usage"] = usage
    return b"data: " + json.dumps(payload, separators=(",", ":")).encode() + b"\n\n"


def _delta_choice(delta: dict[str, Any], finish_reason: str | None = None) -> dict[str, Any]:
    return {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish_reason}


def _chunk_delay(config: FakeLLMConfig) -> float:
    tps = config.tokens_per_second
    return 1.0 / tps if tps else 0.0


# --------------------------------------------------------------------------- raw ASGI responses

_CUT = object()  # sentinel in an event stream: cut the connection here


def _find_transport(send: Send) -> Any | None:
    """Finds the asyncio transport behind uvicorn's ``send``.

    uvicorn's HTTP protocols (h11, httptools, zttp) pass the bound method
    ``RequestResponseCycle.send`` as the ASGI ``send``, and the cycle keeps the
    connection's transport in ``.transport``. ASGI has no portable way to close a
    connection without a response (uvicorn answers 500 when the app raises
    before responding), so we reach for the socket itself.
    """
    transport = getattr(getattr(send, "__self__", None), "transport", None)
    if transport is not None and hasattr(transport, "close") and hasattr(transport, "is_closing"):
        return transport
    return None


async def _wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


async def _close_connection(scope: Scope, disconnected: asyncio.Future[None]) -> None:
    """Closes the TCP connection, then waits until the server has noticed.

    ``transport.close()`` flushes what was already written (so ``drop-mid`` clients
    get their partial body) and sends FIN; no further HTTP bytes are produced.
    Waiting for ``http.disconnect`` matters: returning earlier makes uvicorn log
    "returned without completing response".
    """
    transport = scope.get("extensions", {}).get(_TRANSPORT_KEY)
    if transport is None:
        # Not under uvicorn: the best generic fallback is an exception, which most
        # servers turn into a closed connection (mid-body) or a 500 (before headers).
        raise ConnectionAbortedError("fake-llm: no transport to drop the connection")
    transport.close()
    await asyncio.wait({disconnected}, timeout=_DISCONNECT_GRACE)


class _Drop:
    """Closes the connection without sending any HTTP response."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        disconnected = asyncio.ensure_future(_wait_for_disconnect(receive))
        try:
            await _close_connection(scope, disconnected)
        finally:
            disconnected.cancel()


class _Hang:
    """Never answers; returns once the client gives up (or the server shuts down)."""

    def __init__(self, state: FakeLLMState) -> None:
        self._state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        disconnected = asyncio.ensure_future(_wait_for_disconnect(receive))
        try:
            while not disconnected.done() and not self._state.closing:
                await asyncio.wait({disconnected}, timeout=_HANG_POLL_INTERVAL)
            if not disconnected.done():
                await _close_connection(scope, disconnected)
        finally:
            disconnected.cancel()


class _PartialBody:
    """Announces a full JSON body, sends half of it, then cuts the connection."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        disconnected = asyncio.ensure_future(_wait_for_disconnect(receive))
        try:
            headers = [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(self._body)).encode()),
            ]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            half = self._body[: len(self._body) // 2]
            await send({"type": "http.response.body", "body": half, "more_body": True})
            await _close_connection(scope, disconnected)
        finally:
            disconnected.cancel()


class _EventStream:
    """Sends SSE events from an async iterator; the ``_CUT`` sentinel drops the connection."""

    _HEADERS = [
        (b"content-type", b"text/event-stream; charset=utf-8"),
        (b"cache-control", b"no-cache"),
        (b"x-accel-buffering", b"no"),
    ]

    def __init__(self, events: AsyncIterator[Any]) -> None:
        self._events = events

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        disconnected = asyncio.ensure_future(_wait_for_disconnect(receive))
        try:
            await send({"type": "http.response.start", "status": 200, "headers": self._HEADERS})
            async for event in self._events:
                if disconnected.done():
                    return  # client went away: stop generating
                if event is _CUT:
                    await _close_connection(scope, disconnected)
                    return
                await send({"type": "http.response.body", "body": event, "more_body": True})
            await send({"type": "http.response.body", "body": b"", "more_body": False})
        finally:
            disconnected.cancel()


async def _sse_events(
    completion_id: str,
    model: str,
    reply: _Reply,
    config: FakeLLMConfig,
    *,
    include_usage: bool,
    cut_after: int | None = None,
) -> AsyncIterator[Any]:
    """Yields the SSE byte events of a streamed completion (or ``_CUT``)."""
    delay = _chunk_delay(config)
    for index, piece in enumerate(reply.chunks):
        if cut_after is not None and index >= cut_after:
            yield _CUT
            return
        if index and delay:
            await asyncio.sleep(delay)
        delta = {"role": "assistant", "content": piece} if index == 0 else {"content": piece}
        yield _chunk(completion_id, model, [_delta_choice(delta)], with_usage_field=include_usage)
    final = _delta_choice({}, reply.finish_reason)
    yield _chunk(completion_id, model, [final], with_usage_field=include_usage)
    if include_usage:
        yield _chunk(completion_id, model, [], with_usage_field=True, usage=reply.usage())
    yield b"data: [DONE]\n\n"


# --------------------------------------------------------------------------- endpoints


def _state(request: Request) -> FakeLLMState:
    state: FakeLLMState = request.app.state.fake_llm
    return state


async def _read_json(request: Request) -> Any:
    try:
        return json.loads(await request.body() or b"null")
    except (ValueError, UnicodeDecodeError):
        return None


def _number_header(value: float) -> str:
    return str(int(value)) if float(value).is_integer() else str(value)


def _http_fault(mode: str, config: FakeLLMConfig, body: Mapping[str, Any]) -> JSONResponse:
    if mode == "context_length":
        used = CONTEXT_WINDOW + prompt_tokens(body.get("messages") or []) + 1
        message = (
            f"This model's maximum context length is {CONTEXT_WINDOW} tokens. "
            f"However, your messages resulted in {used} tokens. "
            "Please reduce the length of the messages. (injected by fake-llm)"
        )
        payload = _error_body(
            message, "invalid_request_error", "context_length_exceeded", "messages"
        )
        return JSONResponse(payload, status_code=400)
    status, err_type, code, message = _HTTP_FAULTS[mode]
    headers = None
    if status in (429, 503) and config.retry_after is not None:
        headers = {"retry-after": _number_header(config.retry_after)}
    return _error_response(status, message, err_type, code, headers=headers)


async def _fault(
    mode: str, state: FakeLLMState, config: FakeLLMConfig, body: Mapping[str, Any]
) -> ASGIApp:
    """Returns the ASGI responder for an injected failure."""
    if mode == "timeout":
        return _Hang(state)
    await asyncio.sleep(config.latency)
    if mode == "drop":
        return _Drop()
    if mode == "drop-mid":
        reply = _build_reply(body, config)
        completion_id, model = state.next_completion_id(), str(body.get("model") or MODEL_ID)
        if body.get("stream"):
            include_usage = _include_usage(body)
            events = _sse_events(
                completion_id,
                model,
                reply,
                config,
                include_usage=include_usage,
                cut_after=DROP_MID_AFTER_CHUNKS,
            )
            return _EventStream(events)
        return _PartialBody(json.dumps(_completion(completion_id, model, reply)).encode())
    return _http_fault(mode, config, body)


def _include_usage(body: Mapping[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and bool(options.get("include_usage"))


async def _success(state: FakeLLMState, config: FakeLLMConfig, body: Mapping[str, Any]) -> ASGIApp:
    reply = _build_reply(body, config)
    completion_id, model = state.next_completion_id(), str(body.get("model") or MODEL_ID)
    await asyncio.sleep(config.latency)
    if body.get("stream"):
        include_usage = _include_usage(body)
        return _EventStream(
            _sse_events(completion_id, model, reply, config, include_usage=include_usage)
        )
    delay = _chunk_delay(config)
    if delay:
        await asyncio.sleep(delay * len(reply.chunks))  # simulate generation time
    return JSONResponse(_completion(completion_id, model, reply))


async def chat_completions(request: Request) -> ASGIApp:
    """``POST /v1/chat/completions``: counts, logs, maybe injects a fault, else replies."""
    state = _state(request)
    body = await _read_json(request)
    state.record_request(body)
    # Copy so a config change during a slow request doesn't alter it half-way.
    config = dataclasses.replace(state.config)
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list):
        state.failures += 1
        message = "Request body must be a JSON object with a 'messages' list."
        return _error_response(400, message, "invalid_request_error", "invalid_request_error")
    if state.should_fail():
        state.failures += 1
        return await _fault(config.fail_with, state, config, body)
    state.successes += 1  # counted now, not at [DONE], so clients never race the counter
    return await _success(state, config, body)


async def list_models(request: Request) -> JSONResponse:
    """``GET /v1/models``: the single model ``fake``."""
    model = {"id": MODEL_ID, "object": "model", "created": 0, "owned_by": "chatmon"}
    return JSONResponse({"object": "list", "data": [model]})


async def get_control(request: Request) -> JSONResponse:
    """``GET /_control``: ``{"config": {...}, "counters": {...}}``."""
    return JSONResponse(_state(request).snapshot())


async def post_control(request: Request) -> JSONResponse:
    """``POST /_control``: partial config update and/or ``reset_counters``."""
    state = _state(request)
    body = await _read_json(request)
    if not isinstance(body, dict):
        return _error_response(
            400, "Body must be a JSON object.", "invalid_request_error", "invalid_control"
        )
    changes = dict(body)
    reset = bool(changes.pop("reset_counters", False))
    try:
        state.config.update(**changes)
    except (TypeError, ValueError) as exc:
        return _error_response(400, str(exc), "invalid_request_error", "invalid_control")
    if reset:
        state.reset_counters()
    return JSONResponse(state.snapshot())


async def get_requests(request: Request) -> JSONResponse:
    """``GET /_requests``: the last 50 chat-completion request bodies, oldest first."""
    return JSONResponse(_state(request).requests)


async def _http_exception(request: Request, exc: Exception) -> JSONResponse:
    """Answers 404/405 with OpenAI-shaped errors so SDK clients parse them."""
    status = exc.status_code if isinstance(exc, HTTPException) else 500
    message = f"{request.method} {request.url.path}: {getattr(exc, 'detail', 'error')}"
    return _error_response(status, message, "invalid_request_error", None)


class _FakeLLMApp(Starlette):
    """Starlette app that exposes the connection's transport to the endpoints.

    Must be the outermost ASGI callable: Starlette's own middleware wraps ``send``,
    hiding the server's ``RequestResponseCycle`` that ``_find_transport`` needs.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            transport = _find_transport(send)
            if transport is not None:
                scope["extensions"] = {**(scope.get("extensions") or {}), _TRANSPORT_KEY: transport}
        await super().__call__(scope, receive, send)


def create_app(config: FakeLLMConfig | None = None) -> Starlette:
    """Creates the fake upstream app; its live state is ``app.state.fake_llm``."""
    routes = [
        Route("/v1/chat/completions", chat_completions, methods=["POST"]),
        Route("/chat/completions", chat_completions, methods=["POST"]),
        Route("/v1/models", list_models, methods=["GET"]),
        Route("/models", list_models, methods=["GET"]),
        Route("/_control", get_control, methods=["GET"]),
        Route("/_control", post_control, methods=["POST"]),
        Route("/_requests", get_requests, methods=["GET"]),
    ]
    app = _FakeLLMApp(routes=routes, exception_handlers={HTTPException: _http_exception})
    app.state.fake_llm = FakeLLMState(config)
    return app


# --------------------------------------------------------------------------- serving


def bind_socket(host: str = "127.0.0.1", port: int = 0) -> socket.socket:
    """Binds and listens on ``host:port`` (0 = a free port) before uvicorn starts.

    Binding ourselves lets callers learn the real port without racing another
    process for it. The explicit ``IPPROTO_TCP`` matters: asyncio only sets
    TCP_NODELAY on accepted sockets whose ``proto`` says TCP, and without it every
    response pays ~40 ms of Nagle/delayed-ACK (headers and body are separate writes).
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        if hasattr(socket, "SO_REUSEADDR") and sys.platform != "win32":
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    return sock


def _base_url(host: str, port: int) -> str:
    shown = f"[{host}]" if ":" in host else host
    return f"http://{shown}:{port}/v1"


def _uvicorn_config(app: Starlette, *, configure_logging: bool) -> uvicorn.Config:
    # h11 pinned: its RequestResponseCycle.transport is what the drop faults use.
    # timeout_graceful_shutdown bounds shutdown if a client keeps a stream open.
    extra: dict[str, Any] = {} if configure_logging else {"log_config": None}
    return uvicorn.Config(
        app,
        http="h11",
        ws="none",
        lifespan="off",
        log_level="warning",
        access_log=False,
        proxy_headers=False,
        server_header=False,
        timeout_graceful_shutdown=2,
        **extra,
    )


async def _serve_and_announce(
    server: uvicorn.Server,
    sock: socket.socket,
    state: FakeLLMState,
    on_ready: Callable[[], None] | None,
) -> None:
    """Serves, calls ``on_ready`` once listening, and releases hung requests on exit.

    Without the release, Ctrl-C with a ``timeout``-mode request open would wait for
    uvicorn's graceful-shutdown timeout and then log a cancelled-task traceback.
    """
    task = asyncio.ensure_future(server.serve(sockets=[sock]))
    while not server.started and not task.done():  # noqa: ASYNC110 - uvicorn has a flag, no event
        await asyncio.sleep(0.01)
    if server.started and on_ready is not None:
        on_ready()
    while not task.done():
        if server.should_exit:
            state.closing = True
        await asyncio.wait({task}, timeout=_HANG_POLL_INTERVAL)
    await task


def serve(
    config: FakeLLMConfig | None = None,
    host: str = "127.0.0.1",
    port: int = 0,
    on_ready: Callable[[str], None] | None = None,
) -> None:
    """Runs the fake in the foreground until Ctrl-C / SIGTERM.

    Args:
        config: Initial behaviour; defaults to a well-behaved upstream.
        host: Interface to listen on.
        port: TCP port; 0 picks a free one.
        on_ready: Called with the base URL (ending in ``/v1``) once connections
            are accepted.
    """
    sock = bind_socket(host, port)
    app = create_app(config)
    url = _base_url(host, sock.getsockname()[1])
    server = uvicorn.Server(_uvicorn_config(app, configure_logging=True))
    announce = (lambda: on_ready(url)) if on_ready is not None else None
    try:
        asyncio.run(_serve_and_announce(server, sock, app.state.fake_llm, announce))
    finally:
        app.state.fake_llm.closing = True
        sock.close()


class FakeLLMServer:
    """Runs the fake upstream in a background thread, for tests.

    Example:
        >>> with FakeLLMServer(FakeLLMConfig(fail_first=1, fail_with="429")) as llm:
        ...     client = openai.OpenAI(base_url=llm.url, api_key="sk-test")
    """

    def __init__(
        self,
        config: FakeLLMConfig | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        startup_timeout: float = 10.0,
    ) -> None:
        self.app = create_app(config)
        self.host = host
        self.port = port
        self._startup_timeout = startup_timeout
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._sock: socket.socket | None = None

    @property
    def state(self) -> FakeLLMState:
        """Live config, counters and request log."""
        state: FakeLLMState = self.app.state.fake_llm
        return state

    @property
    def config(self) -> FakeLLMConfig:
        """The live config; mutate it (or call ``configure``) to change behaviour."""
        return self.state.config

    @property
    def hits(self) -> int:
        """Chat-completion requests received since start or the last reset."""
        return self.state.hits

    @property
    def failures(self) -> int:
        return self.state.failures

    @property
    def successes(self) -> int:
        return self.state.successes

    @property
    def requests(self) -> list[Any]:
        """The last 50 chat-completion request bodies, oldest first."""
        return self.state.requests

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no ``/v1``), for the control endpoints."""
        return self.url.removesuffix("/v1")

    @property
    def url(self) -> str:
        """OpenAI base URL, ending in ``/v1``."""
        if self._sock is None:
            raise RuntimeError("FakeLLMServer is not running")
        return _base_url(self.host, self.port)

    def configure(self, **changes: Any) -> None:
        """Partially updates the live config (validated, all-or-nothing)."""
        self.config.update(**changes)

    def reset(self, config: FakeLLMConfig | None = None) -> None:
        """Restores a config (default: defaults), zeroes counters, clears the request log."""
        fresh = config if config is not None else FakeLLMConfig()
        self.config.update(**fresh.to_dict())
        self.state.reset_counters()

    def start(self) -> FakeLLMServer:
        """Starts serving; returns once the server accepts connections.

        Raises:
            RuntimeError: If the server thread dies or doesn't start in time.
        """
        if self._thread is not None:
            raise RuntimeError("FakeLLMServer already started")
        self.state.closing = False
        self._sock = bind_socket(self.host, self.port)
        self.port = self._sock.getsockname()[1]
        self._server = uvicorn.Server(_uvicorn_config(self.app, configure_logging=False))
        self._thread = threading.Thread(
            target=self._server.run, kwargs={"sockets": [self._sock]}, name="fake-llm", daemon=True
        )
        self._thread.start()
        self._wait_started()
        return self

    def _wait_started(self) -> None:
        assert self._server is not None and self._thread is not None
        deadline = time.monotonic() + self._startup_timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("fake-llm server failed to start")
            time.sleep(0.005)

    def stop(self, timeout: float = 5.0) -> None:
        """Stops the server; hung (``timeout`` mode) requests are cut first."""
        self.state.closing = True
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_exit = True
                self._thread.join(timeout)
        if self._sock is not None:
            self._sock.close()
        self._server = self._thread = self._sock = None

    def __enter__(self) -> FakeLLMServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
