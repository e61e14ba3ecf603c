"""OpenTelemetry and Sentry settings: the standard variables read as the spec says, bad
values refused at startup naming the variable (and never quoting a secret)."""

from __future__ import annotations

import pytest

from chatmon.settings import SettingsError, load_settings


@pytest.mark.parametrize(
    ("values", "variable", "says"),
    [
        ({"otel_exporter_otlp_endpoint": "localhost:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT", "http"),
        (
            {"otel_exporter_otlp_traces_endpoint": "grpc://collector:4317"},
            "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
            "http",
        ),
        ({"otel_exporter_otlp_endpoint": "http://:4318"}, "OTEL_EXPORTER_OTLP_ENDPOINT", "http"),
        ({"otel_exporter_otlp_protocol": "grpc"}, "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
        (
            {"otel_exporter_otlp_traces_protocol": "http/json"},
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            "http/protobuf",
        ),
        ({"otel_exporter_otlp_headers": "Bearer abc"}, "OTEL_EXPORTER_OTLP_HEADERS", "key=value"),
        ({"otel_exporter_otlp_timeout": 10}, "OTEL_EXPORTER_OTLP_TIMEOUT", "milliseconds"),
        ({"otel_exporter_otlp_compression": "br"}, "OTEL_EXPORTER_OTLP_COMPRESSION", "gzip"),
        ({"otel_resource_attributes": "prod"}, "OTEL_RESOURCE_ATTRIBUTES", "key=value"),
        ({"otel_service_name": ""}, "OTEL_SERVICE_NAME", "at least 1"),
        ({"sentry_dsn": "https://sentry.io/1"}, "SENTRY_DSN", "DSN"),
        ({"sentry_dsn": "https://key@sentry.io/"}, "SENTRY_DSN", "DSN"),
        ({"sentry_environment": "prod env"}, "SENTRY_ENVIRONMENT", "pattern"),
        ({"sentry_traces_sample_rate": 1.5}, "SENTRY_TRACES_SAMPLE_RATE", "less than"),
    ],
)
def test_otel_and_sentry_setting_refused_naming_the_variable(
    values: dict[str, object], variable: str, says: str
) -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(**values)
    assert f"{variable}: " in str(caught.value) and says in str(caught.value)


def test_bad_headers_are_refused_without_quoting_them() -> None:
    with pytest.raises(SettingsError) as caught:
        load_settings(otel_exporter_otlp_headers="x-api-key=ok,Bearer secret-token-123")
    assert "header 2" in str(caught.value) and "secret-token-123" not in str(caught.value)


def test_base_endpoint_gets_the_traces_path_and_the_traces_endpoint_wins() -> None:
    base = load_settings(otel_exporter_otlp_endpoint="https://otel.example.com:4318/")
    assert base.otel_traces_endpoint == "https://otel.example.com:4318/v1/traces"
    full = load_settings(
        otel_exporter_otlp_endpoint="https://otel.example.com:4318",
        otel_exporter_otlp_traces_endpoint="https://tempo.example.com/otlp/v1/traces",
    )
    assert full.otel_traces_endpoint == "https://tempo.example.com/otlp/v1/traces"


def test_headers_and_attributes_are_percent_decoded_pairs() -> None:
    settings = load_settings(
        otel_exporter_otlp_headers="Authorization=Bearer%20abc,x-team=ml",
        otel_exporter_otlp_traces_headers="x-honeycomb-team=key%3D1",
        otel_resource_attributes="deployment.environment.name=prod, service.namespace=chat",
    )
    assert settings.otel_headers == {"x-honeycomb-team": "key=1"}  # the traces ones win
    assert settings.otel_resource == {
        "deployment.environment.name": "prod",
        "service.namespace": "chat",
    }


def test_the_standard_variables_are_read_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("OTEL_EXPORTER_OTLP_ENDPOINT", "http://collector:4318")
    monkeypatch.setenv("OTEL_SERVICE_NAME", "chat-eu")
    monkeypatch.setenv("SENTRY_DSN", "https://abc123@glitchtip.example.com/7")
    settings = load_settings()
    assert settings.otel_traces_endpoint == "http://collector:4318/v1/traces"
    assert settings.otel_service_name == "chat-eu"
    assert settings.sentry_dsn is not None
    assert "abc123" not in repr(settings)  # the DSN is a secret


def test_otel_sdk_disabled_turns_export_off() -> None:
    settings = load_settings(
        otel_exporter_otlp_endpoint="http://collector:4318", otel_sdk_disabled=True
    )
    assert settings.otel_traces_endpoint is None


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("SENTRY_DSN", "sentry-dsn-not-a-url-3f9a"),
        ("OTEL_EXPORTER_OTLP_ENDPOINT", "collector-4318-not-a-url"),
    ],
)
def test_app_startup_stops_on_a_bad_endpoint_naming_the_variable(variable: str, value: str) -> None:
    import os
    import subprocess
    import sys
    from pathlib import Path

    result = subprocess.run(
        [sys.executable, "-c", "import chatmon.chatmon"],
        cwd=Path(__file__).resolve().parents[2],
        env={**os.environ, variable: value},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 2
    assert f"{variable}: " in result.stderr and "Traceback" not in result.stderr
    assert value not in result.stderr
