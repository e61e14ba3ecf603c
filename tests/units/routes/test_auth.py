"""POST /auth/login and /auth/logout over the routes table and the access middleware,
on a real database: cookies, CSRF, throttling, and sessions that end."""

from __future__ import annotations

from collections.abc import Callable
from http.cookies import SimpleCookie
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlmodel import Session
from starlette.testclient import TestClient

from chatmon import deps
from chatmon.api import api
from chatmon.middleware import ApiAccessMiddleware
from chatmon.services import auth, first_start
from chatmon.services.login_throttle import ACCOUNT_POLICY, IP_POLICY
from tests.units.access_config import Configure

HOST = "http://chatmon.test"
ORIGIN = {"origin": HOST}
ALICE = auth.hash_password("alice-pw", iterations=1000)
BOB = auth.hash_password("bob-pw", iterations=1000)


@pytest.fixture
def make_client(access_config: Configure) -> Callable[..., TestClient]:
    def make(**settings: object) -> TestClient:
        access_config(**settings)
        return TestClient(ApiAccessMiddleware(api), base_url=HOST, follow_redirects=False)

    return make


def _login(
    client: TestClient,
    password: str,
    *,
    user: str = "",
    next_path: str = "/monitor",
    headers: dict[str, str] | None = None,
) -> httpx.Response:
    return client.post(
        "/auth/login",
        data={"user": user, "password": password, "next": next_path},
        headers=ORIGIN if headers is None else headers,
    )


def _set_cookie(response: httpx.Response, name: str) -> SimpleCookie:
    for header in response.headers.get_list("set-cookie"):
        cookie = SimpleCookie()
        cookie.load(header)
        if name in cookie:
            return cookie
    raise AssertionError(f"no Set-Cookie for {name}: {response.headers.get_list('set-cookie')}")


def _query(response: httpx.Response) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(response.headers["location"]).query).items()}


