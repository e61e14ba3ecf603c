"""On-call: the watcher outside chatmon (heartbeat, synthetic probes) and the paging
channels, severities and routes (services/alert_routing.py)."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr, ValidationInfo, field_validator

from chatmon.settings_syntax import DEFAULT_SEVERITY, parse_routes, parse_severities


class OnCallSection(BaseModel):
    """HEARTBEAT_*, PROBE_*, ALERT_WEBHOOK_URL, PAGERDUTY_*, ALERT_SEVERITIES, ALERT_ROUTES.

    Composed after :class:`~chatmon.settings.alerts.AlertSection`: the validators here read
    ALERT_CHECK_INTERVAL_SECONDS, SMTP_HOST and SLACK_WEBHOOK_URL from ``info.data``, which
    holds only the fields validated before.
    """

    # --- the dead-man's switch and the synthetic probe ---------------------------------
    heartbeat_url: SecretStr | None = None  # pinged after each good check; a secret
    heartbeat_interval_seconds: float = Field(default=60.0, ge=1.0, validate_default=True)
    heartbeat_fail_suffix: str = "/fail"  # appended to HEARTBEAT_URL after a failed check
    probe_interval_seconds: float | None = Field(default=None, validate_default=True)  # off
    probe_failures: int = Field(default=2, ge=1, le=100)  # consecutive, before probe_failed

    # --- more channels, severities and routes ---------------------------------------------
    alert_webhook_url: SecretStr | None = None  # generic JSON webhook; a secret
    pagerduty_routing_key: SecretStr | None = None  # Events API v2 integration key
    pagerduty_events_url: str = "https://events.pagerduty.com/v2/enqueue"  # EU: events.eu
    alert_severities: str | None = None  # "latency_p95=critical,cost_daily=critical"
    alert_routes: str | None = None  # "critical=email,slack,pagerduty;warning=slack"

    @field_validator("heartbeat_url", mode="after")
    @classmethod
    def _heartbeat_is_http(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        if not value.get_secret_value().startswith(("http://", "https://")):
            raise ValueError("must start with https:// (a Healthchecks-style ping URL)")
        return SecretStr(value.get_secret_value().strip())

    @field_validator("heartbeat_interval_seconds", mode="after")
    @classmethod
    def _heartbeat_not_faster_than_checks(cls, value: float, info: ValidationInfo) -> float:
        """The ping follows a check: it cannot come more often than the checks do."""
        checks = info.data.get("alert_check_interval_seconds")
        if info.data.get("heartbeat_url") is None:
            return value  # no heartbeat: the default must not stop a slow check schedule
        if checks is not None and value < checks:
            raise ValueError(
                f"must be at least ALERT_CHECK_INTERVAL_SECONDS ({checks:g}): the heartbeat"
                " is sent after a check"
            )
        return value

    @field_validator("alert_webhook_url", mode="after")
    @classmethod
    def _alert_webhook_is_http(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        if not value.get_secret_value().startswith(("http://", "https://")):
            raise ValueError("must start with https://")
        return value

    @field_validator("pagerduty_routing_key", mode="after")
    @classmethod
    def _routing_key_shape(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        key = value.get_secret_value().strip()
        if len(key) != 32 or not key.isalnum():
            raise ValueError("must be the 32-character integration key of an Events API v2 service")
        return SecretStr(key)

    @field_validator("pagerduty_events_url", mode="after")
    @classmethod
    def _events_url_is_http(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with https://")
        return value

    @field_validator("alert_severities", mode="after")
    @classmethod
    def _severities_parse(cls, value: str | None) -> str | None:
        parse_severities(value, rules=DEFAULT_SEVERITY)
        return value or None

    @field_validator("alert_routes", mode="after")
    @classmethod
    def _routes_name_configured_channels(
        cls, value: str | None, info: ValidationInfo
    ) -> str | None:
        """A route to a channel that is not configured would page nobody: refuse it."""
        configured = {
            "email": bool(info.data.get("smtp_host")),
            "slack": info.data.get("slack_webhook_url") is not None,
            "webhook": info.data.get("alert_webhook_url") is not None,
            "pagerduty": info.data.get("pagerduty_routing_key") is not None,
        }
        for severity, channels in parse_routes(value).items():
            for name in channels:
                if not configured[name]:
                    raise ValueError(f"{severity} routes to {name}, which is not configured")
        return value or None

    @field_validator("probe_interval_seconds", mode="after")
    @classmethod
    def _probe_not_faster_than_checks(
        cls, value: float | None, info: ValidationInfo
    ) -> float | None:
        """The probe runs after a check, and costs a (tiny) real request each time."""
        if value is None:
            return None
        checks = info.data.get("alert_check_interval_seconds")
        if checks is not None and value < checks:
            raise ValueError(
                f"must be at least ALERT_CHECK_INTERVAL_SECONDS ({checks:g}): the probe runs"
                " after a check"
            )
        return value

    @field_validator("heartbeat_fail_suffix", mode="after")
    @classmethod
    def _fail_suffix_is_a_path(cls, value: str) -> str:
        if value and (not value.startswith("/") or any(c.isspace() for c in value)):
            raise ValueError("must be a path suffix starting with / (e.g. /fail), or empty")
        return value
