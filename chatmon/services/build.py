"""Which chatmon is running: its version and source revision.

"What changed?" is the first question of any incident; the answer starts with the build.
``chatmon_build_info{version,revision}`` (value 1) lets Prometheus and Grafana mark a
deploy, and ``/health`` says the same. The revision comes from a ``REVISION`` file at the
project root when there is one (an image built without ``.git`` writes it at build time:
``git rev-parse --short=12 HEAD > REVISION``), else from git itself, else ``unknown``.
Read once per process.
"""

from __future__ import annotations

import functools
import subprocess
from dataclasses import dataclass

from chatmon import __version__
from chatmon.settings import PROJECT_ROOT

GIT_TIMEOUT = 2.0


@dataclass(frozen=True)
class Build:
    version: str
    revision: str


def _revision() -> str:
    stamp = PROJECT_ROOT / "REVISION"
    if stamp.is_file():
        text = stamp.read_text(encoding="utf-8", errors="replace").strip()[:40]
        if text and text.isalnum():
            return text
    try:
        result = subprocess.run(
            ["git", "rev-parse", "--short=12", "HEAD"],
            cwd=PROJECT_ROOT,
            capture_output=True,
            text=True,
            timeout=GIT_TIMEOUT,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    revision = result.stdout.strip()
    return revision if result.returncode == 0 and revision.isalnum() else "unknown"


@functools.cache
def current() -> Build:
    """This process's build (blocking the first time: a git call of at most 2 s)."""
    return Build(version=__version__, revision=_revision())
