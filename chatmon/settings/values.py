"""The shapes the settings' validators accept, as plain functions (no pydantic here).

Model strings, URLs, addresses, percents and ``k=v`` lists; each parser raises
``ValueError`` with a message that never quotes a secret, which pydantic then reports
under the variable's name.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

DEMO_MODEL = "demo"
# chatmon/settings/values.py -> the checkout (relative SYSTEM_PROMPT_FILE and LOG_FILE).
PROJECT_ROOT = Path(__file__).resolve().parents[2]
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


def parse_fallback_models(value: str | None) -> list[str]:
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


def parse_percents(value: str) -> list[float]:
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


def is_http_url(value: str) -> bool:
    """An http(s) URL with a host and, if any, a valid port."""
    from urllib.parse import urlsplit

    try:
        parts = urlsplit(value)
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        return False
    return parts.scheme in ("http", "https") and bool(parts.hostname) and " " not in value


def is_sentry_dsn(value: str) -> bool:
    """``https://<key>@<host>/<numeric project id>``."""
    from urllib.parse import urlsplit

    if not is_http_url(value):
        return False
    parts = urlsplit(value)
    project = parts.path.rstrip("/").rsplit("/", 1)[-1]
    return bool(parts.username) and project.isdigit()


def split_addresses(value: str | None) -> list[str]:
    """A comma-separated list, blanks dropped."""
    return [part.strip() for part in (value or "").split(",") if part.strip()]


def is_address(value: str) -> bool:
    """Looks like an email address (``local@domain``, no spaces); delivery is the judge."""
    local, _, domain = value.rpartition("@")
    return bool(local) and bool(domain) and not any(c.isspace() for c in value)
