"""The syntax of the settings that have one of their own: alert severities and routes,
hashed user lists. Pure, and below ``settings.py`` (it imports nothing of chatmon), so
``Settings`` can refuse a bad value at startup naming the variable, and the services that
use the values (``services/alert_routing.py``, ``services/auth.py``) share one parser.
"""

from __future__ import annotations

from collections.abc import Iterable

CRITICAL = "critical"
WARNING = "warning"
SEVERITIES = (CRITICAL, WARNING)
CHANNEL_NAMES = ("email", "slack", "webhook", "pagerduty")

# Why each default: critical when users are failing now or about to (errors, breaker,
# nobody can reach the chat); warning when it costs money or comfort, not service.
# Every rule must be listed (a unit test checks it): ALERT_SEVERITIES accepts these names.
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


def parse_users(spec: str) -> dict[str, str]:
    """``"alice:pbkdf2_sha256$...,bob:..."`` -> ``{"alice": "pbkdf2_sha256$..."}``.

    Raises:
        ValueError: for an entry without a user name or without a PBKDF2 hash.
    """
    users: dict[str, str] = {}
    for entry in filter(None, (part.strip() for part in spec.split(","))):
        name, _, encoded = entry.partition(":")
        if not name or not encoded.startswith("pbkdf2_sha256$") or encoded.count("$") != 3:
            raise ValueError("entries must be user:pbkdf2_sha256$iterations$salt$hash")
        users[name.strip()] = encoded
    return users
