"""What changed: the first question of every incident, answered in every alert message.

Each alert check fingerprints what an operator changes on purpose: chatmon's version
(and revision), the model, the system prompt (its short hash, never its text) and the
alert configuration (a hash of thresholds, cooldown, severities, routes and which
channels are on, never their secrets). A value that differs from the last one recorded
becomes a ``change_event`` row, so a firing message can say *system prompt 3a1f→9c2e,
12 min ago*. Detected at check time: an event's time is when a check first saw it, at
most one check interval late. Two workers seeing the same change at once may both
record it; :func:`describe` folds the duplicates.
"""

from __future__ import annotations

import hashlib
import json
import logging
from datetime import datetime, timedelta

from sqlmodel import Session, col, select

from chatmon.models import ChangeEvent
from chatmon.services import build
from chatmon.services.prompts import SystemPromptSource
from chatmon.services.sql_time import to_utc
from chatmon.settings import Settings

log = logging.getLogger(__name__)

LOOKBACK = timedelta(hours=1)
LABELS = {
    "version": "version",
    "model": "model",
    "prompt": "system prompt",
    "alert_config": "alert configuration",
}
_ALERT_FIELDS = (
    "alert_error_rate_threshold",
    "alert_latency_p95_threshold",
    "alert_cost_threshold",
    "daily_cost_threshold",
    "alert_min_requests",
    "alert_window_minutes",
    "alert_cooldown_hours",
    "alert_check_interval_seconds",
    "alert_no_traffic_minutes",
    "alert_severities",
    "alert_routes",
    "probe_interval_seconds",
    "probe_failures",
)


def alert_config_hash(settings: Settings, channels: list[str]) -> str:
    """A short hash of what decides when alerts fire and where they go."""
    data = {name: getattr(settings, name, None) for name in _ALERT_FIELDS}
    data["channels"] = sorted(channels)
    return hashlib.sha256(json.dumps(data, sort_keys=True).encode()).hexdigest()[:8]


def fingerprint(
    settings: Settings, *, prompts: SystemPromptSource, channels: list[str]
) -> dict[str, str]:
    """What runs now, by kind (blocking: reads the prompt file, maybe git once)."""
    running = build.current()
    return {
        "version": f"{running.version} ({running.revision})",
        "model": settings.llm_model,
        "prompt": prompts.current().version[:8],
        "alert_config": alert_config_hash(settings, channels),
    }


def record(*, session: Session, current: dict[str, str], now: datetime) -> list[ChangeEvent]:
    """Record each value that differs from the last one of its kind; the new events.
    The caller commits."""
    events = []
    for kind, value in current.items():  # a handful of kinds: one indexed query each
        last = session.exec(
            select(ChangeEvent)
            .where(col(ChangeEvent.kind) == kind)
            .order_by(col(ChangeEvent.at).desc(), col(ChangeEvent.id).desc())
        ).first()
        if last is not None and last.new == value:
            continue
        event = ChangeEvent(
            kind=kind, old=None if last is None else last.new, new=value, at=to_utc(now)
        )
        session.add(event)
        events.append(event)
        if event.old is not None:
            log.info("change: %s %s -> %s", kind, event.old, value)
    return events


def recent(*, session: Session, now: datetime, lookback: timedelta = LOOKBACK) -> list[ChangeEvent]:
    """Real changes (not baselines) of the last ``lookback``, newest first."""
    return list(
        session.exec(
            select(ChangeEvent)
            .where(
                col(ChangeEvent.at) >= to_utc(now) - lookback,
                col(ChangeEvent.at) <= to_utc(now),
                col(ChangeEvent.old).is_not(None),
            )
            .order_by(col(ChangeEvent.at).desc())
        ).all()
    )


def between(
    *, session: Session, start: datetime, end: datetime, limit: int = 50
) -> list[ChangeEvent]:
    """Real changes of ``[start, end)``, oldest first, duplicates (two workers recording
    one change) folded; at most ``limit``, the latest ones (for the monitor's charts)."""
    rows = session.exec(
        select(ChangeEvent)
        .where(
            col(ChangeEvent.at) >= to_utc(start),
            col(ChangeEvent.at) < to_utc(end),
            col(ChangeEvent.old).is_not(None),
        )
        .order_by(col(ChangeEvent.at).desc(), col(ChangeEvent.id).desc())
        .limit(4 * limit)
    ).all()
    seen: set[tuple[str, str | None, str]] = set()
    kept: list[ChangeEvent] = []
    for event in reversed(rows):  # oldest first: the first sighting of a change wins
        key = (event.kind, event.old, event.new)
        if key not in seen:
            seen.add(key)
            kept.append(event)
    return kept[-limit:]


def label(event: ChangeEvent) -> str:
    """``system prompt 3a1f9c2e→9c2e11aa``."""
    return f"{LABELS.get(event.kind, event.kind)} {event.old}→{event.new}"


def describe(events: list[ChangeEvent], *, now: datetime) -> str:
    """``system prompt 3a1f9c2e→9c2e11aa, 12 min ago; model a→b, 40 min ago``, or
    ``nothing in the last hour``."""
    parts: list[str] = []
    seen: set[tuple[str, str | None, str]] = set()
    for event in events:
        key = (event.kind, event.old, event.new)
        if key in seen:
            continue
        seen.add(key)
        minutes = max(int((to_utc(now) - to_utc(event.at)).total_seconds() // 60), 0)
        ago = "just now" if minutes == 0 else f"{minutes} min ago"
        parts.append(f"{LABELS.get(event.kind, event.kind)} {event.old}→{event.new}, {ago}")
    return "; ".join(parts) if parts else "nothing in the last hour"
