"""Per-worker capacity gauges: this process's CPU and memory, dead workers' files removed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from chatmon.tasks import capacity


def test_resident_memory_is_this_process_size() -> None:
    rss = capacity.resident_bytes()
    assert 10 * 2**20 < rss < 8 * 2**30  # a Python process with the app's imports


def test_files_of_exited_workers_are_removed_and_live_ones_kept(tmp_path: Path) -> None:
    exited = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    dead_pid = int(exited.stdout)
    dead = tmp_path / f"gauge_livesum_{dead_pid}.db"
    mine = tmp_path / f"gauge_liveall_{os.getpid()}.db"
    counter = tmp_path / f"counter_{dead_pid}.db"  # counters of dead workers still count
    for path in (dead, mine, counter):
        path.write_bytes(b"")
    assert capacity.forget_dead_workers(str(tmp_path)) == [dead_pid]
    assert not dead.exists()
    assert mine.exists() and counter.exists()


def test_no_websockets_without_a_running_app() -> None:
    assert capacity.websocket_connections(None) == 0
