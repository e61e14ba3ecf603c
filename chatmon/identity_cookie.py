"""ASGI middleware that gives every browser a server-issued identity cookie.

The cookie (:mod:`chatmon.services.identity`) is set on page responses, so a browser
has it before its page opens the websocket, whose handshake carries it to every event
handler. A frontend served elsewhere (static export) gets it from
``IDENTITY_PATH`` instead: the chat page asks for it once when its websocket arrived
without one (see ``ChatState.load``). A websocket without a valid cookie is not given
one: its events identify nobody, so they reach nobody's conversations.
"""

from __future__ import annotations

from collections.abc import Callable

from starlette.datastructures import Headers
from starlette.requests import HTTPConnection, cookie_parser
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from chatmon.access import connection_is_https
from chatmon.services.identity import COOKIE_MAX_AGE, COOKIE_NAME, IDENTITY_PATH, IdentityIssuer

_MAX_COOKIE_HEADER = 8192  # browsers send at most ~4 KB per cookie; more is not a browser


def request_cookies(scope: Scope) -> dict[str, str]:
    """The cookies of a request, parsed the lenient way browsers write them.

    Several ``Cookie`` headers are joined; bytes that are not ASCII are read as
    Latin-1, so a malformed header yields odd values, never an exception.
    """
    values = [value for name, value in scope.get("headers", []) if name == b"cookie"]
    header = b"; ".join(values)[:_MAX_COOKIE_HEADER].decode("latin-1")
    return cookie_parser(header)


def set_cookie_header(token: str, *, secure: bool) -> str:
    """The ``Set-Cookie`` value for an identity token: HttpOnly, SameSite=Lax, long-lived."""
    attributes = [
        f"{COOKIE_NAME}={token}",
        "Path=/",
        f"Max-Age={COOKIE_MAX_AGE}",
        "HttpOnly",
        "SameSite=Lax",
    ]
    if secure:
        attributes.append("Secure")
    return "; ".join(attributes)


def https_in_front(scope: Scope) -> bool:
    """Whether the browser uses https (PUBLIC_URL, TLS, or a trusted proxy's word)."""
    return connection_is_https(HTTPConnection(scope))


class IdentityCookieMiddleware:
    """Issues the identity cookie on pages (and ``IDENTITY_PATH``) to browsers without one.

    Args:
        app: the wrapped ASGI app.
        issuer: returns the process's :class:`IdentityIssuer` (resolved per request, so
            the instance secret is read once the database is up, not at import).
        secure: whether cookies get ``Secure`` for this request (https in front).
    """

    def __init__(
        self,
        app: ASGIApp,
        issuer: Callable[[], IdentityIssuer],
        secure: Callable[[Scope], bool] = https_in_front,
    ) -> None:
        self.app = app
        self._issuer = issuer
        self._secure = secure

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        issuer = self._issuer()
        has_identity = issuer.verify(request_cookies(scope).get(COOKIE_NAME)) is not None
        if scope.get("path") == IDENTITY_PATH and scope.get("method") == "POST":
            await self._identity_endpoint(scope, send, issuer, has_identity)
            return
        if has_identity:
            await self.app(scope, receive, send)
            return
        cookie = set_cookie_header(issuer.issue(), secure=self._secure(scope))

        async def send_with_cookie(message: Message) -> None:
            if message["type"] == "http.response.start" and _is_page(message):
                headers = [*message.get("headers", []), (b"set-cookie", cookie.encode())]
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_cookie)

    async def _identity_endpoint(
        self, scope: Scope, send: Send, issuer: IdentityIssuer, has_identity: bool
    ) -> None:
        """204, with a new identity cookie when the browser has none (never a token in a body)."""
        headers = [(b"cache-control", b"no-store")]
        if not has_identity:
            cookie = set_cookie_header(issuer.issue(), secure=self._secure(scope))
            headers.append((b"set-cookie", cookie.encode()))
        await send({"type": "http.response.start", "status": 204, "headers": headers})
        await send({"type": "http.response.body", "body": b""})


def _is_page(message: Message) -> bool:
    """Only pages set the cookie (not /metrics, /api, scripts or images)."""
    content_type = Headers(raw=list(message.get("headers", []))).get("content-type", "")
    return content_type.startswith("text/html")
