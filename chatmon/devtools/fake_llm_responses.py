"""What the fake upstream puts on the wire: OpenAI's JSON and SSE shapes, and the raw
ASGI responders for the faults that no ordinary response can make (a hang, a
connection dropped before or during the body).

This module must stay plain Python: it must not import reflex or litellm.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from chatmon.devtools.fake_llm import FakeLLMConfig, FakeLLMState, Reply

TRANSPORT_KEY = "chatmon.fake_llm.transport"
_DISCONNECT_GRACE = 2.0
HANG_POLL_INTERVAL = 0.1


# --------------------------------------------------------------------------- OpenAI shapes


def error_body(
    message: str, err_type: str, code: str | None, param: str | None = None
) -> dict[str, Any]:
    return {"error": {"message": message, "type": err_type, "param": param, "code": code}}


def error_response(
    status: int,
    message: str,
    err_type: str,
    code: str | None,
    *,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    return JSONResponse(error_body(message, err_type, code), status_code=status, headers=headers)


def completion(completion_id: str, model: str, reply: Reply) -> dict[str, Any]:
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


def chunk_delay(config: FakeLLMConfig) -> float:
    tps = config.tokens_per_second
    return 1.0 / tps if tps else 0.0


# --------------------------------------------------------------------------- raw ASGI responses

_CUT = object()  # sentinel in an event stream: cut the connection here


def find_transport(send: Send) -> Any | None:
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
    transport = scope.get("extensions", {}).get(TRANSPORT_KEY)
    if transport is None:
        # Not under uvicorn: the best generic fallback is an exception, which most
        # servers turn into a closed connection (mid-body) or a 500 (before headers).
        raise ConnectionAbortedError("fake-llm: no transport to drop the connection")
    transport.close()
    await asyncio.wait({disconnected}, timeout=_DISCONNECT_GRACE)


class Drop:
    """Closes the connection without sending any HTTP response."""

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        disconnected = asyncio.ensure_future(_wait_for_disconnect(receive))
        try:
            await _close_connection(scope, disconnected)
        finally:
            disconnected.cancel()


class Hang:
    """Never answers; returns once the client gives up (or the server shuts down)."""

    def __init__(self, state: FakeLLMState) -> None:
        self._state = state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        disconnected = asyncio.ensure_future(_wait_for_disconnect(receive))
        try:
            while not disconnected.done() and not self._state.closing:
                await asyncio.wait({disconnected}, timeout=HANG_POLL_INTERVAL)
            if not disconnected.done():
                await _close_connection(scope, disconnected)
        finally:
            disconnected.cancel()


class PartialBody:
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


class EventStream:
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


async def sse_events(
    completion_id: str,
    model: str,
    reply: Reply,
    config: FakeLLMConfig,
    *,
    include_usage: bool,
    cut_after: int | None = None,
) -> AsyncIterator[Any]:
    """Yields the SSE byte events of a streamed completion (or ``_CUT``)."""
    delay = chunk_delay(config)
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
