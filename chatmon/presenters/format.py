"""Numbers, durations, money and times as the monitor shows them (UTC, as stored)."""

from __future__ import annotations

from datetime import datetime

from chatmon.services import implicit_signals
from chatmon.services.sql_time import to_utc

SIGNAL_LABELS = {
    implicit_signals.STOPPED: "stopped",
    implicit_signals.REPHRASED: "rephrased",
    implicit_signals.REGENERATED: "regenerated",
    implicit_signals.ABANDONED: "abandoned after an error",
}


def seconds(value: float | None) -> str:
    """``1.23 s`` / ``850 ms``; an en dash when there is no value."""
    if value is None:
        return "–"
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def usd(value: float | None) -> str:
    """Dollars with enough digits to show cheap requests."""
    if value is None:
        return "–"
    if value == 0:
        return "$0.00"
    if value < 0.01:
        return f"${value:.6f}"
    return f"${value:,.2f}" if value >= 100 else f"${value:.4f}"


def count(value: int | None) -> str:
    """Thousands separators; en dash for NULL."""
    return "–" if value is None else f"{value:,}"


def utc(moment: datetime) -> str:
    """``2025-01-31 12:00:05`` (UTC)."""
    return to_utc(moment).strftime("%Y-%m-%d %H:%M:%S")


def axis_label(moment: datetime, bucket_seconds: int) -> str:
    """A chart bucket's label on the time axis: as coarse as the bucket."""
    moment = to_utc(moment)
    if bucket_seconds >= 24 * 3600:
        return moment.strftime("%m-%d")
    if bucket_seconds >= 3600:
        return moment.strftime("%m-%d %H:00")
    return moment.strftime("%H:%M")
