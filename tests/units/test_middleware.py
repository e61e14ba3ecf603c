"""/api/* and /metrics need monitor credentials unless MONITOR_AUTH=off; websockets only
from chatmon's own pages; every response carries security headers; HTML gets a CSP that
allows exactly its own inline scripts."""

from __future__ import annotations

import base64
import gzip
import hashlib
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route, WebSocketRoute
from starlette.testclient import TestClient
from starlette.websockets import WebSocketDisconnect

from chatmon import deps
from chatmon.middleware import (
    ApiAccessMiddleware,
    SecurityHeadersMiddleware,
    WebSocketOriginMiddleware,
    content_security_policy,
)
from chatmon.services import auth
from tests.units.access_config import Configure

PAGE = b"<html><head><script>window.x = 1;</script><script src='/a.js'></script></head></html>"


async def _stats(_request: Request) -> Response:
    return JSONResponse({"requests": 3})


async def _page(_request: Request) -> Response:
    return HTMLResponse(PAGE)


async def _gzipped_page(_request: Request) -> Response:
    return Response(
        gzip.compress(PAGE), media_type="text/html", headers={"content-encoding": "gzip"}
    )


ALICE_HASH = auth.hash_password("pw", iterations=1000)


@pytest.fixture
def client(access_config: Configure) -> Iterator[TestClient]:
    """/api/stats behind the middleware, with a shared password and one named user."""
    access_config(monitor_password="s3cret-shared", monitor_users=f"alice:{ALICE_HASH}")
    app = Starlette(
        routes=[
            Route("/api/stats", _stats),
            Route("/", _page),
            Route("/gz", _gzipped_page),
            Route("/metrics", _metrics),
        ]
    )
    wrapped = SecurityHeadersMiddleware(ApiAccessMiddleware(app))
    with TestClient(wrapped) as test_client:
        yield test_client


async def _metrics(_request: Request) -> Response:
    return Response("chatmon_llm_requests_total 1\n", media_type="text/plain")


def _basic(user: str, password: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def _session(user: str = "alice") -> str:
    """A monitor session cookie as /auth/login issues it."""
    return deps.session_signer().issue(
        user=user, scope="monitor", credential=deps.monitor_gate().fingerprint(user) or ""
    )


def test_api_refused_without_credentials(client: TestClient) -> None:
    response = client.get("/api/stats")
    assert response.status_code == 401
    assert "requests" not in response.text
    assert response.headers["www-authenticate"].startswith("Basic")


@pytest.mark.parametrize(
    "headers",
    [
        _basic("alice", "nope"),
        _basic("", "wrong"),
        _basic("alice", "s3cret-shared"),  # alice has her own
        {"authorization": "Basic !!!"},
        {"authorization": "Bearer x"},
        {"authorization": "Basic"},
        {"authorization": "Basic bm9jb2xvbg=="},
    ],
)
def test_api_refused_with_wrong_credentials(client: TestClient, headers: dict[str, str]) -> None:
    assert client.get("/api/stats", headers=headers).status_code == 401


def test_api_open_with_basic_or_session_cookie(client: TestClient) -> None:
    assert client.get("/api/stats", headers=_basic("alice", "pw")).json() == {"requests": 3}
    assert client.get("/api/stats", headers=_basic("", "s3cret-shared")).status_code == 200
    client.cookies.set("chatmon_session", _session())
    assert client.get("/api/stats").status_code == 200


def test_chat_session_does_not_open_the_api(client: TestClient) -> None:
    client.cookies.set("chatmon_session", deps.session_signer().issue(user="a", scope="chat"))
    assert client.get("/api/stats").status_code == 401


def test_session_without_the_current_credential_does_not_open_the_api(client: TestClient) -> None:
    """A token signed with the right key but for a credential that is not (or no longer)
    the user's: e.g. issued before the password changed."""
    stale = deps.session_signer().issue(user="alice", scope="monitor", credential="old")
    client.cookies.set("chatmon_session", stale)
    assert client.get("/api/stats").status_code == 401


@pytest.mark.parametrize(
    "headers",
    [
        {"authorization": b"Basic \xff\xfe\xfd"},
        {"authorization": "Basic " + base64.b64encode(b"\xff\xfe:\xfa").decode()},
        {"authorization": b"Basic " + base64.b64encode("\u00e9l\u00e8ve:pw".encode())},
        {"authorization": "Basic " + "QUFB" * 2000},
        {"authorization": b"Bearer \xe9t\xe9"},
        {"cookie": b"chatmon_session=\xc3\xa9t\xc3\xa9.\xc3\xa9"},
        {"cookie": b"chatmon_session=\xff\xfe"},
        {"cookie": 'chatmon_session="unterminated; other=1'},
        {"cookie": "chatmon_session=" + "a" * 5000},
    ],
)
def test_malformed_or_non_ascii_credentials_are_a_401_never_a_500(
    client: TestClient, headers: dict
) -> None:
    response = client.get("/api/stats", headers=headers)
    assert response.status_code == 401


def test_basic_guessing_is_throttled(client: TestClient) -> None:
    statuses = [
        client.get("/api/stats", headers=_basic("alice", f"guess{n}")).status_code for n in range(6)
    ]
    assert statuses[:5] == [401] * 5 and statuses[5] == 429
    refused = client.get("/api/stats", headers=_basic("alice", "pw"))
    assert refused.status_code == 429  # the right password waits too, unchecked
    assert int(refused.headers["retry-after"]) >= 1


def test_metrics_follow_the_monitor_login_without_a_token(client: TestClient) -> None:
    assert client.get("/metrics").status_code == 401
    assert client.get("/metrics", headers=_basic("alice", "pw")).status_code == 200


def test_metrics_with_a_token_are_left_to_the_token(
    access_config: Configure,
) -> None:
    access_config(monitor_password="s3cret-shared", metrics_token="scrape-token-123")
    app = ApiAccessMiddleware(Starlette(routes=[Route("/metrics", _metrics)]))
    assert TestClient(app).get("/metrics").status_code == 200  # the route checks the bearer


def test_monitor_auth_off_opens_api_and_metrics(access_config: Configure) -> None:
    access_config(monitor_auth=False)
    app = ApiAccessMiddleware(
        Starlette(routes=[Route("/api/stats", _stats), Route("/metrics", _metrics)])
    )
    client = TestClient(app)
    assert client.get("/api/stats").status_code == 200
    assert client.get("/metrics").status_code == 200


def test_no_password_configured_means_closed_not_open(access_config: Configure) -> None:
    """Secure by default: without MONITOR_PASSWORD/MONITOR_USERS (and before a password
    was generated) nobody gets in."""
    access_config()
    app = ApiAccessMiddleware(Starlette(routes=[Route("/api/stats", _stats)]))
    client = TestClient(app)
    assert client.get("/api/stats").status_code == 401
    assert client.get("/api/stats", headers=_basic("admin", "")).status_code == 401


async def _echo_ws(websocket) -> None:
    await websocket.accept()
    await websocket.send_text("hello")
    await websocket.close()


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [
        (None, True),
        ("http://testserver", True),
        ("http://evil.example", False),
        ("null", False),
        ("http://testserver:8080", False),
    ],
)
def test_websocket_from_another_site_is_refused(
    access_config: Configure, origin: str | None, allowed: bool
) -> None:
    access_config()
    app = WebSocketOriginMiddleware(Starlette(routes=[WebSocketRoute("/_event", _echo_ws)]))
    headers = {"origin": origin} if origin else {}
    client = TestClient(app)
    if allowed:
        with client.websocket_connect("/_event", headers=headers) as ws:
            assert ws.receive_text() == "hello"
    else:
        with (
            pytest.raises(WebSocketDisconnect),
            client.websocket_connect("/_event", headers=headers),
        ):
            pass


