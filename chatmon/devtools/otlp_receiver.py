"""A local OTLP/HTTP trace receiver: what an OTel Collector, Jaeger or Tempo accepts.

``POST /v1/traces`` with an ``ExportTraceServiceRequest`` in protobuf (or OTLP JSON),
gzip or not, decoded with ``opentelemetry-proto`` so tests (and drills) can assert on
the spans, their resource and their attributes over real HTTP. ``required_headers``
makes it answer 401 to exports without them (an auth header, as hosted backends want);
``hang=True`` makes it stall without answering (a hung collector).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from chatmon.devtools.http_receiver import (
    HttpReceiver,
    ReceiverState,
    accepted_body,
    receiver_app,
)

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


@dataclass(kw_only=True)
class OtlpReceiverState(ReceiverState):
    """What arrived, and how the receiver behaves."""

    required_headers: dict[str, str] = field(default_factory=dict)
    spans: list[OtlpSpan] = field(default_factory=list)
    requests: int = 0


def any_value(value: Any) -> Any:
    """The Python value of an OTLP ``AnyValue`` (arrays and key-value lists included)."""
    kind = value.WhichOneof("value")
    if kind == "array_value":
        return [any_value(item) for item in value.array_value.values]
    if kind == "kvlist_value":
        return {kv.key: any_value(kv.value) for kv in value.kvlist_value.values}
    return getattr(value, kind) if kind else None


def decode_traces(body: bytes, content_type: str) -> list[OtlpSpan]:
    """The spans of one OTLP/HTTP export request (protobuf or JSON encoding)."""
    request = ExportTraceServiceRequest()
    if "json" in content_type:
        json_format.Parse(body.decode("utf-8"), request)
    else:
        request.ParseFromString(body)
    spans = []
    for resource_spans in request.resource_spans:
        resource = {kv.key: any_value(kv.value) for kv in resource_spans.resource.attributes}
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
                        attributes={kv.key: any_value(kv.value) for kv in span.attributes},
                        events=[(event.name, event.time_unix_nano) for event in span.events],
                        status=_STATUS.get(span.status.code, str(span.status.code)),
                        status_message=span.status.message,
                        resource=resource,
                        scope=scope_spans.scope.name,
                    )
                )
    return spans


async def traces(request: Request) -> Response:
    state: OtlpReceiverState = request.app.state.receiver
    state.requests += 1
    body = await accepted_body(
        request,
        state,
        authorized=lambda request: all(
            request.headers.get(k, "") == v for k, v in state.required_headers.items()
        ),
    )
    if body is None:
        return JSONResponse({"message": "Unauthorized"}, status_code=401)
    state.spans.extend(decode_traces(body, request.headers.get("content-type", "")))
    # An empty ExportTraceServiceResponse: everything accepted.
    return Response(b"", media_type="application/x-protobuf")


def create_app(state: OtlpReceiverState) -> Starlette:
    return receiver_app([Route(TRACES_PATH, traces, methods=["POST"])], state)


class OtlpReceiver(HttpReceiver):
    """Runs the receiver on a free local port in a background thread (for tests).

    Example:
        >>> with OtlpReceiver() as otlp:
        ...     settings = load_settings(otel_exporter_otlp_endpoint=otlp.url)
    """

    name = "otlp receiver"
    state: OtlpReceiverState

    def __init__(
        self, *, required_headers: Mapping[str, str] | None = None, host: str = "127.0.0.1"
    ) -> None:
        super().__init__(host=host)
        self.state = OtlpReceiverState(
            required_headers={k.lower(): v for k, v in (required_headers or {}).items()}
        )

    def create_app(self) -> Starlette:
        return create_app(self.state)

    @property
    def url(self) -> str:
        """The base URL (``OTEL_EXPORTER_OTLP_ENDPOINT``); traces go to ``/v1/traces``."""
        return super().url

    @property
    def spans(self) -> list[OtlpSpan]:
        return list(self.state.spans)
