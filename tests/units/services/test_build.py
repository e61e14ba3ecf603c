"""Which chatmon runs: version and revision, in /health and chatmon_build_info."""

from __future__ import annotations

import asyncio
import subprocess
from pathlib import Path

import pytest
from prometheus_client import REGISTRY
from starlette.testclient import TestClient

from chatmon import __version__, db
from chatmon.api import api
from chatmon.services import build
from chatmon.services.alerts import AlertEngine
from chatmon.settings import PROJECT_ROOT, load_settings
from chatmon.tasks import alert_monitor as monitor


def test_build_revision_is_the_checkout_or_a_revision_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    head = subprocess.run(
        ["git", "rev-parse", "--short=12", "HEAD"], cwd=PROJECT_ROOT, capture_output=True, text=True
    ).stdout.strip()
    assert build._revision() == head
    (tmp_path / "REVISION").write_text("0123abcd4567\n")
    monkeypatch.setattr(build, "PROJECT_ROOT", tmp_path)
    assert build._revision() == "0123abcd4567"
    (tmp_path / "REVISION").unlink()
    assert build._revision() == "unknown"  # neither a file nor a git checkout


def test_health_says_the_version_and_revision(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = db.make_engine(f"sqlite:///{tmp_path / 'health.db'}")
    monkeypatch.setattr("chatmon.routes.health.get_engine", lambda: engine)
    body = TestClient(api).get("/health").json()
    assert body["version"] == __version__
    assert body["revision"] == build.current().revision


async def test_alert_loop_start_sets_build_info(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = load_settings(alert_check_interval_seconds=3600)
    engine = AlertEngine(
        db_engine=db.make_engine(f"sqlite:///{tmp_path / 'x.db'}"), settings=settings, channels=[]
    )
    monkeypatch.setattr(monitor, "get_settings", lambda: settings)
    monkeypatch.setattr(monitor, "build_engine", lambda _settings: engine)
    task = asyncio.create_task(monitor.alert_monitor())
    running = build.current()
    labels = {"version": running.version, "revision": running.revision}
    for _ in range(100):
        if REGISTRY.get_sample_value("chatmon_build_info", labels) == 1.0:
            break
        await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert REGISTRY.get_sample_value("chatmon_build_info", labels) == 1.0
