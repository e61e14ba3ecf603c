"""A local OTLP/HTTP trace receiver: what an OTel Collector, Jaeger or Tempo accepts.

``POST /v1/traces`` with an ``ExportTraceServiceRequest`` in protobuf (or OTLP JSON),
gzip or not, decoded with ``opentelemetry-proto`` so tests (and drills) can assert on
the spans, their resource and their attributes over real HTTP. ``required_headers``
makes it answer 401 to exports without them (an auth header, as hosted backends want);
``hang=True`` makes it stall without answering (a hung collector).
"""

from __future__ import annotations

import asyncio
import gzip
import threading
import time
from collections.abc import Callable, Mapping
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
from chatmon.devtools.langfuse_receiver import _any_value

TRACES_PATH = "/v1/traces"
_KINDS = {0: "unspecified", 1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}
_STATUS = {0: "unset", 1: "ok", 2: "error"}


@dataclass
class OtlpSpan:
    """One span as the receiver decoded it, with its resource and scope."""

    trace_id: str
    span_id: str
    parent_span_id: str
    name: str
    kind: str  # client | server | internal | ...
    start_ns: int
    end_ns: int
    attributes: dict[str, Any]
    events: list[tuple[str, int]]  # (name, time in ns)
    status: str  # unset | ok | error
    status_message: str
    resource: dict[str, Any]
    scope: str

    @property
    def duration_seconds(self) -> float:
        return (self.end_ns - self.start_ns) / 1e9


@dataclass
class OtlpReceiverState:
    """What arrived, and how the receiver behaves."""

    required_headers: dict[str, str] = field(default_factory=dict)
    hang: bool = False
    spans: list[OtlpSpan] = field(default_factory=list)
    raw_bodies: list[bytes] = field(default_factory=list)
    requests: int = 0
    unauthorized: int = 0
    hung: int = 0


def decode_traces(body: bytes, content_type: str) -> list[OtlpSpan]:
    """The spans of one OTLP/HTTP export request (protobuf or JSON encoding)."""
    request = ExportTraceServiceRequest()
    if "json" in content_type:
        json_format.Parse(body.decode("utf-8"), request)
    else:
        request.ParseFromString(body)
    spans = []
    for resource_spans in request.resource_spans:
        resource = {kv.key: _any_value(kv.value) for kv in resource_spans.resource.attributes}
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                spans.append(
                    OtlpSpan(
                        trace_id=span.trace_id.hex(),
                        span_id=span.span_id.hex(),
                        parent_span_id=span.parent_span_id.hex(),
                        name=span.name,
                        kind=_KINDS.get(span.kind, str(span.kind)),
                        start_ns=span.start_time_unix_nano,
                        end_ns=span.end_time_unix_nano,
                        attributes={kv.key: _any_value(kv.value) for kv in span.attributes},
                        events=[(event.name, event.time_unix_nano) for event in span.events],
                        status=_STATUS.get(span.status.code, str(span.status.code)),
                        status_message=span.status.message,
                        resource=resource,
                        scope=scope_spans.scope.name,
                    )
                )
    return spans


class _Gone(Exception):
    """The client gave up (it timed out while the receiver hung)."""


async def traces(request: Request) -> Response:
    state: OtlpReceiverState = request.app.state.receiver
    state.requests += 1
    if state.hang:
        state.hung += 1
        # Two flags, no event to await: `hang` set by the test, Starlette's disconnect poll.
        while state.hang and not await request.is_disconnected():  # noqa: ASYNC110 - see above
            await asyncio.sleep(0.05)
    if any(request.headers.get(k, "") != v for k, v in state.required_headers.items()):
        state.unauthorized += 1
        return JSONResponse({"message": "Unauthorized"}, status_code=401)
    try:
        body = await request.body()
    except ClientDisconnect:
        raise _Gone from None
    if request.headers.get("content-encoding", "") == "gzip":
        body = gzip.decompress(body)
    state.raw_bodies.append(body)
    state.spans.extend(decode_traces(body, request.headers.get("content-type", "")))
    # An empty ExportTraceServiceResponse: everything accepted.
    return Response(b"", media_type="application/x-protobuf")


async def _gone(_request: Request, _exc: Exception) -> Response:
    return Response(status_code=499)  # nobody is listening any more


def create_app(state: OtlpReceiverState) -> Starlette:
    app = Starlette(
        routes=[Route(TRACES_PATH, traces, methods=["POST"])],
        exception_handlers={_Gone: _gone},
    )
    app.state.receiver = state
    return app


class OtlpReceiver:
    """Runs the receiver on a free local port in a background thread (for tests).

    Example:
        >>> with OtlpReceiver() as otlp:
        ...     settings = load_settings(otel_exporter_otlp_endpoint=otlp.url)
    """

    def __init__(
        self, *, required_headers: Mapping[str, str] | None = None, host: str = "127.0.0.1"
    ) -> None:
        self.state = OtlpReceiverState(
            required_headers={k.lower(): v for k, v in (required_headers or {}).items()}
        )
        self.host = host
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The base URL (``OTEL_EXPORTER_OTLP_ENDPOINT``); traces go to ``/v1/traces``."""
        return f"http://{self.host}:{self.port}"

    @property
    def spans(self) -> list[OtlpSpan]:
        return list(self.state.spans)

    def set_hang(self, hang: bool) -> None:
        """Stall (True) or answer (False) every export from now on."""
        self.state.hang = hang

    def wait_for(self, predicate: Callable[[OtlpReceiver], Any], timeout: float = 15.0) -> Any:
        """Poll until ``predicate(self)`` is truthy; return its value or raise TimeoutError."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate(self)
            if value:
                return value
            time.sleep(0.05)
        raise TimeoutError(f"otlp receiver: condition not met in {timeout} s")

    def start(self) -> OtlpReceiver:
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
            target=self._server.run, kwargs={"sockets": [sock]}, name="otlp-receiver", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("otlp receiver failed to start")
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

    def __enter__(self) -> OtlpReceiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
