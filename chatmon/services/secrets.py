"""Masking of secrets in any text that leaves the process: log lines, traces, error text.

Two nets: the exact values of every secret chatmon was configured with (API keys,
Langfuse secret, SMTP password, webhook URL, metrics token), and patterns for secrets
it was not told about (``sk-...`` keys, bearer tokens, Slack webhooks, passwords in
URLs, ``password=...`` pairs). Masking is idempotent and cheap on text with no secret,
and linear in the length of any text (tests/units/services/test_hostile_text.py).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable

from pydantic import BaseModel, SecretStr

from chatmon.services.limits import Spans, truncate

MASK = "***"

# Shorter configured values are not masked by value (too likely to match normal text);
# the patterns below still catch them in their usual shapes.
_MIN_VALUE_LENGTH = 6

# (pattern, replacement, substrings one of which every match contains, so a text with
# none of them is not scanned; empty: always scan). Each pattern is linear in its input.
# It starts with a literal or a character class, which the regex engine looks for
# without running the pattern at every offset; the word boundary or "a run starts here"
# check comes right after, as a lookbehind. A match can only start where a run of its
# characters starts, so a scan never retries from every offset inside a long run
# (``ab-ab-ab-...`` took seconds to mask when the URL pattern did that).
# tests/units/services/test_hostile_text.py holds every pattern to linear time.
_PATTERNS: list[tuple[re.Pattern[str], str, tuple[str, ...]]] = [
    # Slack/Discord-style webhook URLs: the path is the secret.
    (
        re.compile(r"https://hooks\.slack\.com/[^\s\"'<>]+"),
        "https://hooks.slack.com/" + MASK,
        ("hooks.slack.com/",),
    ),
    (
        re.compile(r"https://(?:\w++\.)?discord(?:app)?\.com/api/webhooks/[^\s\"'<>]+"),
        "https://discord.com/api/webhooks/" + MASK,
        ("/api/webhooks/",),
    ),
    # Provider keys: OpenAI-style sk-..., Langfuse sk-lf-/pk-lf-, Google AIza...
    (re.compile(r"([sp]k)(?<!\w..)-(?:lf-|proj-|ant-)?[A-Za-z0-9_\-]{6,}"), r"\1-" + MASK, ("k-",)),
    (re.compile(r"AIza(?<!\w....)[0-9A-Za-z_\-]{20,}"), "AIza" + MASK, ("AIza",)),
    # Authorization headers.
    (
        re.compile(r"([bB](?<!\w.)(?i:earer|asic))(?i:\s++[A-Za-z0-9._~+/=\-]{4,})"),
        r"\1 " + MASK,
        (),
    ),  # any case, Unicode's too: no substring test is exact
    # user:password@ in URLs (database URLs, SMTP URLs). The scheme is the run of scheme
    # characters before ``://``, from its first word boundary before a letter.
    (
        re.compile(
            r"([\w+.\-](?<![\w+.\-].)(?=[\w+.\-]*+://)"  # a run that ends in "://"
            r"(?>(?<=[a-zA-Z])|[\w+.\-]*?\b(?=[a-zA-Z]))[\w+.\-]*+://[^/\s:@]++):[^@\s/]++@"
        ),
        r"\1:" + MASK + "@",
        ("://",),
    ),
    # key=value / "key": "value" pairs whose name says secret (any case).
    (
        re.compile(
            r"([aApPsStTxX\u017f](?<!(?i:[a-z0-9]).)"  # a name's first letter, not mid-word
            r"(?i:(?<=a)(?:pi[_-]?key|ccess[_-]token|uth[_-]?token)|(?<=x)-api-key"
            r"|(?<=s)ecret(?:[_-]key)?|(?<=p)(?:assword|asswd|wd)|(?<=t)oken)"
            r"[\"']?\s*+[:=]\s*+[\"']?)([^\s\"'&,;}]{3,})"
        ),
        r"\1" + MASK,
        (":", "="),
    ),
    # ?key=... query parameters (Gemini's REST API takes the key this way).
    (re.compile(r"([?&](?:key|api_key|token)=)[^&\s\"']+"), r"\1" + MASK, ("=",)),
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


def register_settings_secrets(settings: BaseModel) -> None:
    """Register every secret-typed setting, plus those named like secrets.

    Fields other issues add later (``SMTP_PASSWORD``, ``SLACK_WEBHOOK_URL``) are
    picked up by type (``SecretStr``) or by name, without this module knowing them.
    """
    values: list[str | SecretStr | None] = []
    for name in type(settings).model_fields:
        value = getattr(settings, name, None)
        if isinstance(value, SecretStr) or isinstance(value, str) and _looks_secret(name):
            values.append(value)
    register_secret_values(values)


def _looks_secret(field_name: str) -> bool:
    return any(word in field_name for word in ("key", "secret", "password", "token", "webhook"))


def mask_secrets(text: str, *, max_chars: int | None = None) -> str:
    """``text`` with every known secret value and secret-shaped token replaced by ``***``.

    Args:
        text: any text (a log line, a traceback, an error message).
        max_chars: cut the text to this many characters first (see :func:`bounded`),
            so the patterns run on a bounded prefix however long the text is.
    """
    if not text:
        return text
    text = bounded(text, max_chars) if max_chars is not None else _mask_known(text)
    for pattern, replacement, needles in _PATTERNS:
        if not needles or any(needle in text for needle in needles):
            text = pattern.sub(replacement, text)
    return text


def bounded(text: str, limit: int, *, also: Spans | None = None) -> str:
    """``text`` with known secret values masked, cut to ``limit`` characters plus a marker.

    The cut never splits a secret-shaped token (nor a span that ``also`` finds, e.g.
    :func:`chatmon.services.redaction.pii_spans`), so masking the result leaves no
    fragment of one behind. Known values are masked in the whole text first: that is
    a plain substring search, linear and fast on any input.
    """
    text = _mask_known(text)
    if also is None:
        return truncate(text, limit, protect=secret_spans)
    return truncate(text, limit, protect=lambda window: [*secret_spans(window), *also(window)])


def secret_spans(text: str) -> list[tuple[int, int]]:
    """Where ``text`` holds a known secret value or a secret-shaped token."""
    spans: list[tuple[int, int]] = []
    for value in _known:
        start = text.find(value)
        while start != -1:
            spans.append((start, start + len(value)))
            start = text.find(value, start + len(value))
    for pattern, _, needles in _PATTERNS:
        if not needles or any(needle in text for needle in needles):
            spans.extend(match.span() for match in pattern.finditer(text))
    return spans


def _mask_known(text: str) -> str:
    for value in _known:
        if value in text:
            text = text.replace(value, MASK)
    return text
