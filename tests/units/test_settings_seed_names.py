"""Configuration read one way: the seed's `.env` works unchanged, and only chatmon reads `.env`."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from chatmon.settings import SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[2]
SEED_NAMES = ("LLM_MODEL", "LLM_PROVIDER", "BASE_MODEL_ID", "LANGFUSE_HOST", "LANGFUSE_BASE_URL")


@pytest.fixture(autouse=True)
def _no_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the developer's is read
    for name in SEED_NAMES:
        monkeypatch.delenv(name, raising=False)


def test_the_seeds_provider_and_model_names_make_llm_model(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LLM_PROVIDER", "openai")
    monkeypatch.setenv("BASE_MODEL_ID", "gemini-3-flash")
    settings = load_settings()
    assert settings.llm_model == "openai/gemini-3-flash"
    assert settings.startup_notices() == [
        "LLM_PROVIDER + BASE_MODEL_ID read as LLM_MODEL=openai/gemini-3-flash;"
        " set LLM_MODEL instead (the old names keep working)"
    ]


def test_llm_model_wins_over_the_seeds_names_and_says_so(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LLM_MODEL", "openai/gpt-4o-mini")
    monkeypatch.setenv("LLM_PROVIDER", "gemini")
    monkeypatch.setenv("BASE_MODEL_ID", "gemini-1.5-flash")
    settings = load_settings()
    assert settings.llm_model == "openai/gpt-4o-mini"
    assert "ignored" in settings.startup_notices()[0]


def test_no_seed_names_no_notice() -> None:
    assert load_settings().startup_notices() == []


@pytest.mark.parametrize(
    ("given", "missing"), [("LLM_PROVIDER", "BASE_MODEL_ID"), ("BASE_MODEL_ID", "LLM_PROVIDER")]
)
def test_half_of_the_seeds_model_names_stops_startup_naming_the_other(
    monkeypatch: pytest.MonkeyPatch, given: str, missing: str
) -> None:
    monkeypatch.setenv(given, "gemini")
    with pytest.raises(SettingsError, match=f"{missing} is missing"):
        load_settings()


def test_langfuse_base_url_is_the_sdks_name_for_the_host(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LANGFUSE_BASE_URL", "https://langfuse.example.com")
    assert load_settings().langfuse_host == "https://langfuse.example.com"


def test_litellm_never_reads_dotenv_itself() -> None:
    """LiteLLM in its default mode calls ``dotenv.load_dotenv()`` at import, which puts
    every variable of the project's ``.env`` into the process environment behind
    chatmon's settings. Importing chatmon's LLM client must not let it."""
    trap = (
        "import dotenv\n"
        "def refuse(*args, **kwargs):\n"
        "    raise SystemExit('litellm read .env by itself')\n"
        "dotenv.load_dotenv = refuse\n"
        "import chatmon.services.llm\n"
        "import litellm\n"
        "print('ok')\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "LITELLM_MODE"}
    result = subprocess.run(
        [sys.executable, "-c", trap],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip().endswith("ok")


def test_reflex_and_granian_variables_work_from_dotenv(tmp_path: Path) -> None:
    """Reflex reads REFLEX_* and GRANIAN_* from the environment only; rxconfig exports those
    found in ``.env`` (and nothing else of it: the provider key stays in the settings)."""
    (tmp_path / ".env").write_text(
        "REFLEX_REDIS_URL=redis://127.0.0.1:6399\nGRANIAN_WORKERS=3\nLLM_API_KEY=sk-stays-put-123\n"
    )
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("REFLEX_REDIS_URL", "GRANIAN_", "LLM_API_KEY"))
    }
    env["PYTHONPATH"] = str(ROOT)
    show = (
        "import os, rxconfig\n"
        "print(rxconfig.config.redis_url, os.environ.get('GRANIAN_WORKERS'),"
        " os.environ.get('LLM_API_KEY'))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", show],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.split() == ["redis://127.0.0.1:6399", "3", "None"]


@pytest.mark.parametrize(
    ("given", "missing"),
    [
        ("LLM_PRICE_INPUT_PER_1M", "LLM_PRICE_OUTPUT_PER_1M"),
        ("LLM_PRICE_OUTPUT_PER_1M", "LLM_PRICE_INPUT_PER_1M"),
    ],
)
def test_one_price_alone_stops_startup_naming_the_other(
    monkeypatch: pytest.MonkeyPatch, given: str, missing: str
) -> None:
    monkeypatch.delenv(missing, raising=False)
    monkeypatch.setenv(given, "0.5")
    with pytest.raises(SettingsError, match=f"{missing} is missing"):
        load_settings()
