"""Secrets nobody should deploy: ``changeme``, ``secret123``, ``<your-token>``, ``xxxx``...

The access secrets and METRICS_TOKEN refuse these at startup (anyone can guess them).
"""

from __future__ import annotations

from pydantic import SecretStr

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


_PLACEHOLDER_MESSAGE = (
    "is a well-known placeholder, which anyone can guess: set a random value "
    "(e.g. the output of: openssl rand -base64 24)"
)


def refuse_placeholder(value: SecretStr | None) -> SecretStr | None:
    """``value`` unchanged, or ValueError when it is a placeholder (see above)."""
    if value is not None and is_placeholder_secret(value.get_secret_value()):
        raise ValueError(_PLACEHOLDER_MESSAGE)
    return value
