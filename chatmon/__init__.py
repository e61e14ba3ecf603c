"""chatmon: an LLM chatbot with production monitoring, as one Reflex app.

Importing the package sets the switches of the libraries it uses before any of them is
imported: LiteLLM in its default "DEV" mode reads ``.env`` by itself at import (and would
put every variable there into the process environment); chatmon's settings read ``.env``
once, and pass the provider settings to LiteLLM explicitly. Nothing may download at run
time either: LiteLLM's bundled cost map, no telemetry.
"""

import os

__version__ = "0.9.0"

os.environ.setdefault("LITELLM_MODE", "PRODUCTION")
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("LITELLM_TELEMETRY", "False")
