"""Secret masking: configured values and secret-shaped tokens disappear, normal text stays."""

from __future__ import annotations

from chatmon.services.secrets import mask_secrets, register_secret_values, register_settings_secrets
from chatmon.settings import load_settings


def test_configured_secret_values_are_masked_wherever_they_appear() -> None:
    register_secret_values(["0penSesame-custom-value"])
    assert mask_secrets("the token was 0penSesame-custom-value.") == "the token was ***."


def test_secret_settings_are_registered_by_type_and_name() -> None:
    settings = load_settings(
        llm_api_key="gm-key-without-prefix-42", langfuse_secret_key="lfsecret-99887766"
    )
    register_settings_secrets(settings)
    text = mask_secrets("gm-key-without-prefix-42 and lfsecret-99887766")
    assert "gm-key-without-prefix-42" not in text and "lfsecret-99887766" not in text


def test_secret_shaped_tokens_are_masked() -> None:
    cases = {
        "key sk-abcdef1234567890": "key sk-***",
        "Authorization: Bearer eyJhbGciOi.payload.sig": "Authorization: Bearer ***",
        "https://hooks.slack.com/services/T1/B2/abc": "https://hooks.slack.com/***",
        "postgresql://user:pa55word@host/db": "postgresql://user:***@host/db",
        "SMTP_PASSWORD=topsecret": "SMTP_PASSWORD=***",
        '{"api_key": "abc123xyz"}': '{"api_key": "***"}',
        "GET /v1/models?key=AIzaSomething&alt=sse": "GET /v1/models?key=***&alt=sse",
    }
    for text, expected in cases.items():
        assert mask_secrets(text) == expected


def test_ordinary_text_is_left_alone() -> None:
    text = "reply finished: input_tokens=12 output_tokens=30 tokens 42, model openai/fake at http://127.0.0.1:8900/v1"
    assert mask_secrets(text) == text
