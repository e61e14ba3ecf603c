"""A headless Reflex 0.10 browser tab: the websocket protocol the built frontend speaks.

Benchmarks and tests use it to drive a running app with many simultaneous "tabs" without
a browser. It sends exactly what ``.web/utils/state.js`` sends (read from Reflex 0.10.1's
sources, not guessed):

* a Socket.IO connection over the websocket transport only, at path ``/_event`` and in
  namespace ``/_event`` (socket.io-client takes it from the URL), with the tab's token (a
  UUID kept in sessionStorage) in the query string and the Reflex version as the
  websocket subprotocol;
* the hydrate event riding in the Socket.IO CONNECT packet (``auth``): ``{"event":
  <root>.hydrate_and_load, "state_schema": <hash>}``, whose payload carries the browser's
  ``rx.LocalStorage`` values (``vars``) and, on the first connect, the hashes of the
  compiled initial state (``hashes``), so the backend only sends what differs;
* each user event as ``emit("event", {"name", "payload", "router_data"})``; form
  submissions wrap their fields as ``{"__reflex_form_data__": [[name, value], ...]}``.

The backend answers with ``event`` messages ``{"delta": {substate: {var: value}},
"events": [...]}``. Deltas are applied to a local copy of the state (seeded with the
compiled initial state, as the browser's reducers are), and ``rx.LocalStorage`` values in
a hydrated delta are written to this tab's ``local_storage`` dict, as the browser writes
``localStorage``. Events whose name starts with ``_`` only touch the DOM and are ignored;
any other event is sent back, as the browser does.

What the frontend bakes in at build time (initial state, its hashes, the state schema,
the client-storage map, the Reflex version) is read from the app's web directory
(``REFLEX_WEB_WORKDIR``) with :meth:`CompiledApp.from_web_dir`.
"""

from __future__ import annotations

import asyncio
import copy
import json
import re
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import socketio

VAR_SUFFIX = "_rx_state_"
FORM_DATA_ENTRIES_KEY = "__reflex_form_data__"
NAMESPACE = "/_event"  # socket.io-client derives the namespace from the URL's path
LIVE_SUBSTATE = ".live"  # chatmon's LiveState: the live reply's frames
LIVE_FRAME = "f" + VAR_SUFFIX


def _const(source: str, name: str) -> Any:
    """The JSON literal of ``export const <name> = ...`` in the compiled context module."""
    match = re.search(rf"^export const {name} = (.+)$", source, re.MULTILINE)
    if match is None:
        raise ValueError(f"{name} not found in the compiled frontend")
    return json.loads(match.group(1))


@dataclass(frozen=True)
class CompiledApp:
    """What the frontend was built with; the browser sends parts of it on connect."""

    root_state: str
    initial_state: dict[str, dict[str, Any]]
    state_hashes: list[str]
    state_schema: str
    local_storage: dict[str, str]  # "<substate>.<var>_rx_state_" -> localStorage key
    reflex_version: str

    @classmethod
    def from_web_dir(cls, web_dir: Path) -> CompiledApp:
        """Read the build outputs of ``reflex run`` / ``reflex export`` in ``web_dir``."""
        source = (web_dir / "utils" / "context.jsx").read_text()
        storage = _const(source, "clientStorage").get("local_storage", {})
        return cls(
            root_state=_const(source, "state_name"),
            initial_state=_const(source, "initialState"),
            state_hashes=_const(source, "initialStateHashes"),
            state_schema=_const(source, "stateSchema"),
            local_storage={key: opts.get("name") or key for key, opts in storage.items()},
            reflex_version=json.loads((web_dir / "reflex.json").read_text())["version"],
        )

    def handler(self, state: str, name: str) -> str:
        """Full event name, e.g. ``handler("chat", "load")``."""
        return f"{self.root_state}.{state}.{name}"


