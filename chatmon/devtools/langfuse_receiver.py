"""A local Langfuse-compatible receiver: the endpoints the Langfuse 5 SDK talks to.

It decodes what the SDK sends over real HTTP so tests (and drills) can assert on it:
OTLP traces at ``/api/public/otel/v1/traces`` (protobuf or JSON, gzip or not) and
scores at ``/api/public/scores``; ``/api/public/health`` answers like Langfuse's.
Requests without the configured Basic credentials get 401, as from real Langfuse.
``hang=True`` makes every endpoint stall without answering (a silent host), to prove
that a slow Langfuse changes nothing for the chat.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass, field
from typing import Any

from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from chatmon.devtools.http_receiver import (
    HttpReceiver,
    ReceiverState,
    accepted_body,
    hold_while_hung,
    receiver_app,
)
from chatmon.devtools.otlp_receiver import OtlpSpan, decode_traces

OTLP_PATH = "/api/public/otel/v1/traces"
SCORES_PATH = "/api/public/scores"


# The SDK exports OTLP: its spans decode as any collector's (resource, kind, events too).
ReceivedSpan = OtlpSpan


@dataclass(kw_only=True)
class LangfuseReceiverState(ReceiverState):
    """What arrived, and how the receiver behaves."""

    public_key: str
    secret_key: str
    spans: list[ReceivedSpan] = field(default_factory=list)
    scores: list[dict[str, Any]] = field(default_factory=list)


def _state(request: Request) -> LangfuseReceiverState:
    state: LangfuseReceiverState = request.app.state.receiver
    return state


def _authorized(request: Request, state: LangfuseReceiverState) -> bool:
    expected = base64.b64encode(f"{state.public_key}:{state.secret_key}".encode()).decode()
    return request.headers.get("authorization", "") == f"Basic {expected}"


async def _accepted_body(request: Request, state: LangfuseReceiverState) -> bytes | None:
    return await accepted_body(
        request, state, authorized=lambda request: _authorized(request, state)
    )


def _unauthorized() -> Response:
    return JSONResponse({"message": "Unauthorized"}, status_code=401)


async def otlp_traces(request: Request) -> Response:
    state = _state(request)
    body = await _accepted_body(request, state)
    if body is None:
        return _unauthorized()
    state.spans.extend(decode_traces(body, request.headers.get("content-type", "")))
    return Response(
        ExportTraceServiceRequest().SerializeToString(), media_type="application/x-protobuf"
    )


async def scores(request: Request) -> Response:
    state = _state(request)
    body = await _accepted_body(request, state)
    if body is None:
        return _unauthorized()
    payload = json.loads(body) if body else []
    state.scores.extend(payload if isinstance(payload, list) else [payload])
    return JSONResponse({"message": "Accepted"}, status_code=202)  # batch accepted


async def health(request: Request) -> Response:
    await hold_while_hung(request, _state(request))
    return JSONResponse({"status": "OK", "version": "chatmon-receiver"})


def create_app(state: LangfuseReceiverState) -> Starlette:
    routes = [
        Route(OTLP_PATH, otlp_traces, methods=["POST"]),
        Route(SCORES_PATH, scores, methods=["POST"]),
        Route("/api/public/health", health, methods=["GET"]),
    ]
    return receiver_app(routes, state)


class LangfuseReceiver(HttpReceiver):
    """Runs the receiver on a free local port in a background thread (for tests).

    Example:
        >>> with LangfuseReceiver(public_key="pk-lf-t", secret_key="sk-lf-t") as lf:
        ...     tracer_settings = load_settings(langfuse_host=lf.url, ...)
    """

    name = "langfuse receiver"
    state: LangfuseReceiverState

    def __init__(self, *, public_key: str, secret_key: str, host: str = "127.0.0.1") -> None:
        super().__init__(host=host)
        self.state = LangfuseReceiverState(public_key=public_key, secret_key=secret_key)

    def create_app(self) -> Starlette:
        return create_app(self.state)

    @property
    def spans(self) -> list[ReceivedSpan]:
        return list(self.state.spans)

    @property
    def scores(self) -> list[dict[str, Any]]:
        return list(self.state.scores)
