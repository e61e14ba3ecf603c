"""What a request costs, or a loud "unknown": never a silent $0.

LiteLLM's cost functions do the arithmetic (cached input tokens, tiered prices), with
its bundled, offline price map (``LITELLM_LOCAL_MODEL_COST_MAP``) and ``LLM_PRICE_*`` as
custom prices for the configured model. litellm itself is loaded by ``litellm_import``.

A map entry is not proof of a price: LiteLLM 1.106 lists ``openai/gemini-3-flash`` and
every ``ollama/*`` model at input 0 / output 0. Such an entry counts as *unknown*
unless the operator said so explicitly (``LLM_PRICE_INPUT_PER_1M=0`` and
``LLM_PRICE_OUTPUT_PER_1M=0``, e.g. a local Ollama). Unknown-price requests are
recorded with cost NULL and ``priced = False``; the cost alerts cannot see them, which
``/health``, the monitor page and the startup log say out loud.
"""

from __future__ import annotations

import functools
import logging
from dataclasses import dataclass
from typing import Any, Literal

from chatmon.services.litellm_import import litellm_module
from chatmon.settings import DEMO_MODEL, Settings

log = logging.getLogger(__name__)

PriceSource = Literal["custom", "map", "demo", "unknown"]

FIX_HINT = (
    "set LLM_PRICE_INPUT_PER_1M and LLM_PRICE_OUTPUT_PER_1M (USD per 1M tokens; "
    "0 and 0 for a free local model)"
)


@dataclass(frozen=True)
class Price:
    """Where a model's price comes from, per 1M tokens (None when unknown)."""

    model: str
    source: PriceSource
    input_per_1m: float | None = None
    output_per_1m: float | None = None
    reason: str = ""  # why the price is unknown (empty when known)

    @property
    def known(self) -> bool:
        return self.source != "unknown"

    def warning(self) -> str:
        """The sentence for /health, the monitor and the log: what is wrong and the fix."""
        if self.known:
            return ""
        return (
            f"cost alerts cannot fire for model {self.model}: {self.reason}; "
            f"requests are counted as unpriced, not $0. Fix: {FIX_HINT}"
        )


def _custom_prices(settings: Settings, model: str) -> tuple[float, float] | None:
    """LLM_PRICE_* apply to the configured model only (a fallback model has its own)."""
    if model != settings.llm_model:
        return None
    if settings.llm_price_input_per_1m is None or settings.llm_price_output_per_1m is None:
        return None
    return settings.llm_price_input_per_1m, settings.llm_price_output_per_1m


def price_of(settings: Settings, model: str | None = None) -> Price:
    """The price of ``model`` (default: LLM_MODEL). Cached; safe to call per request."""
    model = model or settings.llm_model
    custom = _custom_prices(settings, model)
    return _price_of(model, custom)


@functools.lru_cache(maxsize=64)
def _price_of(model: str, custom: tuple[float, float] | None) -> Price:
    if custom is not None:
        return Price(model, "custom", custom[0], custom[1])
    if model == DEMO_MODEL:
        return Price(model, "demo", 0.0, 0.0)
    try:
        info = litellm_module().get_model_info(model)
    except Exception:  # noqa: BLE001 - LiteLLM raises for a model it has not mapped
        return Price(model, "unknown", reason="LiteLLM's price map does not know it")
    per_token_in = info.get("input_cost_per_token")
    per_token_out = info.get("output_cost_per_token")
    if per_token_in is None or per_token_out is None:
        return Price(model, "unknown", reason="LiteLLM's price map has no token prices for it")
    if not per_token_in and not per_token_out:
        return Price(model, "unknown", reason="LiteLLM's price map lists it at $0 (a placeholder)")
    return Price(model, "map", per_token_in * 1e6, per_token_out * 1e6)


def cost_usd(
    settings: Settings,
    *,
    input_tokens: int,
    output_tokens: int,
    usage: Any = None,
    model: str | None = None,
) -> float | None:
    """Cost of one call in USD, or None when the model's price is unknown.

    ``usage`` is the provider's usage object as LiteLLM parsed it; when given, LiteLLM
    prices its cached-input tokens (and tiers) as the map says. With LLM_PRICE_* set,
    every input token is charged at LLM_PRICE_INPUT_PER_1M (an operator's custom price
    has no cache discount to apply: the conservative figure).
    """
    price = price_of(settings, model)
    if not price.known:
        return None
    if price.source == "demo":
        return 0.0
    model = model or settings.llm_model
    ll = litellm_module()
    kwargs: dict[str, Any] = {
        "model": model,
        "prompt_tokens": input_tokens,
        "completion_tokens": output_tokens,
    }
    if price.source == "custom":
        from litellm.types.utils import CostPerToken

        kwargs["custom_cost_per_token"] = CostPerToken(
            input_cost_per_token=(price.input_per_1m or 0.0) / 1e6,
            output_cost_per_token=(price.output_per_1m or 0.0) / 1e6,
        )
    elif isinstance(usage, ll.Usage):
        kwargs["usage_object"] = usage
    try:
        prompt_cost, completion_cost = ll.cost_per_token(**kwargs)
    except Exception:  # noqa: BLE001 - a pricing bug must not lose the request's record
        log.warning("pricing %s failed; the request is recorded as unpriced", model, exc_info=True)
        return None
    return float(prompt_cost) + float(completion_cost)


def price_known(model: str) -> bool:
    """Whether ``model`` has a price under the process's settings (the recorder's flag)."""
    from chatmon.settings import get_settings

    return price_of(get_settings(), model).known


def price_known_without_import(model: str) -> bool:
    """:func:`price_known` for the event loop: never pays LiteLLM's seconds-long import.

    Before litellm is imported (a refusal in the first seconds after start) a model
    without ``LLM_PRICE_*`` counts as priced here; the recorder, in its thread, still
    flags the row.
    """
    import sys

    from chatmon.settings import get_settings

    settings = get_settings()
    if "litellm" not in sys.modules and _custom_prices(settings, model) is None:
        return True
    return price_of(settings, model).known


def log_startup_warning(settings: Settings) -> Price:
    """Log once, loudly, when the configured model's price is unknown. Returns the price."""
    price = price_of(settings)
    if not price.known:
        log.warning("unpriced model: %s", price.warning())
    return price
