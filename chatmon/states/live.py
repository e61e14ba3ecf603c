"""The reply being streamed, sent to its tab as small append-only frames beside the state.

Reflex resends a whole var on every change (reflex-dev/reflex#4156), and every change of
``ChatState`` takes the state lock, computes a delta and (with Redis) loads and saves the
whole state. A growing ``streaming_text`` updated per token therefore cost CPU and bytes
that grow with the square of the reply. Here the live text travels differently:

* :class:`~chatmon.services.stream_buffer.StreamBuffer` coalesces the chunks: the first
  goes out at once, then at most one frame per ``STREAM_FLUSH_MS``, each holding only the
  new text and a sequence number.
* A frame is a delta of :attr:`LiveState.f` pushed with Reflex's own
  ``emit_update`` to the tab's client token: no lock, no state load or save, the same
  routing (and, with Redis, the same hand-over to the instance holding the tab's socket)
  as every other update. Only the tab that started the reply receives it; nothing a
  client sends selects whose stream it gets.
* In the page, ``assets/live_reply.js`` appends each frame to what it holds and renders
  it with the same Markdown component as finished messages. A frame out of sequence
  (a reload, a reconnect, frames merged into one render) makes it call
  :meth:`LiveState.resync`, answered with one frame holding the whole text so far.

``ChatState`` stays the source of truth: the finished reply is saved and appended to
``messages`` by ``_finish_reply`` as before, and ``streaming`` says whether a reply is in
flight (so a reloaded tab shows the live bubble and asks for the text so far). The
finished message goes to the page without the text the frames already carried
(:meth:`LivePublisher.page_holds`, :mod:`chatmon.states.message_wire`); a page that
missed the last frames asks with :meth:`LiveState.resync` as during the stream, and
with no reply streaming the chat state sends its finished replies again whole.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import reflex as rx
from reflex.state import StateUpdate
from reflex_base.constants.state import FIELD_MARKER
from reflex_base.registry import RegistrationContext
from reflex_base.utils.exceptions import ReflexRuntimeError

from chatmon.observability import series
from chatmon.services.stream_buffer import Frame, StreamBuffer
from chatmon.settings import get_settings

log = logging.getLogger(__name__)

# How long the end of a stream waits for a frame being written to the socket.
CLOSE_TIMEOUT = 2.0


class LiveState(rx.State):
    """Carries the live frames to the page; the backend never sets ``f`` itself.

    ``f`` stays ``[]`` in the stored state, so hydrating a tab (a reload) sends
    nothing stale: the page then asks for the text so far with :meth:`resync`.
    """

    # Short names on purpose: the state's full name and this var's name are repeated in
    # every frame, which otherwise holds only a few words.
    f: list[Any] = []  # the frame: [seq, text] or [seq, text, reply] (see Frame.to_json)

    @classmethod
    def get_name(cls) -> str:
        """``live``, not Reflex's module-derived ``chatmon___states___live____live_state``.

        The full state name is repeated in every frame (each a few words): the module
        path alone cost ~30 bytes a frame, a third of its fixed cost. Unique in this app.
        """
        return "live"

    # Reflex refuses a state member that shadows one of its methods unless it is marked
    # as a deliberate override (the mark Reflex's own ``_override_base_method`` sets).
    get_name.__func__.__override_base_method__ = True  # type: ignore[attr-defined]  # a function attribute Reflex reads

    @rx.event
    async def resync(self) -> None:
        """The page missed a frame: send the whole text so far with the next frame.

        Takes no arguments: the stream is found by the tab's own client token, which
        Reflex knows from the socket, and a client asking too often only gets one full
        frame per ``MIN_RESYNC_SECONDS``.
        """
        token = self.router.session.client_token
        publisher = _publishers.get(token)
        if publisher is not None:  # streaming here: a full frame
            publisher.resync()
            return
        # No reply streams here: the page may lack the text of a finished reply (it
        # missed frames, or they went to a worker it has left). The tab's state holds
        # every finished message whole, so those go again with their text.
        if _whole_texts is not None:
            await _whole_texts(self)
        await _resync_channel.publish(token)  # with Redis a reply may stream in another worker


# Set by the chat state (chatmon.states.chat), which this module must not import: sends
# a tab's finished replies again with their whole text (ChatBase._send_whole_texts).
_whole_texts: Callable[[LiveState], Awaitable[None]] | None = None


def on_missing_text(send: Callable[[LiveState], Awaitable[None]]) -> None:
    """Register how a tab's finished replies are sent again whole (see ``resync``)."""
    global _whole_texts
    _whole_texts = send


def _app() -> Any | None:
    try:
        return RegistrationContext.get().app
    except (LookupError, ReflexRuntimeError):  # no running app (unit tests)
        return None


