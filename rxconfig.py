"""Reflex configuration. Runtime settings live in chatmon/settings/."""

import os

# Offline switches, set here so every `reflex` command honours them.
os.environ.setdefault("REFLEX_USE_NPM", "1")
os.environ.setdefault("REFLEX_TELEMETRY_ENABLED", "false")
os.environ.setdefault("REFLEX_CHECK_LATEST_VERSION", "false")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")

from chatmon.services.limits import socket_max_message_chars
from chatmon.settings import (
    Settings,
    SettingsError,
    get_settings,
    server_variables_in_env_file,
)

# Reflex's and Granian's own variables work from .env too (the environment wins).
for _name, _value in server_variables_in_env_file().items():
    os.environ.setdefault(_name, _value)

try:
    _db_url = get_settings().database_url
    _cors_origins = get_settings().cors_origins  # [] = the page's own origin only
    _proxy_hops = get_settings().trusted_proxy_hops  # the HTTP side reads the same setting
    _max_message_chars = get_settings().max_message_chars
except SettingsError:  # the app module reports the bad variable
    _db_url, _cors_origins, _proxy_hops = "sqlite:///chatmon.db", [], 0
    _max_message_chars = Settings.model_fields["max_message_chars"].default

# The largest websocket message the server reads: what a chat message of
# MAX_MESSAGE_CHARS needs, plus headroom (README, "Limits"). The composer stops a
# longer message in the page; the server drops a connection that sends more, and the
# page reconnects.
os.environ.setdefault(
    "REFLEX_SOCKET_MAX_HTTP_BUFFER_SIZE", str(socket_max_message_chars(_max_message_chars))
)

import reflex as rx

config = rx.Config(
    app_name="chatmon",
    telemetry_enabled=False,
    db_url=_db_url,
    cors_allowed_origins=_cors_origins,
    trusted_proxy_hops=_proxy_hops,
    show_built_with_reflex=False,
    plugins=[rx.plugins.RadixThemesPlugin(theme=rx.theme(accent_color="teal", radius="large"))],
    disable_plugins=[rx.plugins.SitemapPlugin],
)
