"""Backup and restore: ``python -m chatmon backup`` while the app serves, the copy restored
into a fresh instance's database, and the monitor's figures are the same there."""

from __future__ import annotations

import asyncio
import os
import shutil
import subprocess
from pathlib import Path

import httpx

from bench.chat_load import chat_turn
from bench.reflex_client import CompiledApp, ReflexSession, chat_messages
from chatmon.devtools.fake_llm_server import FakeLLMServer
from tests.integration.conftest import ROOT, RunningApp, launch_app, run_async

CHATS = 3


def _chat(app: RunningApp, count: int) -> None:
    """``count`` one-message chats through the browser's websocket protocol."""
    compiled = CompiledApp.from_web_dir(app.web_dir)

    async def one(index: int) -> None:
        session = ReflexSession(app.url, compiled, origin=app.url)
        await session.connect(timeout=60)
        try:
            # 12 words: the fake upstream's default reply length
            outcome = await chat_turn(session, f"before the backup {index}", reply_words=12)
            assert outcome.seconds is not None, outcome.error
            assert chat_messages(session)[-1]["role"] == "assistant"
        finally:
            await session.close()

    async def all_of_them() -> None:
        await asyncio.gather(*(one(i) for i in range(count)))

    run_async(all_of_them())


def _figures(app: RunningApp) -> dict[str, object]:
    """/api/stats for the last 24 h, without the window's own start and end."""
    response = httpx.get(app.url + "/api/stats?window=24h", auth=app.monitor_auth, timeout=30)
    body = response.raise_for_status().json()
    return {k: v for k, v in body.items() if k not in ("start", "end")}


def test_backup_restored_into_a_fresh_database_shows_the_same_figures(
    fake_llm: FakeLLMServer, tmp_path: Path
) -> None:
    backup = tmp_path / "chatmon-backup.db"
    with launch_app(workdir=tmp_path / "live", fake_llm_url=fake_llm.url) as live:
        _chat(live, CHATS)
        figures = _figures(live)
        assert figures["requests"] == CHATS
        # Online: the app keeps running (and holding the database) during the backup.
        done = subprocess.run(
            ["bash", "-c", 'source scripts/env.sh && python -m chatmon backup "$0"', str(backup)],
            cwd=ROOT,
            env={**os.environ, "DATABASE_URL": live.database_url},
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        assert "backed up" in done.stdout
        assert _figures(live) == figures  # nothing happened in between

    # Restore, as the README says: the file in place of a new instance's database, then start.
    restored_dir = tmp_path / "restored"
    restored_dir.mkdir()
    shutil.copyfile(backup, restored_dir / "chatmon.db")
    with launch_app(workdir=restored_dir, fake_llm_url=fake_llm.url) as restored:
        assert restored.database_url.endswith(str(restored_dir / "chatmon.db"))
        assert _figures(restored) == figures
