"""Serving the fake upstream: in a background thread for tests (:class:`FakeLLMServer`),
or in the foreground (:func:`serve`, ``python -m chatmon fake-llm``), on a socket bound
first (:func:`bind_socket`) so the caller learns the real port.

This module must stay plain Python: it must not import reflex or litellm.
"""

from __future__ import annotations

import asyncio
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

import uvicorn
from starlette.applications import Starlette

from chatmon.devtools.fake_llm import FakeLLMConfig, FakeLLMState
from chatmon.devtools.fake_llm_app import create_app
from chatmon.devtools.fake_llm_responses import HANG_POLL_INTERVAL


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
        await asyncio.wait({task}, timeout=HANG_POLL_INTERVAL)
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
