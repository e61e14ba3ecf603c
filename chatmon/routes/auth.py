"""POST /auth/login and POST /auth/logout: the login form's plain-HTTP endpoints.

Sign-in happens over HTTP, not over the websocket, because only a response can set an
HttpOnly cookie (page scripts, and so Reflex's ``rx.Cookie``, can only set readable
ones). On success the session cookie is set (HttpOnly, SameSite=Lax, Secure behind
https) and the browser is sent on with a 303 to the safe ``next`` path; the full page
load opens a new websocket whose handshake carries the cookie. Both endpoints only
accept requests whose Origin (or Referer) is chatmon's own (CSRF).
"""

from __future__ import annotations

import logging
import math
from urllib.parse import parse_qs, urlencode, urlsplit

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response

from chatmon import access, deps
from chatmon.services.auth import (
    CHAT_SCOPE,
    DEVICE_SCOPE,
    MONITOR_SCOPE,
    SESSION_TTL_SECONDS,
    Gate,
    safe_next,
)
from chatmon.services.forwarding import origin_of
from chatmon.services.login import LoginResult

log = logging.getLogger(__name__)

MAX_FORM_BYTES = 8192
MAX_USER_CHARS = 200
MAX_PASSWORD_CHARS = 1024


async def _form_fields(request: Request) -> dict[str, str] | None:
    """The urlencoded form's first value per field; None when too big or unreadable."""
    body = b""
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            return None
    try:
        fields = parse_qs(body.decode("utf-8"), keep_blank_values=True, max_num_fields=8)
    except (UnicodeDecodeError, ValueError):
        return None
    return {name: values[0] for name, values in fields.items()}


def _next_of_referer(request: Request) -> str | None:
    """``next`` of the login page that posted the form (its URL is the Referer).

    The form's hidden ``next`` is filled in once the page's scripts have run; a form
    sent before that still goes where the login page was asked to send it.
    """
    query = urlsplit(request.headers.get("referer", "")).query
    return parse_qs(query).get("next", [None])[0]


def _refused_origin() -> Response:
    return PlainTextResponse(
        "refused: sign in and out from chatmon's own login page (this request's Origin is "
        "not chatmon's; behind a proxy set PUBLIC_URL)\n",
        status_code=403,
    )


def _redirect(request: Request, path: str) -> RedirectResponse:
    """303 to ``path`` on the site the form was sent from.

    That is this host, except for a static export (pages served elsewhere): then it is
    the allowed origin of the page that posted the form.
    """
    origin = origin_of(access.browser_origin(request.headers))
    if origin is not None and not access.host_is(request, origin):
        return RedirectResponse(origin + path, status_code=303)
    return RedirectResponse(path, status_code=303)


def _set_cookie(
    response: Response,
    request: Request,
    name: str,
    value: str,
    *,
    max_age: int,
    path: str = "/",
    same_site: str = "lax",
) -> None:
    response.set_cookie(
        name,
        value,
        max_age=max_age,
        path=path,
        httponly=True,
        samesite=same_site,  # type: ignore[arg-type]  # Starlette wants a Literal; callers pass lax/strict
        secure=access.connection_is_https(request),
    )


def _gates_for(target: str) -> list[tuple[str, Gate]]:
    """The gates a sign-in for ``target`` tries: the chat's (when it has a password) then
    the monitor's for the chat page, the monitor's for everything else."""
    monitor = deps.monitor_gate()
    if urlsplit(target).path == "/":
        chat = deps.chat_gate()
        gates = [(CHAT_SCOPE, chat)] if chat.enabled else []
        return gates + ([(MONITOR_SCOPE, monitor)] if monitor.enabled else [])
    return [(MONITOR_SCOPE, monitor)] if monitor.enabled else []


def _back_to_login(request: Request, target: str, result: LoginResult) -> RedirectResponse:
    query = {"next": target}
    if result.retry_after > 0:
        query.update(error="wait", retry=str(max(1, math.ceil(result.retry_after))))
    else:
        query["error"] = "wrong"
    return _redirect(request, "/login?" + urlencode(query))


async def login(request: Request) -> Response:
    """Check the form's credentials; on success set the session cookie and go on."""
    if not access.origin_is_trusted(request.headers):
        return _refused_origin()
    fields = await _form_fields(request)
    if fields is None:
        return PlainTextResponse("refused: the sign-in form is malformed\n", status_code=400)
    target = safe_next(fields.get("next") or _next_of_referer(request))
    gates = _gates_for(target)
    if not gates:  # nothing to sign in to: the page is open
        return _redirect(request, target)
    ip = access.connection_ip(request)
    result = await deps.login_guard().attempt(
        gates=gates,
        user=fields.get("user", "").strip()[:MAX_USER_CHARS],
        password=fields.get("password", "")[:MAX_PASSWORD_CHARS],
        client_ip=ip,
        trusted_account=access.device_account(request),
    )
    if not result.ok:
        if result.retry_after > 0:
            log.warning(
                "sign-in refused from %s: too many failures (%.0f s left)", ip, result.retry_after
            )
        else:
            log.warning("sign-in failed from %s", ip)
        return _back_to_login(request, target, result)
    log.info("signed in: %s (%s) from %s", result.user, result.area, ip)
    signer = deps.session_signer()
    response = _redirect(request, target)
    token = signer.issue(user=result.user or "", scope=result.area, credential=result.credential)
    _set_cookie(response, request, access.SESSION_COOKIE, token, max_age=SESSION_TTL_SECONDS)
    device = signer.issue(user=result.account, scope=DEVICE_SCOPE, ttl=access.DEVICE_TTL_SECONDS)
    _set_cookie(
        response,
        request,
        access.DEVICE_COOKIE,
        device,
        max_age=access.DEVICE_TTL_SECONDS,
        path="/auth",
        same_site="strict",
    )
    return response


async def logout(request: Request) -> Response:
    """Forget the session cookie and show the login page."""
    if not access.origin_is_trusted(request.headers):
        return _refused_origin()
    response = _redirect(request, "/login?" + urlencode({"next": "/monitor", "error": "out"}))
    _set_cookie(response, request, access.SESSION_COOKIE, "", max_age=0)
    return response
