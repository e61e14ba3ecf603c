"""The on-call settings refuse bad values at startup, naming the variable."""

from __future__ import annotations

import pytest

from chatmon.settings import SettingsError, load_settings


@pytest.mark.parametrize(
    ("values", "variable", "says"),
    [
        ({"heartbeat_url": "hc-ping.com/abc"}, "HEARTBEAT_URL", "https://"),
        (
            {"heartbeat_url": "https://hc-ping.com/x", "heartbeat_interval_seconds": 30},
            "HEARTBEAT_INTERVAL_SECONDS",
            "ALERT_CHECK_INTERVAL",
        ),
        ({"heartbeat_interval_seconds": 0}, "HEARTBEAT_INTERVAL_SECONDS", "greater than"),
        ({"heartbeat_fail_suffix": "fail"}, "HEARTBEAT_FAIL_SUFFIX", "starting with /"),
        ({"probe_interval_seconds": 10}, "PROBE_INTERVAL_SECONDS", "ALERT_CHECK_INTERVAL"),
        ({"probe_failures": 0}, "PROBE_FAILURES", "greater than"),
        ({"alert_webhook_url": "ftp://x"}, "ALERT_WEBHOOK_URL", "https://"),
        ({"pagerduty_routing_key": "short"}, "PAGERDUTY_ROUTING_KEY", "32-character"),
        ({"pagerduty_events_url": "events.pagerduty.com"}, "PAGERDUTY_EVENTS_URL", "https://"),
        ({"alert_severities": "error_rate=urgent"}, "ALERT_SEVERITIES", "critical or warning"),
        ({"alert_severities": "errors=critical"}, "ALERT_SEVERITIES", "unknown rule"),
        ({"alert_severities": "error_rate"}, "ALERT_SEVERITIES", "name=value"),
        ({"alert_routes": "page=slack"}, "ALERT_ROUTES", "critical or warning"),
        ({"alert_routes": "critical=sms"}, "ALERT_ROUTES", "unknown channel"),
        ({"alert_routes": "critical=pagerduty"}, "ALERT_ROUTES", "not configured"),
    ],
)
def test_oncall_setting_refused_naming_the_variable(
    values: dict[str, object], variable: str, says: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(**values)
    assert f"{variable}: " in str(caught.value) and says in str(caught.value)


def test_slow_checks_without_a_heartbeat_need_no_heartbeat_interval() -> None:
    assert load_settings(alert_check_interval_seconds=3600).alert_check_interval_seconds == 3600


def test_oncall_settings_accept_a_full_configuration() -> None:
    settings = load_settings(
        heartbeat_url="https://hc-ping.com/0f4c",
        heartbeat_interval_seconds=120,
        heartbeat_fail_suffix="",
        slack_webhook_url="https://hooks.slack.com/services/x",
        pagerduty_routing_key="R0uting0Key0Of0Thirty0Two0Chars0",
        alert_routes="critical=slack,pagerduty;warning=slack",
        alert_severities="LATENCY_P95=critical",
    )
    assert settings.heartbeat_interval_seconds == 120
    assert settings.alert_routes == "critical=slack,pagerduty;warning=slack"
    assert "0f4c" not in repr(settings)  # the ping URL is a secret
