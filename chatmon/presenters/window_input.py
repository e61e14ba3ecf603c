"""The monitor's window: a named choice (``1h`` … ``7d``) or a custom range typed into
two ``datetime-local`` inputs, read as UTC (as everything is stored and shown)."""

from __future__ import annotations

from datetime import datetime, timedelta

from chatmon.services import stats
from chatmon.services.sql_time import to_utc

WINDOW_CHOICES: tuple[str, ...] = (*stats.WINDOWS, "custom")


def parse_utc_input(text: str) -> datetime:
    """A ``datetime-local`` input value (``2025-01-31T12:00`` or with seconds), as UTC.

    Raises:
        stats.WindowError: when the text is not such a value.
    """
    try:
        moment = datetime.fromisoformat(text.strip())
    except ValueError:
        raise stats.WindowError(f"not a date and time: {text!r}") from None
    return to_utc(moment)


def utc_input(moment: datetime) -> str:
    """A datetime as a ``datetime-local`` input value (UTC, seconds precision)."""
    return to_utc(moment).strftime("%Y-%m-%dT%H:%M:%S")


def window_bounds(
    window: str, custom_start: str, custom_end: str, *, now: datetime | None = None
) -> tuple[datetime, datetime]:
    """The ``[start, end)`` a window choice stands for right now.

    Raises:
        stats.WindowError: for an unknown choice or a bad custom range.
    """
    if window == "custom":
        return stats.check_window(parse_utc_input(custom_start), parse_utc_input(custom_end))
    return stats.last(stats.parse_window(window), now=now)


def default_custom_range(now: datetime) -> tuple[str, str]:
    """Prefill of the custom range inputs: the last 24 hours."""
    return utc_input(now - timedelta(hours=24)), utc_input(now)
