"""One typed configuration object, read once from the environment (and `.env`).

Every knob chatmon has lives here; nothing else reads ``os.environ``. A bad value
raises :class:`SettingsError` whose message names the variable, so startup stops
with something a person can act on instead of a traceback.

One module per section (``llm``, ``runtime``, ``observability``, ``budget``, ``alerts``,
``access``, ``oncall``), each a pydantic model of its fields and validators; ``model``
composes them into :class:`Settings`; ``values`` and ``placeholders`` hold the parsers;
``loading`` reads and caches. Import from here: the layout inside may change.
"""

from chatmon.settings.loading import SettingsError, get_settings, load_settings
from chatmon.settings.model import Settings
from chatmon.settings.placeholders import is_placeholder_secret
from chatmon.settings.server_env import OWN_PREFIXES_OF_THE_SERVER, server_variables_in_env_file
from chatmon.settings.values import (
    DEMO_MODEL,
    MAX_FALLBACK_MODELS,
    PROJECT_ROOT,
    FallbackModel,
    parse_key_values,
)

__all__ = [
    "DEMO_MODEL",
    "MAX_FALLBACK_MODELS",
    "OWN_PREFIXES_OF_THE_SERVER",
    "PROJECT_ROOT",
    "FallbackModel",
    "Settings",
    "SettingsError",
    "get_settings",
    "is_placeholder_secret",
    "load_settings",
    "parse_key_values",
    "server_variables_in_env_file",
]
