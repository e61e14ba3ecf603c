"""The Reflex app: wiring only (pages, API routes, lifespan tasks)."""

from __future__ import annotations

import sys

from chatmon.settings import SettingsError, get_settings

try:
    get_settings()
except SettingsError as exc:  # stop startup with the variable's name, not a traceback
    print(f"chatmon: {exc}", file=sys.stderr)
    raise SystemExit(2) from None

import reflex as rx
from reflex.app import default_backend_exception_handler
from reflex.event import EventSpec

from chatmon import (  # noqa: F401  (models registers tables)
    client_errors,
    deps,
    models,
    state_purge,
)
from chatmon.api import api
from chatmon.identity_cookie import IdentityCookieMiddleware
from chatmon.middleware import (
    ApiAccessMiddleware,
    SecurityHeadersMiddleware,
    WebSocketOriginMiddleware,
)
from chatmon.observability import error_tracking
from chatmon.pages.chat import chat_page
from chatmon.pages.login import login_page
from chatmon.pages.monitor import monitor_page
from chatmon.states.auth import AuthState
from chatmon.states.chat import ChatState
from chatmon.states.monitor import MonitorState
from chatmon.tasks import LIFESPAN_TASKS
from chatmon.wiring import install

install(get_settings())  # JSON logs, metrics and tracing listeners (every worker)
state_purge.install()  # before rx.App creates its state manager


def report_backend_exception(exception: Exception) -> EventSpec:
    """An exception in a state's event handler (which Reflex catches): to SENTRY_DSN, if
    set, then Reflex's own handling (a log line and the "An error occurred." toast)."""
    error_tracking.capture(exception)
    return default_backend_exception_handler(exception)


def _identity_cookies(asgi_app):
    return IdentityCookieMiddleware(asgi_app, issuer=deps.identity_issuer)


# Our routes first, then /api/* and /metrics access control, the browser identity
# cookie, the websocket's Origin check, then security headers around everything.
app = rx.App(
    api_transformer=[
        api,
        ApiAccessMiddleware,
        _identity_cookies,
        WebSocketOriginMiddleware,
        SecurityHeadersMiddleware,
    ],
    stylesheets=["/chat.css"],  # assets/chat.css
    frontend_exception_handler=client_errors.log_frontend_exception,
    backend_exception_handler=report_backend_exception,
)
client_errors.install(app)  # bounded work and logs for what browsers report
app.add_page(chat_page, route="/", title="chatmon", on_load=ChatState.load)
app.add_page(
    monitor_page,
    route="/monitor",
    title="Monitor · chatmon",
    on_load=[AuthState.require_monitor, MonitorState.on_load],
)
app.add_page(login_page, route="/login", title="Sign in · chatmon", on_load=AuthState.load_login)
for task in LIFESPAN_TASKS:  # chatmon/tasks/__init__.py says what each does
    app.register_lifespan_task(task)
