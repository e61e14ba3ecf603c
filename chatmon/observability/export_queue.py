"""A bounded queue drained by one fork-safe background thread: how trace exporters
(Langfuse, OTLP) get their work off the request path.

A leaf: it imports nothing of chatmon. The exporter hands each event to
:meth:`ExportQueue.submit` with the function that sends it. Submitting never blocks:
when the queue is full the event is dropped and counted. The worker thread starts on
the first event (or :meth:`ExportQueue.start`), and again, with a fresh queue, in a
process forked from the one that started it (servers fork their workers after
importing the app, and a thread does not survive a fork). :meth:`ExportQueue.shutdown`
sends what is queued and runs the exporter's final flush, bounded in time whatever the
backend does.
"""

from __future__ import annotations

import logging
import os
import queue
import threading
import time
from collections.abc import Callable
from typing import Any

QUEUE_SIZE = 10_000
WARN_AT_DROPS = (1, 100, 10_000)  # log when the dropped count reaches these
_STOP = object()


class ExportQueue:
    """Events waiting for one worker thread, which sends each with its own function."""

    def __init__(
        self,
        *,
        label: str,
        events: str,
        connect: Callable[[], None],
        log: logging.Logger,
        off_message: str,
        maxsize: int = QUEUE_SIZE,
    ) -> None:
        """
        Args:
            label: the backend's short name, in log lines ("langfuse: could not record
                an event") and thread names (``chatmon-<label>``, ``...-flush``).
            events: what a queued event is, in the drop warning ("spans").
            connect: builds the exporter's client, on the worker thread before the first
                event; once it has succeeded, a forked child keeps what it built. If it
                raises, ``off_message`` is logged and every event is dropped from then on.
            log: where drops and failures are reported.
            off_message: logged (with the traceback) when ``connect`` raises.
            maxsize: how many events may wait.
        """
        self._name = f"chatmon-{label}"
        self._connect = connect
        self._log = log
        self._dropped_message = f"{label} queue full: %d {events} dropped so far"
        self._connect_failed_message = off_message
        self._send_failed_message = f"{label}: could not record an event"
        self._maxsize = maxsize
        self._queue: queue.Queue[object] = queue.Queue(maxsize=maxsize)
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._lock = threading.Lock()
        self.connected = False
        self.dropped = 0

    def submit(self, send: Callable[[Any], None], event: object) -> None:
        """Queue ``send(event)`` for the worker thread; never blocks (drops when full)."""
        self._ensure_worker()
        try:
            self._queue.put_nowait((send, event))
        except queue.Full:
            self.dropped += 1
            if self.dropped in WARN_AT_DROPS:
                self._log.warning(self._dropped_message, self.dropped)

    def start(self) -> None:
        """Start the worker thread now (otherwise the first event starts it)."""
        self._ensure_worker()

    def _ensure_worker(self) -> None:
        if self._thread is not None and self._pid == os.getpid():
            return
        with self._lock:
            if self._thread is None or self._pid != os.getpid():
                # First event, or first in a process forked from the one that started
                # the thread (whose thread and queue did not come along).
                self._pid = os.getpid()
                self._queue = queue.Queue(maxsize=self._maxsize)
                self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
                self._thread.start()

    def _run(self) -> None:
        try:
            if not self.connected:  # a forked child keeps its parent's (fork-safe) client
                self._connect()
                self.connected = True
        except Exception:  # noqa: BLE001 - logged below; export is off, the chat goes on
            self._log.exception(self._connect_failed_message)
            self._drain_forever()
            return
        while True:
            item = self._queue.get()
            try:
                if item is _STOP:
                    return
                assert isinstance(item, tuple)  # (send, event), see submit
                send: Callable[[Any], None] = item[0]
                send(item[1])
            except Exception:  # noqa: BLE001 - logged below; one lost event, not the worker
                self._log.exception(self._send_failed_message)
            finally:
                self._queue.task_done()

    def _drain_forever(self) -> None:
        while True:
            item = self._queue.get()
            self._queue.task_done()
            if item is _STOP:
                return

    def shutdown(self, timeout: float, *, flush: Callable[[float], bool]) -> bool:
        """Send what is queued, then ``flush(seconds_left)``, giving up after ``timeout`` s.

        ``flush`` (the exporter's own final export) runs on a thread of its own, so a
        backend that never answers cannot hold the caller past the deadline.

        Returns:
            True when every event was sent and ``flush`` returned True, all in time.
        """
        if self._thread is None:
            return True
        deadline = time.monotonic() + timeout
        try:
            self._queue.put(_STOP, timeout=max(0.0, deadline - time.monotonic()))
        except queue.Full:
            return False
        self._thread.join(max(0.0, deadline - time.monotonic()))
        if self._thread.is_alive() or not self.connected:
            return False
        done = threading.Event()
        flushed: list[bool] = []

        def run_flush() -> None:
            try:
                flushed.append(bool(flush(max(0.0, deadline - time.monotonic()))))
            finally:
                done.set()

        threading.Thread(target=run_flush, name=f"{self._name}-flush", daemon=True).start()
        return done.wait(max(0.0, deadline - time.monotonic())) and all(flushed)
