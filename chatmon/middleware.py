"""ASGI middleware around the whole backend (pages included): access to /api/* and
/metrics, the Origin of websocket handshakes, and security headers with a
Content-Security-Policy that allows exactly the page's own inline scripts (by hash)
and nothing else inline."""

from __future__ import annotations

import base64
import functools
import hashlib
import math
import re
import zlib
from collections.abc import Callable
from pathlib import Path

from starlette.datastructures import Headers, MutableHeaders
from starlette.requests import HTTPConnection
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chatmon import access, deps
from chatmon.services.forwarding import origin_allowed
from chatmon.settings import get_settings

PROTECTED_PREFIXES = ("/api/",)
METRICS_PATH = "/metrics"

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


def _login_required(headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse(
        {"error": "login required: sign in at /login, or use HTTP Basic credentials"},
        status_code=401,
        headers={"www-authenticate": 'Basic realm="chatmon"', **(headers or {})},
    )


async def refusal_for(connection: HTTPConnection) -> Response | None:
    """None when the request may see monitor data, else the response that refuses it.

    A valid monitor session cookie, or HTTP Basic credentials (throttled like the login
    form: 429 with Retry-After while the client or the account is blocked). Anything
    malformed (non-ASCII, not base64, a forged cookie) is a 401, never an error.
    """
    token = access.cookies_of(connection.headers.get("cookie")).get(access.SESSION_COOKIE)
    if access.monitor_user_for_token(token) is not None:
        return None
    result = await access.monitor_basic_login(connection)
    if result is None or result.ok:
        return None if result is not None else _login_required()
    if result.retry_after > 0:
        return JSONResponse(
            {"error": "too many failed sign-ins: try again later"},
            status_code=429,
            headers={"retry-after": str(max(1, math.ceil(result.retry_after)))},
        )
    return _login_required()


def _metrics_behind_gate() -> bool:
    """/metrics follows the monitor's login unless METRICS_TOKEN guards it by itself."""
    return get_settings().metrics_token is None


class ApiAccessMiddleware:
    """Refuses /api/* (and /metrics without METRICS_TOKEN) without monitor credentials,
    unless MONITOR_AUTH=off."""

    def __init__(
        self,
        app: ASGIApp,
        gate_enabled: Callable[[], bool] | None = None,
        metrics_behind_gate: Callable[[], bool] | None = None,
    ) -> None:
        self.app = app
        self._gate_enabled = gate_enabled or (lambda: deps.monitor_gate().enabled)
        self._metrics_behind_gate = metrics_behind_gate or _metrics_behind_gate

    def _protected(self, path: str) -> bool:
        if path.startswith(PROTECTED_PREFIXES):
            return True
        return path.rstrip("/") == METRICS_PATH and self._metrics_behind_gate()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and self._protected(path) and self._gate_enabled():
            refusal = await refusal_for(HTTPConnection(scope))
            if refusal is not None:
                await refusal(scope, receive, send)
                return
        await self.app(scope, receive, send)


class WebSocketOriginMiddleware:
    """Refuses websocket handshakes a browser opened from another site's page.

    The event websocket acts with the user's cookies, so a page elsewhere must not open
    it (cross-site websocket hijacking). Allowed: no Origin (not a browser), the host's
    own origin, and CORS_ALLOWED_ORIGINS / PUBLIC_URL's origin. Socket.IO's own check
    is off when no origins are configured, so this is the check that always holds.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "websocket":
            headers = Headers(scope=scope)
            origin = headers.get("origin")
            if origin is not None and not origin_allowed(
                origin, host=headers.get("host"), allowed=get_settings().cors_origins
            ):
                message = await receive()
                if message["type"] == "websocket.connect":
                    await send({"type": "websocket.close", "code": 1008})
                return
        await self.app(scope, receive, send)
