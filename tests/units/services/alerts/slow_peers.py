"""A peer that never finishes answering: accepts TCP connections on 127.0.0.1 and then
stalls, silently or by trickling a byte at a time (so no per-read timeout ever fires).

Real sockets, no protocol faked: a silent SMTP server and a webhook that never ends its
headers look exactly like this from the client's side.
"""

from __future__ import annotations

import socket
import threading

from tests.peers import free_port

SMTP_DRIP = b"220-chatmon test server, still greeting\r\n"  # an SMTP reply that never ends
HTTP_DRIP = b"HTTP/1.1 200 OK\r\nX-Slow: " + b"a" * 4096  # headers that never end


class StallingServer:
    """Accept every connection, read what the client sends, never finish the reply.

    Args:
        drip: bytes sent one at a time, every ``every`` seconds, over and over (empty:
            say nothing at all).
    """

    def __init__(self, *, port: int | None = None, drip: bytes = b"", every: float = 0.1) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.accepted = 0
        self.closed = 0  # connections the client closed (or broke) while we stalled
        self._drip = drip
        self._every = every
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._listener = socket.create_server((self.host, self.port), reuse_port=False)
        self._listener.settimeout(0.1)
        self._threads: list[threading.Thread] = []

    def start(self) -> StallingServer:
        self._spawn(self._accept_loop)
        return self

    def stop(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(5)
        self._listener.close()

    def __enter__(self) -> StallingServer:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def _spawn(self, target: object, *args: object) -> None:
        thread = threading.Thread(target=target, args=args, daemon=True)  # type: ignore[arg-type]  # any callable
        self._threads.append(thread)
        thread.start()

    def _accept_loop(self) -> None:
        while not self._stop.is_set():
            try:
                connection, _address = self._listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self._lock:
                self.accepted += 1
            self._spawn(self._stall, connection)

    def _stall(self, connection: socket.socket) -> None:
        connection.settimeout(self._every)
        with connection:
            if self._stall_until_closed(connection):
                with self._lock:
                    self.closed += 1

    def _stall_until_closed(self, connection: socket.socket) -> bool:
        """True when the client closed the connection, False when the server stopped."""
        position = 0
        while not self._stop.is_set():
            try:
                if connection.recv(65536) == b"":
                    return True
            except TimeoutError:
                pass
            except OSError:
                return True
            if self._drip:
                try:
                    connection.sendall(self._drip[position : position + 1])
                except OSError:
                    return True
                position = (position + 1) % len(self._drip)
        return False
