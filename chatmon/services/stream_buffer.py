"""Coalescing a streamed reply into few, append-only frames for the page.

A reply arrives as many small chunks (one word or token each). Sending each one to the
browser as a state update that carries the whole text so far costs CPU and bytes that
grow with the square of the reply's length. :class:`StreamBuffer` turns the chunks into
*frames*: the first chunk goes out at once (the person sees the reply start without
delay), later text is gathered and goes out at most once per ``flush_seconds`` (and
waits up to a few intervals for a handful of words, see ``MIN_FRAME_BYTES``), and each
frame carries only the text that is new since the previous frame, numbered so the
browser can append it and notice a frame it missed (it then asks for a resync, answered
with one frame holding the whole text so far).

Pure logic with an injectable clock: no I/O, no Reflex. The state layer
(:mod:`chatmon.states.live`) decides how frames travel.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

# After the first frame, one frame waits until it carries at least this much new text
# (its fixed cost is ~75 bytes of JSON), or until MAX_WAIT_FLUSHES flush intervals have
# passed, whichever comes first: few words per update cost more bytes than they show.
MIN_FRAME_BYTES = 40
MAX_WAIT_FLUSHES = 4

# A client may ask for the whole text again (after a reload or a missed frame); more
# often than this and the request waits, so a client cannot turn the stream back into
# one whole-text update per flush.
MIN_RESYNC_SECONDS = 1.0


@dataclass(frozen=True)
class Frame:
    """One update of the reply being streamed.

    Attributes:
        reply: the reply's id (its correlation id): frames of an earlier reply are
            ignored by the page.
        seq: 0 for the first frame of the reply, then +1 per frame.
        text: the text new since frame ``seq - 1``, or the whole text when ``full``.
        full: the frame replaces what the page holds (the first frame and resyncs).
    """

    reply: str
    seq: int
    text: str
    full: bool

    def to_json(self) -> list[object]:
        """The compact form the page reads (``assets/live_reply.js``).

        ``[seq, text]``, or ``[seq, text, reply]`` for a full frame: every byte here is
        paid once per frame, and a frame of new text holds only a few words.
        """
        return [self.seq, self.text, self.reply] if self.full else [self.seq, self.text]


class StreamBuffer:
    """The text of one reply in flight and what the page has been sent of it.

    Args:
        reply: the reply's id, copied into every frame.
        flush_seconds: the shortest time between two frames after the first.
        clock: seconds, monotonic; ``time.monotonic`` unless a test supplies its own.
    """

    def __init__(
        self, reply: str, *, flush_seconds: float, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.reply = reply
        self.flush_seconds = flush_seconds
        self._clock = clock
        self._parts: list[str] = []  # all text, in chunks (joined only for a full frame)
        self._sent_parts = 0  # how many of _parts the page has been sent
        self._pending_bytes = 0  # characters not yet sent (bytes for ASCII; enough here)
        self._seq = -1
        self._last_sent: float | None = None
        self._resync_wanted = False
        self._last_resync = -MIN_RESYNC_SECONDS

    @property
    def text(self) -> str:
        """The whole reply so far."""
        return "".join(self._parts)

    def append(self, chunk: str) -> None:
        """Add a streamed chunk (empty chunks are ignored)."""
        if chunk:
            self._parts.append(chunk)
            self._pending_bytes += len(chunk)

    def request_resync(self) -> None:
        """The page lost track (reload, missed frame): send the whole text next."""
        self._resync_wanted = True

    def pending(self) -> bool:
        """Whether a frame is owed: unsent text, or a resync the page asked for."""
        return self._sent_parts < len(self._parts) or self._resync_wanted

    def due_in(self) -> float:
        """Seconds until the next frame may go out (0 = now); only meaningful if pending."""
        if self._last_sent is None:
            return 0.0
        now = self._clock()
        wait = self._last_sent + self.flush_seconds - now
        if self._resync_wanted and self._sent_parts == len(self._parts):
            wait = max(wait, self._last_resync + MIN_RESYNC_SECONDS - now)
        elif self._pending_bytes < MIN_FRAME_BYTES and not self._resync_allowed():
            wait = self._last_sent + MAX_WAIT_FLUSHES * self.flush_seconds - now
        return max(0.0, wait)

    def take_frame(self) -> Frame | None:
        """The next frame if one is owed and due now, else None; marks it sent."""
        if not self.pending() or self.due_in() > 0:
            return None
        now = self._clock()
        self._seq += 1
        full = self._seq == 0 or self._resync_allowed()
        if full:
            text = "".join(self._parts)
            self._parts = [text] if text else []
            self._resync_wanted = False
            self._last_resync = now if self._seq else self._last_resync
        else:
            text = "".join(self._parts[self._sent_parts :])
        self._sent_parts = len(self._parts)
        self._pending_bytes = 0
        self._last_sent = now
        return Frame(reply=self.reply, seq=self._seq, text=text, full=full)

    def _resync_allowed(self) -> bool:
        return self._resync_wanted and self._clock() - self._last_resync >= MIN_RESYNC_SECONDS
