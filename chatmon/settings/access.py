"""Who may use chatmon: the monitor's and chat's passwords, sessions, CORS, proxies."""

from __future__ import annotations

from pydantic import BaseModel, Field, SecretStr, ValidationInfo, field_validator

from chatmon.settings.placeholders import refuse_placeholder
from chatmon.settings_syntax import parse_users


class AccessSection(BaseModel):
    """MONITOR_*, CHAT_PASSWORD, SESSION_SECRET, CORS_ALLOWED_ORIGINS, TRUSTED_PROXY_HOPS."""

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

    @field_validator("monitor_auth", mode="after")
    @classmethod
    def _auth_off_means_no_passwords(cls, value: bool, info: ValidationInfo) -> bool:
        if not value and (info.data.get("monitor_password") or info.data.get("monitor_users")):
            raise ValueError(
                "is off, yet MONITOR_PASSWORD or MONITOR_USERS is set: remove one of them "
                "(off opens the monitor to everyone)"
            )
        return value

    @field_validator("monitor_password", "chat_password", "session_secret", mode="after")
    @classmethod
    def _blank_access_secret_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        return value

    @field_validator("monitor_password", "chat_password", "session_secret", mode="after")
    @classmethod
    def _no_placeholder_secret(cls, value: SecretStr | None) -> SecretStr | None:
        return refuse_placeholder(value)  # METRICS_TOKEN: the same check, in observability

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
