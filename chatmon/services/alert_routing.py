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

Parsing lives here, pure, so ``Settings`` can refuse a bad value at startup naming the
variable, and the engine can route without knowing the syntax.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

CRITICAL = "critical"
WARNING = "warning"
SEVERITIES = (CRITICAL, WARNING)
CHANNEL_NAMES = ("email", "slack", "webhook", "pagerduty")

# Why each default: critical when users are failing now or about to (errors, breaker,
# nobody can reach the chat); warning when it costs money or comfort, not service.
# Every rule must be listed (a unit test checks it): ALERT_SEVERITIES accepts these names.
# This module imports nothing of chatmon, so Settings can validate with it at startup.
DEFAULT_SEVERITY: dict[str, str] = {
    "error_rate": CRITICAL,
    "breaker_open": CRITICAL,
    "no_traffic": CRITICAL,
    "probe_failed": CRITICAL,
    "latency_p95": WARNING,
    "cost_hourly": WARNING,
    "cost_daily": WARNING,
    "budget_daily": WARNING,
    "budget_monthly": WARNING,
    "budget_forecast": WARNING,
    "dissatisfaction": WARNING,
    "fallback_used": WARNING,  # users are served, by another model: the primary needs a look
}


def _pairs(text: str, separator: str) -> list[tuple[str, str]]:
    pairs = []
    for part in text.split(separator):
        if not part.strip():
            continue
        key, equals, value = part.partition("=")
        if not equals or not key.strip():
            raise ValueError(f"{part.strip()!r} is not name=value")
        pairs.append((key.strip().lower(), value.strip().lower()))
    return pairs


def parse_severities(text: str | None, *, rules: Iterable[str]) -> dict[str, str]:
    """``rule=severity,...`` into a dict. Raises ValueError naming what is wrong."""
    known = set(rules)
    result: dict[str, str] = {}
    for rule, severity in _pairs(text or "", ","):
        if rule not in known:
            raise ValueError(f"unknown rule {rule!r} (rules: {', '.join(sorted(known))})")
        if severity not in SEVERITIES:
            raise ValueError(f"{rule}: severity must be critical or warning, not {severity!r}")
        result[rule] = severity
    return result


def parse_routes(text: str | None) -> dict[str, tuple[str, ...]]:
    """``severity=channel,channel;severity=...`` into a dict. Raises ValueError."""
    result: dict[str, tuple[str, ...]] = {}
    for severity, channels in _pairs(text or "", ";"):
        if severity not in SEVERITIES:
            raise ValueError(f"severity must be critical or warning, not {severity!r}")
        names = tuple(name.strip() for name in channels.split(",") if name.strip())
        for name in names:
            if name not in CHANNEL_NAMES:
                raise ValueError(
                    f"{severity}: unknown channel {name!r} (channels: {', '.join(CHANNEL_NAMES)})"
                )
        result[severity] = names
    return result


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
