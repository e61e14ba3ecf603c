"""ASGI middleware around the whole backend (pages included): access to /api/*, and
security headers with a Content-Security-Policy that allows exactly the page's own
inline scripts (by hash) and nothing else inline."""

from __future__ import annotations

import asyncio
import base64
import functools
import hashlib
import re
import zlib
from collections.abc import Callable
from pathlib import Path

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chatmon import deps
from chatmon.services.auth import MONITOR_SCOPE

SESSION_COOKIE = "chatmon_session"
PROTECTED_PREFIXES = ("/api/",)

BASE_HEADERS = {
    "x-content-type-options": "nosniff",
    "referrer-policy": "strict-origin-when-cross-origin",
    "x-frame-options": "DENY",
    "permissions-policy": "camera=(), microphone=(), geolocation=()",
}
_INLINE_SCRIPT = re.compile(rb"<script(?![^>]*\bsrc=)[^>]*>(.*?)</script>", re.S | re.I)


def content_security_policy(script_hashes: list[str]) -> str:
    """The CSP for an HTML page whose inline scripts have ``script_hashes``.

    Styles stay ``'unsafe-inline'``: Radix and emotion set inline styles at run time.
    """
    scripts = " ".join(["'self'", *(f"'sha256-{h}'" for h in script_hashes)])
    return "; ".join(
        [
            "default-src 'self'",
            f"script-src {scripts}",
            "style-src 'self' 'unsafe-inline'",
            "img-src 'self' data: blob:",
            "font-src 'self' data:",
            "connect-src 'self' ws: wss:",
            "object-src 'none'",
            "base-uri 'self'",
            "form-action 'self'",
            "frame-ancestors 'none'",
        ]
    )


def inline_script_hashes(html: bytes) -> list[str]:
    """Base64 SHA-256 of every inline ``<script>`` body, as CSP expects them."""
    return [
        base64.b64encode(hashlib.sha256(body).digest()).decode()
        for body in _INLINE_SCRIPT.findall(html)
    ]


def _decoded(body: bytes, encoding: str | None) -> bytes | None:
    if not encoding or encoding == "identity":
        return body
    if encoding == "gzip":
        return zlib.decompress(body, 16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompress(body)
    return None  # an encoding we cannot read: no hashes, so inline scripts stay blocked


@functools.lru_cache(maxsize=64)
def _read_file_cached(path: str, _mtime_ns: int) -> bytes:
    return Path(path).read_bytes()


def _read_file(path: str) -> bytes:
    """A small static page, re-read only when it changes (a prod start rebuilds them)."""
    return _read_file_cached(path, Path(path).stat().st_mtime_ns)


class SecurityHeadersMiddleware:
    """Adds security headers to every HTTP response, and a per-page CSP to HTML."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held: list[Message] = []

        async def send_with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in BASE_HEADERS.items():
                    headers.setdefault(name, value)
                if headers.get("content-type", "").startswith("text/html"):
                    held.append(message)  # wait for the body to hash its scripts
                    return
                await send(message)
                return
            if held and message["type"] == "http.response.body":
                held.append(message)
                if not message.get("more_body", False):
                    await self._send_html(held, send)
                return
            if held and message["type"] == "http.response.pathsend":
                # a static file the server sends from disk: hash it from there
                start = held[0]
                headers = MutableHeaders(scope=start)
                html = _decoded(_read_file(message["path"]), headers.get("content-encoding"))
                headers["content-security-policy"] = content_security_policy(
                    inline_script_hashes(html) if html is not None else []
                )
                await send(start)
            await send(message)

        await self.app(scope, receive, send_with_headers)

    @staticmethod
    async def _send_html(messages: list[Message], send: Send) -> None:
        start, bodies = messages[0], messages[1:]
        body = b"".join(m.get("body", b"") for m in bodies)
        headers = MutableHeaders(scope=start)
        html = _decoded(body, headers.get("content-encoding"))
        headers["content-security-policy"] = content_security_policy(
            inline_script_hashes(html) if html is not None else []
        )
        await send(start)
        await send({"type": "http.response.body", "body": body, "more_body": False})


def _basic_credentials(headers: Headers) -> tuple[str, str] | None:
    value = headers.get("authorization", "")
    scheme, _, encoded = value.partition(" ")
    if scheme.lower() != "basic" or not encoded:
        return None
    try:
        user, _, password = base64.b64decode(encoded).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None
    return user, password


async def monitor_user_of(connection: HTTPConnection) -> str | None:
    """Who is asking: a valid monitor session cookie, or HTTP Basic credentials.

    Password hashes take a few hundred milliseconds by design, so they are checked in
    a worker thread, never on the event loop.
    """
    token = connection.cookies.get(SESSION_COOKIE, "")
    user = deps.session_signer().verify(token, scope=MONITOR_SCOPE) if token else None
    if user:
        return user
    credentials = _basic_credentials(connection.headers)
    if credentials is None:
        return None
    return await asyncio.to_thread(deps.monitor_gate().check, *credentials)


class ApiAccessMiddleware:
    """Refuses /api/* without monitor credentials whenever a monitor password is set."""

    def __init__(self, app: ASGIApp, gate_enabled: Callable[[], bool] | None = None) -> None:
        self.app = app
        self._gate_enabled = gate_enabled or (lambda: deps.monitor_gate().enabled)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if (
            scope["type"] == "http"
            and path.startswith(PROTECTED_PREFIXES)
            and self._gate_enabled()
            and await monitor_user_of(HTTPConnection(scope)) is None
        ):
            response = JSONResponse(
                {"error": "login required: sign in at /login, or use HTTP Basic credentials"},
                status_code=401,
                headers={"www-authenticate": 'Basic realm="chatmon"'},
            )
            await response(scope, receive, send)
            return
        await self.app(scope, receive, send)
