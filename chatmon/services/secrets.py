"""Masking of secrets in any text that leaves the process: log lines, traces, error text.

Two nets: the exact values of every secret chatmon was configured with (API keys,
Langfuse secret, SMTP password, webhook URL, metrics token), and patterns for secrets
it was not told about (``sk-...`` keys, bearer tokens, Slack webhooks, passwords in
URLs, ``password=...`` pairs). Masking is idempotent and cheap on text with no secret.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable

from pydantic import SecretStr

MASK = "***"

# Shorter configured values are not masked by value (too likely to match normal text);
# the patterns below still catch them in their usual shapes.
_MIN_VALUE_LENGTH = 6

_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    # Slack/Discord-style webhook URLs: the path is the secret.
    (re.compile(r"https://hooks\.slack\.com/[^\s\"'<>]+"), "https://hooks.slack.com/" + MASK),
    (re.compile(r"https://(?:\w+\.)?discord(?:app)?\.com/api/webhooks/[^\s\"'<>]+"),
     "https://discord.com/api/webhooks/" + MASK),
    # Provider keys: OpenAI-style sk-..., Langfuse sk-lf-/pk-lf-, Google AIza...
    (re.compile(r"\b(sk|pk)-(?:lf-|proj-|ant-)?[A-Za-z0-9_\-]{6,}"), r"\1-" + MASK),
    (re.compile(r"\bAIza[0-9A-Za-z_\-]{20,}"), "AIza" + MASK),
    # Authorization headers.
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=\-]{4,}"), r"\1 " + MASK),
    # user:password@ in URLs (database URLs, SMTP URLs).
    (re.compile(r"(\b[a-zA-Z][\w+.\-]*://[^/\s:@]+):[^@\s/]+@"), r"\1:" + MASK + "@"),
    # key=value / "key": "value" pairs whose name says secret.
    (
        re.compile(
            r"(?i)(?<![a-z0-9])((?:api[_-]?key|x-api-key|secret(?:[_-]key)?|password|passwd|pwd|"
            r"access[_-]token|auth[_-]?token|token)[\"']?\s*[:=]\s*[\"']?)([^\s\"'&,;}]{3,})"
        ),
        r"\1" + MASK,
    ),
    # ?key=... query parameters (Gemini's REST API takes the key this way).
    (re.compile(r"([?&](?:key|api_key|token)=)[^&\s\"']+"), r"\1" + MASK),
]

_lock = threading.Lock()
_known: tuple[str, ...] = ()


def register_secret_values(values: Iterable[str | SecretStr | None]) -> None:
    """Add exact secret values to mask wherever they appear (longest first)."""
    global _known
    plain = {
        v.get_secret_value() if isinstance(v, SecretStr) else v for v in values if v is not None
    }
    plain = {v.strip() for v in plain if v and len(v.strip()) >= _MIN_VALUE_LENGTH}
    with _lock:
        _known = tuple(sorted(set(_known) | plain, key=len, reverse=True))


def register_settings_secrets(settings: object) -> None:
    """Register every secret-typed setting, plus those named like secrets.

    Fields other issues add later (``SMTP_PASSWORD``, ``SLACK_WEBHOOK_URL``) are
    picked up by type (``SecretStr``) or by name, without this module knowing them.
    """
    values: list[str | SecretStr | None] = []
    for name in type(settings).model_fields:  # type: ignore[attr-defined]
        value = getattr(settings, name, None)
        if isinstance(value, SecretStr):
            values.append(value)
        elif isinstance(value, str) and _looks_secret(name):
            values.append(value)
    register_secret_values(values)


def _looks_secret(field_name: str) -> bool:
    return any(word in field_name for word in ("key", "secret", "password", "token", "webhook"))


def known_secret_count() -> int:
    """How many exact values are registered (for /health-style diagnostics and tests)."""
    return len(_known)


def mask_secrets(text: str) -> str:
    """``text`` with every known secret value and secret-shaped token replaced by ``***``."""
    if not text:
        return text
    for value in _known:
        if value in text:
            text = text.replace(value, MASK)
    for pattern, replacement in _PATTERNS:
        text = pattern.sub(replacement, text)
    return text
