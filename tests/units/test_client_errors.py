"""Browser error reports: bounded before Reflex handles them, logged capped and rate-limited."""

from __future__ import annotations

import logging
import re

import pytest
from reflex.state import FrontendEventExceptionState
from reflex_base.event import Event

from chatmon import client_errors
from chatmon.client_errors import (
    AUTO_RELOAD_ON_ERRORS,
    MAX_BACKSLASH_RUN,
    REPORTS_PER_WINDOW,
    ClientErrorLimits,
    bounded_client_text,
    log_frontend_exception,
)
from chatmon.services.limits import CLIENT_ERROR_MAX_CHARS

FIREFOX = "TypeError: can't access property \""
# Reflex 0.10.1's own patterns (reflex/state.py), to check ours test the same thing.
REFLEX_PATTERNS = [
    re.compile(re.escape("TypeError: Cannot read properties of null")),
    re.compile(re.escape("TypeError: null is not an object")),
    re.compile(r"TypeError: can't access property \".*\" of null"),
    re.compile(re.escape(FIREFOX) + r".*" + re.escape('", ') + r".*" + re.escape(" is null")),
]
REPORTS = [
    "TypeError: Cannot read properties of null (reading 'x')\n    at f (app.js:1:2)",
    "TypeError: null is not an object (evaluating 'a.b')",
    f'{FIREFOX}x" of null',
    f'{FIREFOX}x", y() is null',
    f'Uncaught {FIREFOX}value" of null\nat line 2',
    f'{FIREFOX}x" of nul',
    f'{FIREFOX}x"\n of null',
    f'{FIREFOX}x", y()\n is null',
    f'{FIREFOX}x" , y() is null',
    "ReferenceError: x is not defined",
    f'{FIREFOX}{FIREFOX}", " of null is null',
    "",
]


@pytest.mark.parametrize("report", REPORTS)
def test_auto_reload_patterns_agree_with_reflexs(report: str) -> None:
    ours = [bool(pattern.search(report)) for pattern in AUTO_RELOAD_ON_ERRORS]
    reflexs = [bool(pattern.search(report)) for pattern in REFLEX_PATTERNS]
    assert ours == reflexs


def test_reflex_patterns_in_this_module_are_reflexs_own() -> None:
    """If a Reflex upgrade changes its patterns, ours must be looked at again."""
    assert [p.pattern for p in FrontendEventExceptionState.auto_reload_on_errors] in (
        [p.pattern for p in REFLEX_PATTERNS],
        [p.pattern for p in AUTO_RELOAD_ON_ERRORS],  # installed by the app module
    )


def test_client_text_is_cut_and_backslash_runs_shortened() -> None:
    text = bounded_client_text("\\" * 50 + "x" * 100_000)
    assert text.startswith("\\" * MAX_BACKSLASH_RUN + "…x")
    assert len(text) < CLIENT_ERROR_MAX_CHARS + 40 and text.endswith(" chars]")


async def test_middleware_bounds_frontend_exception_texts_only() -> None:
    limits = ClientErrorLimits()
    report = Event(
        name="reflex___state____state.reflex___state____frontend_event_exception_state"
        ".handle_frontend_exception",
        payload={"info": "\\" * 200_000, "component_stack": "y" * 200_000},
    )
    chat = Event(name="app.chat_state.send_message", payload={"info": "\\" * 200_000})
    for event in (report, chat):
        assert await limits.preprocess(None, None, event) is None  # type: ignore[arg-type]  # the hook ignores app and state
    assert report.payload["info"] == "\\" * MAX_BACKSLASH_RUN + "……[truncated 191808 chars]"
    assert len(report.payload["component_stack"]) < CLIENT_ERROR_MAX_CHARS + 40
    assert chat.payload["info"] == "\\" * 200_000


def test_reports_are_logged_capped_and_at_most_so_many_a_minute(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    fresh = client_errors._ReportWindow(REPORTS_PER_WINDOW, 60)
    monkeypatch.setattr(client_errors, "_window", fresh)
    now = [1000.0]
    monkeypatch.setattr(client_errors.time, "monotonic", lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="chatmon.client"):
        for _ in range(REPORTS_PER_WINDOW + 5):
            log_frontend_exception(Exception("boom " + "z" * 100_000))
        now[0] += 61
        log_frontend_exception(Exception("later"))
    messages = [record.getMessage() for record in caplog.records]
    assert len(messages) == REPORTS_PER_WINDOW + 2
    assert all(len(m) < CLIENT_ERROR_MAX_CHARS + 100 for m in messages)
    assert messages[-2] == (
        f"5 frontend exception reports were dropped (over {REPORTS_PER_WINDOW} a minute)"
    )
    assert messages[-1] == "frontend exception reported by a browser: later"
