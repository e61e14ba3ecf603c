"""AuthState: the login form and the signed session cookie behind the monitor (and,
with CHAT_PASSWORD, the chat). Other states ask it before they load anything private."""

from __future__ import annotations

import asyncio

import reflex as rx

from chatmon import deps
from chatmon.services.auth import CHAT_SCOPE, MONITOR_SCOPE, SESSION_TTL_SECONDS
from chatmon.settings import get_settings

FAILED_LOGIN_DELAY = 0.5  # seconds; slows guessing without hurting a typo


def safe_next(path: str | None, default: str = "/monitor") -> str:
    """A local path to go to after login (never another site: no open redirect)."""
    if not path or not path.startswith("/") or path.startswith("//") or "\\" in path:
        return default
    return path


class AuthState(rx.State):
    """The session cookie and the login form."""

    session_token: str = rx.Cookie(
        "",
        name="chatmon_session",
        path="/",
        max_age=SESSION_TTL_SECONDS,
        same_site="strict",
        secure=(get_settings().public_url or "").startswith("https://"),
    )
    login_error: str = ""

    def user_for(self, scope: str) -> str | None:
        """The signed-in user for ``scope`` ('monitor' or 'chat'), or None.

        A monitor session also opens the chat.
        """
        signer = deps.session_signer()
        user = signer.verify(self.session_token, scope=scope)
        if user is None and scope == CHAT_SCOPE:
            user = signer.verify(self.session_token, scope=MONITOR_SCOPE)
        return user

    def may_see_monitor(self) -> bool:
        """True when the monitor is open to all, or this browser is signed in."""
        return not deps.monitor_gate().enabled or self.user_for(MONITOR_SCOPE) is not None

    def may_chat(self) -> bool:
        """True when the chat is open to all, or this browser is signed in."""
        return not deps.chat_gate().enabled or self.user_for(CHAT_SCOPE) is not None

    @rx.event
    def require_monitor(self):
        """on_load of private pages: send strangers to the login form."""
        if not self.may_see_monitor():
            return rx.redirect("/login?next=" + self.router.url.path)

    @rx.event
    async def login(self, form_data: dict):
        """Check the form's credentials; on success set the session and go on."""
        target = safe_next(self.router.url.query_parameters.get("next"))
        scope = CHAT_SCOPE if target == "/" else MONITOR_SCOPE
        gate = deps.chat_gate() if scope == CHAT_SCOPE else deps.monitor_gate()
        user_name = str(form_data.get("user", "")).strip()
        password = str(form_data.get("password", ""))
        user = await asyncio.to_thread(gate.check, user_name, password) if gate.enabled else None
        if user is None and scope == CHAT_SCOPE and deps.monitor_gate().enabled:
            user = await asyncio.to_thread(deps.monitor_gate().check, user_name, password)
            scope = MONITOR_SCOPE if user else scope
        if user is None:
            await asyncio.sleep(FAILED_LOGIN_DELAY)
            self.login_error = "Wrong user name or password."
            return
        self.login_error = ""
        self.session_token = deps.session_signer().issue(user=user, scope=scope)
        return rx.redirect(target)

    @rx.event
    def logout(self):
        """Forget the session."""
        self.session_token = ""
        return rx.redirect("/login")


async def monitor_allowed(state: rx.State) -> bool:
    """Whether the browser behind ``state`` may see monitor data.

    Every monitor and alerts handler that reads data asks this first: an event can be
    sent over the websocket without ever loading the page, so the page's redirect alone
    is no protection.
    """
    auth = await state.get_state(AuthState)
    return auth.may_see_monitor()
