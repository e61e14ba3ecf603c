"""LivePublisher: when frames leave for the tab, and what they carry (Reflex's emit_update
is replaced by a recorder here; the browser tests cover the real websocket)."""

from __future__ import annotations

import asyncio
from itertools import pairwise
from typing import Any

import pytest

from chatmon.observability import series
from chatmon.states import live


class Namespace:
    """Records what would be emitted to each token, with the loop time it left."""

    def __init__(self) -> None:
        self.sent: list[tuple[float, str, Any]] = []

    async def emit_update(self, update: Any, token: str) -> None:
        [changes] = update.delta.values()
        self.sent.append((asyncio.get_running_loop().time(), token, changes["f_rx_state_"]))


@pytest.fixture
def namespace(monkeypatch: pytest.MonkeyPatch) -> Namespace:
    recorder = Namespace()
    monkeypatch.setattr(live, "_app", lambda: type("App", (), {"event_namespace": recorder}))
    return recorder


async def test_first_chunk_leaves_at_once_and_later_ones_are_coalesced(namespace) -> None:
    loop = asyncio.get_running_loop()
    async with live.LivePublisher(token="tab-a", reply="r1", flush_seconds=0.05) as publisher:
        started = loop.time()
        publisher.push("Hello")
        await asyncio.sleep(0.01)
        assert [frame for _, _, frame in namespace.sent] == [[0, "Hello", "r1"]]
        assert namespace.sent[0][0] - started < 0.01
        for i in range(40):
            publisher.push(f" word{i}")
            await asyncio.sleep(0.005)
        await asyncio.sleep(0.3)
    frames = [frame for _, token, frame in namespace.sent if token == "tab-a"]
    assert "".join(str(f[1]) for f in frames) == "Hello" + "".join(f" word{i}" for i in range(40))
    assert [f[0] for f in frames] == list(range(len(frames)))
    assert 2 < len(frames) < 15  # 41 chunks, a handful of frames
    gaps = [b[0] - a[0] for a, b in pairwise(namespace.sent)]
    assert min(gaps) >= 0.045


async def test_resync_from_the_tab_sends_the_whole_text(namespace, monkeypatch) -> None:
    async with live.LivePublisher(token="tab-b", reply="r2", flush_seconds=0.01) as publisher:
        publisher.push("part one " * 10)
        await asyncio.sleep(0.05)
        publisher.push("part two " * 10)
        await asyncio.sleep(0.1)
        monkeypatch.setattr(live._publishers["tab-b"].buffer, "_last_resync", -10.0)
        live._publishers["tab-b"].resync()
        await asyncio.sleep(0.1)
    full = namespace.sent[-1][2]
    assert full == [full[0], "part one " * 10 + "part two " * 10, "r2"]


async def test_streams_in_progress_counts_open_publishers(namespace) -> None:
    before = series.STREAMS_IN_PROGRESS._value.get()
    async with live.LivePublisher(token="tab-c", reply="r3", flush_seconds=0.05):
        assert series.STREAMS_IN_PROGRESS._value.get() == before + 1
        assert "tab-c" in live._publishers
    assert series.STREAMS_IN_PROGRESS._value.get() == before
    assert "tab-c" not in live._publishers


async def test_the_page_holds_what_every_frame_carried(namespace) -> None:
    async with live.LivePublisher(token="tab-d", reply="r4", flush_seconds=0.01) as publisher:
        publisher.push("Hello")
        await asyncio.sleep(0.02)
        publisher.push(" world, and more words to fill a frame")
        await asyncio.sleep(0.1)
        publisher.push(" tail")  # ends before its frame is due
    carried = "".join(str(frame[1]) for _, _, frame in namespace.sent)
    last_seq = namespace.sent[-1][2][0]
    held = publisher.page_holds(carried + " tail (stopped)")
    assert held == {"live_seq": last_seq, "live_chars": len(carried)}
    assert publisher.page_holds("An error replaced the text") == {}


async def test_a_publisher_whose_frame_failed_says_the_page_holds_nothing(monkeypatch) -> None:
    class Failing:
        async def emit_update(self, update: Any, token: str) -> None:
            raise ConnectionError("socket gone")

    monkeypatch.setattr(live, "_app", lambda: type("App", (), {"event_namespace": Failing()}))
    async with live.LivePublisher(token="tab-e", reply="r5", flush_seconds=0.01) as publisher:
        publisher.push("Hello")
        await asyncio.sleep(0.02)
    assert publisher.page_holds("Hello") == {}
