"""LLM_FALLBACK_MODELS and LLM_FALLBACK_<N>_API_BASE / _API_KEY: read in order, keys
masked, and bad values stop startup naming the variable (never echoing a key)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from chatmon.settings import MAX_FALLBACK_MODELS, SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[2]
KEY = "sk-openai-fallback-9c1e77d2"


@pytest.fixture(autouse=True)
def _no_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the developer's is read
    for name in os.environ:
        if name.startswith(("LLM_", "GEMINI_", "GOOGLE_GEMINI_")):
            monkeypatch.delenv(name, raising=False)


def test_gemini_primary_with_an_openai_fallback(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_MODEL", "gemini/gemini-2.5-flash")
    monkeypatch.setenv("GEMINI_API_KEY", "AIza-primary-key-1234")
    monkeypatch.setenv("LLM_FALLBACK_MODELS", " openai/gpt-4o-mini , ollama/llama3.2 ")
    monkeypatch.setenv("LLM_FALLBACK_1_API_KEY", KEY)
    monkeypatch.setenv("LLM_FALLBACK_2_API_BASE", "http://localhost:11434/")
    settings = load_settings()
    first, second = settings.fallback_models
    assert (first.model, first.api_base) == ("openai/gpt-4o-mini", None)
    assert first.api_key is not None and first.api_key.get_secret_value() == KEY
    assert (second.model, second.api_base, second.api_key) == (
        "ollama/llama3.2",
        "http://localhost:11434",
        None,
    )
    assert KEY not in repr(settings) and KEY not in str(settings.fallback_models)


def test_no_fallback_models_by_default() -> None:
    assert load_settings().fallback_models == []


def test_demo_model_ignores_fallbacks_and_says_so(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_FALLBACK_MODELS", "openai/gpt-4o-mini")
    settings = load_settings()
    assert settings.fallback_models == []
    assert any("LLM_FALLBACK_MODELS is ignored" in n for n in settings.startup_notices())


@pytest.mark.parametrize(
    ("env", "variable", "says"),
    [
        ({"LLM_FALLBACK_MODELS": "openai/gpt 4o"}, "LLM_FALLBACK_MODELS", "not a LiteLLM model"),
        ({"LLM_FALLBACK_MODELS": "a/x,a/x"}, "LLM_FALLBACK_MODELS", "listed twice"),
        ({"LLM_FALLBACK_MODELS": "demo"}, "LLM_FALLBACK_MODELS", "demo model"),
        (
            {"LLM_FALLBACK_MODELS": ",".join(f"a/m{n}" for n in range(MAX_FALLBACK_MODELS + 1))},
            "LLM_FALLBACK_MODELS",
            "at most 3",
        ),
        (
            {"LLM_MODEL": "openai/gpt-4o", "LLM_FALLBACK_MODELS": "openai/gpt-4o"},
            "LLM_FALLBACK_MODELS",
            "its own fallback",
        ),
        (
            {"LLM_FALLBACK_MODELS": "a/x", "LLM_FALLBACK_1_API_BASE": "localhost:4000"},
            "LLM_FALLBACK_1_API_BASE",
            "http://",
        ),
        ({"LLM_FALLBACK_2_API_KEY": KEY}, "LLM_FALLBACK_2_API_KEY", "does not exist"),
        (
            {"LLM_FALLBACK_MODELS": "a/x", "LLM_FALLBACK_2_API_BASE": "http://h/v1"},
            "LLM_FALLBACK_2_API_BASE",
            "names 1 model",
        ),
    ],
)
def test_bad_fallback_setting_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], variable: str, says: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert variable in str(caught.value) and says in str(caught.value)
    assert KEY not in str(caught.value)


def test_blank_fallback_key_means_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_MODEL", "openai/gpt-4o")
    monkeypatch.setenv("LLM_FALLBACK_MODELS", "anthropic/claude-3-5-haiku-latest")
    monkeypatch.setenv("LLM_FALLBACK_1_API_KEY", "   ")
    assert load_settings().fallback_models[0].api_key is None


def test_app_startup_stops_on_a_bad_fallback_setting() -> None:
    env = {
        **os.environ,
        "LLM_FALLBACK_MODELS": "openai/gpt-4o-mini",
        "LLM_FALLBACK_3_API_KEY": KEY,
    }
    result = subprocess.run(
        [sys.executable, "-c", "import chatmon.chatmon"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "LLM_FALLBACK_3_API_KEY" in result.stderr
    assert KEY not in result.stderr and "Traceback" not in result.stderr


def test_a_fallback_key_is_masked_wherever_it_would_be_logged(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from chatmon.services.secrets import mask_secrets, register_settings_secrets

    monkeypatch.setenv("LLM_MODEL", "gemini/gemini-2.5-flash")
    monkeypatch.setenv("LLM_FALLBACK_MODELS", "openai/gpt-4o-mini")
    monkeypatch.setenv("LLM_FALLBACK_1_API_KEY", KEY)
    register_settings_secrets(load_settings())
    masked = mask_secrets(f"openai said: Incorrect API key provided: {KEY}")
    assert KEY not in masked and "openai said" in masked
