"""Where chatmon reports: logs, /metrics, PII redaction, Langfuse, OpenTelemetry, Sentry."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, BaseModel, Field, SecretStr, field_validator

from chatmon.settings.placeholders import refuse_placeholder
from chatmon.settings.values import PROJECT_ROOT, is_http_url, is_sentry_dsn, parse_key_values


class ObservabilitySection(BaseModel):
    """LOG_*, METRICS_TOKEN, LANGFUSE_*, the standard OTEL_* names, SENTRY_*."""

    # --- logs, /metrics, PII redaction, Langfuse ----------------------------------------
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

    @field_validator("metrics_token", mode="after")
    @classmethod
    def _no_placeholder_token(cls, value: SecretStr | None) -> SecretStr | None:
        return refuse_placeholder(value)  # after the blank check: blank is unset, not weak

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
        if not is_http_url(value):
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
        if not is_sentry_dsn(dsn):
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
