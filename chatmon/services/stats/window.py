"""Windows: named lengths, ``[start, end)`` checks and chart bucket widths."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from chatmon.services.sql_time import to_utc

HOUR = 3600
WINDOWS: dict[str, timedelta] = {
    "1h": timedelta(hours=1),
    "6h": timedelta(hours=6),
    "24h": timedelta(hours=24),
    "7d": timedelta(days=7),
}
# Chart resolution per window length: (longest window, bucket seconds). Buckets under
# an hour are computed from the rows, so they are only used for short windows.
_BUCKETS: tuple[tuple[timedelta, int], ...] = (
    (timedelta(hours=1), 60),
    (timedelta(hours=6), 300),
    (timedelta(days=8), HOUR),
    (timedelta(days=50), 6 * HOUR),
    (timedelta(days=400), 24 * HOUR),
)


class WindowError(ValueError):
    """A window or filter a caller asked for makes no sense; the message says why."""


def parse_window(name: str) -> timedelta:
    """The length of a named window (``1h``, ``6h``, ``24h``, ``7d``)."""
    try:
        return WINDOWS[name]
    except KeyError:
        raise WindowError(f"window must be one of {', '.join(WINDOWS)} (got {name!r})") from None


def last(duration: timedelta, *, now: datetime | None = None) -> tuple[datetime, datetime]:
    """The window ``[now - duration, now)`` in aware UTC."""
    end = to_utc(now) if now else datetime.now(UTC)
    return end - duration, end


def check_window(start: datetime, end: datetime) -> tuple[datetime, datetime]:
    """``start`` and ``end`` in aware UTC; raises :class:`WindowError` if end <= start."""
    start, end = to_utc(start), to_utc(end)
    if end <= start:
        raise WindowError("the window's end must be after its start")
    return start, end


def bucket_seconds_for(duration: timedelta) -> int:
    """Chart bucket width for a window: at most a few hundred points per chart."""
    for longest, seconds in _BUCKETS:
        if duration <= longest:
            return seconds
    return 7 * 24 * HOUR


def check_bucket(width: int) -> None:
    """Raises :class:`WindowError` unless ``width`` divides an hour or is whole hours."""
    if width < 60 or (width >= HOUR and width % HOUR) or (width < HOUR and HOUR % width):
        raise WindowError("bucket_seconds must divide an hour, or be whole hours")