def form_data(**fields: str) -> dict[str, Any]:
    """A form submission's argument, as ``getFormData`` + ``encodeFormDataArgs`` build it."""
    return {FORM_DATA_ENTRIES_KEY: [[name, value] for name, value in fields.items()]}


def chat_messages(session: ReflexSession, state: str = "chat") -> list[dict[str, Any]]:
    """The chat bubbles a tab shows, in order: the loaded page (``messages``) then what
    the tab added since (``recent``, ``question``, ``answer``), as ``chatmon/pages/chat.py``
    renders them. A reply sent as ``"live": [seq, tail]`` (its text is what the live
    frames carried, then ``tail``: chatmon/states/message_wire.py) gets its ``content``
    back from the frames this tab received, as ``assets/live_reply.js`` does; without
    them it has no ``content``. Fields left at their defaults stay absent."""
    names = ("messages", "recent", "question", "answer")
    return [session.live.message(m) for name in names for m in session.get(state, name) or []]


@dataclass
class LiveText:
    """chatmon's live reply frames as ``assets/live_reply.js`` applies them: ``[seq, text]``
    appends, ``[seq, text, reply]`` replaces; a frame out of sequence is a gap."""

    reply: str | None = None
    seq: int = -1
    text: str = ""
    gap: bool = False
    finished: dict[str, tuple[int, str]] = field(default_factory=dict)  # reply -> seq, text

    def apply(self, frame: Any) -> None:
        """One frame (``LiveState.f``); ``gap`` says a resync is needed."""
        if not isinstance(frame, list) or len(frame) < 2 or not isinstance(frame[1], str):
            return
        if len(frame) > 2:
            if frame[2] == self.reply and frame[0] <= self.seq:
                return
            self.reply, self.seq, self.text, self.gap = frame[2], frame[0], frame[1], False
        elif self.reply is not None and not self.gap and frame[0] == self.seq + 1:
            self.seq, self.text = frame[0], self.text + frame[1]
        else:
            self.gap = True
        if self.reply is not None and not self.gap:
            self.finished[self.reply] = (self.seq, self.text)

    def message(self, message: dict[str, Any]) -> dict[str, Any]:
        """The message with the text its ``live`` entry points at, when this tab holds it."""
        if not isinstance(message.get("live"), list):
            return message
        seq, tail = message["live"]
        full = {k: v for k, v in message.items() if k != "live"}
        held = self.finished.get(message.get("correlation_id", ""))
        if held is not None and held[0] >= seq:
            full["content"] = held[1] + tail
        return full


class SessionClosed(RuntimeError):
    """The server closed the websocket (or it never connected)."""


