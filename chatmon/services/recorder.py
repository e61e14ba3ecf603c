"""Persist one ``llm_request`` row per user request, off the event loop.

The event listeners only put the event on a queue (microseconds, never blocking a
streaming reply). One writer thread per process drains the queue in batches: each
batch of rows, their rollup increments, any ratings and implicit signals (the
signals the new rows reveal, :mod:`chatmon.services.implicit_signals`, and those the
chat reports) land in one transaction. A
failed write (database locked, PostgreSQL restarting) is logged and retried with
exponential backoff, the batch kept in memory meanwhile; a clean shutdown (the
lifespan context closing, or interpreter exit) writes everything still pending.

If the database stays down long enough for ``max_pending`` events to pile up, new
events are dropped and counted (``dropped``) rather than exhausting memory.
"""

from __future__ import annotations

import asyncio
import atexit
import contextlib
import enum
import functools
import logging
import queue
import threading
import time
from collections import Counter
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Final

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Engine
from sqlmodel import Session
from tenacity import RetryCallState, Retrying, retry_if_exception, wait_exponential_jitter

from chatmon.services import (
    events,
    implicit_detection,
    implicit_flags,
    implicit_signals,
    request_log,
)
from chatmon.services.events import Feedback, ImplicitSignal, LLMCall
from chatmon.services.request_log import PriceKnown

log = logging.getLogger(__name__)


class _Stop(enum.Enum):
    STOP = "stop"


_STOP: Final = _Stop.STOP  # queued by stop(): the writer finishes what is before it


def is_transient(exc: BaseException) -> bool:
    """Whether a failed write may succeed later (locked, disconnected, pool exhausted)."""
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True
    return isinstance(exc, (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError))


def _describe(exc: BaseException) -> str:
    """A short description of a database error without SQL or parameters."""
    original = getattr(exc, "orig", None) or exc
    return (
        f"{type(original).__name__}: {str(original).splitlines()[0][:200] if str(original) else ''}"
    )


@dataclass
class RecorderStats:
    """What the recorder has done since it started (for tests, benchmarks, logs, /health)."""

    written: int = 0
    feedback: int = 0
    signals: int = 0  # implicit signals written (found by the writer or reported)
    failed_writes: int = 0
    dropped: int = 0
    last_drop_at: float | None = None  # time.time() of the latest drop


DropListener = Callable[[str, int], None]  # (reason, how many events) -> None
Item = LLMCall | Feedback | ImplicitSignal


