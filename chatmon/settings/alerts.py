"""The alert checks (rules, windows, schedule) and their first channels: email, Slack,
and the spend digest that goes out through them."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field, SecretStr, ValidationInfo, field_validator

from chatmon.settings.values import is_address, split_addresses


class AlertSection(BaseModel):
    """ALERT_* thresholds and schedule, PUBLIC_URL, SMTP_*, SLACK_WEBHOOK_URL, DIGEST_*."""

    # --- rules and schedule -------------------------------------------------------------
    alert_error_rate_threshold: float = Field(default=10.0, ge=0.0, le=100.0)  # percent
    alert_latency_p95_threshold: float = Field(default=5.0, gt=0.0)  # seconds
    alert_cost_threshold: float = Field(default=1.0, ge=0.0)  # USD in the last hour
    alert_min_requests: int = Field(default=10, ge=1)
    # dissatisfaction rule (services/alerts/feedback_rules.py): Wilson lower bound, percent
    alert_feedback_window_hours: float = Field(default=24.0, gt=0.0, le=31 * 24)
    alert_dissatisfaction_threshold: float = Field(default=30.0, ge=0.0, le=100.0)
    # fallback_used rule (services/alerts/fallback_rules.py): percent of the window's
    # requests that went to an LLM_FALLBACK_MODELS model; 0 = any fallback fires
    alert_fallback_threshold: float = Field(default=0.0, ge=0.0, le=100.0)
    # implicit signals (services/implicit_signals.py): a conversation whose last request
    # failed and got no further message within this many minutes is "abandoned"
    implicit_abandon_minutes: float = Field(default=10.0, gt=0.0, le=24 * 60)
    alert_window_minutes: float = Field(default=15.0, gt=0.0, le=7 * 24 * 60)
    alert_cooldown_hours: float = Field(default=1.0, gt=0.0)
    alert_check_interval_seconds: float = Field(default=60.0, ge=1.0)
    alert_no_traffic_minutes: float | None = Field(default=None, gt=0.0)  # unset: rule off
    public_url: str | None = None  # links in alerts; default http://localhost:PORT

    # --- email and Slack (each validator below reads only fields declared above it) -----
    smtp_host: str | None = None  # unset: no email channel
    smtp_port: int | None = Field(default=None, ge=1, le=65535)  # default 587, 465 with SSL
    smtp_user: str | None = None
    smtp_password: SecretStr | None = Field(default=None, validate_default=True)
    smtp_starttls: bool = True
    smtp_ssl: bool = False  # implicit TLS (usually port 465); STARTTLS is then not used
    alert_email_from: str | None = Field(default=None, validate_default=True)
    alert_email_to: str | None = Field(default=None, validate_default=True)  # comma-separated
    slack_webhook_url: SecretStr | None = None  # unset: no Slack channel
    # The spend digest (services/digest_send.py): by email and Slack, at DIGEST_HOUR of
    # BUDGET_TIMEZONE, each day or each Monday. After the channels, so it can check them.
    digest_schedule: Literal["daily", "weekly", "off"] = Field(default="off", validate_default=True)
    digest_hour: int = Field(default=8, ge=0, le=23)

    @field_validator("public_url", mode="after")
    @classmethod
    def _public_url_is_http(cls, value: str | None) -> str | None:
        if not value:
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("smtp_password", mode="after")
    @classmethod
    def _password_needs_user(
        cls, value: SecretStr | None, info: ValidationInfo
    ) -> SecretStr | None:
        if value is not None and not value.get_secret_value():
            value = None
        if value is None and info.data.get("smtp_user"):
            raise ValueError("is required when SMTP_USER is set")
        if value is not None and not info.data.get("smtp_user"):
            raise ValueError("is set but SMTP_USER is not")
        return value

    @field_validator("alert_email_from", mode="after")
    @classmethod
    def _sender_when_email_on(cls, value: str | None, info: ValidationInfo) -> str | None:
        user = info.data.get("smtp_user") or ""
        value = value or (user if "@" in user else None)
        if value is None and info.data.get("smtp_host"):
            raise ValueError(
                "is required when SMTP_HOST is set (an address, e.g. chatmon@example.com)"
            )
        if value is not None and not is_address(value):
            raise ValueError("must be an email address")
        return value

    @field_validator("alert_email_to", mode="after")
    @classmethod
    def _recipients_when_email_on(cls, value: str | None, info: ValidationInfo) -> str | None:
        addresses = split_addresses(value)
        if not addresses and info.data.get("smtp_host"):
            raise ValueError("is required when SMTP_HOST is set (comma-separated addresses)")
        if any(not is_address(address) for address in addresses):
            raise ValueError("must be comma-separated email addresses")
        return ", ".join(addresses) or None

    @field_validator("slack_webhook_url", mode="after")
    @classmethod
    def _webhook_is_http(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        if not value.get_secret_value().startswith(("http://", "https://")):
            raise ValueError("must start with https:// (a Slack incoming-webhook URL)")
        return value

    @field_validator("digest_schedule", mode="after")
    @classmethod
    def _digest_needs_a_channel(cls, value: str, info: ValidationInfo) -> str:
        if value != "off" and not (
            info.data.get("smtp_host") or info.data.get("slack_webhook_url")
        ):
            raise ValueError(
                f"is {value}, yet neither SMTP_HOST nor SLACK_WEBHOOK_URL is set: "
                "the digest has nowhere to go"
            )
        return value

    @property
    def email_recipients(self) -> list[str]:
        """ALERT_EMAIL_TO as a list (empty when email alerts are off)."""
        return split_addresses(self.alert_email_to)

    @property
    def smtp_port_or_default(self) -> int:
        """SMTP_PORT, or the usual port for the chosen TLS mode (465 implicit, 587 STARTTLS)."""
        return self.smtp_port or (465 if self.smtp_ssl else 587)
