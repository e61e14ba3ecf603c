"""Who may see the monitor (and, optionally, the chat): passwords and signed sessions.

Plain Python, no Reflex. Passwords are compared in constant time; stored user hashes are
PBKDF2-SHA256 (``python -m chatmon hash-password`` makes one). A session is a signed,
expiring token ``base64(payload).signature`` kept in a cookie: the server stores nothing,
so every worker and instance that shares ``SESSION_SECRET`` accepts it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass

PBKDF2_ITERATIONS = 600_000
SESSION_TTL_SECONDS = 12 * 3600
MONITOR_SCOPE = "monitor"
CHAT_SCOPE = "chat"
DEFAULT_MONITOR_USER = "admin"


def hash_password(password: str, *, iterations: int = PBKDF2_ITERATIONS) -> str:
    """``pbkdf2_sha256$<iterations>$<salt>$<hash>`` for ``MONITOR_USERS``."""
    salt = secrets.token_hex(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), iterations)
    return f"pbkdf2_sha256${iterations}${salt}${digest.hex()}"


def verify_password(password: str, encoded: str) -> bool:
    """True when ``password`` matches a ``hash_password`` string."""
    try:
        scheme, iterations, salt, expected = encoded.split("$")
        rounds = int(iterations)
    except ValueError:
        return False
    if scheme != "pbkdf2_sha256" or rounds < 1:
        return False
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), rounds)
    return hmac.compare_digest(digest.hex(), expected)


def parse_users(spec: str) -> dict[str, str]:
    """``"alice:pbkdf2_sha256$...,bob:..."`` -> ``{"alice": "pbkdf2_sha256$..."}``.

    Raises:
        ValueError: for an entry without a user name or without a PBKDF2 hash.
    """
    users: dict[str, str] = {}
    for entry in filter(None, (part.strip() for part in spec.split(","))):
        name, _, encoded = entry.partition(":")
        if not name or not encoded.startswith("pbkdf2_sha256$") or encoded.count("$") != 3:
            raise ValueError("entries must be user:pbkdf2_sha256$iterations$salt$hash")
        users[name.strip()] = encoded
    return users


@dataclass(frozen=True)
class Gate:
    """The credentials that open one area (monitor or chat); empty means open to all."""

    password: str | None = None  # a single shared password (any user name)
    users: dict[str, str] | None = None  # user -> PBKDF2 hash

    @property
    def enabled(self) -> bool:
        """Whether this area asks for a login at all."""
        return bool(self.password) or bool(self.users)

    def check(self, user: str, password: str) -> str | None:
        """The signed-in user's name, or None when the credentials are wrong."""
        if self.users and user in self.users and verify_password(password, self.users[user]):
            return user
        if self.password and hmac.compare_digest(password.encode(), self.password.encode()):
            return user or DEFAULT_MONITOR_USER
        return None


class SessionSigner:
    """Issues and checks signed, expiring session tokens."""

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def issue(self, *, user: str, scope: str, ttl: int = SESSION_TTL_SECONDS) -> str:
        """A token saying ``user`` may enter ``scope`` until now + ``ttl`` seconds."""
        payload = json.dumps(
            {"u": user, "s": scope, "e": int(time.time()) + ttl}, separators=(",", ":")
        ).encode()
        body = base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
        return f"{body}.{self._sign(body)}"

    def verify(self, token: str, *, scope: str) -> str | None:
        """The user named in a valid, unexpired token for ``scope``; otherwise None."""
        body, _, signature = (token or "").partition(".")
        if not body or not hmac.compare_digest(signature, self._sign(body)):
            return None
        try:
            payload = json.loads(base64.urlsafe_b64decode(body + "=" * (-len(body) % 4)))
        except (ValueError, TypeError):
            return None
        if payload.get("s") != scope or int(payload.get("e", 0)) < time.time():
            return None
        user = payload.get("u")
        return user if isinstance(user, str) else None

    def _sign(self, body: str) -> str:
        mac = hmac.new(self._secret, body.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()
