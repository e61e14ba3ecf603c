"""Who may see the monitor (and, optionally, the chat): passwords and signed sessions.

Plain Python, no Reflex. Stored user hashes are PBKDF2-SHA256 (``python -m chatmon
hash-password`` makes one). A session is a signed, expiring token
``base64(payload).signature`` kept in an HttpOnly cookie: the server stores nothing, so
every worker and instance that shares the instance secret accepts it. The payload
names the user and a fingerprint of the credential they signed in with, so a session
ends as soon as that user is removed or their password changes.

Checking a password costs the same whatever the user name: a name nobody has still
runs one PBKDF2 of the same strength (against a hash that matches nothing), so the
time of an answer does not tell which names exist.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from urllib.parse import unquote

# MONITOR_USERS syntax, shared with Settings (re-exported: deps and tests call auth.parse_users)
from chatmon.settings_syntax import parse_users as parse_users

PBKDF2_ITERATIONS = 600_000
SESSION_TTL_SECONDS = 12 * 3600
MONITOR_SCOPE = "monitor"
CHAT_SCOPE = "chat"
DEVICE_SCOPE = "device"
DEFAULT_MONITOR_USER = "admin"
SHARED_ACCOUNT = "*"  # the account of a shared password (any user name signs in with it)
MAX_TOKEN_CHARS = 2048


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
    except (ValueError, AttributeError):
        return False
    if scheme != "pbkdf2_sha256" or rounds < 1:
        return False
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), rounds)
    return hmac.compare_digest(digest.hex().encode(), expected.encode())


def iterations_of(encoded: str) -> int:
    """The PBKDF2 rounds of a ``hash_password`` string (the default when unreadable)."""
    try:
        return max(1, int(encoded.split("$")[1]))
    except (IndexError, ValueError):
        return PBKDF2_ITERATIONS


def unmatchable_hash(iterations: int) -> str:
    """A well-formed hash no password matches: what an unknown user name is checked
    against, so that it costs exactly the PBKDF2 work of a known one."""
    return f"pbkdf2_sha256${iterations}${secrets.token_hex(16)}${secrets.token_hex(32)}"


@dataclass(frozen=True)
class Gate:
    """The credentials that open one area (monitor or chat).

    ``password`` is a shared password (any user name), ``users`` maps names to PBKDF2
    hashes, ``password_hash`` is a shared password known only by its hash (the one
    generated at the first start). ``closed`` keeps the area behind a login even when no
    credential is configured (nobody gets in); otherwise an area without credentials is
    open to all. ``key`` keys the credential fingerprints that sessions carry.
    """

    password: str | None = None
    users: dict[str, str] | None = None
    password_hash: str | None = None
    closed: bool = False
    key: bytes = b""
    _decoy: str = field(default="", compare=False, repr=False)

    def __post_init__(self) -> None:
        rounds = max((iterations_of(h) for h in (self.users or {}).values()), default=0)
        if self.password_hash:
            rounds = max(rounds, iterations_of(self.password_hash))
        object.__setattr__(self, "_decoy", unmatchable_hash(rounds or PBKDF2_ITERATIONS))

    @property
    def enabled(self) -> bool:
        """Whether this area asks for a login at all."""
        return self.closed or bool(self.password or self.users or self.password_hash)

    @property
    def hashes_passwords(self) -> bool:
        """Whether a check runs PBKDF2 (named users or a hashed shared password)."""
        return bool(self.users or self.password_hash)

    def account_of(self, user: str) -> str:
        """The account whose secret a sign-in as ``user`` tests (for the throttle).

        A named user is their own account; any other name tests the shared password,
        so all of those count as one account (guessing it under many names is no
        faster than under one). Without a shared password the name itself counts,
        known or not, so the throttle's answers do not reveal which names exist.
        """
        if self.users and user in self.users:
            return "user:" + user
        if self.password or self.password_hash:
            return SHARED_ACCOUNT
        return "user:" + user

    def check(self, user: str, password: str) -> str | None:
        """The signed-in user's name, or None when the credentials are wrong.

        When hashes are involved, exactly one PBKDF2 runs whatever ``user`` is: a
        named user's own hash, else the shared hash, else a decoy that matches nothing.
        A named user can only sign in with their own password.
        """
        encoded = (self.users or {}).get(user)
        if self.hashes_passwords:
            matched = verify_password(password, encoded or self.password_hash or self._decoy)
            if encoded is not None:
                return user if matched else None
            if self.password_hash and matched:
                return user or DEFAULT_MONITOR_USER
        if self.password and hmac.compare_digest(password.encode(), self.password.encode()):
            return user or DEFAULT_MONITOR_USER
        return None

    def fingerprint(self, user: str) -> str | None:
        """A keyed digest of the credential ``user`` signs in with now; None when
        ``user`` could not sign in at all. Sessions carry it: when it changes (the user
        was removed, or the password changed) the session no longer counts."""
        if self.users and user in self.users:
            credential = "user:" + self.users[user]
        elif self.password_hash:
            credential = "hash:" + self.password_hash
        elif self.password:
            credential = "password:" + self.password
        else:
            return None
        mac = hmac.new(self.key, b"credential:" + credential.encode(), hashlib.sha256)
        return base64.urlsafe_b64encode(mac.digest()[:12]).decode()


@dataclass(frozen=True)
class SessionClaims:
    """What a valid token says: who, where, until when, and with which credential."""

    user: str
    scope: str
    expires: int
    credential: str


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class SessionSigner:
    """Issues and checks signed, expiring session tokens.

    ``verify`` never raises: any token a client can send (empty, non-ASCII, forged,
    not JSON, wrong types) is simply not valid.
    """

    def __init__(self, secret: bytes) -> None:
        self._secret = secret

    def issue(
        self, *, user: str, scope: str, credential: str = "", ttl: int = SESSION_TTL_SECONDS
    ) -> str:
        """A token saying ``user`` may enter ``scope`` until now + ``ttl`` seconds."""
        payload = json.dumps(
            {"u": user, "s": scope, "e": int(time.time()) + ttl, "c": credential},
            separators=(",", ":"),
        ).encode()
        body = base64.urlsafe_b64encode(payload).rstrip(b"=").decode()
        return f"{body}.{self._sign(body)}"

    def claims(self, token: str | None, *, scope: str) -> SessionClaims | None:
        """The claims of a valid, unexpired token for ``scope``; otherwise None."""
        if not isinstance(token, str) or not token.isascii() or len(token) > MAX_TOKEN_CHARS:
            return None
        body, _, signature = token.partition(".")
        if not body or not hmac.compare_digest(signature.encode(), self._sign(body).encode()):
            return None
        try:
            payload = json.loads(_b64decode(body))
            user, claimed_scope = payload["u"], payload["s"]
            expires, credential = payload["e"], payload.get("c", "")
        except (ValueError, TypeError, KeyError, AttributeError):
            return None
        if not (isinstance(user, str) and isinstance(credential, str)):
            return None
        if not isinstance(expires, int) or claimed_scope != scope or expires < time.time():
            return None
        return SessionClaims(user=user, scope=scope, expires=expires, credential=credential)

    def verify(self, token: str | None, *, scope: str) -> str | None:
        """The user named in a valid, unexpired token for ``scope``; otherwise None."""
        claims = self.claims(token, scope=scope)
        return claims.user if claims else None

    def _sign(self, body: str) -> str:
        mac = hmac.new(self._secret, body.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def session_user(signer: SessionSigner, gate: Gate, token: str | None, *, scope: str) -> str | None:
    """The user of a valid ``scope`` session whose credential ``gate`` still accepts."""
    claims = signer.claims(token, scope=scope)
    if claims is None:
        return None
    current = gate.fingerprint(claims.user)
    if current is None or not hmac.compare_digest(current.encode(), claims.credential.encode()):
        return None
    return claims.user


MAX_NEXT_CHARS = 2048


def safe_next(path: str | None, default: str = "/monitor") -> str:
    """A local path to go to after login (never another site: no open redirect).

    Refused, giving ``default``: anything not starting with a single ``/``; spaces,
    control characters, non-ASCII or backslashes as sent; and control characters,
    backslashes or a leading ``//`` hidden behind percent-encoding (``/%2F%2Fevil``,
    ``/%5Cevil``, ``/%09/evil``, double-encoded too), which some browsers and proxies
    decode before following a redirect.
    """
    if not isinstance(path, str) or not path or len(path) > MAX_NEXT_CHARS:
        return default
    if not path.isascii() or not all(0x20 < ord(ch) < 0x7F for ch in path):
        return default
    decoded = path
    for _ in range(4):  # a few rounds of %-decoding catch double-encoded tricks
        if not _is_local_path(decoded):
            return default
        unquoted = unquote(decoded)
        if unquoted == decoded:
            return path
        decoded = unquoted
    return default


def _is_local_path(path: str) -> bool:
    if not path.startswith("/") or path.startswith(("//", "/\\")) or "\\" in path:
        return False
    return not any(ord(ch) < 0x20 or 0x7F <= ord(ch) <= 0x9F for ch in path)