def test_websocket_from_a_configured_origin_is_admitted(access_config: Configure) -> None:
    access_config(cors_allowed_origins="http://localhost:3000")
    app = WebSocketOriginMiddleware(Starlette(routes=[WebSocketRoute("/_event", _echo_ws)]))
    with TestClient(app).websocket_connect(
        "/_event", headers={"origin": "http://localhost:3000"}
    ) as ws:
        assert ws.receive_text() == "hello"


def test_every_response_has_security_headers(client: TestClient) -> None:
    for response in (client.get("/api/stats"), client.get("/")):
        assert response.headers["x-content-type-options"] == "nosniff"
        assert response.headers["referrer-policy"] == "strict-origin-when-cross-origin"
        assert response.headers["x-frame-options"] == "DENY"


@pytest.mark.parametrize("path", ["/", "/gz"])
def test_html_csp_allows_exactly_its_inline_scripts(client: TestClient, path: str) -> None:
    csp = client.get(path).headers["content-security-policy"]
    digest = base64.b64encode(hashlib.sha256(b"window.x = 1;").digest()).decode()
    assert f"'sha256-{digest}'" in csp
    assert "script-src 'self' 'sha256-" in csp
    assert "'unsafe-inline'" not in csp.split("script-src")[1].split(";")[0]
    assert "frame-ancestors 'none'" in csp


def test_csp_without_inline_scripts_is_self_only() -> None:
    assert "script-src 'self';" in content_security_policy([])


def test_csp_for_pages_the_server_sends_from_disk(tmp_path) -> None:
    """Static pages may go out as `http.response.pathsend` (the file, not a body)."""
    page = tmp_path / "index.html"
    page.write_bytes(PAGE)
    sent: list[dict] = []

    async def app(scope, receive, send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"text/html; charset=utf-8")],
            }
        )
        await send({"type": "http.response.pathsend", "path": str(page)})

    async def collect(message) -> None:
        sent.append(message)

    import asyncio

    asyncio.run(SecurityHeadersMiddleware(app)({"type": "http", "path": "/"}, None, collect))
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.pathsend"]
    headers = dict(sent[0]["headers"])
    digest = base64.b64encode(hashlib.sha256(b"window.x = 1;").digest()).decode()
    assert f"'sha256-{digest}'".encode() in headers[b"content-security-policy"]