@dataclass
class ReflexSession:
    """One browser tab on ``path`` of the app at ``base_url``.

    Pass the same ``local_storage`` and ``cookies`` dicts to a later session to model the
    same browser profile opening a new tab (or moving to another server): ``rx.LocalStorage``
    vars and cookies (the server-issued identity) travel with them, the per-tab token does
    not. Like a browser, :meth:`connect` first loads the page (``load_page``), which is
    where the server sets its cookies; ``cookies`` is sent with the websocket handshake.
    ``origin`` is the page's origin, which a browser sends and the backend checks against its
    CORS origins: set it to the public URL when connecting to one instance behind a balancer.
    """

    base_url: str
    app: CompiledApp
    local_storage: dict[str, str] = field(default_factory=dict)
    cookies: dict[str, str] = field(default_factory=dict)
    load_page: bool = True  # GET the page before connecting, as a browser does
    path: str = "/"
    origin: str = ""  # the page's origin, sent as Origin; default: base_url's
    token: str = field(default_factory=lambda: str(uuid.uuid4()))
    state: dict[str, dict[str, Any]] = field(init=False)
    errors: list[str] = field(init=False, default_factory=list)
    updates: int = field(init=False, default=0)
    last_update_at: float = field(init=False, default=0.0)  # perf_counter() of the last update
    received_bytes: int = field(init=False, default=0)  # JSON bytes of every update received
    # The same bytes by the (first) substate each update changed ("" for events only).
    received_bytes_by_substate: dict[str, int] = field(init=False, default_factory=dict)
    # Events the server sent for the page itself (``_download``, ``_call_script``...).
    frontend_events: list[dict[str, Any]] = field(init=False, default_factory=list)
    # Every update received, with its size, when ``keep_updates`` (bench.concurrency's
    # --breakdown classifies them); off by default, N tabs would keep every frame.
    keep_updates: bool = False
    update_log: list[tuple[int, dict[str, Any]]] = field(init=False, default_factory=list)
    live: LiveText = field(init=False, default_factory=LiveText)  # chatmon's live reply

    def __post_init__(self) -> None:
        self.state = copy.deepcopy(self.app.initial_state)
        self._changed = asyncio.Event()
        self._closed = False
        self._resync_asked = -1.0
        self._sio = socketio.AsyncClient(
            reconnection=False,
            handle_sigint=False,
            websocket_extra_options={"protocols": [self.app.reflex_version]},
        )
        for name, handler in (
            ("event", self._on_update),
            ("new_token", self._on_new_token),
            ("state_mismatch", self._on_state_mismatch),
            ("disconnect", self._on_disconnect),
        ):
            self._sio.on(name, handler, namespace=NAMESPACE)

    # ----- connection -----------------------------------------------------------------
    async def connect(self, *, timeout: float = 30.0) -> None:  # noqa: ASYNC109 - passed to httpx and socketio, per step
        """Open the websocket, hydrate, run the page's on_load, as a page load does."""
        stored = {
            key: self.local_storage[name]
            for key, name in self.app.local_storage.items()
            if name in self.local_storage
        }
        payload: dict[str, Any] = {"hashes": self.app.state_hashes}
        if stored:
            payload["vars"] = stored
        boot = self._event(f"{self.app.root_state}.hydrate_and_load", payload)
        if self.load_page:
            await self._load_page(timeout=timeout)
        headers = {"Origin": self.origin or self.base_url}
        if self.cookies:
            headers["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        await self._sio.connect(
            f"{self.base_url}?token={self.token}",
            headers=headers,
            transports=["websocket"],
            socketio_path="_event",
            namespaces=[NAMESPACE],
            auth={"event": boot, "state_schema": self.app.state_schema},
            wait_timeout=timeout,
        )
        await self.wait_until(lambda s: s.get(self.app.root_state, "is_hydrated"), timeout=timeout)

    async def _load_page(self, *, timeout: float) -> None:  # noqa: ASYNC109 - httpx's own timeout, per request
        """GET the page with this profile's cookies and keep the cookies it sets."""
        async with httpx.AsyncClient(cookies=self.cookies, timeout=timeout) as client:
            response = await client.get(self.base_url + self.path)
            for name, value in response.cookies.items():
                self.cookies[name] = value

    async def close(self) -> None:
        """Close the tab."""
        self._closed = True
        await self._sio.disconnect()

    # ----- events -----------------------------------------------------------------------
    def _event(self, name: str, payload: dict[str, Any]) -> dict[str, Any]:
        router_data = {"pathname": self.path, "asPath": self.path}
        event: dict[str, Any] = {"name": name, "router_data": router_data}
        if payload:
            event["payload"] = payload
        return event

    async def send(self, name: str, **payload: Any) -> float:
        """Send one event (full handler name); returns the ``time.perf_counter()`` it left."""
        if self._closed or not self._sio.connected:
            raise SessionClosed(f"session {self.token} is not connected")
        event = self._event(name, payload)
        # Stamped just before the frame is queued: the latency a user would see starts here.
        sent = time.perf_counter()
        await self._sio.emit("event", event, namespace=NAMESPACE)
        return sent

    async def emit(self, socket_event: str, data: Any) -> None:
        """Send a raw Socket.IO event other than ``event`` (e.g. ``client_error``)."""
        if self._closed or not self._sio.connected:
            raise SessionClosed(f"session {self.token} is not connected")
        await self._sio.emit(socket_event, data, namespace=NAMESPACE)

    @property
    def closed(self) -> bool:
        """Whether the tab closed or the server dropped the websocket."""
        return self._closed

    # ----- state ------------------------------------------------------------------------
    def get(self, substate: str, var: str) -> Any:
        """A var's current value; ``substate`` is the full name or its last dotted part."""
        return self.state[self._full(substate)].get(var + VAR_SUFFIX)

    def _full(self, substate: str) -> str:
        if substate in self.state:
            return substate
        for name in self.state:
            if name.endswith("." + substate):
                return name
        raise KeyError(substate)

    async def wait_until(
        self,
        predicate: Callable[[ReflexSession], Any],
        *,
        timeout: float,  # noqa: ASYNC109 - the helper's point; enforced with asyncio.timeout below
    ) -> None:
        """Wait until ``predicate(self)`` holds after some update (or already does)."""
        async with asyncio.timeout(timeout):
            while not predicate(self):
                if self._closed:
                    raise SessionClosed(f"session {self.token} closed: {self.errors}")
                self._changed.clear()
                await self._changed.wait()

    # ----- incoming -----------------------------------------------------------------------
    async def _on_update(self, update: dict[str, Any]) -> None:
        self.last_update_at = time.perf_counter()
        self.updates += 1
        # What the server serialised (compact JSON, as Reflex sends it), not Socket.IO framing.
        size = len(json.dumps(update, separators=(",", ":"), ensure_ascii=False).encode())
        self.received_bytes += size
        if self.keep_updates:
            self.update_log.append((size, update))
        substate = next(iter(update.get("delta") or {}), "")
        self.received_bytes_by_substate[substate] = (
            self.received_bytes_by_substate.get(substate, 0) + size
        )
        delta = update.get("delta") or {}
        for substate, changes in delta.items():
            self.state.setdefault(substate, {}).update(changes)
            if substate.endswith(LIVE_SUBSTATE) and LIVE_FRAME in changes:
                await self._on_live_frame(changes[LIVE_FRAME])
        self._store_client_vars(delta)
        for event in update.get("events") or []:
            if str(event.get("name", "")).startswith("_"):
                self.frontend_events.append(event)
            else:
                again = self._event(event["name"], event.get("payload") or {})
                await self._sio.emit("event", again, namespace=NAMESPACE)
        self._changed.set()

    async def _on_live_frame(self, frame: Any) -> None:
        """Apply it; on a gap, ask for the whole text as the page does (once a second)."""
        self.live.apply(frame)
        now = time.monotonic()
        if self.live.gap and now - self._resync_asked >= 1.0:
            self._resync_asked = now
            resync = self._event(self.app.handler("live", "resync"), {})
            await self._sio.emit("event", resync, namespace=NAMESPACE)

    def _store_client_vars(self, delta: dict[str, dict[str, Any]]) -> None:
        """``applyClientStorageDelta``: a not-yet-hydrated snapshot never writes storage."""
        root = delta.get(self.app.root_state, {})
        if root.get("is_hydrated" + VAR_SUFFIX) is False:
            return
        for substate, changes in delta.items():
            for var, value in changes.items():
                name = self.app.local_storage.get(f"{substate}.{var}")
                if name is not None:
                    self.local_storage[name] = value

    async def _on_new_token(self, token: str) -> None:
        self.token = token

    async def _on_state_mismatch(self, info: Any) -> None:
        self.errors.append(f"state mismatch: {info}")
        self._changed.set()

    async def _on_disconnect(self, *reason: Any) -> None:
        if not self._closed:
            self.errors.append(f"disconnected by the server: {reason}")
        self._closed = True
        self._changed.set()
