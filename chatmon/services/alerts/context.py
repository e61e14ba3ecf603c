"""What a message says beyond its finding: the rule's severity, what changed in the hour
before a firing, and for a resolution, how long the episode lasted and who it touched.
Kept apart from the engine so the engine stays about claiming and delivering."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta

from sqlmodel import Session

from chatmon.services.alert_routing import Routing
from chatmon.services.alerts import changes, episode
from chatmon.services.alerts.messages import AlertMessage


def annotate(
    message: AlertMessage,
    *,
    session: Session,
    routing: Routing,
    now: datetime,
    firing_since: datetime | None,
    window_minutes: float,
) -> AlertMessage:
    """``message`` with its severity, and ``changed`` (firing, repeat) or ``lasted`` and
    ``affected`` (resolved: counted from one alert window before the first firing)."""
    message = dataclasses.replace(message, severity=routing.severity(message.rule))
    if message.kind != "resolved":
        recent = changes.recent(session=session, now=now)
        return dataclasses.replace(message, changed=changes.describe(recent, now=now))
    if firing_since is None:
        return message
    summary = episode.summarize(
        session=session,
        start=firing_since - timedelta(minutes=window_minutes),
        end=now,
        firing_since=firing_since,
    )
    return dataclasses.replace(message, lasted=summary.lasted(), affected=summary.affected())
