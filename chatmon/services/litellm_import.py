"""The one place that imports litellm: once, offline, its loggers routed through ours.

A leaf (it imports nothing of chatmon), so the LLM client and the price lookup can both
use it without importing each other. Logging, which lives above the services, registers
what must run right after the import with :func:`after_import`.
"""

from __future__ import annotations

import functools
import os
import threading
from collections.abc import Callable
from typing import Any

# Offline switch: without it `import litellm` fetches the model cost map from the network.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# LiteLLM's own (plain, unmasked) handler prints only errors while it is being imported;
# right after the import our JSON, masked handlers take over (see litellm_module).
os.environ.setdefault("LITELLM_LOG", "ERROR")


_after_import: list[Callable[[], None]] = []
_hooks_lock = threading.Lock()
_imported = False


def after_import(hook: Callable[[], None]) -> None:
    """Call ``hook`` right after litellm is imported (now, if it already is).

    Logging uses it: LiteLLM attaches its own plain-text, unmasked handler when it is
    imported, and the hook routes that logger through ours again.
    """
    with _hooks_lock:
        if hook not in _after_import:
            _after_import.append(hook)
        imported = _imported
    if imported:
        hook()


@functools.cache
def litellm_module() -> Any:
    """Import litellm once (it takes seconds) with its network features switched off."""
    global _imported
    import litellm

    with _hooks_lock:
        _imported = True
        hooks = list(_after_import)
    for hook in hooks:
        hook()
    litellm.telemetry = False
    litellm.suppress_debug_info = True
    litellm.drop_params = True
    return litellm
