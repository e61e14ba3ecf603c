"""A local Langfuse-compatible receiver: the endpoints the Langfuse 5 SDK talks to.

It decodes what the SDK sends over real HTTP so tests (and drills) can assert on it:
OTLP traces at ``/api/public/otel/v1/traces`` (protobuf or JSON, gzip or not) and
scores at ``/api/public/scores``; ``/api/public/health`` answers like Langfuse's.
Requests without the configured Basic credentials get 401, as from real Langfuse.
``hang=True`` makes every endpoint stall without answering (a silent host), to prove
that a slow Langfuse changes nothing for the chat.
"""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from chatmon.devtools.fake_llm import bind_socket

OTLP_PATH = "/api/public/otel/v1/traces"
SCORES_PATH = "/api/public/scores"


@dataclass
class ReceivedSpan:
    """One OTLP span as the receiver decoded it."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    scope: str

    @property
    def duration_seconds(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9


@dataclass
class ReceiverState:
    """What arrived, and how the receiver behaves."""

    public_key: str
    secret_key: str
    hang: bool = False
    spans: list[ReceivedSpan] = field(default_factory=list)
    scores: list[dict[str, Any]] = field(default_factory=list)
    raw_bodies: list[bytes] = field(default_factory=list)
    unauthorized: int = 0
    hung: int = 0


def _any_value(value: Any) -> Any:
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [_any_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: _any_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind) if kind else None


def decode_otlp(body: bytes, content_type: str) -> list[ReceivedSpan]:
    """The spans of one OTLP/HTTP export request (protobuf or JSON encoding)."""
    request = ExportTraceServiceRequest()
    if "json" in content_type:
        json_format.Parse(body.decode("utf-8"), request)
    else:
        request.ParseFromString(body)
    spans = []
    for resource_spans in request.resource_spans:
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    ReceivedSpan(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        name=span.name,
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                        attributes={kv.key: _any_value(kv.value) for kv in span.attributes},
                        scope=scope_spans.scope.name,
                    )
                )
    return spans


def _state(request: Request) -> ReceiverState:
    state: ReceiverState = request.app.state.receiver
    return state


def _authorized(request: Request, state: ReceiverState) -> bool:
    expected = base64.b64encode(f"{state.public_key}:{state.secret_key}".encode()).decode()
    return request.headers.get("authorization", "") == f"Basic {expected}"


async def _maybe_hang(request: Request, state: ReceiverState) -> None:
    if state.hang:
        state.hung += 1
        # Two flags, no event to await: the control endpoint's `hang`, Starlette's disconnect poll.
        while state.hang and not await request.is_disconnected():  # noqa: ASYNC110 - see above
            await asyncio.sleep(0.05)


class _Gone(Exception):
    """The client gave up (it timed out while the receiver hung)."""


async def _body(request: Request) -> bytes:
    try:
        body = await request.body()
    except ClientDisconnect:
        raise _Gone from None
    if request.headers.get("content-encoding", "") == "gzip":
        body = gzip.decompress(body)
    return body


async def otlp_traces(request: Request) -> Response:
    state = _state(request)
    await _maybe_hang(request, state)
    if not _authorized(request, state):
        state.unauthorized += 1
        return JSONResponse({"message": "Unauthorized"}, status_code=401)
    body = await _body(request)
    state.raw_bodies.append(body)
    state.spans.extend(decode_otlp(body, request.headers.get("content-type", "")))
    return Response(
        ExportTraceServiceRequest().SerializeToString(), media_type="application/x-protobuf"
    )


async def scores(request: Request) -> Response:
    state = _state(request)
    await _maybe_hang(request, state)
    if not _authorized(request, state):
        state.unauthorized += 1
        return JSONResponse({"message": "Unauthorized"}, status_code=401)
    body = await _body(request)
    state.raw_bodies.append(body)
    payload = json.loads(body) if body else []
    state.scores.extend(payload if isinstance(payload, list) else [payload])
    return JSONResponse({"message": "Accepted"}, status_code=202)  # batch accepted


async def health(request: Request) -> Response:
    state = _state(request)
    await _maybe_hang(request, state)
    return JSONResponse({"status": "OK", "version": "chatmon-receiver"})


async def _gone(_request: Request, _exc: Exception) -> Response:
    return Response(status_code=499)  # nobody is listening any more


def create_app(state: ReceiverState) -> Starlette:
    app = Starlette(
        routes=[
            Route(OTLP_PATH, otlp_traces, methods=["POST"]),
            Route(SCORES_PATH, scores, methods=["POST"]),
            Route("/api/public/health", health, methods=["GET"]),
        ],
        exception_handlers={_Gone: _gone},
    )
    app.state.receiver = state
    return app


class LangfuseReceiver:
    """Runs the receiver on a free local port in a background thread (for tests).

    Example:
        >>> with LangfuseReceiver(public_key="pk-lf-t", secret_key="sk-lf-t") as lf:
        ...     tracer_settings = load_settings(langfuse_host=lf.url, ...)
    """

    def __init__(self, *, public_key: str, secret_key: str, host: str = "127.0.0.1") -> None:
        self.state = ReceiverState(public_key=public_key, secret_key=secret_key)
        self.host = host
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def spans(self) -> list[ReceivedSpan]:
        return list(self.state.spans)

    @property
    def scores(self) -> list[dict[str, Any]]:
        return list(self.state.scores)

    def set_hang(self, hang: bool) -> None:
        """Stall (True) or answer (False) every request from now on."""
        self.state.hang = hang

    def wait_for(self, predicate: Callable[[LangfuseReceiver], Any], timeout: float = 15.0) -> Any:
        """Poll until ``predicate(self)`` is truthy; return its value or raise TimeoutError."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate(self)
            if value:
                return value
            time.sleep(0.05)
        raise TimeoutError(f"receiver: condition not met in {timeout} s")

    def start(self) -> LangfuseReceiver:
        sock = bind_socket(self.host, 0)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            create_app(self.state),
            http="h11",
            ws="none",
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(
            target=self._server.run,
            kwargs={"sockets": [sock]},
            name="langfuse-receiver",
            daemon=True,
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("langfuse receiver failed to start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        self.state.hang = False
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(5)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_exit = True
                self._thread.join(5)
        self._server = self._thread = None

    def __enter__(self) -> LangfuseReceiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
