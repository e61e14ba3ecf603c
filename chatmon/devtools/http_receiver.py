"""What the local protocol peers (Langfuse, OTLP, Sentry receivers) share: a Starlette
app served by uvicorn on a free local port in a background thread, the record of what
arrived, and a ``hang`` switch that stalls every request without answering (a silent
backend), released when the client gives up or the receiver stops.

A receiver subclasses :class:`HttpReceiver`, keeps its record in a state that extends
:class:`ReceiverState`, and builds its app with :func:`receiver_app`; its endpoints start
with :func:`accepted_body` (or :func:`hold_while_hung` when they take no body).
"""

from __future__ import annotations

import asyncio
import gzip
import threading
import time
import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar, Self

import uvicorn
from starlette.applications import Starlette
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Route

from chatmon.devtools.fake_llm_server import bind_socket

STARTUP_SECONDS = 10.0
STOP_SECONDS = 5.0


@dataclass(kw_only=True)
class ReceiverState:
    """What every receiver records, and its ``hang`` switch."""

    hang: bool = False
    raw_bodies: list[bytes] = field(default_factory=list)  # decompressed, as they arrived
    unauthorized: int = 0  # requests refused with 401
    hung: int = 0  # requests that arrived while hanging


class _Gone(Exception):
    """The client gave up (it timed out while the receiver hung)."""


async def _gone(_request: Request, _exc: Exception) -> Response:
    return Response(status_code=499)  # nobody is listening any more


def receiver_app(routes: list[Route], state: ReceiverState) -> Starlette:
    """The receiver's app: its routes, ``state`` as ``app.state.receiver``."""
    app = Starlette(routes=routes, exception_handlers={_Gone: _gone})
    app.state.receiver = state
    return app


async def _whole_body(request: Request) -> bytes:
    try:
        return await request.body()  # kept by the request: read again at no cost
    except ClientDisconnect:
        raise _Gone from None  # answered 499 by the app's handler


async def hold_while_hung(request: Request, state: ReceiverState) -> None:
    """With ``hang`` on, count the request and stall until it is off or the client left."""
    if state.hang:
        state.hung += 1
        # The body first: Starlette's disconnect poll takes the next ASGI message and
        # drops it unless it is the disconnect, so a body still unread would be lost and
        # a request released from the hang would wait for it until the client gave up.
        await _whole_body(request)
        # Two flags, no event to await: the test's `hang`, Starlette's disconnect poll.
        while state.hang and not await request.is_disconnected():  # noqa: ASYNC110 - see above
            await asyncio.sleep(0.05)
        if await request.is_disconnected():
            raise _Gone  # timed out while it hung: nothing is recorded, as from a real host


async def read_body(request: Request) -> bytes:
    """The request body, gzip- or deflate-decoded as its ``Content-Encoding`` says."""
    body = await _whole_body(request)
    encoding = request.headers.get("content-encoding", "")
    if encoding == "gzip":
        return gzip.decompress(body)
    if encoding == "deflate":
        return zlib.decompress(body)
    return body


async def accepted_body(
    request: Request, state: ReceiverState, *, authorized: Callable[[Request], bool]
) -> bytes | None:
    """What every endpoint does first: hold while hung, refuse (and count) a request
    ``authorized`` rejects, then read, decode and record its body.

    Returns:
        The body; None when the endpoint must answer 401.
    """
    await hold_while_hung(request, state)
    if not authorized(request):
        state.unauthorized += 1
        return None
    body = await read_body(request)
    state.raw_bodies.append(body)
    return body


class HttpReceiver:
    """Runs a receiver's app on a free local port in a background thread (for tests).

    A subclass sets ``self.state`` (a :class:`ReceiverState`) in its ``__init__`` and
    implements :meth:`create_app`.
    """

    name: ClassVar[str] = "receiver"  # in thread names and errors
    state: ReceiverState

    def __init__(self, *, host: str = "127.0.0.1") -> None:
        self.host = host
        self.port = 0
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None

    def create_app(self) -> Starlette:
        """The app to serve (its state is ``self.state``)."""
        raise NotImplementedError

    @property
    def url(self) -> str:
        """``http://host:port``, once started."""
        return f"http://{self.host}:{self.port}"

    def set_hang(self, hang: bool) -> None:
        """Stall (True) or answer (False) every request from now on."""
        self.state.hang = hang

    def wait_for(self, predicate: Callable[[Self], Any], timeout: float = 15.0) -> Any:
        """Poll until ``predicate(self)`` is truthy; return its value or raise TimeoutError."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            value = predicate(self)
            if value:
                return value
            time.sleep(0.05)
        raise TimeoutError(f"{self.name}: condition not met in {timeout} s")

    def start(self) -> Self:
        """Serve; returns once connections are accepted.

        Raises:
            RuntimeError: the server thread died or did not start in time.
        """
        sock = bind_socket(self.host, 0)
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(
            self.create_app(),
            http="h11",
            ws="none",
            lifespan="off",
            log_config=None,
            log_level="warning",
            access_log=False,
            timeout_graceful_shutdown=1,
        )
        server = self._server = uvicorn.Server(config)
        thread = self._thread = threading.Thread(
            target=server.run,
            kwargs={"sockets": [sock]},
            name=self.name.replace(" ", "-"),
            daemon=True,
        )
        thread.start()
        deadline = time.monotonic() + STARTUP_SECONDS
        while not server.started:
            if time.monotonic() > deadline or not thread.is_alive():
                raise RuntimeError(f"{self.name} failed to start")
            time.sleep(0.005)
        return self

    def stop(self) -> None:
        """Release hung requests and stop serving (forcefully if it takes too long)."""
        self.state.hang = False
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(STOP_SECONDS)
            if self._thread.is_alive() and self._server is not None:
                self._server.force_exit = True
                self._thread.join(STOP_SECONDS)
        self._server = self._thread = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()
