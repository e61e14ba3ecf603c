"""Secure by default: the monitor password generated when none is configured.

With MONITOR_AUTH on (the default) and neither MONITOR_PASSWORD nor MONITOR_USERS set,
the first start generates a random password, stores only its PBKDF2 hash (table
``instance_secret``) and hands the password back to the one process that created the
row, which prints it once on the console. Every other worker and instance finds the
row and says nothing. The password itself is written nowhere: not the database, not
LOG_FILE, not the structured logs.
"""

from __future__ import annotations

import secrets

from sqlmodel import Session

from chatmon.services import instance_secrets
from chatmon.services.auth import DEFAULT_MONITOR_USER, hash_password
from chatmon.settings import Settings

GENERATED_PASSWORD_BYTES = 18  # 24 URL-safe characters, 144 bits


def generate_password() -> str:
    """A fresh random monitor password."""
    return secrets.token_urlsafe(GENERATED_PASSWORD_BYTES)


SESSION_SECRET_BYTES = 32


def session_secret(*, session: Session, settings: Settings) -> bytes:
    """SESSION_SECRET's bytes when set, else the generated one (created on first use).

    The generated secret is random, made once per database and never derived from a
    password: every worker and instance on that database agrees on it.
    """
    if settings.session_secret:
        return settings.session_secret.get_secret_value().encode()
    value, _ = instance_secrets.get_or_create_secret(
        session=session,
        name=instance_secrets.SESSION_SECRET,
        make=lambda: secrets.token_urlsafe(SESSION_SECRET_BYTES),
    )
    return value.encode()


def uses_generated_password(settings: Settings) -> bool:
    """Whether the monitor's password is the generated one (none configured)."""
    return settings.monitor_auth and not settings.monitor_password and not settings.monitor_users


def ensure_monitor_password(*, session: Session, settings: Settings) -> str | None:
    """Create the generated password if it is needed and does not exist yet.

    Returns:
        The password in clear, only to the caller that created it (print it once);
        None when it is not needed or already existed.
    """
    if not uses_generated_password(settings):
        return None
    name = instance_secrets.MONITOR_PASSWORD_HASH
    if instance_secrets.read_secret(session=session, name=name) is not None:
        return None
    password = generate_password()
    if instance_secrets.claim_secret(session=session, name=name, value=hash_password(password)):
        return password
    return None  # another worker or instance was first; it prints its own


def reset_monitor_password(*, session: Session) -> str:
    """Replace the generated password with a new one and return it (to print once).

    Sessions signed in with the old one end within a minute: their credential
    fingerprint no longer matches.
    """
    password = generate_password()
    instance_secrets.replace_secret(
        session=session, name=instance_secrets.MONITOR_PASSWORD_HASH, value=hash_password(password)
    )
    return password


def announcement(password: str, *, reset: bool = False) -> str:
    """What the console shows, once, about a generated password."""
    first = (
        "the monitor password was reset."
        if reset
        else "no MONITOR_PASSWORD or MONITOR_USERS is set, so a monitor password was generated."
    )
    return "\n".join(
        [
            "",
            "=" * 72,
            f"chatmon: {first}",
            f"  Sign in at /login (user name optional, e.g. {DEFAULT_MONITOR_USER}) with:",
            "",
            f"      {password}",
            "",
            "  It is shown this once; only its hash is stored. To change it: set",
            "  MONITOR_PASSWORD or MONITOR_USERS, or run",
            "  `python -m chatmon reset-monitor-password` (prints a new one).",
            "=" * 72,
            "",
        ]
    )
