"""The fixture that waits for the Alerts panel's background week replay (shared by the
conftests of the tests that read the panel: presenters and alerts)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from chatmon.services.alerts import last_week


@pytest.fixture(autouse=True)
def _replays_finish_before_the_database_goes(request: pytest.FixtureRequest) -> Iterator[None]:
    """A panel read starts the week's replay in the background thread; on a loaded machine
    it can outlive its test. Wait for it before the test's engine is disposed: a replay
    still reading then opens a connection nobody closes (a psycopg ResourceWarning that
    failed whichever later test the garbage collector happened to run in)."""
    if "engine" in request.fixturenames:
        request.getfixturevalue("engine")  # set up before, so torn down after, this drain
    yield
    last_week._replayer.submit(lambda: None).result(timeout=120)  # FIFO: every earlier replay done
