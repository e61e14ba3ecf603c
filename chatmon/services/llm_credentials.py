"""Which provider credentials a model needs and cannot find, known before any call.

Without a key LiteLLM fails the request as a provider ``InternalServerError``, which
reads as the provider's fault and is retried; known up front, it is an ``auth`` failure
with no provider call (``chatmon.services.llm``), and startup can say so
(``chatmon.tasks.warm_up``).
"""

from __future__ import annotations

from pydantic import SecretStr

from chatmon.services.litellm_import import litellm_module
from chatmon.settings import DEMO_MODEL, Settings


def missing_credentials(
    settings: Settings,
    *,
    model: str | None = None,
    api_base: str | None = None,
    api_key: SecretStr | None = None,
) -> list[str]:
    """The provider variables LiteLLM needs for LLM_MODEL and cannot find; [] = none.

    ``model`` with ``api_base``/``api_key``: a fallback model's own settings instead
    (without ``model``, LLM_MODEL's: LLM_API_BASE and LLM_API_KEY).

    Without a key LiteLLM fails the request as a provider ``InternalServerError``
    ("Missing credentials"), which reads as the provider's fault and is retried. Known up
    front, it is an ``auth`` failure with no provider call, and startup can say so.
    """
    if (model or settings.llm_model) == DEMO_MODEL:
        return []
    if model is None:
        api_base, api_key = settings.llm_api_base, settings.llm_api_key
    key = api_key.get_secret_value() if api_key else None
    try:
        found = litellm_module().validate_environment(
            model=model or settings.llm_model, api_key=key, api_base=api_base
        )
    except Exception:  # noqa: BLE001 - an unknown provider: let the call itself tell
        return []
    if found.get("keys_in_environment"):
        return []
    # Only credentials: a missing base URL has a default (Ollama's is localhost:11434).
    names = [str(name) for name in found.get("missing_keys") or []]
    return [name for name in names if name.endswith(("_KEY", "_TOKEN"))]


def fallback_credential_warnings(settings: Settings) -> list[str]:
    """One line per LLM_FALLBACK_MODELS model whose provider key LiteLLM cannot find.

    Such a fallback would fail every hand-over as ``auth`` without a provider call, so
    startup says it now (naming the variables, never a value). Blocking: call from a thread.
    """
    warnings = []
    for number, fallback in enumerate(settings.fallback_models, start=1):
        missing = missing_credentials(
            settings, model=fallback.model, api_base=fallback.api_base, api_key=fallback.api_key
        )
        if missing:
            warnings.append(
                f"fallback {fallback.model} needs a provider key and none is set: set"
                f" LLM_FALLBACK_{number}_API_KEY (LiteLLM also reads {' or '.join(missing)});"
                " until then it cannot answer when LLM_MODEL fails"
            )
    return warnings
