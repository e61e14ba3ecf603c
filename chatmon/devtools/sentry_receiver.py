"""A local receiver of Sentry's envelope endpoint (what Sentry and GlitchTip accept).

``POST /api/<project>/envelope/`` with an envelope: a JSON header line, then items,
each a JSON item header line and a payload (``length`` bytes, or up to the next
newline), gzip- or deflate-encoded or not. The receiver parses it so tests (and
drills) can assert on the events chatmon reports over real HTTP. Requests whose
``X-Sentry-Auth`` (or ``sentry_key`` query parameter) is not the DSN's key get 401, as
from Sentry; ``hang=True`` stalls every request without answering (a hung Sentry).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

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


@dataclass
class EnvelopeItem:
    """One item of an envelope: its header and its payload (JSON-decoded when it is)."""

    type: str
    headers: dict[str, Any]
    payload: Any


@dataclass
class Envelope:
    project: str
    headers: dict[str, Any]
    items: list[EnvelopeItem]


@dataclass(kw_only=True)
class SentryReceiverState(ReceiverState):
    public_key: str
    envelopes: list[Envelope] = field(default_factory=list)


def parse_envelope(body: bytes, *, project: str = "") -> Envelope:
    """An envelope's header and items (https://develop.sentry.dev/sdk/envelopes/)."""
    header_line, _, rest = body.partition(b"\n")
    headers = json.loads(header_line) if header_line.strip() else {}
    items = []
    while rest.strip():
        item_line, _, rest = rest.partition(b"\n")
        if not item_line.strip():
            continue
        item_headers = json.loads(item_line)
        length = item_headers.get("length")
        if length is None:
            payload, _, rest = rest.partition(b"\n")
        else:
            payload, rest = rest[:length], rest[length:]
            rest = rest.removeprefix(b"\n")
        content: Any = payload
        if item_headers.get("type") != "attachment":
            try:
                content = json.loads(payload)
            except ValueError:
                content = payload
        items.append(EnvelopeItem(str(item_headers.get("type", "")), item_headers, content))
    return Envelope(project=project, headers=headers, items=items)


def _key_of(request: Request) -> str:
    auth = request.headers.get("x-sentry-auth", "")
    for part in auth.removeprefix("Sentry ").split(","):
        name, _, value = part.strip().partition("=")
        if name == "sentry_key":
            return value
    return request.query_params.get("sentry_key", "")


async def envelope(request: Request) -> Response:
    state: SentryReceiverState = request.app.state.receiver
    body = await accepted_body(
        request, state, authorized=lambda request: _key_of(request) == state.public_key
    )
    if body is None:
        return JSONResponse({"detail": "invalid api key"}, status_code=401)
    parsed = parse_envelope(body, project=request.path_params["project"])
    state.envelopes.append(parsed)
    return JSONResponse({"id": parsed.headers.get("event_id")})


def create_app(state: SentryReceiverState) -> Starlette:
    return receiver_app([Route("/api/{project}/envelope/", envelope, methods=["POST"])], state)


class SentryReceiver(HttpReceiver):
    """Runs the receiver on a free local port in a background thread (for tests).

    Example:
        >>> with SentryReceiver() as sentry:
        ...     settings = load_settings(sentry_dsn=sentry.dsn)
    """

    name = "sentry receiver"
    state: SentryReceiverState

    def __init__(
        self, *, public_key: str = "e2b1c7d94f3a4d1e", project: str = "42", host: str = "127.0.0.1"
    ) -> None:
        super().__init__(host=host)
        self.state = SentryReceiverState(public_key=public_key)
        self.project = project

    def create_app(self) -> Starlette:
        return create_app(self.state)

    @property
    def dsn(self) -> str:
        """The DSN that reports here (``SENTRY_DSN``)."""
        return f"http://{self.state.public_key}@{self.host}:{self.port}/{self.project}"

    @property
    def events(self) -> list[dict[str, Any]]:
        """Every error event received (the payloads of ``event`` items)."""
        return [
            item.payload
            for envelope in list(self.state.envelopes)
            for item in envelope.items
            if item.type == "event" and isinstance(item.payload, dict)
        ]
