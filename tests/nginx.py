"""Debian's nginx as a test peer, running a config shipped in ``deploy/nginx/``.

:class:`Nginx` starts ``/usr/sbin/nginx`` in the foreground from a temporary prefix (its
own nginx.conf, logs, pid and temp directories: nothing of the system's nginx is read or
written) with one of the shipped server files, only its ``listen`` port, upstream servers
or ``root`` replaced. ``make test`` installs nginx when missing.
"""

from __future__ import annotations

import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import psutil

from chatmon.devtools.procs import free_port, stop

ROOT = Path(__file__).resolve().parents[1]
DEPLOY = ROOT / "deploy" / "nginx"
# Old workers keep their open connections (websockets) at most this long after a reload.
SHUTDOWN_TIMEOUT = "1s"


def nginx_binary() -> str:
    found = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists() else "")
    if not found:
        raise RuntimeError("nginx is not installed: `make test` installs Debian's nginx")
    return found


def _replace_once(pattern: str, replacement: str, text: str) -> str:
    """``re.sub`` that insists the shipped file still has what the test replaces."""
    result, count = re.subn(pattern, replacement, text, count=1, flags=re.DOTALL | re.MULTILINE)
    if count != 1:
        raise AssertionError(f"deploy/nginx config has no {pattern!r} to replace")
    return result


def _host_port(url: str) -> str:
    return url.removeprefix("http://").rstrip("/")


class Nginx:
    """nginx in the foreground with a shipped server file, in ``workdir``.

    ``access_log`` lines are ``status upstream_addr request``; nginx writes one when a
    request ends (a websocket: when it closes).
    """

    def __init__(self, workdir: Path, site: str) -> None:
        self.workdir = workdir
        self.site_file = workdir / "site.conf"
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.access_log = workdir / "access.log"
        self.error_log = workdir / "error.log"
        self._site = site
        self._process: subprocess.Popen[bytes] | None = None

    def _main_conf(self) -> str:
        tmp = self.workdir / "tmp"
        tmp.mkdir(exist_ok=True)
        # Workers run as root only when the test does: tmp_path is root's own (mode 700).
        user = "user root;\n" if os.geteuid() == 0 else ""
        temp_paths = "".join(
            f"    {kind}_temp_path {tmp / kind};\n"
            for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
        )
        return (
            f"{user}daemon off;\nworker_processes 1;\npid {self.workdir / 'nginx.pid'};\n"
            f"error_log {self.error_log} warn;\nworker_shutdown_timeout {SHUTDOWN_TIMEOUT};\n"
            "events { worker_connections 512; }\n"
            "http {\n"
            "    include /etc/nginx/mime.types;\n"
            "    default_type application/octet-stream;\n"
            "    log_format balancer '$status $upstream_addr \"$request\"';\n"
            f"    access_log {self.access_log} balancer;\n"
            f"{temp_paths}"
            f"    include {self.site_file};\n"
            "}\n"
        )

    def _write_site(self) -> None:
        self.site_file.write_text(
            _replace_once(r"^(\s*)listen 80;", rf"\1listen 127.0.0.1:{self.port};", self._site)
        )

    def __enter__(self) -> Nginx:
        self.workdir.mkdir(parents=True, exist_ok=True)
        self._write_site()
        conf = self.workdir / "nginx.conf"
        conf.write_text(self._main_conf())
        command = [nginx_binary(), "-p", str(self.workdir), "-e", str(self.error_log)]
        check = subprocess.run([*command, "-c", str(conf), "-t"], capture_output=True, text=True)
        assert check.returncode == 0, check.stderr
        self._process = subprocess.Popen(
            [*command, "-c", str(conf)], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 20
        while not self._answers():
            if self._process.poll() is not None or time.monotonic() > deadline:
                self.__exit__()  # never leave a half-started nginx behind
                raise RuntimeError(f"nginx did not start:\n{self.error_log.read_text()[-3000:]}")
            time.sleep(0.1)
        return self

    def __exit__(self, *_exc: object) -> None:
        if self._process is not None:
            # SIGQUIT: graceful, finish requests, then exit
            stop(self._process, sig=signal.SIGQUIT, timeout=10)

    def _answers(self) -> bool:
        """Listening (whatever the upstream: it may not be up yet)."""
        try:
            socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
        except OSError:
            return False
        return True

    def workers(self) -> list[psutil.Process]:
        assert self._process is not None
        return psutil.Process(self._process.pid).children()

    def reload(self) -> None:
        """``nginx -s reload`` (SIGHUP to the master) after the site file changed; returns
        when the old workers are gone, i.e. their open websockets have been dropped."""
        assert self._process is not None
        old = {worker.pid for worker in self.workers()}
        self._process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while True:
            live = {w.pid for w in self.workers() if _status(w) not in _GONE}
            if live and not live & old:
                return
            if time.monotonic() > deadline:
                raise RuntimeError(f"nginx did not reload:\n{self.error_log.read_text()[-3000:]}")
            time.sleep(0.1)


# An old worker can exit between listing the master's children and looking at one
# (a reload drains them): a vanished worker counts as gone, with no connections.
_GONE = (psutil.STATUS_ZOMBIE, "gone")


def _status(worker: psutil.Process) -> str:
    try:
        return worker.status()
    except psutil.NoSuchProcess:
        return "gone"


def _connections(worker: psutil.Process) -> list:
    try:
        return worker.net_connections(kind="tcp")
    except psutil.NoSuchProcess:
        return []


class Balancer(Nginx):
    """deploy/nginx/chatmon.conf in front of one instance at a time.

    ``switch_to`` drains the current instance the way an operator would: the upstream
    names only the new one, ``nginx -s reload``, and the old workers drop their open
    websockets after worker_shutdown_timeout, so socket.io reconnects to the new one.
    """

    def __init__(self, workdir: Path, backend: str) -> None:
        super().__init__(workdir, (DEPLOY / "chatmon.conf").read_text())
        self.backend = backend

    def _write_site(self) -> None:
        self._site = _replace_once(
            r"(upstream chatmon \{\n).*?(\n\})",
            rf"\1    server {_host_port(self.backend)};\2",
            self._site,
        )
        super()._write_site()

    def switch_to(self, backend: str) -> None:
        """Send new traffic to ``backend`` and drop the websockets open to the old one."""
        self.backend = backend
        self._write_site()
        self.reload()

    @property
    def websockets(self) -> list[str]:
        """The backend of every websocket so far: the closed ones (access log, in the order
        they closed), then the open ones (the workers' connections to an upstream)."""
        closed = []
        if self.access_log.exists():
            for line in self.access_log.read_text().splitlines():
                status, upstream, _ = line.split(" ", 2)
                if status == "101":
                    closed.append(f"http://{upstream}")
        open_now = sorted(
            f"http://{conn.raddr.ip}:{conn.raddr.port}"
            for worker in self.workers()
            for conn in _connections(worker)
            if conn.status == psutil.CONN_ESTABLISHED
            and conn.raddr
            and conn.laddr.port != self.port
        )
        return closed + open_now


class StaticSite(Nginx):
    """deploy/nginx/chatmon-static.conf serving ``root`` (an exported .web/build/client)."""

    def __init__(self, workdir: Path, root: Path) -> None:
        site = (DEPLOY / "chatmon-static.conf").read_text()
        super().__init__(workdir, _replace_once(r"^(\s*)root [^;]+;", rf"\1root {root};", site))
