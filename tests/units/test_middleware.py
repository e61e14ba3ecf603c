"""/api/* needs monitor credentials when a password is set; every response carries
security headers; HTML gets a CSP that allows exactly its own inline scripts."""

from __future__ import annotations

import base64
import gzip
import hashlib
from collections.abc import Iterator

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, Response
from starlette.routing import Route
from starlette.testclient import TestClient

from chatmon import deps
from chatmon.middleware import (
    ApiAccessMiddleware,
    SecurityHeadersMiddleware,
    content_security_policy,
)
from chatmon.services import auth

PAGE = b"<html><head><script>window.x = 1;</script><script src='/a.js'></script></head></html>"


async def _stats(_request: Request) -> Response:
    return JSONResponse({"requests": 3})


async def _page(_request: Request) -> Response:
    return HTMLResponse(PAGE)


async def _gzipped_page(_request: Request) -> Response:
    return Response(gzip.compress(PAGE), media_type="text/html",
                    headers={"content-encoding": "gzip"})


@pytest.fixture
def client(monkeypatch: pytest.MonkeyPatch) -> Iterator[TestClient]:
    gate = auth.Gate(password="s3cret", users={"alice": auth.hash_password("pw", iterations=1000)})
    signer = auth.SessionSigner(b"unit-test-secret-key")
    monkeypatch.setattr(deps, "monitor_gate", lambda: gate)
    monkeypatch.setattr(deps, "session_signer", lambda: signer)
    app = Starlette(routes=[Route("/api/stats", _stats), Route("/", _page),
                            Route("/gz", _gzipped_page)])
    wrapped = SecurityHeadersMiddleware(ApiAccessMiddleware(app))
    with TestClient(wrapped) as test_client:
        yield test_client


def _basic(user: str, password: str) -> dict[str, str]:
    return {"authorization": "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()}


def test_api_refused_without_credentials(client: TestClient) -> None:
    response = client.get("/api/stats")
    assert response.status_code == 401
    assert "requests" not in response.text
    assert response.headers["www-authenticate"].startswith("Basic")


@pytest.mark.parametrize("headers", [_basic("alice", "nope"), _basic("", "wrong"),
                                     {"authorization": "Basic !!!"}, {"authorization": "Bearer x"}])
def test_api_refused_with_wrong_credentials(client: TestClient, headers: dict[str, str]) -> None:
    assert client.get("/api/stats", headers=headers).status_code == 401


def test_api_open_with_basic_or_session_cookie(client: TestClient) -> None:
    assert client.get("/api/stats", headers=_basic("alice", "pw")).json() == {"requests": 3}
    assert client.get("/api/stats", headers=_basic("", "s3cret")).status_code == 200
    token = deps.session_signer().issue(user="alice", scope="monitor")
    client.cookies.set("chatmon_session", token)
    assert client.get("/api/stats").status_code == 200


def test_chat_session_does_not_open_the_api(client: TestClient) -> None:
    client.cookies.set("chatmon_session", deps.session_signer().issue(user="a", scope="chat"))
    assert client.get("/api/stats").status_code == 401


def test_api_open_when_no_password_configured(monkeypatch: pytest.MonkeyPatch) -> None:
    app = Starlette(routes=[Route("/api/stats", _stats)])
    monkeypatch.setattr(deps, "monitor_gate", lambda: auth.Gate())
    assert TestClient(ApiAccessMiddleware(app)).get("/api/stats").status_code == 200


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
        await send({"type": "http.response.start", "status": 200,
                    "headers": [(b"content-type", b"text/html; charset=utf-8")]})
        await send({"type": "http.response.pathsend", "path": str(page)})

    async def collect(message) -> None:
        sent.append(message)

    import asyncio

    asyncio.run(SecurityHeadersMiddleware(app)({"type": "http", "path": "/"}, None, collect))
    assert [m["type"] for m in sent] == ["http.response.start", "http.response.pathsend"]
    headers = dict(sent[0]["headers"])
    digest = base64.b64encode(hashlib.sha256(b"window.x = 1;").digest()).decode()
    assert f"'sha256-{digest}'".encode() in headers[b"content-security-policy"]
