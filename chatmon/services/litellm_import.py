"""The one place that imports litellm: once, offline, its loggers routed through ours.

A leaf of the services (it imports no other service), so the LLM client and the price
lookup can both use it without importing each other.
"""

from __future__ import annotations

import functools
import os
from typing import Any

# Offline switch: without it `import litellm` fetches the model cost map from the network.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
# LiteLLM's own (plain, unmasked) handler prints only errors while it is being imported;
# right after the import our JSON, masked handlers take over (see litellm_module).
os.environ.setdefault("LITELLM_LOG", "ERROR")


@functools.cache
def litellm_module() -> Any:
    """Import litellm once (it takes seconds) with its network features switched off."""
    import litellm

    from chatmon.logging_setup import adopt_library_loggers

    # LiteLLM just attached its own plain-text, unmasked handler: route it through ours.
    adopt_library_loggers()
    litellm.telemetry = False
    litellm.suppress_debug_info = True
    litellm.drop_params = True
    return litellm
