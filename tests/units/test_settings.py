"""Settings: defaults, aliases, and bad values that stop startup naming the variable."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from chatmon.settings import SettingsError, load_settings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(autouse=True)
def _no_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no .env of the developer's is read
    for name in (
        "LLM_MODEL",
        "LLM_API_BASE",
        "LLM_API_KEY",
        "GEMINI_API_KEY",
        "GOOGLE_GEMINI_BASE_URL",
        "LLM_TEMPERATURE",
    ):
        monkeypatch.delenv(name, raising=False)


def test_settings_defaults_to_offline_demo_model() -> None:
    settings = load_settings()
    assert settings.llm_model == "demo"
    assert settings.is_demo
    assert settings.llm_temperature == 0.7
    assert settings.max_history_messages == 20
    assert settings.max_message_chars == 16000


def test_settings_gemini_aliases_configure_proxy(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_MODEL", "openai/gemini-3-flash")
    monkeypatch.setenv("GOOGLE_GEMINI_BASE_URL", "https://proxy.example/")
    monkeypatch.setenv("GEMINI_API_KEY", "sk-secret-123")
    settings = load_settings()
    assert settings.llm_api_base == "https://proxy.example"
    assert settings.llm_api_key is not None
    assert settings.llm_api_key.get_secret_value() == "sk-secret-123"
    assert "sk-secret-123" not in repr(settings)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("LLM_TEMPERATURE", "3.5"),
        ("LLM_TEMPERATURE", "warm"),
        ("REQUEST_TIMEOUT", "-1"),
        ("MAX_HISTORY_MESSAGES", "0"),
        ("LLM_API_BASE", "proxy.example"),
        ("DATABASE_URL", "chatmon.db"),
        ("PORT", "70000"),
        ("FEEDBACK_REVIEW", "maybe"),
    ],
)
def test_settings_bad_value_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=variable):
        load_settings()


def test_settings_error_never_echoes_the_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_API_BASE", "sk-looks-like-a-key")
    with pytest.raises(SettingsError) as caught:
        load_settings()
    assert "sk-looks-like-a-key" not in str(caught.value)


def test_app_startup_stops_on_bad_variable() -> None:
    env = {**os.environ, "LLM_TEMPERATURE": "9"}
    result = subprocess.run(
        [sys.executable, "-c", "import chatmon.chatmon"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "LLM_TEMPERATURE" in result.stderr
    assert "Traceback" not in result.stderr


def test_settings_empty_values_mean_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_PRICE_INPUT_PER_1M", "")
    monkeypatch.setenv("LLM_API_BASE", "")
    settings = load_settings()
    assert settings.llm_price_input_per_1m is None
    assert settings.llm_api_base is None


def test_env_example_loads_as_valid_settings(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    (tmp_path / ".env").write_text((ROOT / ".env.example").read_text())
    monkeypatch.delenv("DATABASE_URL", raising=False)
    settings = load_settings()
    assert settings.is_demo
    assert settings.database_url == "sqlite:///chatmon.db"


@pytest.mark.parametrize(
    ("env", "expected"),
    [
        ({}, []),  # the page's own origin only (the middleware checks it), never "*"
        ({"PUBLIC_URL": "https://chat.example.com/some/path"}, ["https://chat.example.com"]),
        (
            {
                "PUBLIC_URL": "https://chat.example.com",
                "CORS_ALLOWED_ORIGINS": "https://a.example, https://b.example/",
            },
            ["https://a.example", "https://b.example"],
        ),
    ],
)
def test_cors_is_restricted_to_public_url(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], expected: list[str]
) -> None:
    for name in ("PUBLIC_URL", "CORS_ALLOWED_ORIGINS"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert load_settings().cors_origins == expected


@pytest.mark.parametrize(
    "variable", ["MONITOR_PASSWORD", "CHAT_PASSWORD", "SESSION_SECRET", "METRICS_TOKEN"]
)
@pytest.mark.parametrize(
    "placeholder",
    [
        "changeme",
        "CHANGE_ME_PLEASE",
        "secret",
        "secret123",
        "your-secret-here",
        "password",
        "xxxxxxxxxxxxxxxxxxxx",
        "<your token>",
        "changethis-to-something-long",
    ],
)
def test_placeholder_secrets_stop_startup(
    monkeypatch: pytest.MonkeyPatch, variable: str, placeholder: str
) -> None:
    monkeypatch.setenv(variable, placeholder)
    with pytest.raises(SettingsError, match=variable) as caught:
        load_settings()
    assert placeholder not in str(caught.value)


@pytest.mark.parametrize(
    "value", ["s8-Kq2-vLm0-Xw4", "correct horse battery staple", "hunter2-of-mine"]
)
def test_real_secrets_are_accepted(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("MONITOR_PASSWORD", value)
    monkeypatch.setenv("SESSION_SECRET", value + "-signing-key")
    settings = load_settings()
    assert settings.monitor_password is not None


@pytest.mark.parametrize(
    "variable", ["MONITOR_PASSWORD", "CHAT_PASSWORD", "SESSION_SECRET", "METRICS_TOKEN"]
)
def test_a_blank_secret_is_unset_not_a_placeholder(
    monkeypatch: pytest.MonkeyPatch, variable: str
) -> None:
    monkeypatch.setenv(variable, "   ")  # the blank check runs before the placeholder one
    assert getattr(load_settings(), variable.lower()) is None


def test_app_startup_stops_on_a_placeholder_secret_naming_it() -> None:
    env = {**os.environ, "SESSION_SECRET": "changeme-changeme"}
    result = subprocess.run(
        [sys.executable, "-c", "import chatmon.chatmon"],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert "SESSION_SECRET" in result.stderr and "placeholder" in result.stderr
    assert "changeme-changeme" not in result.stderr
    assert "Traceback" not in result.stderr


def test_monitor_is_behind_a_login_by_default() -> None:
    assert load_settings().monitor_auth is True


def test_monitor_auth_off_with_a_password_is_a_contradiction(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("MONITOR_AUTH", "off")
    assert load_settings().monitor_auth is False
    monkeypatch.setenv("MONITOR_PASSWORD", "a-real-password-42")
    with pytest.raises(SettingsError, match="MONITOR_AUTH"):
        load_settings()


@pytest.mark.parametrize(
    "value", ["*", "https://a.example,*", "a.example", "https://a.example/path"]
)
def test_cors_wildcard_or_non_origins_stop_startup(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("CORS_ALLOWED_ORIGINS", value)
    with pytest.raises(SettingsError, match="CORS_ALLOWED_ORIGINS"):
        load_settings()


@pytest.mark.parametrize("value", ["-1", "many", "99"])
def test_trusted_proxy_hops_must_be_a_small_count(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("TRUSTED_PROXY_HOPS", value)
    with pytest.raises(SettingsError, match="TRUSTED_PROXY_HOPS"):
        load_settings()


def test_reflex_config_gets_the_same_proxy_hops_and_origins() -> None:
    env = {**os.environ, "TRUSTED_PROXY_HOPS": "2", "PUBLIC_URL": "https://chat.example.com"}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            "import rxconfig; c = rxconfig.config; "
            "print(c.trusted_proxy_hops, list(c.cors_allowed_origins))",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.stdout.strip() == "2 ['https://chat.example.com']", result.stderr


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("BUDGET_TIMEZONE", "Mars/Olympus"),
        ("BUDGET_WARN_PERCENT", "50,lots"),
        ("BUDGET_WARN_PERCENT", "0,80"),
        ("BUDGET_ACTION", "panic"),
        ("DAILY_BUDGET_USD", "-1"),
        ("MONTHLY_BUDGET_USD", "lots"),
        ("BUDGET_FORECAST_HORIZON_MINUTES", "0"),
        ("ALERT_FEEDBACK_WINDOW_HOURS", "0"),
        ("ALERT_DISSATISFACTION_THRESHOLD", "101"),
        ("LLM_PRICE_INPUT_PER_1M", "0.1"),  # without its output price
    ],
)
def test_bad_budget_and_price_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(
        SettingsError,
        match=variable if variable != "LLM_PRICE_INPUT_PER_1M" else "LLM_PRICE_OUTPUT_PER_1M",
    ):
        load_settings()


def test_fallback_action_needs_a_fallback_model(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("BUDGET_ACTION", "fallback")
    with pytest.raises(SettingsError, match="BUDGET_FALLBACK_MODEL"):
        load_settings()


def test_daily_budget_defaults_to_the_daily_cost_threshold(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DAILY_COST_THRESHOLD", "20")
    assert load_settings().daily_budget == 20.0
    monkeypatch.setenv("DAILY_BUDGET_USD", "35")
    settings = load_settings()
    assert settings.daily_budget == 35.0
    assert settings.budget_warn_levels == [50.0, 80.0, 100.0]


def test_feedback_review_off_switch(monkeypatch: pytest.MonkeyPatch) -> None:
    assert load_settings().feedback_review is True
    monkeypatch.setenv("FEEDBACK_REVIEW", "off")
    assert load_settings().feedback_review is False
