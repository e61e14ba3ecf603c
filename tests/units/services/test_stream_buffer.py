"""StreamBuffer: the first chunk at once, then few append-only frames, resync on request."""

from __future__ import annotations

from chatmon.services.stream_buffer import (
    MAX_WAIT_FLUSHES,
    MIN_FRAME_BYTES,
    MIN_RESYNC_SECONDS,
    StreamBuffer,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def make(flush: float = 0.05) -> tuple[StreamBuffer, Clock]:
    clock = Clock()
    return StreamBuffer("reply-1", flush_seconds=flush, clock=clock), clock


def replay(buffer: StreamBuffer, frames: list[list[object]]) -> str:
    """What the page holds after applying the frames, as assets/live_reply.js does."""
    text, seq = "", -1
    for frame in frames:
        if len(frame) == 3:
            text, seq = str(frame[1]), int(frame[0])  # type: ignore[call-overload]  # frames are tuples of mixed types
        else:
            assert frame[0] == seq + 1, "frames arrive in sequence"
            text, seq = text + str(frame[1]), int(frame[0])  # type: ignore[call-overload]  # frames are tuples of mixed types
    return text


def test_first_chunk_goes_out_at_once_as_a_full_frame() -> None:
    buffer, _ = make()
    buffer.append("Hello")
    frame = buffer.take_frame()
    assert frame is not None and frame.full and frame.seq == 0 and frame.text == "Hello"
    assert frame.to_json() == [0, "Hello", "reply-1"]


def test_later_text_waits_for_the_flush_interval_and_carries_only_new_text() -> None:
    buffer, clock = make()
    buffer.append("Hello")
    buffer.take_frame()
    buffer.append(" world, " + "x" * MIN_FRAME_BYTES)
    assert buffer.take_frame() is None  # too soon
    assert 0 < buffer.due_in() <= 0.05
    clock.now += 0.05
    frame = buffer.take_frame()
    assert frame is not None and not frame.full
    assert frame.to_json() == [1, " world, " + "x" * MIN_FRAME_BYTES]


def test_a_few_words_wait_longer_but_never_past_the_cap() -> None:
    buffer, clock = make()
    buffer.append("Hi")
    buffer.take_frame()
    buffer.append(" there")
    clock.now += 0.05
    assert buffer.take_frame() is None  # 6 characters: not worth a frame yet
    clock.now += 0.05 * (MAX_WAIT_FLUSHES - 1)
    frame = buffer.take_frame()
    assert frame is not None and frame.text == " there"


def test_frames_rebuild_the_reply_exactly() -> None:
    buffer, clock = make()
    chunks = [f"word{i} " for i in range(500)] + ["ünïcode ✓ ", "🙂"]
    frames = []
    for chunk in chunks:
        buffer.append(chunk)
        clock.now += 0.02
        if (frame := buffer.take_frame()) is not None:
            frames.append(frame.to_json())
    clock.now += 1
    while (frame := buffer.take_frame()) is not None:
        frames.append(frame.to_json())
    assert replay(buffer, frames) == "".join(chunks) == buffer.text
    assert len(frames) < len(chunks) / 3  # coalesced


def test_resync_sends_the_whole_text_once_then_appends_again() -> None:
    buffer, clock = make()
    buffer.append("one ")
    buffer.take_frame()
    clock.now += 1
    buffer.append("two " * 20)
    buffer.take_frame()
    buffer.request_resync()
    clock.now += 0.05
    full = buffer.take_frame()
    assert full is not None and full.full and full.text == "one " + "two " * 20
    assert not buffer.pending()
    buffer.append("three " * 10)
    clock.now += 0.05
    after = buffer.take_frame()
    assert after is not None and not after.full and after.seq == full.seq + 1


def test_resync_requests_are_answered_at_most_once_per_interval() -> None:
    buffer, clock = make()
    buffer.append("text " * 20)
    buffer.take_frame()
    clock.now += MIN_RESYNC_SECONDS
    buffer.request_resync()
    assert buffer.take_frame().full  # type: ignore[union-attr]  # a None frame fails the test
    buffer.request_resync()  # a client asking in a loop
    clock.now += 0.05
    assert buffer.take_frame() is None
    assert buffer.due_in() > 0.5
    clock.now += MIN_RESYNC_SECONDS
    assert buffer.take_frame().full  # type: ignore[union-attr]  # a None frame fails the test
