"""Who is asking, and over what: client address, https, and origins, for HTTP requests.

``X-Forwarded-For`` and ``X-Forwarded-Proto`` are set by whoever sends the request, so
they count only with ``TRUSTED_PROXY_HOPS`` > 0, and then exactly as Reflex reads them
for its websocket (``rx.Config(trusted_proxy_hops=...)``, fed by the same setting): the
entry that many hops from the right is what the outermost trusted proxy saw.
"""

from __future__ import annotations

import ipaddress
from urllib.parse import urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}


def _forwarded(value: str | None, hops: int) -> str | None:
    entries = [part.strip() for part in (value or "").split(",") if part.strip()]
    if hops <= 0 or len(entries) < hops:
        return None
    return entries[-hops]


def client_ip(*, peer: str | None, forwarded_for: str | None, hops: int) -> str:
    """The client's address: the peer, or X-Forwarded-For behind ``hops`` trusted proxies."""
    return _forwarded(forwarded_for, hops) or peer or "unknown"


def is_https(
    *, scheme: str, forwarded_proto: str | None, hops: int, public_url: str | None
) -> bool:
    """Whether the browser reached chatmon over https (so cookies get ``Secure``).

    True when PUBLIC_URL is https, when the connection itself is TLS, or when a
    trusted proxy says so in X-Forwarded-Proto.
    """
    if (public_url or "").startswith("https://") or scheme in ("https", "wss"):
        return True
    return (_forwarded(forwarded_proto, hops) or "").lower() == "https"


def throttle_address(address: str) -> str:
    """The unit a client address is throttled as: the address, or its /64 for IPv6
    (one home or server gets a whole /64, so single IPv6 addresses are free to rotate)."""
    try:
        ip = ipaddress.ip_address(address.strip().strip("[]"))
    except ValueError:
        return address.strip()[:64] or "unknown"
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, 64), strict=False))
    return str(ip)


def origin_of(url: str | None) -> str | None:
    """``scheme://host[:port]`` of ``url``, lower-case, default port dropped; None if
    it is no http(s) URL (``null``, garbage, a path)."""
    if not url or not url.isascii():
        return None
    try:
        parts = urlsplit(url.strip())
        port = parts.port
    except ValueError:
        return None
    scheme = (parts.scheme or "").lower()
    host = (parts.hostname or "").lower()
    if scheme not in DEFAULT_PORTS or not host:
        return None
    scheme = {"ws": "http", "wss": "https"}.get(scheme, scheme)
    if ":" in host:
        host = f"[{host}]"
    return (
        f"{scheme}://{host}"
        if port in (None, DEFAULT_PORTS[scheme])
        else f"{scheme}://{host}:{port}"
    )


def _netloc(origin: str) -> str:
    """Host and port of an origin, a default port (80, 443) left out."""
    netloc = origin.split("://", 1)[1]
    for default in (":80", ":443"):
        netloc = netloc.removesuffix(default)
    return netloc


def host_origin_matches(origin: str, host: str | None) -> bool:
    """Whether ``origin`` names the host the request was sent to (its Host header).

    Only host and port are compared: behind a TLS proxy the server speaks http while
    the browser's origin is https, and neither can be forged by another site.
    """
    if not host:
        return False
    own = origin_of("http://" + host.strip())
    return own is not None and _netloc(own) == _netloc(origin)


def origin_allowed(origin_header: str | None, *, host: str | None, allowed: list[str]) -> bool:
    """Whether a browser request from ``origin_header`` may act with the user's cookies:
    the page's own origin (same host), or one listed in CORS_ALLOWED_ORIGINS/PUBLIC_URL."""
    origin = origin_of(origin_header)
    if origin is None:
        return False
    if host_origin_matches(origin, host):
        return True
    return origin in {origin_of(entry) for entry in allowed}
