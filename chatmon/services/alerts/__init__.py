"""Alerts: rules (pure), their state in the database, and the channels (email, Slack,
a JSON webhook, PagerDuty), routed by severity (``routing``).

``rules`` judges figures, ``lifecycle`` decides when a finding becomes a message,
``store`` claims each transition exactly once and each delivery for one lease holder at
a time across workers and instances (delivery itself is at least once, with a stable
dedupe key), ``messages`` renders, ``channels`` sends within a hard deadline, ``engine``
runs one check.
:func:`build_engine` wires them from the settings for the app and the CLI.
"""

from __future__ import annotations

from chatmon.db import get_engine
from chatmon.services import breaker
from chatmon.services.alerts.channels import configured_channels
from chatmon.services.alerts.channels_http import http_channels
from chatmon.services.alerts.engine import AlertEngine, CheckReport, DeliveryOutcome, RuleOutcome
from chatmon.settings import Settings

__all__ = ["AlertEngine", "CheckReport", "DeliveryOutcome", "RuleOutcome", "build_engine"]


def build_engine(settings: Settings, *, with_breakers: bool = True) -> AlertEngine:
    """The alert engine of this process: its database, its channels, its breakers."""
    return AlertEngine(
        db_engine=get_engine(),
        settings=settings,
        channels=[*configured_channels(settings), *http_channels(settings)],
        breaker_snapshot=breaker.snapshot if with_breakers else dict,
    )
