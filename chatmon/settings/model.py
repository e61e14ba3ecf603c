"""The :class:`Settings` object: every section composed, plus what spans sections."""

from __future__ import annotations

from pydantic_settings import BaseSettings, SettingsConfigDict

from chatmon.settings.access import AccessSection
from chatmon.settings.alerts import AlertSection
from chatmon.settings.budget import BudgetSection
from chatmon.settings.llm import LLMSection
from chatmon.settings.observability import ObservabilitySection
from chatmon.settings.oncall import OnCallSection
from chatmon.settings.runtime import RuntimeSection


# Pydantic orders the fields of several bases from the last base to the first, so the
# sections are listed in reverse: LLM_* are validated first, the on-call routes last.
# The order matters: a validator reading ``info.data`` sees only the fields before its own
# (on-call reads the alert channels and ALERT_CHECK_INTERVAL_SECONDS).
class Settings(
    OnCallSection,
    AccessSection,
    AlertSection,
    BudgetSection,
    ObservabilitySection,
    RuntimeSection,
    LLMSection,
    BaseSettings,
):
    """chatmon's configuration. Field names map to upper-case environment variables."""

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        env_ignore_empty=True,  # `LLM_PRICE_INPUT_PER_1M=` in .env means "not set"
    )

    @property
    def monitor_url(self) -> str:
        """The monitor page's address, as linked from alert messages."""
        return (self.public_url or f"http://localhost:{self.port}") + "/monitor"

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
