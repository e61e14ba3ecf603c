"""What Reflex knows about open tabs. The one module that reaches into Reflex internals
(``reflex_base``), so an upgrade that moves them has one place to mend."""

from __future__ import annotations

from reflex_base.registry import RegistrationContext
from reflex_base.utils.exceptions import ReflexRuntimeError


def tab_connected(token: str) -> bool:
    """Whether the tab with this client token still has its websocket to this worker.

    Background events run in the worker that holds the tab's websocket, so the
    worker's own token table answers (the lookup Reflex's shared states use).
    """
    try:
        namespace = RegistrationContext.get().app.event_namespace
    except (LookupError, ReflexRuntimeError):  # no running app (unit tests)
        return False
    return namespace is not None and token in namespace.token_to_sid