class LivePublisher:
    """The live frames of one reply to one tab; use as ``async with``, ``push`` each chunk.

    Frames go out from a task of their own, so a chunk arriving while the flush
    interval runs costs only an append, and text that stops arriving mid-interval is
    still sent when the interval ends.
    """

    def __init__(self, *, token: str, reply: str, flush_seconds: float | None = None) -> None:
        if flush_seconds is None:
            flush_seconds = get_settings().stream_flush_ms / 1000
        self.token = token
        self.buffer = StreamBuffer(reply, flush_seconds=flush_seconds)
        self.frames_sent = 0
        self._wake = asyncio.Event()
        self._closing = asyncio.Event()
        self._task: asyncio.Task | None = None
        # What the page holds when every frame sent so far arrived: the last frame's
        # seq (None: none sent, or one failed to leave) and the text since the last
        # full frame, as its parts.
        self._page_seq: int | None = None
        self._page_parts: list[str] = []
        self._delta_key = LiveState.get_full_name()
        self._var_key = "f" + FIELD_MARKER

    async def __aenter__(self) -> LivePublisher:
        previous = _publishers.get(self.token)
        if previous is not None:  # a stream already running for this tab: it loses the page
            previous.detach()
        _publishers[self.token] = self
        _resync_channel.ensure_listening()
        series.STREAMS_IN_PROGRESS.inc()
        self._task = asyncio.create_task(self._run(), name=f"live-reply|{self.buffer.reply}")
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        series.STREAMS_IN_PROGRESS.dec()
        self.detach()
        if self._task is not None:
            # A frame being written is finished (page_holds counts it), a wait for
            # the next one is not.
            self._closing.set()
            self._wake.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(asyncio.shield(self._task), CLOSE_TIMEOUT)
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    def detach(self) -> None:
        """Stop being the tab's live stream (a newer one took over, or this one ended)."""
        if _publishers.get(self.token) is self:
            del _publishers[self.token]

    def page_holds(self, content: str) -> dict[str, int]:
        """``MessageView`` fields saying the page holds the start of ``content`` already.

        ``{}`` unless every frame left, and what they carried starts ``content`` (an
        error reply replaces the text, a stopped one only adds to it).
        """
        if self._page_seq is None:
            return {}
        text = "".join(self._page_parts)
        if not content.startswith(text):
            return {}
        return {"live_seq": self._page_seq, "live_chars": len(text)}

    def push(self, chunk: str) -> None:
        """One streamed chunk; it reaches the page with the next frame."""
        self.buffer.append(chunk)
        self._wake.set()

    def resync(self) -> None:
        """The page asks for the whole text (see :meth:`LiveState.resync`)."""
        self.buffer.request_resync()
        self._wake.set()

    async def _run(self) -> None:
        buffer = self.buffer
        while not self._closing.is_set():
            await self._wake.wait()
            self._wake.clear()
            while buffer.pending() and not self._closing.is_set():
                delay = buffer.due_in()
                if delay > 0:
                    with contextlib.suppress(TimeoutError):
                        await asyncio.wait_for(self._closing.wait(), delay)
                    continue
                frame = buffer.take_frame()
                if frame is not None:
                    await self._send(frame)

    async def _send(self, frame: Frame) -> None:
        app = _app()
        namespace = getattr(app, "event_namespace", None)
        if namespace is None:
            return
        update = StateUpdate(delta={self._delta_key: {self._var_key: frame.to_json()}})
        try:
            await namespace.emit_update(update, self.token)
        except Exception:  # noqa: BLE001 - a lost frame is healed by a resync
            log.debug("live frame not delivered", exc_info=True)
            self._page_seq = None  # until a full frame: the page's text is unknown
        else:
            if frame.full:
                self._page_seq, self._page_parts = frame.seq, [frame.text]
            elif self._page_seq is not None:
                self._page_seq = frame.seq
                self._page_parts.append(frame.text)
        self.frames_sent += 1


# The live stream of each tab (client token) in this process.
_publishers: dict[str, LivePublisher] = {}

RESYNC_CHANNEL = "chatmon:live:resync"


class _ResyncChannel:
    """Resync requests between workers (Redis pub/sub), only when Reflex uses Redis.

    A tab that reloads or reconnects can land on another worker than the one streaming
    its reply; frames still reach it (Reflex hands them over), but its resync request
    is handled where it landed. That worker publishes the tab's token; every worker
    streaming replies listens and answers for the tabs it streams to. Only a token is
    sent, and a worker acts on it only for a stream it already sends to that token.
    """

    def __init__(self) -> None:
        self._redis: Any = None
        self._checked = False
        self._listener: asyncio.Task | None = None

    def _client(self) -> Any:
        if not self._checked:
            self._checked = True
            from reflex.utils.prerequisites import get_redis

            self._redis = get_redis()
        return self._redis

    async def publish(self, token: str) -> None:
        redis = self._client()
        if redis is None:
            return
        try:
            await redis.publish(RESYNC_CHANNEL, token)
        except Exception:  # noqa: BLE001 - the page asks again a second later
            log.warning("live resync request not published", exc_info=True)

    def ensure_listening(self) -> None:
        """Start this worker's listener (once) when it first streams a reply."""
        if self._client() is None or (self._listener and not self._listener.done()):
            return
        self._listener = asyncio.create_task(self._listen(), name="live-resync-listener")

    async def _listen(self) -> None:
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(RESYNC_CHANNEL)
                    async for message in pubsub.listen():
                        if message.get("type") != "message":
                            continue
                        token = message["data"]
                        token = token.decode() if isinstance(token, bytes) else str(token)
                        if (publisher := _publishers.get(token)) is not None:
                            publisher.resync()
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - Redis went away: listen again shortly
                log.warning("live resync listener failed; retrying", exc_info=True)
                await asyncio.sleep(1.0)


_resync_channel = _ResyncChannel()


def live_streams() -> int:
    """Replies streaming in this process right now."""
    return len(_publishers)
