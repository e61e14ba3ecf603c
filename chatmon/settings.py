"""One typed configuration object, read once from the environment (and `.env`).

Every knob chatmon has lives here; nothing else reads ``os.environ``. A bad value
raises :class:`SettingsError` whose message names the variable, so startup stops
with something a person can act on instead of a traceback.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    AliasChoices,
    Field,
    PrivateAttr,
    SecretStr,
    ValidationError,
    ValidationInfo,
    field_validator,
    model_validator,
)
from pydantic_core import ErrorDetails
from pydantic_settings import BaseSettings, SettingsConfigDict

from chatmon.settings_syntax import DEFAULT_SEVERITY, parse_routes, parse_severities, parse_users

DEMO_MODEL = "demo"
PROJECT_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(RuntimeError):
    """A configuration value is missing or invalid; the message names the variable."""


class Settings(BaseSettings):
    """chatmon's configuration. Field names map to upper-case environment variables."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        env_ignore_empty=True,  # `LLM_PRICE_INPUT_PER_1M=` in .env means "not set"
    )

    # --- LLM provider -----------------------------------------------------------------
    llm_model: str = Field(default=DEMO_MODEL, min_length=1)
    # The Streamlit version's names, read as LLM_MODEL=<LLM_PROVIDER>/<BASE_MODEL_ID> when
    # LLM_MODEL is not set (its .env works unchanged; startup logs the new name).
    llm_provider: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,40}$")
    base_model_id: str | None = Field(default=None, min_length=1, max_length=200)
    _model_from_seed_names: bool = PrivateAttr(default=False)
    llm_api_base: str | None = Field(
        default=None, validation_alias=AliasChoices("LLM_API_BASE", "GOOGLE_GEMINI_BASE_URL")
    )
    llm_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("LLM_API_KEY", "GEMINI_API_KEY")
    )
    llm_temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    llm_price_input_per_1m: float | None = Field(default=None, ge=0.0)
    llm_price_output_per_1m: float | None = Field(default=None, ge=0.0, validate_default=True)
    request_timeout: float = Field(default=30.0, gt=0.0)
    llm_max_retries: int = Field(default=3, ge=0, le=10)
    llm_max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)  # unset: no cap
    # Models that answer when LLM_MODEL fails (chatmon.services.turn), tried in order;
    # fallback N's provider settings are LLM_FALLBACK_<N>_API_BASE / _API_KEY (unset: the
    # provider's default URL and LiteLLM's own key variable, e.g. OPENAI_API_KEY).
    llm_fallback_models: str | None = None
    llm_fallback_1_api_base: str | None = None
    llm_fallback_1_api_key: SecretStr | None = None
    llm_fallback_2_api_base: str | None = None
    llm_fallback_2_api_key: SecretStr | None = None
    llm_fallback_3_api_base: str | None = None
    llm_fallback_3_api_key: SecretStr | None = None

    # --- resilience -------------------------------------------------------------------
    stream_idle_timeout: float = Field(default=20.0, gt=0.0)
    breaker_failure_threshold: int = Field(default=5, ge=1, le=1000)
    breaker_reset_seconds: float = Field(default=30.0, gt=0.0)
    rate_limit_per_minute: int = Field(default=20, ge=0)  # 0 = no per-session limit
    rate_limit_per_ip_per_minute: int = Field(default=120, ge=0)  # 0 = no per-address limit
    global_rate_limit_per_minute: int = Field(default=600, ge=0)  # 0 = no global limit

    # --- chat behaviour ---------------------------------------------------------------
    system_prompt_file: Path = Path("prompts/system_prompt.txt")
    max_history_messages: int = Field(default=20, ge=1, le=1000)
    max_message_chars: int = Field(default=16000, ge=1, le=1_000_000)
    # A streamed reply reaches the page at most once per STREAM_FLUSH_MS (the first
    # token at once); 0 sends every chunk as it arrives.
    stream_flush_ms: int = Field(default=50, ge=0, le=2000)

    # --- storage and serving ----------------------------------------------------------
    database_url: str = "sqlite:///chatmon.db"
    port: int = Field(default=3000, ge=1, le=65535)
    metrics_retention_days: int = Field(default=90, ge=1, le=3650)

    # --- observability (logs, /metrics, PII redaction, Langfuse) ------------------------
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    log_file: Path = Path("logs/chatmon.log")
    metrics_token: SecretStr | None = None
    enable_pii_redaction: bool = True
    langfuse_public_key: str | None = None
    langfuse_secret_key: SecretStr | None = None
    # LANGFUSE_BASE_URL is the Langfuse SDK's current name for the same thing.
    langfuse_host: str | None = Field(
        default=None, validation_alias=AliasChoices("LANGFUSE_HOST", "LANGFUSE_BASE_URL")
    )
    langfuse_timeout: int = Field(default=3, ge=1, le=60)
    enable_langfuse: bool = True

    # --- OpenTelemetry out (observability/otel_export.py): the standard OTEL_* names ----
    otel_exporter_otlp_endpoint: str | None = None  # base URL: traces go to <it>/v1/traces
    otel_exporter_otlp_traces_endpoint: str | None = None  # full URL, wins over the base
    otel_exporter_otlp_headers: SecretStr | None = None  # "k=v,k2=v2" (auth: a secret)
    otel_exporter_otlp_traces_headers: SecretStr | None = None  # wins over the general one
    otel_exporter_otlp_protocol: str | None = None  # only http/protobuf
    otel_exporter_otlp_traces_protocol: str | None = None
    otel_exporter_otlp_timeout: float = Field(default=10_000, gt=0)  # ms, as the spec says
    otel_exporter_otlp_compression: Literal["gzip", "none"] | None = None
    otel_service_name: str = Field(default="chatmon", min_length=1, max_length=200)
    otel_resource_attributes: str | None = None  # "deployment.environment.name=prod,..."
    otel_sdk_disabled: bool = False
    # The reply and the message as gen_ai.*.messages (redacted and masked like Langfuse's).
    otel_instrumentation_genai_capture_message_content: bool = True

    # --- error tracking (observability/error_tracking.py): Sentry or GlitchTip ----------
    sentry_dsn: SecretStr | None = None  # https://<key>@<host>/<project id>
    sentry_environment: str = Field(default="production", pattern=r"^[^\s/]{1,64}$")
    sentry_traces_sample_rate: float = Field(default=0.0, ge=0.0, le=1.0)

    # --- alerts (rules, schedule, email and Slack channels) -----------------------------
    alert_error_rate_threshold: float = Field(default=10.0, ge=0.0, le=100.0)  # percent
    alert_latency_p95_threshold: float = Field(default=5.0, gt=0.0)  # seconds
    alert_cost_threshold: float = Field(default=1.0, ge=0.0)  # USD in the last hour
    daily_cost_threshold: float = Field(default=50.0, ge=0.0)  # alias of DAILY_BUDGET_USD

    # --- budgets (chatmon.services.budget) ------------------------------------------------
    # Unset: DAILY_COST_THRESHOLD is the daily budget (its old name); set, it wins.
    daily_budget_usd: float | None = Field(default=None, ge=0.0)
    monthly_budget_usd: float | None = Field(default=None, ge=0.0)  # unset: no monthly budget
    budget_timezone: str = "UTC"  # where days and months start
    budget_warn_percent: str = "50,80,100"  # each level alerts once per period
    budget_action: Literal["warn", "fallback", "refuse"] = "warn"
    budget_fallback_model: str | None = Field(default=None, validate_default=True)
    budget_forecast_horizon_minutes: float = Field(default=120.0, gt=0.0, le=31 * 24 * 60)
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

    # --- access -------------------------------------------------------------------------
    monitor_password: SecretStr | None = None  # gates /monitor and /api/* (any user name)
    monitor_users: str | None = None  # "alice:pbkdf2_sha256$...,bob:..." (hash-password)
    chat_password: SecretStr | None = None  # optionally gates the chat page too
    session_secret: SecretStr | None = None  # signs login sessions; default: kept in the DB
    cors_allowed_origins: str | None = None  # comma-separated; default: PUBLIC_URL's origin
    trusted_proxy_hops: int = Field(default=0, ge=0, le=10)  # reverse proxies in front
    # off: /monitor, /api/* and /metrics open to all (closed networks only). After the
    # passwords, so its validator sees them.
    monitor_auth: bool = Field(default=True, validate_default=True)
    # off: the review queue lists rated replies, but nobody can open the conversation
    # behind one (deployments that must not let operators read users' text).
    feedback_review: bool = True

    # --- on-call: the watcher outside chatmon (dead-man's switch) --------------------
    heartbeat_url: SecretStr | None = None  # pinged after each good check; a secret
    heartbeat_interval_seconds: float = Field(default=60.0, ge=1.0, validate_default=True)
    heartbeat_fail_suffix: str = "/fail"  # appended to HEARTBEAT_URL after a failed check
    probe_interval_seconds: float | None = Field(default=None, validate_default=True)  # off
    probe_failures: int = Field(default=2, ge=1, le=100)  # consecutive, before probe_failed

    # --- on-call: more channels, severities and routes (services/alert_routing.py) ----
    alert_webhook_url: SecretStr | None = None  # generic JSON webhook; a secret
    pagerduty_routing_key: SecretStr | None = None  # Events API v2 integration key
    pagerduty_events_url: str = "https://events.pagerduty.com/v2/enqueue"  # EU: events.eu
    alert_severities: str | None = None  # "latency_p95=critical,cost_daily=critical"
    alert_routes: str | None = None  # "critical=email,slack,pagerduty;warning=slack"

    @field_validator("monitor_auth", mode="after")
    @classmethod
    def _auth_off_means_no_passwords(cls, value: bool, info: ValidationInfo) -> bool:
        if not value and (info.data.get("monitor_password") or info.data.get("monitor_users")):
            raise ValueError(
                "is off, yet MONITOR_PASSWORD or MONITOR_USERS is set: remove one of them "
                "(off opens the monitor to everyone)"
            )
        return value

    @field_validator("budget_timezone", mode="after")
    @classmethod
    def _timezone_exists(cls, value: str) -> str:
        import zoneinfo

        try:
            zoneinfo.ZoneInfo(value)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"unknown time zone {value!r} (e.g. UTC, Europe/Paris)") from None
        return value

    @field_validator("budget_warn_percent", mode="after")
    @classmethod
    def _warn_levels_are_percents(cls, value: str) -> str:
        _parse_percents(value)
        return value

    @field_validator("budget_fallback_model", mode="after")
    @classmethod
    def _fallback_needs_model(cls, value: str | None, info: ValidationInfo) -> str | None:
        value = (value or "").strip() or None
        if info.data.get("budget_action") == "fallback" and value is None:
            raise ValueError("is required when BUDGET_ACTION=fallback (e.g. a cheaper model)")
        return value

    @property
    def daily_budget(self) -> float:
        """The daily budget in USD: DAILY_BUDGET_USD, else DAILY_COST_THRESHOLD."""
        return (
            self.daily_budget_usd
            if self.daily_budget_usd is not None
            else (self.daily_cost_threshold)
        )

    @property
    def budget_warn_levels(self) -> list[float]:
        """BUDGET_WARN_PERCENT as sorted, distinct percents."""
        return _parse_percents(self.budget_warn_percent)

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
        if value is not None and not _is_address(value):
            raise ValueError("must be an email address")
        return value

    @field_validator("alert_email_to", mode="after")
    @classmethod
    def _recipients_when_email_on(cls, value: str | None, info: ValidationInfo) -> str | None:
        addresses = _split_addresses(value)
        if not addresses and info.data.get("smtp_host"):
            raise ValueError("is required when SMTP_HOST is set (comma-separated addresses)")
        if any(not _is_address(address) for address in addresses):
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

    @property
    def email_recipients(self) -> list[str]:
        """ALERT_EMAIL_TO as a list (empty when email alerts are off)."""
        return _split_addresses(self.alert_email_to)

    @property
    def smtp_port_or_default(self) -> int:
        """SMTP_PORT, or the usual port for the chosen TLS mode (465 implicit, 587 STARTTLS)."""
        return self.smtp_port or (465 if self.smtp_ssl else 587)

    @property
    def monitor_url(self) -> str:
        """The monitor page's address, as linked from alert messages."""
        return (self.public_url or f"http://localhost:{self.port}") + "/monitor"

    @field_validator("log_level", mode="before")
    @classmethod
    def _log_level_upper(cls, value: object) -> object:
        return value.upper() if isinstance(value, str) else value

    @field_validator("metrics_token", "langfuse_secret_key", mode="after")
    @classmethod
    def _empty_secret_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        return value

    @field_validator("langfuse_host", mode="after")
    @classmethod
    def _langfuse_host_is_http(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("otel_exporter_otlp_endpoint", "otel_exporter_otlp_traces_endpoint")
    @classmethod
    def _otlp_endpoint_is_http(cls, value: str | None) -> str | None:
        value = (value or "").strip()
        if not value:
            return None
        if not _is_http_url(value):
            raise ValueError(
                "must be an http:// or https:// URL of an OTLP/HTTP receiver"
                " (e.g. http://localhost:4318)"
            )
        return value

    @field_validator("otel_exporter_otlp_headers", "otel_exporter_otlp_traces_headers")
    @classmethod
    def _otlp_headers_are_pairs(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        parse_key_values(value.get_secret_value(), what="header")
        return value

    @field_validator("otel_exporter_otlp_protocol", "otel_exporter_otlp_traces_protocol")
    @classmethod
    def _otlp_protocol_is_http_protobuf(cls, value: str | None) -> str | None:
        value = (value or "").strip() or None
        if value is not None and value != "http/protobuf":
            raise ValueError(
                f"is {value!r}, but chatmon exports over http/protobuf only (OTLP/HTTP,"
                " port 4318 usually): set http/protobuf or leave it unset"
            )
        return value

    @field_validator("otel_exporter_otlp_timeout")
    @classmethod
    def _otlp_timeout_is_milliseconds(cls, value: float) -> float:
        # The OTel Python SDK reads this variable in seconds, the specification (and every
        # other SDK) in milliseconds: a value that only makes sense as seconds is refused.
        if not 100 <= value <= 600_000:
            raise ValueError(
                f"is {value:g}, but it is in milliseconds (the OpenTelemetry spec's unit):"
                " between 100 and 600000, e.g. 10000 for 10 s"
            )
        return value

    @field_validator("otel_resource_attributes")
    @classmethod
    def _resource_attributes_are_pairs(cls, value: str | None) -> str | None:
        if not (value or "").strip():
            return None
        parse_key_values(value or "", what="attribute")
        return value

    @field_validator("sentry_dsn")
    @classmethod
    def _dsn_is_a_dsn(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        dsn = value.get_secret_value().strip()
        if not _is_sentry_dsn(dsn):
            raise ValueError(
                "must be a Sentry/GlitchTip DSN such as https://<key>@sentry.example.com/<project>"
            )
        return SecretStr(dsn)

    @property
    def otel_traces_endpoint(self) -> str | None:
        """Where spans go: OTEL_EXPORTER_OTLP_TRACES_ENDPOINT as is, else the base
        OTEL_EXPORTER_OTLP_ENDPOINT plus ``/v1/traces`` (the OTLP/HTTP rule); None: off."""
        if self.otel_sdk_disabled:
            return None
        if self.otel_exporter_otlp_traces_endpoint:
            return self.otel_exporter_otlp_traces_endpoint
        if self.otel_exporter_otlp_endpoint:
            return self.otel_exporter_otlp_endpoint.rstrip("/") + "/v1/traces"
        return None

    @property
    def otel_headers(self) -> dict[str, str]:
        """The export's headers: the traces-specific variable, else the general one."""
        value = self.otel_exporter_otlp_traces_headers or self.otel_exporter_otlp_headers
        return parse_key_values(value.get_secret_value(), what="header") if value else {}

    @property
    def otel_resource(self) -> dict[str, str]:
        """OTEL_RESOURCE_ATTRIBUTES as a dict (OTEL_SERVICE_NAME names the service)."""
        return parse_key_values(self.otel_resource_attributes or "", what="attribute")

    @property
    def langfuse_enabled(self) -> bool:
        """Tracing is on when both Langfuse keys are set, unless ENABLE_LANGFUSE=false."""
        return bool(self.enable_langfuse and self.langfuse_public_key and self.langfuse_secret_key)

    @property
    def log_path(self) -> Path:
        """The log file, relative paths taken from the project root."""
        path = self.log_file
        return path if path.is_absolute() else PROJECT_ROOT / path

    @field_validator(
        "llm_api_base",
        "llm_fallback_1_api_base",
        "llm_fallback_2_api_base",
        "llm_fallback_3_api_base",
        mode="after",
    )
    @classmethod
    def _base_url_is_http(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("llm_fallback_models", mode="after")
    @classmethod
    def _fallback_models_parse(cls, value: str | None) -> str | None:
        models = _parse_fallback_models(value)
        return ",".join(models) or None

    @field_validator(
        "llm_api_key",
        "llm_fallback_1_api_key",
        "llm_fallback_2_api_key",
        "llm_fallback_3_api_key",
        mode="after",
    )
    @classmethod
    def _empty_key_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        return value

    @field_validator("database_url", mode="after")
    @classmethod
    def _database_url_has_scheme(cls, value: str) -> str:
        if "://" not in value:
            raise ValueError("must be an SQLAlchemy URL such as sqlite:///chatmon.db")
        return value

    @property
    def is_demo(self) -> bool:
        """True when no real provider is configured and the offline demo model answers."""
        return self.llm_model == DEMO_MODEL

    @field_validator("monitor_password", "chat_password", "session_secret", mode="after")
    @classmethod
    def _blank_access_secret_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        return value

    @field_validator(
        "monitor_password", "chat_password", "session_secret", "metrics_token", mode="after"
    )
    @classmethod
    def _no_placeholder_secret(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and is_placeholder_secret(value.get_secret_value()):
            raise ValueError(
                "is a well-known placeholder, which anyone can guess: set a random value "
                "(e.g. the output of: openssl rand -base64 24)"
            )
        return value

    @field_validator("monitor_users", mode="after")
    @classmethod
    def _users_are_hashed(cls, value: str | None) -> str | None:
        if not value or not value.strip():
            return None
        parse_users(value)  # ValueError names the expected shape, never the hashes
        return value

    @field_validator("session_secret", mode="after")
    @classmethod
    def _session_secret_is_long(cls, value: SecretStr | None) -> SecretStr | None:
        if value is not None and len(value.get_secret_value()) < 16:
            raise ValueError("must be at least 16 characters")
        return value

    @field_validator("cors_allowed_origins", mode="after")
    @classmethod
    def _origins_are_origins(cls, value: str | None) -> str | None:
        origins = [o.strip().rstrip("/") for o in (value or "").split(",") if o.strip()]
        if "*" in origins:
            raise ValueError(
                "must list origins: '*' would let any web site act with a signed-in user's cookies"
            )
        for origin in origins:
            scheme, _, rest = origin.partition("://")
            if scheme not in ("http", "https") or not rest or "/" in rest:
                raise ValueError("must be comma-separated origins such as https://chat.example.com")
        return ",".join(origins) or None

    @property
    def cors_origins(self) -> list[str]:
        """Origins allowed to call the backend (HTTP and websocket) from a browser.

        CORS_ALLOWED_ORIGINS when set; else the origin of PUBLIC_URL (the address users
        browse); else none besides the page's own origin (the middleware admits a
        websocket from the origin it was served to, so a first local run works from
        any address, and no other site ever gets credentialed access).
        """
        if self.cors_allowed_origins:
            return self.cors_allowed_origins.split(",")
        if self.public_url:
            return [self.public_origin or ""]
        return []

    @property
    def public_origin(self) -> str | None:
        """``scheme://host[:port]`` of PUBLIC_URL, or None without one."""
        if not self.public_url:
            return None
        scheme, _, rest = self.public_url.partition("://")
        return f"{scheme}://{rest.split('/', 1)[0]}"

    @property
    def system_prompt_path(self) -> Path:
        """The system prompt file, relative paths taken from the project root."""
        path = self.system_prompt_file
        return path if path.is_absolute() else PROJECT_ROOT / path

    @model_validator(mode="after")
    def _legacy_model_names(self) -> Settings:
        """LLM_PROVIDER + BASE_MODEL_ID (the seed's names) become LLM_MODEL, unless it is set."""
        if self.llm_provider is None and self.base_model_id is None:
            return self
        if "llm_model" in self.model_fields_set:
            return self  # LLM_MODEL wins; startup_notices() says the old names are unused
        if not (self.llm_provider and self.base_model_id):
            missing = "BASE_MODEL_ID" if self.llm_provider else "LLM_PROVIDER"
            raise ValueError(
                f"{missing} is missing: LLM_PROVIDER and BASE_MODEL_ID are read together as"
                " LLM_MODEL=<provider>/<model> (or set LLM_MODEL instead)"
            )
        self.llm_model = f"{self.llm_provider}/{self.base_model_id}"
        self._model_from_seed_names = True
        return self

    @model_validator(mode="after")
    def _prices_come_in_pairs(self) -> Settings:
        """One of the two prices alone cannot price a request: say which one is missing."""
        given = (self.llm_price_input_per_1m is None, self.llm_price_output_per_1m is None)
        if given == (False, True):
            raise ValueError(
                "LLM_PRICE_OUTPUT_PER_1M is missing: set both prices (0 and 0 for a free"
                " model), or neither"
            )
        if given == (True, False):
            raise ValueError(
                "LLM_PRICE_INPUT_PER_1M is missing: set both prices (0 and 0 for a free"
                " model), or neither"
            )
        return self

    @model_validator(mode="after")
    def _fallbacks_fit_their_models(self) -> Settings:
        """Fallback settings for a model LLM_FALLBACK_MODELS does not list are a mistake
        (a key meant for another model); the primary cannot be its own fallback."""
        models = self.llm_fallback_models.split(",") if self.llm_fallback_models else []
        if self.llm_model in models:
            raise ValueError(
                f"LLM_FALLBACK_MODELS lists LLM_MODEL ({self.llm_model}): a model cannot be"
                " its own fallback"
            )
        for number in range(1, MAX_FALLBACK_MODELS + 1):
            for suffix in ("api_base", "api_key"):
                if number > len(models) and getattr(self, f"llm_fallback_{number}_{suffix}"):
                    raise ValueError(
                        f"LLM_FALLBACK_{number}_{suffix.upper()} is set but LLM_FALLBACK_MODELS"
                        f" names {len(models)} model(s): fallback {number} does not exist"
                    )
        return self

    @property
    def fallback_models(self) -> list[FallbackModel]:
        """LLM_FALLBACK_MODELS in order, each with its own base URL and key (if set).

        Empty with the demo model: it cannot fail, so nothing ever falls back.
        """
        if self.is_demo or not self.llm_fallback_models:
            return []
        return [
            FallbackModel(
                model=model,
                api_base=getattr(self, f"llm_fallback_{number}_api_base"),
                api_key=getattr(self, f"llm_fallback_{number}_api_key"),
            )
            for number, model in enumerate(self.llm_fallback_models.split(","), start=1)
        ]

    def startup_notices(self) -> list[str]:
        """What startup should tell the operator about how this configuration was read."""
        notices = []
        if self.is_demo and self.llm_fallback_models:
            notices.append("LLM_FALLBACK_MODELS is ignored: the demo model never fails")
        if self.llm_provider is None and self.base_model_id is None:
            return notices
        if not self._model_from_seed_names:
            return [*notices, "LLM_PROVIDER/BASE_MODEL_ID are ignored: LLM_MODEL is set and wins"]
        return [
            *notices,
            f"LLM_PROVIDER + BASE_MODEL_ID read as LLM_MODEL={self.llm_model};"
            " set LLM_MODEL instead (the old names keep working)",
        ]


MAX_FALLBACK_MODELS = 3  # LLM_FALLBACK_1_* .. LLM_FALLBACK_3_*
_MODEL_NAME_CHARS = frozenset(
    "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:@+"
)


@dataclass(frozen=True)
class FallbackModel:
    """One model of LLM_FALLBACK_MODELS and its provider settings (the key stays masked)."""

    model: str
    api_base: str | None = None
    api_key: SecretStr | None = None


def _parse_fallback_models(value: str | None) -> list[str]:
    """``"openai/gpt-4o-mini, anthropic/claude-3-5-haiku"`` -> the model strings, in order.

    Raises:
        ValueError: an entry that is not a model string, one listed twice, too many.
    """
    models: list[str] = []
    for part in (value or "").split(","):
        model = part.strip()
        if not model:
            continue
        if len(model) > 200 or not set(model) <= _MODEL_NAME_CHARS:
            raise ValueError(
                f"{model[:40]!r} is not a LiteLLM model string (e.g. openai/gpt-4o-mini)"
            )
        if model == DEMO_MODEL:
            raise ValueError("the demo model cannot be a fallback (it has no provider)")
        if model in models:
            raise ValueError(f"{model} is listed twice")
        models.append(model)
    if len(models) > MAX_FALLBACK_MODELS:
        raise ValueError(f"lists {len(models)} models; at most {MAX_FALLBACK_MODELS} are supported")
    return models


# Values people leave in a config by mistake: copied from examples, or "to change later".
_PLACEHOLDERS = frozenset(
    {
        "changeme",
        "changethis",
        "changeit",
        "change",
        "secret",
        "secretkey",
        "mysecret",
        "supersecret",
        "topsecret",
        "password",
        "passw0rd",
        "mypassword",
        "admin",
        "root",
        "default",
        "example",
        "sample",
        "test",
        "testing",
        "dummy",
        "placeholder",
        "todo",
        "fixme",
        "none",
        "null",
        "token",
        "mytoken",
        "letmein",
        "qwerty",
        "123456",
        "12345678",
        "1234567890",
        "sessionsecret",
        "monitorpassword",
        "metricstoken",
        "chatpassword",
    }
)
_PLACEHOLDER_PREFIXES = (
    "changeme",
    "changethis",
    "yoursecret",
    "yourpassword",
    "yourtoken",
    "yourkey",
    "replaceme",
    "replacewith",
    "insert",
    "example",
    "placeholder",
    "xxx",
)


def is_placeholder_secret(value: str) -> bool:
    """Whether ``value`` is a well-known placeholder rather than a real secret.

    ``changeme``, ``secret123``, ``your-secret-here``, ``xxxx``, one character repeated...
    (letters and digits compared, case and punctuation ignored).
    """
    raw = value.strip().lower()
    plain = "".join(ch for ch in raw if ch.isalnum())
    if not plain or len(set(plain)) == 1:
        return True
    if plain in _PLACEHOLDERS or plain.rstrip("0123456789") in _PLACEHOLDERS:
        return True
    return plain.startswith(_PLACEHOLDER_PREFIXES) or raw.startswith("<")


def _parse_percents(value: str) -> list[float]:
    """``"50,80,100"`` -> ``[50.0, 80.0, 100.0]``; ValueError on anything else."""
    levels: set[float] = set()
    for part in value.split(","):
        if not part.strip():
            continue
        try:
            level = float(part)
        except ValueError:
            raise ValueError(f"{part.strip()!r} is not a number (e.g. 50,80,100)") from None
        if not 0 < level <= 1000:
            raise ValueError(f"{level:g} is not a percent between 0 and 1000")
        levels.add(level)
    return sorted(levels)


def parse_key_values(value: str, *, what: str) -> dict[str, str]:
    """``"k1=v1,k2=v2"`` (values percent-decoded), the W3C-baggage-like format of
    OTEL_EXPORTER_OTLP_HEADERS and OTEL_RESOURCE_ATTRIBUTES; ValueError on anything else
    (never quoting a value: a header is often a credential)."""
    from urllib.parse import unquote

    pairs: dict[str, str] = {}
    for index, part in enumerate(value.split(","), start=1):
        if not part.strip():
            continue
        key, sep, item = part.partition("=")
        if not sep or not key.strip() or any(c.isspace() for c in key.strip()):
            raise ValueError(f"{what} {index} is not key=value (comma-separated key=value pairs)")
        pairs[unquote(key.strip())] = unquote(item.strip())
    return pairs


def _is_http_url(value: str) -> bool:
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and " " not in value


def _is_sentry_dsn(value: str) -> bool:
    from urllib.parse import urlsplit

    if not _is_http_url(value):
        return False
    parts = urlsplit(value)
    project = parts.path.rstrip("/").rsplit("/", 1)[-1]
    return bool(parts.username) and project.isdigit()


def _split_addresses(value: str | None) -> list[str]:
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def _is_address(value: str) -> bool:
    local, _, domain = value.rpartition("@")
    return bool(local) and bool(domain) and not any(c.isspace() for c in value)


# Reflex and Granian read their own variables (REFLEX_REDIS_URL, REFLEX_API_URL,
# GRANIAN_WORKERS, ...) from the process environment only.
OWN_PREFIXES_OF_THE_SERVER = ("REFLEX_", "GRANIAN_")


def server_variables_in_env_file(env_file: Path = Path(".env")) -> dict[str, str]:
    """The Reflex and Granian variables set in ``.env``, for rxconfig to export.

    So ``.env`` configures those too, while every other variable in it stays in
    chatmon's settings (nothing else puts ``.env`` into the environment).
    """
    if not env_file.is_file():
        return {}
    from dotenv import dotenv_values  # pydantic-settings' own .env reader

    return {
        name: value
        for name, value in dotenv_values(env_file).items()
        if value and name.startswith(OWN_PREFIXES_OF_THE_SERVER)
    }


def _variable_name(error: ErrorDetails) -> str:
    """The environment variable a pydantic error refers to."""
    loc = error.get("loc") or ("",)
    return str(loc[0]).upper()


def _problem(error: ErrorDetails) -> str:
    """One bad value, named; a rule over several variables names them in its message."""
    name = _variable_name(error)
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{name}: {message}" if name else message


def load_settings(**overrides: Any) -> Settings:
    """Read and validate the configuration.

    Raises:
        SettingsError: naming every variable that holds a bad value.
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = [_problem(err) for err in exc.errors()]
        raise SettingsError("Invalid configuration: " + "; ".join(problems)) from None


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, validated on first use (at startup)."""
    return load_settings()
