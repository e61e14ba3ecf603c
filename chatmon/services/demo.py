"""The built-in offline ``demo`` model: answers without any provider, for first runs."""

from __future__ import annotations

DEMO_HINT = "Set LLM_MODEL (and LLM_API_BASE / LLM_API_KEY) in .env to talk to a real model."


def demo_reply_words(messages: list[dict[str, str]]) -> list[str]:
    """A short, deterministic reply to the last user message, split into streamable words."""
    last_user = next((str(m["content"]) for m in reversed(messages) if m.get("role") == "user"), "")
    quoted = " ".join(last_user.split())
    if len(quoted) > 200:
        quoted = quoted[:199] + "…"
    text = (
        "Hello! I am the **demo model**: I run offline and only echo what you send. "
        f"You said: *{quoted}*. " + DEMO_HINT
    )
    words = text.split(" ")
    return [word + " " for word in words[:-1]] + [words[-1]]
