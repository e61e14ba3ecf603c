"""Reflex's disk state manager scans its states directory once a minute, not every tick."""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest
from reflex.istate.manager.disk import StateManagerDisk

from chatmon import state_purge


def _expired_state_file(directory: Path, name: str) -> Path:
    path = directory / name
    path.write_bytes(b"state")
    old = time.time() - 2 * 3600  # older than the token expiration (an hour)
    os.utime(path, (old, old))
    return path


@pytest.fixture
def manager(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> StateManagerDisk:
    monkeypatch.setenv("REFLEX_STATES_WORKDIR", str(tmp_path))
    original = StateManagerDisk._purge_expired_states
    original = getattr(original, "__wrapped__", original)  # the app module installed it
    monkeypatch.setattr(
        StateManagerDisk, "_purge_expired_states", state_purge.throttle(original, 0.5)
    )
    return StateManagerDisk()


def test_expired_states_are_still_deleted_but_at_most_once_per_interval(
    manager: StateManagerDisk,
) -> None:
    directory = manager.states_directory
    # The startup scan ran when the manager was made; another tick right after scans nothing.
    soon = _expired_state_file(directory, "tab-a.pkl")
    manager._purge_expired_states()
    assert soon.exists()
    time.sleep(0.6)
    manager._purge_expired_states()  # the interval has passed: the hour-old file goes
    assert not soon.exists()


def test_the_running_app_throttles_reflex_s_own_state_manager(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # Put back afterwards whatever was there: the other tests see Reflex as it was.
    monkeypatch.setattr(
        StateManagerDisk, "_purge_expired_states", StateManagerDisk._purge_expired_states
    )
    assert state_purge.install()
    assert getattr(StateManagerDisk._purge_expired_states, "__chatmon_throttled__", False)
    assert state_purge.install()  # installing twice wraps once
    inner = StateManagerDisk._purge_expired_states.__wrapped__  # type: ignore[attr-defined]
    assert not getattr(inner, "__chatmon_throttled__", False)
