"""The Reflex and Granian variables of ``.env``, which rxconfig exports for them."""

from __future__ import annotations

from pathlib import Path

# Reflex and Granian read their own variables (REFLEX_REDIS_URL, REFLEX_API_URL,
# GRANIAN_WORKERS, ...) from the process environment only.
OWN_PREFIXES_OF_THE_SERVER = ("REFLEX_", "GRANIAN_")


def server_variables_in_env_file(env_file: Path = Path(".env")) -> dict[str, str]:
    """The Reflex and Granian variables set in ``.env``, for rxconfig to export.

    So ``.env`` configures those too, while every other variable in it stays in
    chatmon's settings (nothing else puts ``.env`` into the environment).
    """
    if not env_file.is_file():
        return {}
    from dotenv import dotenv_values  # pydantic-settings' own .env reader

    return {
        name: value
        for name, value in dotenv_values(env_file).items()
        if value and name.startswith(OWN_PREFIXES_OF_THE_SERVER)
    }
