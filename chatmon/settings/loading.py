"""Reading the settings once: one error that names every bad variable, one cached object."""

from __future__ import annotations

import functools
from typing import Any

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from chatmon.settings.model import Settings


class SettingsError(RuntimeError):
    """A configuration value is missing or invalid; the message names the variable."""


def _variable_name(error: ErrorDetails) -> str:
    """The environment variable a pydantic error refers to."""
    loc = error.get("loc") or ("",)
    return str(loc[0]).upper()


def _problem(error: ErrorDetails) -> str:
    """One bad value, named; a rule over several variables names them in its message."""
    name = _variable_name(error)
    message = str(error["msg"]).removeprefix("Value error, ")
    return f"{name}: {message}" if name else message


def load_settings(**overrides: Any) -> Settings:
    """Read and validate the configuration.

    Raises:
        SettingsError: naming every variable that holds a bad value.
    """
    try:
        return Settings(**overrides)
    except ValidationError as exc:
        problems = [_problem(err) for err in exc.errors()]
        raise SettingsError("Invalid configuration: " + "; ".join(problems)) from None


@functools.lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, validated on first use (at startup)."""
    return load_settings()
