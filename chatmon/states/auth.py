"""AuthState: who this browser is signed in as, for the monitor (and, with CHAT_PASSWORD,
the chat). Other states ask it before they load anything private.

Signing in and out are plain HTTP (``POST /auth/login``, ``/auth/logout`` in
chatmon/routes/auth.py), because only an HTTP response can set the HttpOnly session
cookie. This state reads that cookie from the websocket handshake's Cookie header
(``router.headers.cookie``, which Reflex never sends to the page), so no script on the
page can read the session, and checks it on every call: a removed user or a changed
password ends the session within the monitor gate's refresh (30 s).
"""

from __future__ import annotations

import reflex as rx

from chatmon import access, deps
from chatmon.services.auth import safe_next
from chatmon.settings import get_settings

__all__ = ["AuthState", "monitor_allowed", "safe_next"]

LOGIN_MESSAGES = {  # ?error= on /login -> what the form shows (never text from the URL)
    "wrong": "Wrong user name or password.",
    "out": "You are signed out.",
}


class AuthState(rx.State):
    """The login page's messages, and the session checks other states call."""

    login_error: str = ""
    next_path: str = ""  # "" until on_load: the route then reads it from the Referer
    # MONITOR_AUTH=off: the monitor shows an "unprotected" badge.
    monitor_unprotected: bool = not get_settings().monitor_auth

    def _session_token(self) -> str | None:
        cookies = access.cookies_of(self.router.headers.cookie)
        return cookies.get(access.SESSION_COOKIE)

    def may_see_monitor(self) -> bool:
        """True when the monitor is open to all, or this browser is signed in to it."""
        if not deps.monitor_gate().enabled:
            return True
        return access.monitor_user_for_token(self._session_token()) is not None

    def may_chat(self) -> bool:
        """True when the chat is open to all, or this browser is signed in (a monitor
        session opens the chat too)."""
        if not deps.chat_gate().enabled:
            return True
        return access.chat_user_for_token(self._session_token()) is not None

    @rx.event
    def require_monitor(self):
        """on_load of private pages: send strangers to the login form."""
        if not self.may_see_monitor():
            return rx.redirect("/login?next=" + self.router.url.path)

    @rx.event
    def load_login(self):
        """on_load of /login: where to go afterwards, and why we are here again."""
        params = self.router.url.query_parameters
        self.next_path = safe_next(params.get("next"))
        error = params.get("error", "")
        if error == "wait":
            retry = params.get("retry", "")
            seconds = int(retry) if retry.isdigit() and len(retry) <= 6 else 60
            self.login_error = f"Too many failed sign-ins. Try again in {seconds} s."
        else:
            self.login_error = LOGIN_MESSAGES.get(error, "")


async def monitor_allowed(state: rx.State) -> bool:
    """Whether the browser behind ``state`` may see monitor data.

    Every monitor and alerts handler that reads data asks this first: an event can be
    sent over the websocket without ever loading the page, so the page's redirect alone
    is no protection.
    """
    auth = await state.get_state(AuthState)
    return auth.may_see_monitor()
