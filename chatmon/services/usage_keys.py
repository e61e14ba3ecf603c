"""How a usage key (``usage.DIMENSIONS``) is named in text people read.

Keys of "user" and "conversation" are long opaque ids (a user key is a keyed hash):
the monitor's spenders panel, the digest and the budget alert show their first
characters; model names and prompt versions are shown whole.
"""

from __future__ import annotations

SHORT_KEY = 12


def short_key(key: str, by: str) -> str:
    """``key`` as text shows it: model names whole, long ids shortened."""
    if not key:
        return "(none)"
    if by in ("model", "prompt_version") or len(key) <= SHORT_KEY + 1:
        return key
    return key[:SHORT_KEY] + "…"
