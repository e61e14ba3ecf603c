"""Severities and routes: which channels hear about which rule.

Every rule has a severity, ``critical`` (someone must act now: pages) or ``warning``
(someone should look today: chat), from :data:`DEFAULT_SEVERITY`, overridden per rule by
``ALERT_SEVERITIES`` (``latency_p95=critical,cost_daily=critical``). ``ALERT_ROUTES`` maps
severities to channels (``critical=email,slack,pagerduty;warning=slack``), the same split
as ``deploy/alertmanager.yml``. A severity the routes do not name goes to every
configured channel (so setting nothing keeps today's behaviour); ``warning=`` with no
channel records its messages and sends them nowhere.

A rule's resolved message goes where its firing went (same rule, same severity). The
channel test (``alerts test``) ignores routes: it exists to try every channel.

The syntax and the rule names (``DEFAULT_SEVERITY``) live in ``chatmon.settings_syntax``,
below ``Settings``, which refuses a bad value at startup naming the variable; they are
re-exported here, so the engine routes without knowing the syntax.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from chatmon.settings_syntax import (
    CHANNEL_NAMES,
    CRITICAL,
    DEFAULT_SEVERITY,
    SEVERITIES,
    WARNING,
    parse_routes,
    parse_severities,
)

__all__ = [
    "CHANNEL_NAMES",
    "CRITICAL",
    "DEFAULT_SEVERITY",
    "SEVERITIES",
    "WARNING",
    "Routing",
    "parse_routes",
    "parse_severities",
]


@dataclass(frozen=True)
class Routing:
    """Severities of rules, and the channels of each severity."""

    severities: Mapping[str, str] = field(default_factory=dict)  # overrides
    routes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def from_settings(cls, settings: object, *, rules: Iterable[str]) -> Routing:
        """From ``ALERT_SEVERITIES`` and ``ALERT_ROUTES`` (already validated)."""
        return cls(
            severities=parse_severities(getattr(settings, "alert_severities", None), rules=rules),
            routes=parse_routes(getattr(settings, "alert_routes", None)),
        )

    def severity(self, rule: str) -> str:
        return self.severities.get(rule) or DEFAULT_SEVERITY.get(rule, WARNING)

    def channels_for(self, rule: str, available: Iterable[str]) -> list[str]:
        """The configured channels that hear about ``rule``, in configuration order."""
        names = list(available)
        route = self.routes.get(self.severity(rule))
        if route is None:
            return names
        return [name for name in names if name in route]
