"""What a browser may make the server do with an error report: bounded work, bounded logs.

Any client can send Reflex's built-in ``handle_frontend_exception`` event with any text
(Reflex logs what it is sent), and its ``client_error`` socket event. Reflex itself runs
regexes on that text before any handler of ours sees it: its auto-reload patterns are
cubic in the text's length and ``rich.markup.escape`` is quadratic in a run of
backslashes (20 KB of them took 9.5 s). So:

* :class:`ClientErrorLimits`, an app middleware, cuts both texts of a
  ``handle_frontend_exception`` event to ``CLIENT_ERROR_MAX_CHARS`` and shortens runs
  of backslashes before Reflex handles it;
* :data:`AUTO_RELOAD_ON_ERRORS` replaces Reflex's auto-reload patterns with ones
  that test the same thing in linear time;
* :func:`log_frontend_exception`, the app's ``frontend_exception_handler`` (both
  events end there), logs a capped line, at most ``REPORTS_PER_WINDOW`` a minute per
  process, then says how many it dropped.
"""

from __future__ import annotations

import logging
import re
import time
from typing import TYPE_CHECKING

from reflex.middleware.middleware import Middleware
from reflex.state import FrontendEventExceptionState

from chatmon.services.limits import CLIENT_ERROR_MAX_CHARS, truncate

if TYPE_CHECKING:
    from reflex.app import App
    from reflex.state import BaseState, StateUpdate
    from reflex_base.event import Event

log = logging.getLogger("chatmon.client")

REPORTS_PER_WINDOW = 30
WINDOW_SECONDS = 60.0
MAX_BACKSLASH_RUN = 8
_FRONTEND_EXCEPTION_EVENT = ".handle_frontend_exception"
_BACKSLASH_RUN = re.compile(rf"\\{{{MAX_BACKSLASH_RUN + 1},}}")

# Reflex's patterns, minus the retries: the Firefox ones ("…property ".*" of null",
# "…property ".*", .*is null") tried every occurrence of their prefix on a line, each
# with a scan to the line's end. The first occurrence on a line is the one that can
# match if any can, so each line is scanned from it once (atomic groups never retry).
_FIREFOX = re.escape("TypeError: can't access property \"")
AUTO_RELOAD_ON_ERRORS: list[re.Pattern[str]] = [
    re.compile(re.escape("TypeError: Cannot read properties of null")),  # Chrome/Edge
    re.compile(re.escape("TypeError: null is not an object")),  # Safari
    re.compile(rf"(?m)^(?>[^\n]*?{_FIREFOX})[^\n]*\" of null"),  # Firefox
    re.compile(rf"(?m)^(?>[^\n]*?{_FIREFOX})(?>[^\n]*?\", )[^\n]* is null"),  # Firefox
]


def bounded_client_text(text: str) -> str:
    """A client's error text cut to ``CLIENT_ERROR_MAX_CHARS``, backslash runs shortened."""
    text = truncate(text, CLIENT_ERROR_MAX_CHARS)
    return _BACKSLASH_RUN.sub(lambda run: "\\" * MAX_BACKSLASH_RUN + "…", text)


class ClientErrorLimits(Middleware):
    """Bounds the texts of ``handle_frontend_exception`` before Reflex handles them."""

    async def preprocess(self, app: App, state: BaseState, event: Event) -> StateUpdate | None:
        """Cut ``info`` and ``component_stack`` in place; never stops the event."""
        if event.name.endswith(_FRONTEND_EXCEPTION_EVENT):
            for key in ("info", "component_stack"):
                value = event.payload.get(key)
                if isinstance(value, str):
                    event.payload[key] = bounded_client_text(value)
        return None


class _ReportWindow:
    """At most ``limit`` reports per ``seconds``, process-wide; counts the rest."""

    def __init__(self, limit: int, seconds: float) -> None:
        self.limit, self.seconds = limit, seconds
        self.started = float("-inf")
        self.count = self.dropped = 0

    def allow(self, now: float) -> tuple[bool, int]:
        """Whether to log this report, and how many the previous window dropped."""
        dropped_before = 0
        if now - self.started >= self.seconds:
            dropped_before, self.started, self.count, self.dropped = self.dropped, now, 0, 0
        if self.count >= self.limit:
            self.dropped += 1
            return False, dropped_before
        self.count += 1
        return True, dropped_before


_window = _ReportWindow(REPORTS_PER_WINDOW, WINDOW_SECONDS)


def log_frontend_exception(exception: Exception) -> None:
    """The app's ``frontend_exception_handler``: one capped, rate-limited warning.

    A warning, not an error: the text is whatever a client chose to send.
    """
    allowed, dropped = _window.allow(time.monotonic())
    if dropped:
        log.warning(
            "%d frontend exception reports were dropped (over %d a minute)",
            dropped,
            REPORTS_PER_WINDOW,
        )
    if allowed:
        log.warning(
            "frontend exception reported by a browser: %s", bounded_client_text(str(exception))
        )


def install(app: App) -> None:
    """Put the limits on ``app`` (call once, where the app is made)."""
    FrontendEventExceptionState.auto_reload_on_errors = AUTO_RELOAD_ON_ERRORS
    app.add_middleware(ClientErrorLimits())
