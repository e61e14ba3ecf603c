"""A local receiver of Sentry's envelope endpoint (what Sentry and GlitchTip accept).

``POST /api/<project>/envelope/`` with an envelope: a JSON header line, then items,
each a JSON item header line and a payload (``length`` bytes, or up to the next
newline), gzip- or deflate-encoded or not. The receiver parses it so tests (and
drills) can assert on the events chatmon reports over real HTTP. Requests whose
``X-Sentry-Auth`` (or ``sentry_key`` query parameter) is not the DSN's key get 401, as
from Sentry; ``hang=True`` stalls every request without answering (a hung Sentry).
"""

from __future__ import annotations

import asyncio
import gzip
import json
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from chatmon.devtools.fake_llm import bind_socket


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


@dataclass
class SentryReceiverState:
    public_key: str
    hang: bool = False
    envelopes: list[Envelope] = field(default_factory=list)
    raw_bodies: list[bytes] = field(default_factory=list)
    unauthorized: int = 0
    hung: int = 0


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


class _Gone(Exception):
    """The client gave up (it timed out while the receiver hung)."""


async def envelope(request: Request) -> Response:
    state: SentryReceiverState = request.app.state.receiver
    if state.hang:
        state.hung += 1
        # Two flags, no event to await: `hang` set by the test, Starlette's disconnect poll.
        while state.hang and not await request.is_disconnected():  # noqa: ASYNC110 - see above
            await asyncio.sleep(0.05)
    if _key_of(request) != state.public_key:
        state.unauthorized += 1
        return JSONResponse({"detail": "invalid api key"}, status_code=401)
    try:
        body = await request.body()
    except ClientDisconnect:
        raise _Gone from None
    encoding = request.headers.get("content-encoding", "")
    if encoding == "gzip":
        body = gzip.decompress(body)
    elif encoding == "deflate":
        body = zlib.decompress(body)
    state.raw_bodies.append(body)
    parsed = parse_envelope(body, project=request.path_params["project"])
    state.envelopes.append(parsed)
    return JSONResponse({"id": parsed.headers.get("event_id")})


async def _gone(_request: Request, _exc: Exception) -> Response:
    return Response(status_code=499)


def create_app(state: SentryReceiverState) -> Starlette:
    app = Starlette(
        routes=[Route("/api/{project}/envelope/", envelope, methods=["POST"])],
        exception_handlers={_Gone: _gone},
    )
    app.state.receiver = state
    return app


class SentryReceiver:
    """Runs the receiver on a free local port in a background thread (for tests).

    Example:
        >>> with SentryReceiver() as sentry:
        ...     settings = load_settings(sentry_dsn=sentry.dsn)
    """

    def __init__(
        self, *, public_key: str = "e2b1c7d94f3a4d1e", project: str = "42", host: str = "127.0.0.1"
    ) -> None:
        self.state = SentryReceiverState(public_key=public_key)
        self.project = project
        self.host = host
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

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

    def set_hang(self, hang: bool) -> None:
        self.state.hang = hang

    def wait_for(self, predicate: Callable[[SentryReceiver], Any], timeout: float = 15.0) -> Any:
        """Poll until ``predicate(self)`` is truthy; return its value or raise TimeoutError."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate(self)
            if value:
                return value
            time.sleep(0.05)
        raise TimeoutError(f"sentry receiver: condition not met in {timeout} s")

    def start(self) -> SentryReceiver:
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
            target=self._server.run, kwargs={"sockets": [sock]}, name="sentry-receiver", daemon=True
        )
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("sentry receiver failed to start")
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

    def __enter__(self) -> SentryReceiver:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
