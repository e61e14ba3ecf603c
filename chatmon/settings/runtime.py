"""How chatmon runs: resilience limits, the chat's behaviour, storage and the port."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel, Field, field_validator

from chatmon.settings.values import PROJECT_ROOT


class RuntimeSection(BaseModel):
    """Timeouts, the breaker, rate limits; history and message sizes; DATABASE_URL, PORT."""

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

    @field_validator("database_url", mode="after")
    @classmethod
    def _database_url_has_scheme(cls, value: str) -> str:
        if "://" not in value:
            raise ValueError("must be an SQLAlchemy URL such as sqlite:///chatmon.db")
        return value

    @property
    def system_prompt_path(self) -> Path:
        """The system prompt file, relative paths taken from the project root."""
        path = self.system_prompt_file
        return path if path.is_absolute() else PROJECT_ROOT / path
