"""Browser identity: issued by the server, signed, and never shown to page scripts.

A browser is known by a random id the server creates and signs; it travels in an
HttpOnly cookie (``chatmon_id``), so page scripts, extensions reading localStorage
and anyone who sees an exported row never learn it. The server verifies the signature
on every event; an id it did not sign is no identity at all.

What is stored and exported is never the id itself but its *owner key*, a keyed
one-way hash (HMAC-SHA256 with a key derived from the instance secret). It names the
browser's conversations in the database and is the pseudonymous "session" in the
request log, the CSV export, logs and traces. Knowing an owner key gives no access:
access needs a cookie whose id hashes to it, and only the server can sign one.

Why a cookie and not a signed token in page state: the browser sends the cookie with
the websocket handshake, before any event, so every event of the connection is
attributed by the server, and no script can copy it out of the page.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets

COOKIE_NAME = "chatmon_id"
IDENTITY_PATH = "/_chatmon/identity"  # POST: sets the cookie for a page served elsewhere
COOKIE_MAX_AGE = 400 * 24 * 3600  # the longest lifetime browsers accept (RFC 6265bis)
_VERSION = "v1"
_ID_BYTES = 16
_ID_SHAPE = re.compile(r"[0-9a-f]{32}")
_MAX_TOKEN_CHARS = 128  # a real token is 79 characters; anything longer is not ours
LEGACY_PREFIX = "legacy_"  # owner keys of conversations from before server-issued ids
_LEGACY_ID_SHAPE = re.compile(r"[0-9a-f]{32}")


def _derive(secret: bytes, purpose: bytes) -> bytes:
    return hmac.new(secret, b"chatmon-identity:" + purpose, hashlib.sha256).digest()


class IdentityIssuer:
    """Issues and checks browser identity tokens, and hashes ids into owner keys.

    Args:
        secret: the instance secret (``SESSION_SECRET`` or the generated one); the
            signing and hashing keys are derived from it, one per purpose.
    """

    def __init__(self, secret: bytes) -> None:
        self._sign_key = _derive(secret, b"sign")
        self._owner_key = _derive(secret, b"owner")

    def issue(self) -> str:
        """A new identity token ``v1.<id>.<signature>`` for a browser that has none."""
        browser_id = secrets.token_hex(_ID_BYTES)
        return f"{_VERSION}.{browser_id}.{self._signature(browser_id)}"

    def verify(self, token: str | None) -> str | None:
        """The browser id in a token this server signed; None for anything else."""
        if not token or len(token) > _MAX_TOKEN_CHARS:
            return None
        version, _, rest = token.partition(".")
        browser_id, _, signature = rest.partition(".")
        if version != _VERSION or not _ID_SHAPE.fullmatch(browser_id):
            return None
        if not hmac.compare_digest(signature.encode(), self._signature(browser_id).encode()):
            return None
        return browser_id

    def owner_key(self, browser_id: str) -> str:
        """The keyed one-way hash that stands for ``browser_id`` everywhere outside the cookie."""
        digest = hmac.new(self._owner_key, browser_id.encode(), hashlib.sha256).hexdigest()
        return "b_" + digest[:30]

    def owner_of(self, token: str | None) -> str | None:
        """The owner key of a valid token, or None."""
        browser_id = self.verify(token)
        return self.owner_key(browser_id) if browser_id else None

    def _signature(self, browser_id: str) -> str:
        mac = hmac.new(self._sign_key, browser_id.encode(), hashlib.sha256).digest()
        return base64.urlsafe_b64encode(mac).rstrip(b"=").decode()


def legacy_owner_key(legacy_client_id: str) -> str | None:
    """The owner key that conversations of a pre-upgrade browser id were migrated to.

    Before server-issued identities, a browser kept a random 32-hex id in localStorage
    and conversations were stored under it. The migration replaced each such owner with
    this unkeyed hash (the ids are 128-bit random, so the hash is one-way), so the
    database no longer holds values a browser presents. None for anything not shaped
    like such an id.
    """
    if not isinstance(legacy_client_id, str) or not _LEGACY_ID_SHAPE.fullmatch(legacy_client_id):
        return None
    return LEGACY_PREFIX + hashlib.sha256(legacy_client_id.encode()).hexdigest()[:32]
