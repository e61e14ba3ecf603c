"""Who is asking, for HTTP routes, the middleware and the Reflex states alike.

A signed-in browser carries the ``chatmon_session`` cookie (HttpOnly, so page scripts
never see it; Reflex states read it from the websocket handshake's Cookie header).
Scripts and Prometheus send HTTP Basic credentials instead. Either way the session or
the credentials must still be accepted by the gate as configured *now*: removing a
user, or changing a password, ends their sessions within the gate's refresh (30 s).
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Mapping

from starlette.requests import HTTPConnection, cookie_parser

from chatmon import deps
from chatmon.services.auth import CHAT_SCOPE, DEVICE_SCOPE, MONITOR_SCOPE, session_user
from chatmon.services.forwarding import (
    client_ip,
    host_origin_matches,
    is_https,
    origin_allowed,
    origin_of,
)
from chatmon.services.login import LoginResult
from chatmon.settings import get_settings

SESSION_COOKIE = "chatmon_session"
DEVICE_COOKIE = "chatmon_device"  # "this browser signed in to account X before" (Path=/auth)
DEVICE_TTL_SECONDS = 30 * 24 * 3600
MAX_BASIC_HEADER = 4096


def cookies_of(cookie_header: str | None) -> dict[str, str]:
    """The cookies of a Cookie header (never raises, whatever bytes a client sent)."""
    try:
        return cookie_parser(cookie_header or "")
    except Exception:  # noqa: BLE001 - a malformed header is simply no cookie
        return {}


def monitor_user_for_token(token: str | None) -> str | None:
    """The user of a valid monitor session whose credential is still accepted."""
    if not token:
        return None
    return session_user(deps.session_signer(), deps.monitor_gate(), token, scope=MONITOR_SCOPE)


def chat_user_for_token(token: str | None) -> str | None:
    """The user of a valid chat session (or monitor session, which opens the chat too)."""
    if not token:
        return None
    user = session_user(deps.session_signer(), deps.chat_gate(), token, scope=CHAT_SCOPE)
    return user if user is not None else monitor_user_for_token(token)


def connection_ip(connection: HTTPConnection) -> str:
    """The client's address, X-Forwarded-For honoured only behind TRUSTED_PROXY_HOPS."""
    peer = connection.client.host if connection.client else None
    return client_ip(
        peer=peer,
        forwarded_for=connection.headers.get("x-forwarded-for"),
        hops=get_settings().trusted_proxy_hops,
    )


def connection_is_https(connection: HTTPConnection) -> bool:
    """Whether the browser uses https here (PUBLIC_URL, TLS, or a trusted proxy's word)."""
    settings = get_settings()
    return is_https(
        scheme=connection.url.scheme,
        forwarded_proto=connection.headers.get("x-forwarded-proto"),
        hops=settings.trusted_proxy_hops,
        public_url=settings.public_url,
    )


def browser_origin(headers: Mapping[str, str]) -> str | None:
    """The origin a browser request comes from: Origin, else the Referer's origin."""
    origin = headers.get("origin")
    if origin is not None:
        return origin
    referer = headers.get("referer")
    return origin_of(referer) if referer else None


def host_is(connection: HTTPConnection, origin: str) -> bool:
    """Whether ``origin`` is the host this request was sent to."""
    return host_origin_matches(origin, connection.headers.get("host"))


def origin_is_trusted(headers: Mapping[str, str]) -> bool:
    """Whether a state-changing browser request comes from chatmon's own pages (CSRF):
    the same host, PUBLIC_URL, or CORS_ALLOWED_ORIGINS. No origin at all is refused."""
    return origin_allowed(
        browser_origin(headers), host=headers.get("host"), allowed=get_settings().cors_origins
    )


def basic_credentials(headers: Mapping[str, str]) -> tuple[str, str] | None:
    """``(user, password)`` of an ``Authorization: Basic`` header; None if absent or
    malformed (wrong scheme, not base64, not UTF-8, too long)."""
    value = headers.get("authorization", "")
    scheme, _, encoded = value.partition(" ")
    if scheme.lower() != "basic" or not encoded or len(encoded) > MAX_BASIC_HEADER:
        return None
    try:
        decoded = base64.b64decode(encoded.strip(), validate=True).decode("utf-8")
    except (ValueError, binascii.Error, UnicodeDecodeError):
        return None
    user, sep, password = decoded.partition(":")
    return (user, password) if sep else None


async def monitor_basic_login(connection: HTTPConnection) -> LoginResult | None:
    """Check HTTP Basic credentials against the monitor gate, throttled like the form.

    None when the request carries no (readable) Basic credentials.
    """
    credentials = basic_credentials(connection.headers)
    if credentials is None:
        return None
    user, password = credentials
    return await deps.login_guard().attempt(
        gates=[(MONITOR_SCOPE, deps.monitor_gate())],
        user=user,
        password=password,
        client_ip=connection_ip(connection),
    )


def device_account(connection: HTTPConnection) -> str | None:
    """The account this browser signed in to before (its device cookie), if any."""
    token = cookies_of(connection.headers.get("cookie")).get(DEVICE_COOKIE)
    return deps.session_signer().verify(token, scope=DEVICE_SCOPE) if token else None
