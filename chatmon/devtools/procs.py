"""Process helpers shared by the tests and the benchmarks: a free port, and stopping a
child process politely, then firmly."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
from contextlib import suppress
from typing import Any


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now on ``host``."""
    with socket.socket() as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def stop(
    process: subprocess.Popen[Any],
    *,
    group: bool = False,
    sig: int = signal.SIGTERM,
    timeout: float = 20.0,
) -> None:
    """Send ``sig`` (SIGTERM unless the program stops gracefully on another), wait up to
    ``timeout`` seconds, then SIGKILL; always reaps the process.

    ``group``: signal the process's whole process group (a child started with
    ``start_new_session=True`` that runs workers of its own). A process that is
    already gone is not an error.
    """

    def send(signum: int) -> None:
        if group:
            os.killpg(process.pid, signum)
        else:
            process.send_signal(signum)

    try:
        send(sig)
        process.wait(timeout=timeout)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        with suppress(ProcessLookupError):  # already gone (a test may have killed it)
            send(signal.SIGKILL)
        process.wait(timeout=timeout)