def test_login_sets_an_httponly_lax_cookie_and_goes_on(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(monitor_password="right-password")
    response = _login(client, "right-password")
    assert response.status_code == 303
    assert response.headers["location"] == "/monitor"
    morsel = _set_cookie(response, "chatmon_session")["chatmon_session"]
    assert morsel["httponly"] is True
    assert morsel["samesite"].lower() == "lax"
    assert morsel["path"] == "/"
    assert not morsel["secure"]  # plain http here
    assert client.get("/api/stats?window=1h").status_code == 200  # the cookie opens the API


@pytest.mark.parametrize(
    ("settings", "headers", "secure"),
    [
        ({"public_url": "https://chat.example.com"}, {}, True),
        ({}, {"x-forwarded-proto": "https"}, False),  # nobody said a proxy is trusted
        ({"trusted_proxy_hops": 1}, {"x-forwarded-proto": "https"}, True),
        ({"trusted_proxy_hops": 1}, {"x-forwarded-proto": "http"}, False),
    ],
)
def test_cookie_is_secure_behind_https(
    make_client: Callable[..., TestClient], settings: dict, headers: dict, secure: bool
) -> None:
    client = make_client(monitor_password="right-password", **settings)
    origin = {"origin": settings.get("public_url", HOST)}
    response = _login(client, "right-password", headers={**origin, **headers})
    assert response.status_code == 303
    assert bool(_set_cookie(response, "chatmon_session")["chatmon_session"]["secure"]) is secure


@pytest.mark.parametrize(
    "headers",
    [
        {},
        {"origin": "http://evil.example"},
        {"origin": "null"},
        {"referer": "http://evil.example/login"},
    ],
)
def test_login_from_another_site_is_refused(
    make_client: Callable[..., TestClient], headers: dict
) -> None:
    client = make_client(monitor_password="right-password")
    response = _login(client, "right-password", headers=headers)
    assert response.status_code == 403
    assert "set-cookie" not in response.headers


def test_referer_of_our_own_page_is_enough(make_client: Callable[..., TestClient]) -> None:
    client = make_client(monitor_password="right-password")
    response = _login(client, "right-password", headers={"referer": HOST + "/login?next=/monitor"})
    assert response.status_code == 303


def test_wrong_password_comes_back_to_the_form(make_client: Callable[..., TestClient]) -> None:
    client = make_client(monitor_password="right-password")
    response = _login(client, "wrong", next_path="/monitor?window=1h")
    assert response.status_code == 303
    assert urlsplit(response.headers["location"]).path == "/login"
    assert _query(response) == {"next": "/monitor?window=1h", "error": "wrong"}
    assert "chatmon_session" not in response.headers.get("set-cookie", "")


def test_next_never_leaves_the_site(make_client: Callable[..., TestClient]) -> None:
    client = make_client(monitor_password="right-password")
    for target in ("//evil.example", "/%2F%2Fevil.example", "https://evil.example"):
        assert _login(client, "right-password", next_path=target).headers["location"] == "/monitor"


def test_malformed_form_is_a_400(make_client: Callable[..., TestClient]) -> None:
    client = make_client(monitor_password="right-password")
    assert client.post("/auth/login", content=b"\xff\xfe=\xfa", headers=ORIGIN).status_code == 400
    assert (
        client.post("/auth/login", content=b"a=" + b"x" * 10_000, headers=ORIGIN).status_code == 400
    )


def test_form_guessing_is_throttled_per_address(make_client: Callable[..., TestClient]) -> None:
    client = make_client(monitor_password="right-password")
    errors = [
        _query(_login(client, f"guess{n}")).get("error") for n in range(IP_POLICY.free_failures)
    ]
    assert errors == ["wrong"] * IP_POLICY.free_failures
    refused = _login(client, "right-password")
    assert _query(refused)["error"] == "wait" and int(_query(refused)["retry"]) >= 1
    assert "chatmon_session" not in refused.headers.get("set-cookie", "")


def test_form_guessing_is_throttled_per_account_across_addresses(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(monitor_users=f"alice:{ALICE}", trusted_proxy_hops=1)

    def from_ip(n: int, password: str) -> httpx.Response:
        return _login(
            client, password, user="alice", headers={**ORIGIN, "x-forwarded-for": f"203.0.113.{n}"}
        )

    for n in range(ACCOUNT_POLICY.free_failures):
        assert _query(from_ip(n, "guess"))["error"] == "wrong"
    assert _query(from_ip(200, "alice-pw"))["error"] == "wait"


def test_returning_browser_is_not_locked_out_by_strangers(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(monitor_users=f"alice:{ALICE}", trusted_proxy_hops=1)
    first = _login(
        client, "alice-pw", user="alice", headers={**ORIGIN, "x-forwarded-for": "198.51.100.1"}
    )
    device = _set_cookie(first, "chatmon_device")["chatmon_device"]
    assert device["path"] == "/auth" and device["httponly"] is True
    client.cookies.clear()
    deps.login_guard()._remembered.clear()  # days later, or another worker: nothing in memory
    stranger = TestClient(ApiAccessMiddleware(api), base_url=HOST, follow_redirects=False)
    for n in range(ACCOUNT_POLICY.free_failures + 1):
        _login(
            stranger, "guess", user="alice", headers={**ORIGIN, "x-forwarded-for": f"203.0.113.{n}"}
        )
    assert (
        _query(
            _login(
                stranger,
                "alice-pw",
                user="alice",
                headers={**ORIGIN, "x-forwarded-for": "192.0.2.7"},
            )
        )["error"]
        == "wait"
    )
    client.cookies.set("chatmon_device", device.value, path="/auth")
    again = _login(
        client, "alice-pw", user="alice", headers={**ORIGIN, "x-forwarded-for": "198.51.100.1"}
    )
    assert again.headers["location"] == "/monitor"


def test_x_forwarded_for_is_ignored_without_a_trusted_proxy(
    make_client: Callable[..., TestClient],
) -> None:
    """A guesser cannot dodge the address limit by inventing X-Forwarded-For values."""
    client = make_client(monitor_password="right-password")
    for n in range(IP_POLICY.free_failures):
        _login(client, "guess", headers={**ORIGIN, "x-forwarded-for": f"203.0.113.{n}"})
    refused = _login(client, "right-password", headers={**ORIGIN, "x-forwarded-for": "192.0.2.99"})
    assert _query(refused)["error"] == "wait"


def test_logout_clears_the_session(make_client: Callable[..., TestClient]) -> None:
    client = make_client(monitor_password="right-password")
    _login(client, "right-password")
    assert client.get("/api/stats?window=1h").status_code == 200
    assert client.post("/auth/logout").status_code == 403  # no Origin: not our page
    response = client.post("/auth/logout", headers=ORIGIN)
    assert response.status_code == 303 and urlsplit(response.headers["location"]).path == "/login"
    morsel = _set_cookie(response, "chatmon_session")["chatmon_session"]
    assert morsel.value == "" and morsel["max-age"] == "0" and morsel["httponly"] is True
    assert client.get("/api/stats?window=1h").status_code == 401


def test_session_of_a_removed_user_ends(make_client: Callable[..., TestClient]) -> None:
    client = make_client(monitor_users=f"alice:{ALICE},bob:{BOB}")
    _login(client, "alice-pw", user="alice")
    assert client.get("/api/stats?window=1h").status_code == 200
    cookie = client.cookies.get("chatmon_session")
    client = make_client(monitor_users=f"bob:{BOB}")  # alice removed (same database, same secret)
    client.cookies.set("chatmon_session", cookie or "")
    assert client.get("/api/stats?window=1h").status_code == 401


def test_session_ends_when_the_generated_password_is_reset(
    make_client: Callable[..., TestClient], engine
) -> None:
    client = make_client()
    with Session(engine) as session:
        password = first_start.ensure_monitor_password(
            session=session, settings=deps.get_settings()
        )
    assert password
    deps.refresh_monitor_gate()
    _login(client, password)
    assert client.get("/api/stats?window=1h").status_code == 200
    with Session(engine) as session:
        first_start.reset_monitor_password(session=session)
    deps.refresh_monitor_gate()  # what the 20 s refresh loop (or the 30 s cache) does
    assert client.get("/api/stats?window=1h").status_code == 401


def test_instance_secret_is_generated_once_and_shared(
    make_client: Callable[..., TestClient],
) -> None:
    make_client()
    first = deps.instance_secret()
    deps.instance_secret.cache_clear()  # another worker / instance on the same database
    assert deps.instance_secret() == first and len(first) >= 32


def test_chat_login_takes_the_chat_or_the_monitor_password(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(monitor_password="ops-door-4711", chat_password="chat-door-0815")
    assert _login(client, "chat-door-0815", next_path="/").headers["location"] == "/"
    assert client.get("/api/stats?window=1h").status_code == 401  # a chat session only
    client.cookies.clear()
    assert _login(client, "ops-door-4711", next_path="/").headers["location"] == "/"
    assert client.get("/api/stats?window=1h").status_code == 200


def test_form_sent_before_the_page_hydrated_goes_where_the_page_was_asked(
    make_client: Callable[..., TestClient],
) -> None:
    client = make_client(monitor_password="ops-door-4711", chat_password="chat-door-0815")
    response = _login(
        client,
        "chat-door-0815",
        next_path="",
        headers={**ORIGIN, "referer": HOST + "/login?next=%2F"},
    )
    assert response.headers["location"] == "/"
