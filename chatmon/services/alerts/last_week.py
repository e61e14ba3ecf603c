"""The backtest of the last 7 days with the current thresholds, cached per process.

The Alerts panel shows what each rule would have fired over the last week. A week's
replay costs ~3 s at 1M requests (tens of seconds at 10M), so it runs in a thread of
its own, at most once per ``BACKTEST_TTL_SECONDS`` (and again when the thresholds
change), and a reader waits only a little for it.
"""

from __future__ import annotations

import logging
import threading
import time
from concurrent.futures import Future, ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlmodel import Session

from chatmon.services.alerts import backtest
from chatmon.services.alerts.engine import AlertEngine

log = logging.getLogger(__name__)

BACKTEST_SPAN = timedelta(days=7)
BACKTEST_TTL_SECONDS = 600.0  # a week's replay costs ~3 s at 1M requests: once per 10 min
BACKTEST_WAIT_SECONDS = 2.0  # a panel read waits this long for a replay


@dataclass
class _Replayed:
    """This process's latest replay of the last week, and what it was replayed with."""

    key: str = ""
    at: float = float("-inf")  # time.monotonic()
    result: backtest.Backtest | None = None
    running: Future[backtest.Backtest] | None = None
    running_key: str = ""


_last_week = _Replayed()
_last_week_lock = threading.Lock()
# One replay at a time per process, off the panel's read: at 10M requests a week's
# replay takes tens of seconds, and the panel must not wait for it.
_replayer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="alerts-backtest")


def forget_last_week() -> None:
    """Drop the cached replay: the next read replays again."""
    with _last_week_lock:
        _last_week.result = None
        _last_week.key = ""


def _replay(engine: AlertEngine, now: datetime, key: str) -> backtest.Backtest:
    with Session(engine.database) as session:
        result = backtest.replay(
            session=session,
            limits=engine.limits,
            start=now - BACKTEST_SPAN,
            end=now,
            cooldown=engine.cooldown,
            breaker_lookback=engine.breaker_lookback,
        )
    with _last_week_lock:
        _last_week.key, _last_week.at, _last_week.result = key, time.monotonic(), result
    return result


def last_week(
    *, engine: AlertEngine, now: datetime, wait: float = BACKTEST_WAIT_SECONDS
) -> backtest.Backtest | None:
    """The backtest of the last 7 days with ``engine``'s thresholds, replayed in a thread
    of its own at most once per ``BACKTEST_TTL_SECONDS`` per process (and again when the
    thresholds change). Waits up to ``wait`` seconds for a replay under way; None while
    there is none yet for these thresholds."""
    key = repr((engine.database.url, engine.limits, engine.cooldown, engine.breaker_lookback))
    with _last_week_lock:
        current = _last_week.result if _last_week.key == key else None
        if current is not None and time.monotonic() - _last_week.at < BACKTEST_TTL_SECONDS:
            return current
        running = _last_week.running
        if running is None or running.done() or _last_week.running_key != key:
            running = _replayer.submit(_replay, engine, now, key)
            _last_week.running, _last_week.running_key = running, key
    try:
        return running.result(timeout=wait)
    except FutureTimeout:
        return current  # the previous replay until the new one is done
    except Exception:
        log.exception("alerts: the backtest of the last week failed")
        return current
