"""When this process last evaluated the alert rules: the hook between alerting and /health.

The alert loop calls :func:`record_alert_check` after each evaluation (successful or
not, with ``ok=``); ``/health`` reads :func:`last_alert_check` and reports the alert
checker as stale when no check happened for three check intervals, i.e. when the
thing that should wake someone up has itself stopped. Per process: every worker runs
its own loop, and each answers /health about its own.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import UTC, datetime


@dataclass(frozen=True)
class AlertCheck:
    """The latest evaluation of the alert rules."""

    at: datetime  # UTC
    ok: bool  # False: the evaluation itself failed (e.g. the database was down)


_lock = threading.Lock()
_last: AlertCheck | None = None


def record_alert_check(*, ok: bool = True, at: datetime | None = None) -> None:
    """Note that the alert rules were just evaluated (call from the alert loop)."""
    global _last
    with _lock:
        _last = AlertCheck(at=at or datetime.now(UTC), ok=ok)


def last_alert_check() -> AlertCheck | None:
    """The latest evaluation in this process, or None before the first one."""
    return _last


def reset() -> None:
    """Forget the last check (tests)."""
    global _last
    with _lock:
        _last = None
