"""The fake upstream's HTTP endpoints, as a Starlette app (:func:`create_app`).

What it replies and when it fails is :mod:`chatmon.devtools.fake_llm`.

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
import dataclasses
import json
from collections.abc import Mapping
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from chatmon.devtools.fake_llm import (
    CONTEXT_WINDOW,
    DROP_MID_AFTER_CHUNKS,
    MODEL_ID,
    FakeLLMConfig,
    FakeLLMState,
    build_reply,
    prompt_tokens,
)
from chatmon.devtools.fake_llm_responses import (
    TRANSPORT_KEY,
    Drop,
    EventStream,
    Hang,
    PartialBody,
    chunk_delay,
    completion,
    error_body,
    error_response,
    find_transport,
    sse_events,
)

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
        payload = error_body(
            message, "invalid_request_error", "context_length_exceeded", "messages"
        )
        return JSONResponse(payload, status_code=400)
    status, err_type, code, message = _HTTP_FAULTS[mode]
    headers = None
    if status in (429, 503) and config.retry_after is not None:
        headers = {"retry-after": _number_header(config.retry_after)}
    return error_response(status, message, err_type, code, headers=headers)


async def _fault(
    mode: str, state: FakeLLMState, config: FakeLLMConfig, body: Mapping[str, Any]
) -> ASGIApp:
    """Returns the ASGI responder for an injected failure."""
    if mode == "timeout":
        return Hang(state)
    await asyncio.sleep(config.latency)
    if mode == "drop":
        return Drop()
    if mode == "drop-mid":
        reply = build_reply(body, config)
        completion_id, model = state.next_completion_id(), str(body.get("model") or MODEL_ID)
        if body.get("stream"):
            include_usage = _include_usage(body) and config.usage_report
            events = sse_events(
                completion_id,
                model,
                reply,
                config,
                include_usage=include_usage,
                cut_after=DROP_MID_AFTER_CHUNKS,
            )
            return EventStream(events)
        return PartialBody(json.dumps(completion(completion_id, model, reply)).encode())
    return _http_fault(mode, config, body)


def _include_usage(body: Mapping[str, Any]) -> bool:
    options = body.get("stream_options")
    return isinstance(options, dict) and bool(options.get("include_usage"))


async def _success(state: FakeLLMState, config: FakeLLMConfig, body: Mapping[str, Any]) -> ASGIApp:
    reply = build_reply(body, config)
    completion_id, model = state.next_completion_id(), str(body.get("model") or MODEL_ID)
    await asyncio.sleep(config.latency)
    if body.get("stream"):
        include_usage = _include_usage(body) and config.usage_report
        return EventStream(
            sse_events(completion_id, model, reply, config, include_usage=include_usage)
        )
    delay = chunk_delay(config)
    if delay:
        await asyncio.sleep(delay * len(reply.chunks))  # simulate generation time
    return JSONResponse(completion(completion_id, model, reply))


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
        return error_response(400, message, "invalid_request_error", "invalid_request_error")
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
        return error_response(
            400, "Body must be a JSON object.", "invalid_request_error", "invalid_control"
        )
    changes = dict(body)
    reset = bool(changes.pop("reset_counters", False))
    try:
        state.config.update(**changes)
    except (TypeError, ValueError) as exc:
        return error_response(400, str(exc), "invalid_request_error", "invalid_control")
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
    return error_response(status, message, "invalid_request_error", None)


class _FakeLLMApp(Starlette):
    """Starlette app that exposes the connection's transport to the endpoints.

    Must be the outermost ASGI callable: Starlette's own middleware wraps ``send``,
    hiding the server's ``RequestResponseCycle`` that ``find_transport`` needs.
    """

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            transport = find_transport(send)
            if transport is not None:
                scope["extensions"] = {**(scope.get("extensions") or {}), TRANSPORT_KEY: transport}
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