class Recorder:
    """Queue + writer thread for LLMCall, Feedback and ImplicitSignal events.

    Args:
        engine: where to write; a callable so the engine is only built when needed.
        price_known: whether a model has a known price (flags rows of unpriced models).
        batch_size: most events written per transaction.
        max_pending: events held in memory at most while the database is unavailable.
        retry_initial, retry_max: backoff between attempts of a failed write, seconds.
    """

    def __init__(
        self,
        *,
        engine: Callable[[], Engine],
        price_known: PriceKnown,
        batch_size: int = 500,
        max_pending: int = 100_000,
        retry_initial: float = 0.2,
        retry_max: float = 30.0,
    ) -> None:
        self._engine = engine
        self._price_known = price_known
        self._batch_size = batch_size
        self._queue: queue.Queue[Item | _Stop] = queue.Queue(maxsize=max_pending)
        self._retry_initial = retry_initial
        self._retry_max = retry_max
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self._progress = threading.Condition()
        self._submitted = 0
        self._done = 0
        self._abandon = threading.Event()  # set when shutdown gives up on an unreachable DB
        self.stats = RecorderStats()
        # told of every drop: reason "backlog_full" | "rejected" | "shutdown" (the app
        # counts them in /metrics); must not block
        self.on_drop: DropListener = lambda reason, count: None

    # ----- listeners (called on the event loop: enqueue only) -------------------------
    def submit_call(self, call: LLMCall) -> None:
        """Queue a finished request for writing. Never blocks."""
        self._submit(call)

    def submit_feedback(self, feedback: Feedback) -> None:
        """Queue a rating for writing. Never blocks."""
        if feedback.correlation_id:
            self._submit(feedback)

    def submit_signal(self, signal: ImplicitSignal) -> None:
        """Queue an implicit signal (a regenerated reply) for writing. Never blocks."""
        if signal.correlation_id and signal.signal in implicit_signals.FLAGS:
            self._submit(signal)

    def _submit(self, item: Item) -> None:
        self.start()
        with self._progress:  # counted first, so the writer can never finish it "early"
            self._submitted += 1
        try:
            self._queue.put_nowait(item)
        except queue.Full:
            with self._progress:
                self._submitted -= 1
            self._dropped("backlog_full", 1)
            log.error(
                "request log backlog full (%d pending): dropped %s %s",
                self._queue.qsize(),
                type(item).__name__,
                item.correlation_id,
            )

    # ----- lifecycle --------------------------------------------------------------------
    def start(self) -> None:
        """Start the writer thread (idempotent)."""
        if self._thread is not None and self._thread.is_alive():
            return
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._abandon.clear()
                self._thread = threading.Thread(
                    target=self._run, name="chatmon-recorder", daemon=True
                )
                self._thread.start()

    @property
    def pending(self) -> int:
        """Events submitted but not yet written (or given up on)."""
        with self._progress:
            return self._submitted - self._done

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every event submitted so far is written; False on timeout."""
        with self._progress:
            target = self._submitted
            return self._progress.wait_for(lambda: self._done >= target, timeout=timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Write everything pending, then stop the thread.

        If the database is still unreachable after ``timeout`` seconds, the events
        left are logged as lost and the thread is stopped anyway.
        """
        thread = self._thread
        if thread is None or not thread.is_alive():
            return
        if not self.flush(timeout):
            lost = self.pending
            log.error("request log: database unreachable at shutdown, %d events lost", lost)
            self._dropped("shutdown", lost)
            self._abandon.set()
        self._queue.put(_STOP)
        thread.join(timeout=5)

    # ----- writer thread ----------------------------------------------------------------
    def _run(self) -> None:
        while True:
            item = self._queue.get()
            if item is _STOP:
                return
            batch = [item]
            while len(batch) < self._batch_size:
                try:
                    more = self._queue.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    self._queue.put(_STOP)  # finish this batch, then stop
                    break
                batch.append(more)
            try:
                self._write_with_retries(batch)
            except Exception:
                log.exception("request log: batch of %d events could not be written", len(batch))
            finally:
                with self._progress:
                    self._done += len(batch)
                    self._progress.notify_all()

    def _write_with_retries(self, batch: list[Item]) -> None:
        retrying = Retrying(
            retry=retry_if_exception(is_transient),
            wait=wait_exponential_jitter(initial=self._retry_initial, max=self._retry_max),
            stop=lambda _state: self._abandon.is_set(),
            sleep=self._sleep_unless_abandoned,
            before_sleep=self._log_retry,
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    self._write(batch)
        except sa_exc.DBAPIError as exc:
            if is_transient(exc):
                raise
            # A permanent error (bad value, constraint): write one by one so a single
            # bad event cannot sink the others.
            log.warning(
                "request log: batch rejected (%s); writing events one by one", _describe(exc)
            )
            for item in batch:
                try:
                    self._write([item])
                except sa_exc.DBAPIError as single:
                    self._dropped("rejected", 1)
                    log.error(
                        "request log: dropped %s %s (%s)",
                        type(item).__name__,
                        item.correlation_id,
                        _describe(single),
                    )

    def _dropped(self, reason: str, count: int) -> None:
        self.stats.dropped += count
        self.stats.last_drop_at = time.time()
        try:
            self.on_drop(reason, count)
        except Exception:
            log.exception("request log: the drop listener failed")

    def _sleep_unless_abandoned(self, seconds: float) -> None:
        self._abandon.wait(seconds)  # an abandoned writer stops waiting at once

    def _log_retry(self, state: RetryCallState) -> None:
        self.stats.failed_writes += 1
        wait = state.next_action.sleep if state.next_action else 0.0
        failure = state.outcome.exception() if state.outcome is not None else None
        log.warning(
            "request log write failed (%s), attempt %d, retrying in %.1fs; %d events pending",
            _describe(failure) if failure is not None else "no exception",
            state.attempt_number,
            wait,
            self.pending,
        )

    def _write(self, batch: Sequence[Item]) -> None:
        calls = [item for item in batch if isinstance(item, LLMCall)]
        ratings = [item for item in batch if isinstance(item, Feedback)]
        reported = [item for item in batch if isinstance(item, ImplicitSignal)]
        with Session(self._engine()) as session:
            inserted = request_log.insert_calls(
                session=session, calls=calls, price_known=self._price_known
            )
            asked = {call.correlation_id: call.input_text for call in calls}
            found = self._signals_of(session, inserted, asked)
            for rating in ratings:
                if not request_log.record_feedback(
                    session=session,
                    correlation_id=rating.correlation_id,
                    rating=rating.rating,
                    reasons=rating.reasons,
                ):
                    log.info("rating for unrecorded request %s ignored", rating.correlation_id)
            for signal in reported:
                newly = implicit_flags.set_flag(
                    session=session, signal=signal.signal, correlation_ids=[signal.correlation_id]
                )
                found[signal.signal] += newly
            session.commit()
        implicit_signals.count(found)
        self.stats.written += len(inserted)
        self.stats.feedback += len(ratings)
        self.stats.signals += sum(found.values())

    @staticmethod
    def _signals_of(
        session: Session, inserted: list[dict[str, Any]], asked: dict[str, str]
    ) -> Counter[str]:
        """The implicit signals the new rows reveal (stopped, rephrased).

        A bug in finding them must not cost the rows: it is logged and the batch is
        written without them. A database error is the batch's, retried as usual.
        """
        try:
            return implicit_detection.after_insert(session=session, rows=inserted, asked=asked)
        except sa_exc.DBAPIError:
            raise
        except Exception:
            log.exception("implicit signals of %d new requests not found", len(inserted))
            return Counter()


# ----------------------------------------------------------------------------- process-wide


def _price_known(model: str) -> bool:
    """Whether ``model`` has a price (``LLM_PRICE_*`` or a non-zero map entry; demo is free)."""
    from chatmon.services import pricing

    return pricing.price_known(model)


@functools.cache
def get_recorder() -> Recorder:
    """The recorder of this process, writing to ``DATABASE_URL``."""
    from chatmon.db import get_engine

    return Recorder(engine=get_engine, price_known=_price_known)


@functools.cache
def install() -> Recorder:
    """Subscribe the process's recorder to the chat's events; flush it at exit (once)."""
    recorder = get_recorder()
    events.on_call(recorder.submit_call)
    events.on_feedback(recorder.submit_feedback)
    events.on_signal(recorder.submit_signal)
    atexit.register(recorder.close)
    return recorder


@contextlib.asynccontextmanager
async def lifespan() -> AsyncIterator[None]:
    """Lifespan task: start the writer with the server, flush it on a clean shutdown."""
    recorder = get_recorder()
    recorder.start()
    try:
        yield
    finally:
        await asyncio.to_thread(recorder.close)
