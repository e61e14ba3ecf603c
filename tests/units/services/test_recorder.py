"""The recorder: enqueue in microseconds, write in batches, survive a locked database,
lose nothing on a clean shutdown."""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Iterator

import pytest
from sqlalchemy import event, func, select
from sqlalchemy.engine import Engine
from sqlmodel import Session

from chatmon.db import make_engine
from chatmon.models import LLMRequest, LLMRequestHourly
from chatmon.services.events import Feedback
from chatmon.services.recorder import Recorder
from tests.units.services.stats_factory import make_call


def rows(engine: Engine) -> int:
    with Session(engine) as session:
        return session.execute(select(func.count()).select_from(LLMRequest)).scalar_one()


@pytest.fixture
def recorder(engine: Engine) -> Iterator[Recorder]:
    recorder = Recorder(engine=lambda: engine, price_known=lambda _model: True, batch_size=200)
    yield recorder
    recorder.close(timeout=10)


def test_every_submitted_call_is_written_once(recorder: Recorder, engine: Engine) -> None:
    calls = [make_call() for _ in range(1500)]
    writers: set[int] = set()  # threads that ran SQL on the engine

    def note_thread(*_args: object) -> None:
        writers.add(threading.get_ident())

    event.listen(engine, "before_cursor_execute", note_thread)
    try:
        for call in calls:
            recorder.submit_call(call)
        assert recorder.flush(timeout=30)
    finally:
        event.remove(engine, "before_cursor_execute", note_thread)
    assert rows(engine) == 1500
    assert recorder.stats.written == 1500
    # submitting only enqueues: the caller (in the app, the event loop) never runs SQL
    assert writers and threading.get_ident() not in writers


def test_close_writes_everything_pending(engine: Engine) -> None:
    recorder = Recorder(engine=lambda: engine, price_known=lambda _model: True, batch_size=100)
    for _ in range(3000):
        recorder.submit_call(make_call())
    recorder.close(timeout=30)
    assert rows(engine) == 3000
    assert recorder.pending == 0


def test_feedback_updates_the_recorded_row(recorder: Recorder, engine: Engine) -> None:
    call = make_call()
    recorder.submit_call(call)
    recorder.submit_feedback(
        Feedback(correlation_id=call.correlation_id, session_id="s", rating=-1)
    )
    assert recorder.flush(timeout=10)
    with Session(engine) as session:
        assert session.execute(select(LLMRequest.feedback)).scalar_one() == -1
        assert session.execute(select(LLMRequestHourly.feedback_down)).scalar_one() == 1


def test_feedback_without_correlation_id_is_ignored(recorder: Recorder) -> None:
    recorder.submit_feedback(Feedback(correlation_id="", session_id="s", rating=1))
    assert recorder.pending == 0


def test_locked_database_is_retried_without_blocking_submit(
    tmp_path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    from chatmon.migrate import upgrade_head

    url = f"sqlite:///{tmp_path / 'locked.db'}"
    upgrade_head(url)
    engine = make_engine(url)

    @event.listens_for(engine, "connect")
    def _short_busy_timeout(dbapi_connection, _record) -> None:
        dbapi_connection.execute("PRAGMA busy_timeout=50")

    recorder = Recorder(
        engine=lambda: engine, price_known=lambda _m: True, retry_initial=0.05, retry_max=0.2
    )
    blocker = sqlite3.connect(tmp_path / "locked.db", isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")
    try:
        with caplog.at_level(logging.WARNING, logger="chatmon.services.recorder"):
            # A submit that waited for the locked database would never return here.
            for _ in range(50):
                recorder.submit_call(make_call())
            assert not recorder.flush(timeout=1.0)  # stuck behind the lock, still queued
            assert recorder.stats.failed_writes >= 1
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    assert recorder.flush(timeout=10)
    recorder.close()
    assert rows(engine) == 50
    assert any("request log write failed" in r.getMessage() for r in caplog.records)
    assert all("sk-" not in r.getMessage() for r in caplog.records)
    engine.dispose()


def test_one_bad_call_does_not_sink_its_batch(recorder: Recorder, engine: Engine) -> None:
    good = [make_call() for _ in range(5)]
    bad = make_call(input_tokens=2**40)  # out of range for PostgreSQL's integer column
    for call in (good[0], good[1], bad, *good[2:]):
        recorder.submit_call(call)
    assert recorder.flush(timeout=10)
    with Session(engine) as session:
        stored = set(session.execute(select(LLMRequest.correlation_id)).scalars())
    assert {c.correlation_id for c in good} <= stored
    if engine.dialect.name == "postgresql":
        assert bad.correlation_id not in stored


def test_full_backlog_drops_and_logs_instead_of_blocking(
    engine: Engine, caplog: pytest.LogCaptureFixture
) -> None:
    import threading

    gate = threading.Event()
    waiting = threading.Event()  # the writer holds the first call and waits on the database
    released = threading.Event()  # the database "answered"

    def slow_engine() -> Engine:  # the database "hangs" until the gate opens
        waiting.set()
        gate.wait(120)
        released.set()
        return engine

    recorder = Recorder(engine=slow_engine, price_known=lambda _m: True, max_pending=5)
    told: list[tuple[str, int]] = []
    recorder.on_drop = lambda reason, count: told.append((reason, count))
    try:
        with caplog.at_level(logging.ERROR, logger="chatmon.services.recorder"):
            recorder.submit_call(make_call())
            assert waiting.wait(30)
            for _ in range(19):
                recorder.submit_call(make_call())
            # Every submit returned while the database still hung: none waited for it
            # (not a timing: a blocking submit could only return once the gate opened).
            assert not released.is_set()
        assert recorder.stats.dropped == 14
        assert told == [("backlog_full", 1)] * 14  # what /metrics counts
        assert recorder.stats.last_drop_at is not None  # what /health shows
        assert any("backlog full" in r.getMessage() for r in caplog.records)
    finally:  # never leave the writer to write into a later test's tables
        gate.set()
        assert recorder.flush(timeout=30)
        recorder.close()
    assert rows(engine) == 6
