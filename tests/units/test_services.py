"""tests/services.py: with ``CHATMON_TEST_SERVERS=own`` a run gets PostgreSQL and Redis of
its own (Debian's initdb/pg_ctl, redis-server) on free ports, usable as the tests use them,
and nothing of them is left when it ends."""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
from pathlib import Path

from sqlalchemy import make_url

ROOT = Path(__file__).resolve().parents[2]


def _listening(port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(1)
        return sock.connect_ex(("127.0.0.1", port)) == 0


def test_throwaway_servers_work_and_leave_nothing_behind() -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith("CHATMON_TEST_")}
    env["CHATMON_TEST_SERVERS"] = "own"
    done = subprocess.run(
        [sys.executable, "-m", "tests.services"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    urls = dict(line.split(": ", 1) for line in done.stdout.splitlines())
    postgres, redis_port = make_url(urls["postgresql"]), int(urls["redis"].rsplit(":", 1)[1])
    assert postgres.port not in (None, 5432) and redis_port != 6379
    assert "starting a throwaway PostgreSQL" in done.stderr
    assert not _listening(postgres.port) and not _listening(redis_port)
    directories = re.findall(r" in (\S+)$", done.stderr, flags=re.MULTILINE)
    assert len(directories) == 2, done.stderr
    assert not any(Path(d).exists() for d in directories)
