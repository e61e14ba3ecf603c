"""Rendering: the same facts in text, HTML and Slack blocks; nothing unescaped."""

from __future__ import annotations

from datetime import UTC, datetime

from chatmon.services.alerts.messages import (
    AlertMessage,
    Evidence,
    build_message,
    delivery_key,
    format_value,
    html_body,
    plain_text,
    slack_payload,
    subject,
)
from chatmon.services.alerts.rules import Finding, Rule, Verdict

AT = datetime(2025, 3, 10, 12, 5, tzinfo=UTC)


def message(kind: str = "firing", **fields: object) -> AlertMessage:
    finding = Finding(Rule.LATENCY_P95, Verdict.FIRING, 7.25, 5.0, "p95 latency 7.25 s <b>slow</b>")
    built = build_message(
        kind=kind,
        finding=finding,
        evidence=Evidence([("timeout", 3)], ["abc123"], "Slowest requests"),
        window_minutes=15,
        checked_at=AT,
        firing_since=AT,
        monitor_url="https://chat.example.com/monitor?a=1&b=2",
    )
    return AlertMessage(**{**built.__dict__, **fields})


def test_message_round_trips_through_json() -> None:
    original = message()
    assert AlertMessage.from_json(original.to_json()) == original


def test_subjects_per_kind() -> None:
    assert subject(message()) == "[chatmon] FIRING: p95 latency 7.25 s (threshold 5 s)"
    assert (
        subject(message("repeat")) == "[chatmon] STILL FIRING: p95 latency 7.25 s (threshold 5 s)"
    )
    assert (
        subject(message("resolved", value="1.10 s"))
        == "[chatmon] RESOLVED: p95 latency is back to 1.10 s"
    )


def test_plain_text_lists_every_fact() -> None:
    text = plain_text(message())
    for line in (
        "Value:        7.25 s",
        "Threshold:    5 s",
        "Window:       last 15 min",
        "Firing since: 2025-03-10 12:05:00 UTC",
        "Top error categories: timeout (3)",
        "Slowest requests (correlation ids):",
        "  abc123",
        "Monitor: https://chat.example.com/monitor?a=1&b=2",
    ):
        assert line in text


def test_html_escapes_everything() -> None:
    body = html_body(message())
    assert "<b>slow</b>" not in body and "&lt;b&gt;slow&lt;/b&gt;" in body
    assert 'href="https://chat.example.com/monitor?a=1&amp;b=2"' in body


def test_slack_escapes_mrkdwn_and_keeps_fields_under_the_limit() -> None:
    payload = slack_payload(message(), key="chatmon-1-x-slack")
    summary = payload["blocks"][1]["text"]["text"]
    assert summary == "p95 latency 7.25 s &lt;b&gt;slow&lt;/b&gt;"
    fields = payload["blocks"][2]["fields"]
    assert len(fields) <= 10
    assert {"type": "mrkdwn", "text": "*Value*\n7.25 s"} in fields


def test_format_value_per_rule() -> None:
    assert format_value(Rule.ERROR_RATE, 12.345) == "12.3 %"
    assert format_value(Rule.COST_HOURLY, 0.01234) == "$0.0123"
    assert format_value(Rule.COST_DAILY, 1234.5) == "$1,234.50"
    assert format_value(Rule.BREAKER_OPEN, 1) == "1 model open"
    assert format_value(Rule.NO_TRAFFIC, 42.4) == "42 min"
    assert format_value(Rule.ERROR_RATE, None) == "n/a"


def test_delivery_key_names_the_notification_its_moment_and_the_channel() -> None:
    key = delivery_key(notification_id=42, created_at=AT, channel="email")
    assert key == "chatmon-42-20250310120500000000-email"
    naive = AT.replace(tzinfo=None)  # as SQLite hands it back: UTC, naive
    assert delivery_key(notification_id=42, created_at=naive, channel="email") == key
    assert delivery_key(notification_id=42, created_at=AT, channel="slack") != key
    assert delivery_key(notification_id=43, created_at=AT, channel="email") != key
