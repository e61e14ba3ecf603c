"""First start as a user sees it: `python -m chatmon migrate` generates the monitor password,
prints it once, stores only its hash; `reset-monitor-password` prints a new one."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

from sqlalchemy import create_engine, text

from chatmon.services.auth import verify_password

ROOT = Path(__file__).resolve().parents[2]
PRINTED = re.compile(r"^ {6}(\S{20,})$", re.M)  # the indented password line of the notice


def run_cli(*args: str, tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("MONITOR_", "SESSION_SECRET", "CHAT_PASSWORD"))
    }
    environment.update(
        PYTHONPATH=str(ROOT),
        DATABASE_URL=f"sqlite:///{tmp_path / 'chatmon.db'}",
        LOG_FILE=str(tmp_path / "chatmon.log"),
        **env,
    )
    return subprocess.run(
        [sys.executable, "-m", "chatmon", *args],
        cwd=tmp_path,
        env=environment,
        capture_output=True,
        text=True,
        timeout=180,
    )


def _stored(tmp_path: Path) -> dict[str, str]:
    engine = create_engine(f"sqlite:///{tmp_path / 'chatmon.db'}")
    with engine.connect() as connection:
        rows = connection.execute(text("SELECT name, value FROM instance_secret")).all()
    engine.dispose()
    return dict(rows)  # type: ignore[arg-type]  # rows of (name, value) pairs


def _everything_written(tmp_path: Path) -> bytes:
    return b"".join(p.read_bytes() for p in tmp_path.rglob("*") if p.is_file())


def test_first_start_prints_a_password_once_and_stores_only_its_hash(tmp_path: Path) -> None:
    first = run_cli("migrate", tmp_path=tmp_path)
    assert first.returncode == 0, first.stderr
    passwords = PRINTED.findall(first.stderr)
    assert len(passwords) == 1 and "reset-monitor-password" in first.stderr
    password = passwords[0]
    assert password not in first.stdout
    stored = _stored(tmp_path)
    assert set(stored) == {"monitor_password_hash", "session_secret"}
    assert verify_password(password, stored["monitor_password_hash"])
    assert password.encode() not in _everything_written(tmp_path)  # database, log file, all

    second = run_cli("migrate", tmp_path=tmp_path)
    assert second.returncode == 0 and PRINTED.findall(second.stderr) == []
    assert _stored(tmp_path) == stored  # the same hash and session secret on every start


def test_no_password_is_generated_when_one_is_configured(tmp_path: Path) -> None:
    result = run_cli("migrate", tmp_path=tmp_path, MONITOR_PASSWORD="a-configured-one-42")
    assert result.returncode == 0 and PRINTED.findall(result.stderr) == []
    assert set(_stored(tmp_path)) == {"session_secret"}
    assert (
        run_cli("migrate", tmp_path=tmp_path, SESSION_SECRET="configured-signing-key-42").returncode
        == 0
    )


def test_reset_prints_a_new_password_that_replaces_the_old(tmp_path: Path) -> None:
    old = PRINTED.findall(run_cli("migrate", tmp_path=tmp_path).stderr)[0]
    reset = run_cli("reset-monitor-password", tmp_path=tmp_path)
    assert reset.returncode == 0, reset.stderr
    new = PRINTED.findall(reset.stdout)[0]
    stored = _stored(tmp_path)["monitor_password_hash"]
    assert new != old and verify_password(new, stored) and not verify_password(old, stored)


def test_reset_refuses_when_a_password_is_configured(tmp_path: Path) -> None:
    run_cli("migrate", tmp_path=tmp_path)
    before = _stored(tmp_path)
    result = run_cli("reset-monitor-password", tmp_path=tmp_path, MONITOR_PASSWORD="configured-42x")
    assert result.returncode == 2 and "MONITOR_PASSWORD" in result.stderr
    assert _stored(tmp_path) == before
