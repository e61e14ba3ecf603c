"""Alert settings: defaults, the email channel's required companions, bad values named."""

from __future__ import annotations

from pathlib import Path

import pytest

from chatmon.settings import SettingsError, load_settings

ALERT_VARIABLES = (
    "ALERT_ERROR_RATE_THRESHOLD",
    "ALERT_LATENCY_P95_THRESHOLD",
    "ALERT_COST_THRESHOLD",
    "DAILY_COST_THRESHOLD",
    "ALERT_MIN_REQUESTS",
    "ALERT_WINDOW_MINUTES",
    "ALERT_COOLDOWN_HOURS",
    "ALERT_CHECK_INTERVAL_SECONDS",
    "ALERT_NO_TRAFFIC_MINUTES",
    "PUBLIC_URL",
    "SMTP_HOST",
    "SMTP_PORT",
    "SMTP_USER",
    "SMTP_PASSWORD",
    "SMTP_STARTTLS",
    "SMTP_SSL",
    "ALERT_EMAIL_FROM",
    "ALERT_EMAIL_TO",
    "SLACK_WEBHOOK_URL",
    "PORT",
)


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.chdir(tmp_path)  # no developer .env
    for name in ALERT_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_alert_defaults_match_the_contract() -> None:
    s = load_settings()
    assert (s.alert_error_rate_threshold, s.alert_latency_p95_threshold) == (10.0, 5.0)
    assert (s.alert_cost_threshold, s.daily_cost_threshold) == (1.0, 50.0)
    assert (s.alert_min_requests, s.alert_window_minutes) == (10, 15.0)
    assert (s.alert_cooldown_hours, s.alert_check_interval_seconds) == (1.0, 60.0)
    assert s.alert_no_traffic_minutes is None
    assert s.smtp_host is None and s.slack_webhook_url is None
    assert s.monitor_url == "http://localhost:3000/monitor"


def test_email_settings_parse(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_HOST", "smtp.example.com")
    monkeypatch.setenv("SMTP_USER", "alerts@example.com")
    monkeypatch.setenv("SMTP_PASSWORD", "app-password-123")
    monkeypatch.setenv("SMTP_SSL", "true")
    monkeypatch.setenv("ALERT_EMAIL_TO", " oncall@example.com,  lead@example.com ")
    monkeypatch.setenv("PUBLIC_URL", "https://chat.example.com/")
    s = load_settings()
    assert s.email_recipients == ["oncall@example.com", "lead@example.com"]
    assert s.alert_email_from == "alerts@example.com"  # SMTP_USER is an address
    assert s.smtp_port_or_default == 465
    assert s.monitor_url == "https://chat.example.com/monitor"
    assert "app-password-123" not in repr(s)


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"ALERT_ERROR_RATE_THRESHOLD": "101"}, "ALERT_ERROR_RATE_THRESHOLD"),
        ({"ALERT_LATENCY_P95_THRESHOLD": "0"}, "ALERT_LATENCY_P95_THRESHOLD"),
        ({"ALERT_COST_THRESHOLD": "-1"}, "ALERT_COST_THRESHOLD"),
        ({"DAILY_COST_THRESHOLD": "lots"}, "DAILY_COST_THRESHOLD"),
        ({"ALERT_MIN_REQUESTS": "0"}, "ALERT_MIN_REQUESTS"),
        ({"ALERT_WINDOW_MINUTES": "0"}, "ALERT_WINDOW_MINUTES"),
        ({"ALERT_COOLDOWN_HOURS": "0"}, "ALERT_COOLDOWN_HOURS"),
        ({"ALERT_CHECK_INTERVAL_SECONDS": "0.5"}, "ALERT_CHECK_INTERVAL_SECONDS"),
        ({"ALERT_NO_TRAFFIC_MINUTES": "-5"}, "ALERT_NO_TRAFFIC_MINUTES"),
        ({"PUBLIC_URL": "chat.example.com"}, "PUBLIC_URL"),
        ({"SMTP_PORT": "0"}, "SMTP_PORT"),
        ({"SMTP_HOST": "smtp.example.com", "ALERT_EMAIL_FROM": "a@example.com"}, "ALERT_EMAIL_TO"),
        ({"SMTP_HOST": "smtp.example.com", "ALERT_EMAIL_TO": "a@example.com"}, "ALERT_EMAIL_FROM"),
        ({"ALERT_EMAIL_TO": "oncall"}, "ALERT_EMAIL_TO"),
        ({"SMTP_USER": "alerts"}, "SMTP_PASSWORD"),
        ({"SMTP_PASSWORD": "secret-without-user"}, "SMTP_PASSWORD"),
        ({"SLACK_WEBHOOK_URL": "hooks.slack.com/services/T/B/x"}, "SLACK_WEBHOOK_URL"),
    ],
)
def test_bad_alert_setting_names_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], variable: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=variable) as caught:
        load_settings()
    for value in env.values():
        if "secret" in value or "hooks" in value:
            assert value not in str(caught.value)
