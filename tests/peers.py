"""Real network peers for the alert tests: an SMTP server (aiosmtpd) and a webhook
receiver (http.server), each listening on 127.0.0.1 in a thread of the test process.

Both are plain synchronous objects (start/stop, or ``with``), usable from unit and
integration tests alike. Neither fakes a protocol: the SMTP server speaks SMTP
(STARTTLS, implicit TLS and AUTH when asked), the receiver speaks HTTP.
"""

from __future__ import annotations

import email
import email.policy
import json
import ssl
import subprocess
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult, LoginPassword

from chatmon.devtools.procs import free_port


def wait_for(condition: Callable[[], bool], *, timeout: float = 30.0, every: float = 0.2) -> bool:
    """Poll ``condition`` until it holds or ``timeout`` passes; returns the last result."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(every)
    return condition()


# ----------------------------------------------------------------------------- TLS


@dataclass(frozen=True)
class Certificate:
    """A self-signed certificate for 127.0.0.1 / localhost, made with the openssl CLI."""

    cert: Path
    key: Path

    @classmethod
    def create(cls, directory: Path) -> Certificate:
        cert, key = directory / "cert.pem", directory / "key.pem"
        subprocess.run(
            [
                "openssl",
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "1",
                "-keyout",
                str(key),
                "-out",
                str(cert),
                "-subj",
                "/CN=localhost",
                "-addext",
                "subjectAltName=DNS:localhost,IP:127.0.0.1",
            ],
            check=True,
            capture_output=True,
        )
        return cls(cert, key)

    def server_context(self) -> ssl.SSLContext:
        context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        context.load_cert_chain(self.cert, self.key)
        return context

    def client_context(self) -> ssl.SSLContext:
        """A verifying client context that trusts only this certificate."""
        return ssl.create_default_context(cafile=str(self.cert))


# ----------------------------------------------------------------------------- SMTP


class _Controller(Controller):
    """aiosmtpd's controller, minus its warning about AUTH without STARTTLS: with
    implicit TLS the whole session is encrypted, which aiosmtpd cannot tell."""

    def factory(self) -> Any:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", "Requiring AUTH while not requiring TLS")
            return super().factory()


class _Collector:
    def __init__(self, sink: SMTPSink) -> None:
        self._sink = sink

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802 - aiosmtpd calls handle_DATA by name
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        with self._sink.lock:
            self._sink.messages.append(message)  # type: ignore[arg-type]  # message_from_bytes with policy= gives an EmailMessage
            self._sink.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
            self._sink.sessions_authenticated.append(bool(session.authenticated))
        return "250 Message accepted for delivery"


class SMTPSink:
    """An aiosmtpd server that keeps every message it receives.

    Args:
        starttls: offer STARTTLS with this certificate.
        implicit_tls: speak TLS from the first byte (SMTPS) with this certificate.
        credentials: require AUTH with this (user, password).
        exclude_auth: AUTH mechanisms not offered (Alertmanager's LOGIN expects the
            challenge ``Username:``, aiosmtpd sends ``User Name``: offer PLAIN only).
    """

    def __init__(
        self,
        *,
        port: int | None = None,
        starttls: Certificate | None = None,
        implicit_tls: Certificate | None = None,
        credentials: tuple[str, str] | None = None,
        exclude_auth: tuple[str, ...] = (),
    ) -> None:
        self.host = "127.0.0.1"
        self.port = port or free_port()
        self.messages: list[EmailMessage] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.sessions_authenticated: list[bool] = []
        self.lock = threading.Lock()
        self._starttls = starttls
        self._implicit_tls = implicit_tls
        self._credentials = credentials
        self._exclude_auth = exclude_auth
        self._controller: _Controller | None = None

    def _authenticate(
        self, _server: Any, _session: Any, _envelope: Any, _mechanism: str, data: Any
    ) -> AuthResult:
        ok = (
            isinstance(data, LoginPassword)
            and self._credentials is not None
            and (data.login.decode(), data.password.decode()) == self._credentials
        )
        return AuthResult(success=ok, handled=False)  # handled=False: the server answers 535

    def start(self) -> SMTPSink:
        kwargs: dict[str, Any] = {}
        if self._starttls:
            kwargs["tls_context"] = self._starttls.server_context()
        if self._implicit_tls:
            kwargs["ssl_context"] = self._implicit_tls.server_context()
        if self._credentials:
            kwargs.update(authenticator=self._authenticate, auth_required=True)
            if self._exclude_auth:
                kwargs["auth_exclude_mechanism"] = list(self._exclude_auth)
            # aiosmtpd only knows about STARTTLS; an implicit-TLS session is encrypted too
            kwargs["auth_require_tls"] = bool(self._starttls)
        self._controller = _Controller(
            _Collector(self), hostname=self.host, port=self.port, **kwargs
        )
        self._controller.start()
        return self

    def stop(self) -> None:
        if self._controller is not None:
            self._controller.stop()
            self._controller = None

    def __enter__(self) -> SMTPSink:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def count(self) -> int:
        with self.lock:
            return len(self.messages)

    def subjects(self) -> list[str]:
        with self.lock:
            return [str(message["Subject"]) for message in self.messages]


def text_part(message: EmailMessage) -> str:
    """The text/plain body as a mail client shows it (SMTP's CRLF line ends as LF)."""
    part = message.get_body(preferencelist=("plain",))
    assert part is not None
    return part.get_content().replace("\r\n", "\n")


def html_part(message: EmailMessage) -> str:
    """The text/html body (line ends as LF)."""
    part = message.get_body(preferencelist=("html",))
    assert part is not None
    return part.get_content().replace("\r\n", "\n")


# ----------------------------------------------------------------------------- webhook


class WebhookReceiver:
    """An HTTP server that records every JSON body POSTed to it and answers ``status``.

    GETs (heartbeat pings, Healthchecks-style) are recorded in ``get_paths``, whatever
    ``status`` answers them.
    """

    def __init__(self, *, status: int = 200) -> None:
        self.status = status
        self.bodies: list[dict[str, Any]] = []
        self.paths: list[str] = []
        self.get_paths: list[str] = []
        self.headers: list[dict[str, str]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length)
                status = receiver.status
                with receiver.lock:
                    receiver.paths.append(self.path)
                    receiver.headers.append(dict(self.headers.items()))
                    if status < 300:
                        receiver.bodies.append(json.loads(body))
                self._reply(status)

            def do_GET(self) -> None:
                status = receiver.status
                with receiver.lock:
                    receiver.get_paths.append(self.path)
                self._reply(status)

            def _reply(self, status: int) -> None:
                reply = b"ok" if status < 300 else b"internal_error"
                self.send_response(status)
                self.send_header("Content-Type", "text/plain")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread: threading.Thread | None = None
        self.url = (
            f"http://127.0.0.1:{self._server.server_address[1]}/services/T000/B000/secret-token-123"
        )

    def start(self) -> WebhookReceiver:
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> WebhookReceiver:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()

    def count(self) -> int:
        with self.lock:
            return len(self.bodies)

    def posts(self) -> int:
        """Every POST, answered with success or not."""
        with self.lock:
            return len(self.paths)

    def pings(self) -> list[str]:
        """The paths of every GET received (heartbeat pings), answered or not."""
        with self.lock:
            return list(self.get_paths)

    def texts(self) -> list[str]:
        with self.lock:
            return [str(body.get("text", "")) for body in self.bodies]


# ----------------------------------------------------------------------------- PagerDuty


class PagerDutyReceiver:
    """An HTTP server speaking PagerDuty's Events API v2 (``POST /v2/enqueue``).

    It validates events as PagerDuty documents them (a 32-character ``routing_key`` it
    was given, ``event_action`` trigger|acknowledge|resolve, a trigger's ``payload`` with
    ``summary``, ``source`` and a ``severity`` of critical|error|warning|info, a
    ``dedup_key`` on every resolve, at most 255 characters) and answers 202
    ``{"status": "success", "message": "Event processed", "dedup_key": ...}`` or 400
    ``{"status": "invalid event", "message": "Event object is invalid", "errors": [...]}``.
    Triggers with the same ``dedup_key`` join one incident; a resolve closes it.
    """

    SEVERITIES = {"critical", "error", "warning", "info"}

    def __init__(self, *, routing_key: str) -> None:
        self.routing_key = routing_key
        self.status_override: int | None = None  # e.g. 429 or 500 for failure drills
        self.events: list[dict[str, Any]] = []
        self.rejected: list[list[str]] = []
        self.incidents: dict[str, dict[str, Any]] = {}
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                if self.path != "/v2/enqueue":
                    return self._reply(404, {"status": "not found"})
                if receiver.status_override is not None:
                    return self._reply(receiver.status_override, {"status": "error"})
                try:
                    event = json.loads(raw)
                except ValueError:
                    return self._reply(400, {"status": "invalid event", "errors": ["bad JSON"]})
                errors = receiver._validate(event)
                if errors:
                    with receiver.lock:
                        receiver.rejected.append(errors)
                    body = {
                        "status": "invalid event",
                        "message": "Event object is invalid",
                        "errors": errors,
                    }
                    return self._reply(400, body)
                key = receiver._apply(event)
                reply = {"status": "success", "message": "Event processed", "dedup_key": key}
                self._reply(202, reply)

            def _reply(self, status: int, body: dict[str, Any]) -> None:
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/v2/enqueue"

    def _validate(self, event: dict[str, Any]) -> list[str]:
        errors = []
        if event.get("routing_key") != self.routing_key:
            errors.append("'routing_key' is invalid")
        action = event.get("event_action")
        if action not in {"trigger", "acknowledge", "resolve"}:
            errors.append("'event_action' is invalid")
        key = event.get("dedup_key")
        if key is not None and (not isinstance(key, str) or len(key) > 255):
            errors.append("'dedup_key' is invalid")
        if action in {"acknowledge", "resolve"} and not key:
            errors.append("'dedup_key' is missing")
        if action == "trigger":
            payload = event.get("payload") or {}
            for name in ("summary", "source", "severity"):
                if not payload.get(name):
                    errors.append(f"'payload.{name}' is missing")
            if payload.get("severity") and payload["severity"] not in self.SEVERITIES:
                errors.append("'payload.severity' is invalid")
            if len(str(payload.get("summary", ""))) > 1024:
                errors.append("'payload.summary' is too long")
        return errors

    def _apply(self, event: dict[str, Any]) -> str:
        with self.lock:
            self.events.append(event)
            key = event.get("dedup_key") or f"generated-{len(self.events)}"
            incident = self.incidents.get(key)
            if event["event_action"] == "trigger":
                if incident is None or incident["status"] == "resolved":
                    incident = {"status": "triggered", "triggers": 0}
                    self.incidents[key] = incident
                incident["triggers"] += 1
                incident["summary"] = event["payload"]["summary"]
            elif incident is not None:
                incident["status"] = (
                    "resolved" if event["event_action"] == "resolve" else "acknowledged"
                )
            return key

    def start(self) -> PagerDutyReceiver:
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    def __enter__(self) -> PagerDutyReceiver:
        return self.start()

    def __exit__(self, *_exc: object) -> None:
        self.stop()
