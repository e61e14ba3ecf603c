"""Reflex configuration. Runtime settings live in chatmon/settings.py."""

import os

# Offline switches, set here so every `reflex` command honours them.
os.environ.setdefault("REFLEX_USE_NPM", "1")
os.environ.setdefault("REFLEX_TELEMETRY_ENABLED", "false")
os.environ.setdefault("REFLEX_CHECK_LATEST_VERSION", "false")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# Let an over-long message (up to 8 MB) reach the server, which refuses it with a clear
# message; at the 1 MB default the websocket silently drops it.
os.environ.setdefault("REFLEX_SOCKET_MAX_HTTP_BUFFER_SIZE", str(8 * 1000 * 1000))

import reflex as rx  # noqa: E402

from chatmon.settings import get_settings, SettingsError  # noqa: E402

try:
    _db_url = get_settings().database_url
    _cors_origins = get_settings().cors_origins  # [] = the page's own origin only
    _proxy_hops = get_settings().trusted_proxy_hops  # the HTTP side reads the same setting
except SettingsError:  # the app module reports the bad variable
    _db_url, _cors_origins, _proxy_hops = "sqlite:///chatmon.db", [], 0

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
