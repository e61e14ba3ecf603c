"""Client address, https and origins: X-Forwarded-* count only behind trusted proxies."""

from __future__ import annotations

import pytest

from chatmon.services.forwarding import (
    client_ip,
    is_https,
    origin_allowed,
    origin_of,
    throttle_address,
)


@pytest.mark.parametrize(
    ("forwarded", "hops", "expected"),
    [
        (None, 0, "10.0.0.9"),
        ("1.2.3.4", 0, "10.0.0.9"),  # no trusted proxy: the header is the client's word
        ("1.2.3.4", 1, "1.2.3.4"),
        ("6.6.6.6, 1.2.3.4", 1, "1.2.3.4"),  # a forged entry left of the proxy's is ignored
        ("6.6.6.6, 1.2.3.4, 172.16.0.2", 2, "1.2.3.4"),
        ("1.2.3.4", 2, "10.0.0.9"),  # fewer entries than proxies: do not guess
    ],
)
def test_client_ip_trusts_x_forwarded_for_only_behind_proxies(
    forwarded: str | None, hops: int, expected: str
) -> None:
    assert client_ip(peer="10.0.0.9", forwarded_for=forwarded, hops=hops) == expected


@pytest.mark.parametrize(
    ("scheme", "proto", "hops", "public_url", "expected"),
    [
        ("http", None, 0, None, False),
        ("http", "https", 0, None, False),  # X-Forwarded-Proto from a stranger
        ("http", "https", 1, None, True),
        ("http", "http", 1, None, False),
        ("http", None, 0, "https://chat.example.com", True),
        ("https", None, 0, None, True),
        ("wss", None, 0, None, True),
    ],
)
def test_https_from_public_url_tls_or_a_trusted_proxy(
    scheme: str, proto: str | None, hops: int, public_url: str | None, expected: bool
) -> None:
    assert (
        is_https(scheme=scheme, forwarded_proto=proto, hops=hops, public_url=public_url) is expected
    )


def test_ipv6_clients_are_throttled_by_their_64() -> None:
    assert throttle_address("2001:db8:1:2:aaaa::1") == throttle_address("2001:db8:1:2:bbbb::7")
    assert throttle_address("2001:db8:1:2::1") != throttle_address("2001:db8:1:3::1")
    assert throttle_address("::ffff:1.2.3.4") == "1.2.3.4"
    assert throttle_address("1.2.3.4") == "1.2.3.4"


@pytest.mark.parametrize(
    ("url", "origin"),
    [
        ("https://Chat.Example.com/monitor", "https://chat.example.com"),
        ("http://127.0.0.1:3000/x", "http://127.0.0.1:3000"),
        ("https://a.example:443", "https://a.example"),
        ("null", None),
        ("javascript:alert(1)", None),
        ("http://\u00e9vil.example", None),
        ("http://a.example:99999", None),
    ],
)
def test_origin_of(url: str, origin: str | None) -> None:
    assert origin_of(url) == origin


@pytest.mark.parametrize(
    ("origin", "host", "allowed", "expected"),
    [
        ("http://127.0.0.1:3000", "127.0.0.1:3000", [], True),
        ("https://chat.example.com", "chat.example.com", [], True),  # TLS ended at a proxy
        ("http://evil.example", "127.0.0.1:3000", [], False),
        ("http://127.0.0.1:3001", "127.0.0.1:3000", [], False),
        ("http://localhost:3000", "localhost:8000", ["http://localhost:3000"], True),
        ("null", "127.0.0.1:3000", [], False),
        (None, "127.0.0.1:3000", [], False),
    ],
)
def test_origin_allowed(origin: str | None, host: str, allowed: list[str], expected: bool) -> None:
    assert origin_allowed(origin, host=host, allowed=allowed) is expected
