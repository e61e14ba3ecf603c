"""The LLM provider's settings: the model, its endpoint and key, prices, fallbacks."""

from __future__ import annotations

from typing import Self

from pydantic import (
    AliasChoices,
    BaseModel,
    Field,
    PrivateAttr,
    SecretStr,
    field_validator,
    model_validator,
)

from chatmon.settings.values import (
    DEMO_MODEL,
    MAX_FALLBACK_MODELS,
    FallbackModel,
    parse_fallback_models,
)


class LLMSection(BaseModel):
    """LLM_* (and the Streamlit version's LLM_PROVIDER, BASE_MODEL_ID, GEMINI_* names)."""

    llm_model: str = Field(default=DEMO_MODEL, min_length=1)
    # The Streamlit version's names, read as LLM_MODEL=<LLM_PROVIDER>/<BASE_MODEL_ID> when
    # LLM_MODEL is not set (its .env works unchanged; startup logs the new name).
    llm_provider: str | None = Field(default=None, pattern=r"^[A-Za-z0-9_.-]{1,40}$")
    base_model_id: str | None = Field(default=None, min_length=1, max_length=200)
    _model_from_seed_names: bool = PrivateAttr(default=False)
    llm_api_base: str | None = Field(
        default=None, validation_alias=AliasChoices("LLM_API_BASE", "GOOGLE_GEMINI_BASE_URL")
    )
    llm_api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("LLM_API_KEY", "GEMINI_API_KEY")
    )
    llm_temperature: float = Field(default=0.7, ge=0.0, le=2.0)
    llm_price_input_per_1m: float | None = Field(default=None, ge=0.0)
    llm_price_output_per_1m: float | None = Field(default=None, ge=0.0, validate_default=True)
    request_timeout: float = Field(default=30.0, gt=0.0)
    llm_max_retries: int = Field(default=3, ge=0, le=10)
    llm_max_tokens: int | None = Field(default=None, ge=1, le=1_000_000)  # unset: no cap
    # Models that answer when LLM_MODEL fails (chatmon.services.turn), tried in order;
    # fallback N's provider settings are LLM_FALLBACK_<N>_API_BASE / _API_KEY (unset: the
    # provider's default URL and LiteLLM's own key variable, e.g. OPENAI_API_KEY).
    llm_fallback_models: str | None = None
    llm_fallback_1_api_base: str | None = None
    llm_fallback_1_api_key: SecretStr | None = None
    llm_fallback_2_api_base: str | None = None
    llm_fallback_2_api_key: SecretStr | None = None
    llm_fallback_3_api_base: str | None = None
    llm_fallback_3_api_key: SecretStr | None = None

    @field_validator(
        "llm_api_base",
        "llm_fallback_1_api_base",
        "llm_fallback_2_api_base",
        "llm_fallback_3_api_base",
        mode="after",
    )
    @classmethod
    def _base_url_is_http(cls, value: str | None) -> str | None:
        if value in (None, ""):
            return None
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @field_validator("llm_fallback_models", mode="after")
    @classmethod
    def _fallback_models_parse(cls, value: str | None) -> str | None:
        models = parse_fallback_models(value)
        return ",".join(models) or None

    @field_validator(
        "llm_api_key",
        "llm_fallback_1_api_key",
        "llm_fallback_2_api_key",
        "llm_fallback_3_api_key",
        mode="after",
    )
    @classmethod
    def _empty_key_is_none(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        return value

    @property
    def is_demo(self) -> bool:
        """True when no real provider is configured and the offline demo model answers."""
        return self.llm_model == DEMO_MODEL

    @model_validator(mode="after")
    def _legacy_model_names(self) -> Self:
        """LLM_PROVIDER + BASE_MODEL_ID (the seed's names) become LLM_MODEL, unless it is set."""
        if self.llm_provider is None and self.base_model_id is None:
            return self
        if "llm_model" in self.model_fields_set:
            return self  # LLM_MODEL wins; startup_notices() says the old names are unused
        if not (self.llm_provider and self.base_model_id):
            missing = "BASE_MODEL_ID" if self.llm_provider else "LLM_PROVIDER"
            raise ValueError(
                f"{missing} is missing: LLM_PROVIDER and BASE_MODEL_ID are read together as"
                " LLM_MODEL=<provider>/<model> (or set LLM_MODEL instead)"
            )
        self.llm_model = f"{self.llm_provider}/{self.base_model_id}"
        self._model_from_seed_names = True
        return self

    @model_validator(mode="after")
    def _prices_come_in_pairs(self) -> Self:
        """One of the two prices alone cannot price a request: say which one is missing."""
        given = (self.llm_price_input_per_1m is None, self.llm_price_output_per_1m is None)
        if given == (False, True):
            raise ValueError(
                "LLM_PRICE_OUTPUT_PER_1M is missing: set both prices (0 and 0 for a free"
                " model), or neither"
            )
        if given == (True, False):
            raise ValueError(
                "LLM_PRICE_INPUT_PER_1M is missing: set both prices (0 and 0 for a free"
                " model), or neither"
            )
        return self

    @model_validator(mode="after")
    def _fallbacks_fit_their_models(self) -> Self:
        """Fallback settings for a model LLM_FALLBACK_MODELS does not list are a mistake
        (a key meant for another model); the primary cannot be its own fallback."""
        models = self.llm_fallback_models.split(",") if self.llm_fallback_models else []
        if self.llm_model in models:
            raise ValueError(
                f"LLM_FALLBACK_MODELS lists LLM_MODEL ({self.llm_model}): a model cannot be"
                " its own fallback"
            )
        for number in range(1, MAX_FALLBACK_MODELS + 1):
            for suffix in ("api_base", "api_key"):
                if number > len(models) and getattr(self, f"llm_fallback_{number}_{suffix}"):
                    raise ValueError(
                        f"LLM_FALLBACK_{number}_{suffix.upper()} is set but LLM_FALLBACK_MODELS"
                        f" names {len(models)} model(s): fallback {number} does not exist"
                    )
        return self

    @property
    def fallback_models(self) -> list[FallbackModel]:
        """LLM_FALLBACK_MODELS in order, each with its own base URL and key (if set).

        Empty with the demo model: it cannot fail, so nothing ever falls back.
        """
        if self.is_demo or not self.llm_fallback_models:
            return []
        return [
            FallbackModel(
                model=model,
                api_base=getattr(self, f"llm_fallback_{number}_api_base"),
                api_key=getattr(self, f"llm_fallback_{number}_api_key"),
            )
            for number, model in enumerate(self.llm_fallback_models.split(","), start=1)
        ]

    def startup_notices(self) -> list[str]:
        """What startup should tell the operator about how this configuration was read."""
        notices = []
        if self.is_demo and self.llm_fallback_models:
            notices.append("LLM_FALLBACK_MODELS is ignored: the demo model never fails")
        if self.llm_provider is None and self.base_model_id is None:
            return notices
        if not self._model_from_seed_names:
            return [*notices, "LLM_PROVIDER/BASE_MODEL_ID are ignored: LLM_MODEL is set and wins"]
        return [
            *notices,
            f"LLM_PROVIDER + BASE_MODEL_ID read as LLM_MODEL={self.llm_model};"
            " set LLM_MODEL instead (the old names keep working)",
        ]
