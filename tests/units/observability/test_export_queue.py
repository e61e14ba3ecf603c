"""The exporters' shared queue: order, drops when full, failures contained, bounded shutdown."""

from __future__ import annotations

import logging
import multiprocessing
import threading
from collections.abc import Callable

import pytest

from chatmon.observability.export_queue import ExportQueue

log = logging.getLogger("test-export-queue")


def _queue(connect: Callable[[], None] = lambda: None, maxsize: int = 100) -> ExportQueue:
    return ExportQueue(
        label="test",
        events="events",
        connect=connect,
        log=log,
        off_message="test exporter could not be created",
        maxsize=maxsize,
    )


def _flushed(_seconds_left: float) -> bool:
    return True


def test_events_are_sent_in_order_by_the_worker_thread() -> None:
    sent: list[tuple[int, str]] = []
    exports = _queue()
    for number in range(5):
        exports.submit(lambda n: sent.append((n, threading.current_thread().name)), number)
    assert exports.shutdown(5, flush=_flushed)
    assert sent == [(n, "chatmon-test") for n in range(5)]


def test_a_full_queue_drops_and_counts_instead_of_waiting(caplog: pytest.LogCaptureFixture) -> None:
    release = threading.Event()
    exports = _queue(maxsize=2)
    exports.submit(lambda _: release.wait(10), "the worker is stuck on this one")
    sent: list[int] = []
    for number in range(10):  # the worker is stuck: two wait, the rest are dropped
        exports.submit(sent.append, number)
    release.set()
    assert exports.shutdown(5, flush=_flushed)
    assert exports.dropped >= 7 and len(sent) == 10 - exports.dropped
    assert "test queue full: 1 events dropped so far" in caplog.text


def test_a_failing_send_is_logged_and_the_next_event_still_goes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    sent: list[str] = []

    def fail(_: object) -> None:
        raise RuntimeError("backend said no")

    exports = _queue()
    exports.submit(fail, "first")
    exports.submit(sent.append, "second")
    assert exports.shutdown(5, flush=_flushed)
    assert sent == ["second"]
    assert "test: could not record an event" in caplog.text


def test_when_connecting_fails_events_are_dropped_and_shutdown_says_so(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def connect() -> None:
        raise RuntimeError("no client")

    sent: list[str] = []
    exports = _queue(connect=connect)
    exports.submit(sent.append, "never sent")
    assert not exports.shutdown(5, flush=_flushed)
    assert sent == [] and not exports.connected
    assert "test exporter could not be created" in caplog.text


def test_connect_runs_once_on_the_worker_before_the_first_send() -> None:
    order: list[str] = []
    exports = _queue(connect=lambda: order.append("connect"))
    exports.submit(order.append, "send-1")
    exports.submit(order.append, "send-2")
    assert exports.shutdown(5, flush=_flushed)
    assert order == ["connect", "send-1", "send-2"]


def test_shutdown_reports_what_the_final_flush_says() -> None:
    refused = _queue()
    refused.submit(lambda _: None, "event")
    assert not refused.shutdown(5, flush=lambda _seconds_left: False)
    assert _queue().shutdown(5, flush=lambda _seconds_left: False)  # nothing ever started


def test_shutdown_gives_up_on_a_flush_that_never_returns() -> None:
    never = threading.Event()
    exports = _queue()
    exports.submit(lambda _: None, "event")
    assert not exports.shutdown(0.5, flush=lambda _seconds_left: never.wait(30))
    never.set()


def test_a_forked_worker_process_gets_its_own_worker_thread() -> None:
    """Servers fork workers after importing the app: the child must export too, with the
    connection its parent made."""
    connects: list[str] = []
    parent_up = threading.Event()
    exports = _queue(connect=lambda: connects.append("connect"))
    exports.submit(lambda _: parent_up.set(), "the parent's thread is up")
    assert parent_up.wait(10)
    child_sent = multiprocessing.get_context("fork").Queue()

    def child() -> None:
        exports.submit(lambda item: child_sent.put((item, len(connects))), "from the child")
        raise SystemExit(0 if exports.shutdown(10, flush=_flushed) else 1)

    process = multiprocessing.get_context("fork").Process(target=child)
    process.start()
    process.join(30)
    assert process.exitcode == 0
    assert child_sent.get(timeout=5) == ("from the child", 1)  # no second connect
    assert exports.shutdown(5, flush=_flushed)
