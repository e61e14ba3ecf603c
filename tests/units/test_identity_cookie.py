"""The identity cookie middleware, in process over ASGI (Starlette's test client)."""

from __future__ import annotations

import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route
from starlette.testclient import TestClient

from chatmon.identity_cookie import IdentityCookieMiddleware
from chatmon.services.identity import COOKIE_NAME, IDENTITY_PATH, IdentityIssuer

ISSUER = IdentityIssuer(b"k" * 32)


def _page(request: Request) -> HTMLResponse:
    return HTMLResponse("<html>chat</html>")


def _api(request: Request) -> JSONResponse:
    return JSONResponse({"seen_cookie": request.cookies.get(COOKIE_NAME)})


@pytest.fixture
def client() -> TestClient:
    app = Starlette(routes=[Route("/", _page), Route("/api/x", _api)])
    wrapped = IdentityCookieMiddleware(app, issuer=lambda: ISSUER, secure=lambda scope: False)
    return TestClient(wrapped, base_url="http://testserver")


def _set_cookie(response) -> str:
    return response.headers.get("set-cookie", "")


def test_a_page_gives_a_new_browser_a_signed_httponly_identity(client: TestClient) -> None:
    response = client.get("/")
    cookie = _set_cookie(response)
    assert cookie.startswith(COOKIE_NAME + "=")
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Path=/" in cookie
    assert "Secure" not in cookie  # plain http here
    token = cookie.split(";")[0].split("=", 1)[1]
    assert ISSUER.verify(token) is not None


def test_a_browser_with_a_valid_identity_keeps_it(client: TestClient) -> None:
    client.cookies.set(COOKIE_NAME, ISSUER.issue())
    assert _set_cookie(client.get("/")) == ""


@pytest.mark.parametrize(
    "forged",
    ["0123456789abcdef0123456789abcdef", "v1.x.y", "v1." + "0" * 32 + ".sig", "ünï"],
)
def test_a_forged_identity_is_replaced_by_a_new_one(client: TestClient, forged: str) -> None:
    raw = f"{COOKIE_NAME}={forged}".encode()  # non-ASCII bytes, as a hostile client sends
    response = client.get("/", headers={"cookie": raw})
    assert response.status_code == 200
    token = _set_cookie(response).split(";")[0].split("=", 1)[1]
    assert token != forged and ISSUER.verify(token) is not None


def test_non_pages_never_set_the_cookie(client: TestClient) -> None:
    assert _set_cookie(client.get("/api/x")) == ""


def test_identity_endpoint_sets_a_cookie_once_and_never_returns_it(client: TestClient) -> None:
    first = client.post(IDENTITY_PATH)
    assert first.status_code == 204 and first.content == b""
    assert "HttpOnly" in _set_cookie(first)
    client.cookies.set(COOKIE_NAME, first.cookies[COOKIE_NAME])
    again = client.post(IDENTITY_PATH)
    assert again.status_code == 204 and _set_cookie(again) == ""


def test_secure_flag_behind_https() -> None:
    app = Starlette(routes=[Route("/", _page)])
    wrapped = IdentityCookieMiddleware(app, issuer=lambda: ISSUER, secure=lambda scope: True)
    response = TestClient(wrapped).get("/")
    assert "Secure" in _set_cookie(response)
