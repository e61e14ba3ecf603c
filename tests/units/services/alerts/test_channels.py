"""Email and Slack channels against a real SMTP server and a real HTTP receiver."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from pydantic import SecretStr

from chatmon.services.alerts.channels import (
    DeliveryError,
    EmailChannel,
    SlackChannel,
    configured_channels,
)
from chatmon.services.alerts.messages import AlertMessage, channel_test_message
from chatmon.settings import load_settings
from tests.peers import (
    Certificate,
    SMTPSink,
    WebhookReceiver,
    free_port,
    html_part,
    text_part,
    wait_for,
)
from tests.units.services.alerts.slow_peers import HTTP_DRIP, SMTP_DRIP, StallingServer

PASSWORD = "hunter2-smtp-password"
KEY = "chatmon-7-20250310120500000000-email"


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Certificate:
    return Certificate.create(tmp_path_factory.mktemp("tls"))


@pytest.fixture
def message() -> AlertMessage:
    return AlertMessage(
        kind="firing",
        rule="error_rate",
        title="Error rate",
        summary="50.0 % of requests failed in the last 15 min (5 of 10); threshold 10 %",
        value="50.0 %",
        threshold="10 %",
        window="last 15 min",
        checked_at="2025-03-10 12:05:00 UTC",
        firing_since="2025-03-10 12:05:00 UTC",
        monitor_url="https://chat.example.com/monitor",
        top_error_categories=[("server_error", 4), ("timeout", 1)],
        correlation_ids=["req00000001", "req00000002"],
        correlation_label="Recent failed requests",
    )


def email_channel(sink: SMTPSink, **kwargs: object) -> EmailChannel:
    values: dict[str, object] = {
        "host": sink.host,
        "port": sink.port,
        "sender": "chatmon@example.com",
        "recipients": ["oncall@example.com", "lead@example.com"],
        "starttls": False,
        "timeout": 5.0,
    }
    values.update(kwargs)
    return EmailChannel(**values)  # type: ignore[arg-type]  # field values built in a dict


def test_email_plain_smtp_delivers_text_and_html(message: AlertMessage) -> None:
    with SMTPSink() as sink:
        email_channel(sink).send(message, key=KEY)
    assert sink.count() == 1
    mail = sink.messages[0]
    assert mail["Subject"] == "[chatmon] FIRING: Error rate 50.0 % (threshold 10 %)"
    assert sink.envelopes[0] == ("chatmon@example.com", ["oncall@example.com", "lead@example.com"])
    text = text_part(mail)
    for fact in (
        "50.0 %",
        "10 %",
        "last 15 min",
        "server_error (4)",
        "req00000002",
        "https://chat.example.com/monitor",
    ):
        assert fact in text
    html = html_part(mail)
    assert '<a href="https://chat.example.com/monitor">' in html
    assert "<code>req00000001</code>" in html


def test_email_starttls_with_auth(certificate: Certificate, message: AlertMessage) -> None:
    with SMTPSink(starttls=certificate, credentials=("alerts", PASSWORD)) as sink:
        channel = email_channel(
            sink,
            starttls=True,
            username="alerts",
            password=SecretStr(PASSWORD),
            ssl_context=certificate.client_context(),
        )
        channel.send(message, key=KEY)
    assert sink.count() == 1
    assert sink.sessions_authenticated == [True]


def test_email_implicit_tls_with_auth(certificate: Certificate, message: AlertMessage) -> None:
    with SMTPSink(implicit_tls=certificate, credentials=("alerts", PASSWORD)) as sink:
        channel = email_channel(
            sink,
            use_ssl=True,
            username="alerts",
            password=SecretStr(PASSWORD),
            ssl_context=certificate.client_context(),
        )
        channel.send(message, key=KEY)
    assert sink.count() == 1


def test_email_starttls_refuses_an_untrusted_certificate(
    certificate: Certificate, message: AlertMessage
) -> None:
    with (
        SMTPSink(starttls=certificate) as sink,
        pytest.raises(DeliveryError, match="SSLCertVerificationError"),
    ):
        email_channel(sink, starttls=True).send(message, key=KEY)  # system CAs only
    assert sink.count() == 0


def test_email_starttls_required_but_not_offered(message: AlertMessage) -> None:
    with SMTPSink() as sink, pytest.raises(DeliveryError, match="does not offer STARTTLS"):
        email_channel(sink, starttls=True).send(message, key=KEY)
    assert sink.count() == 0


def test_email_wrong_password_fails_without_the_password(
    certificate: Certificate, message: AlertMessage
) -> None:
    with SMTPSink(starttls=certificate, credentials=("alerts", PASSWORD)) as sink:
        channel = email_channel(
            sink,
            starttls=True,
            username="alerts",
            password=SecretStr("wrong-password-123"),
            ssl_context=certificate.client_context(),
        )
        with pytest.raises(DeliveryError) as caught:
            channel.send(message, key=KEY)
    assert "535" in str(caught.value)
    assert "wrong-password-123" not in str(caught.value)
    assert sink.count() == 0


def test_email_server_down_is_a_delivery_error(message: AlertMessage) -> None:
    channel = EmailChannel(
        host="127.0.0.1",
        port=free_port(),
        sender="a@example.com",
        recipients=["b@example.com"],
        starttls=False,
        timeout=3.0,
    )
    with pytest.raises(DeliveryError, match="Connection refused"):
        channel.send(message, key=KEY)


def test_slack_posts_blocks_with_the_same_facts(message: AlertMessage) -> None:
    with WebhookReceiver() as receiver:
        SlackChannel(webhook_url=SecretStr(receiver.url)).send(message, key=KEY)
    assert receiver.paths == ["/services/T000/B000/secret-token-123"]
    body = receiver.bodies[0]
    assert body["text"] == "[chatmon] FIRING: Error rate 50.0 % (threshold 10 %)"
    blocks = body["blocks"]
    assert blocks[0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "FIRING: Error rate"},
    }
    flat = str(blocks)
    for fact in (
        "50.0 %",
        "10 %",
        "last 15 min",
        "server_error (4)",
        "`req00000001`",
        "<https://chat.example.com/monitor|Open the monitor>",
    ):
        assert fact in flat


def test_slack_http_500_fails_without_the_webhook_url(message: AlertMessage) -> None:
    with WebhookReceiver(status=500) as receiver, pytest.raises(DeliveryError) as caught:
        SlackChannel(webhook_url=SecretStr(receiver.url)).send(message, key=KEY)
    assert "HTTP 500" in str(caught.value)
    assert "secret-token-123" not in str(caught.value)


def test_slack_unreachable_fails_without_the_webhook_url(message: AlertMessage) -> None:
    url = f"http://127.0.0.1:{free_port()}/services/T1/B1/very-secret-path"
    with pytest.raises(DeliveryError) as caught:
        SlackChannel(webhook_url=SecretStr(url), timeout=3.0).send(message, key=KEY)
    assert "ConnectError" in str(caught.value)
    assert "very-secret-path" not in str(caught.value)


@pytest.fixture
def no_dotenv(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    monkeypatch.chdir(tmp_path)
    yield


def test_configured_channels_follow_settings(no_dotenv: None) -> None:
    assert configured_channels(load_settings()) == []
    settings = load_settings(
        smtp_host="mail.example.com",
        alert_email_to="a@example.com, b@example.com",
        alert_email_from="chatmon@example.com",
        smtp_ssl=True,
        slack_webhook_url="https://hooks.slack.com/services/T/B/x",
    )
    email, slack = configured_channels(settings)
    assert isinstance(email, EmailChannel) and isinstance(slack, SlackChannel)
    assert (email.port, email.use_ssl, email.recipients) == (
        465,
        True,
        ["a@example.com", "b@example.com"],
    )


def test_test_message_reaches_both_channels() -> None:
    message = channel_test_message(
        checked_at=datetime(2025, 1, 1, tzinfo=UTC), monitor_url="http://x/monitor"
    )
    with SMTPSink() as sink, WebhookReceiver() as receiver:
        email_channel(sink).send(message, key=KEY)
        SlackChannel(webhook_url=SecretStr(receiver.url)).send(message, key=KEY)
    assert sink.subjects() == ["[chatmon] Test message: alerts reach this channel"]
    assert receiver.texts() == ["[chatmon] Test message: alerts reach this channel"]


# ----------------------------------------------------------------------------- dedupe keys


def test_email_message_id_is_the_delivery_key_on_every_attempt(message: AlertMessage) -> None:
    with SMTPSink() as sink:
        channel = email_channel(sink, sender="Chatmon Alerts <alerts@example.org>")
        channel.send(message, key=KEY)
        channel.send(message, key=KEY)  # a retry, maybe from another process
        channel.send(message, key="chatmon-8-20250310120600000000-email")
    ids = [mail["Message-ID"] for mail in sink.messages]
    assert ids == [
        f"<{KEY}@example.org>",
        f"<{KEY}@example.org>",
        "<chatmon-8-20250310120600000000-email@example.org>",
    ]


def test_slack_payload_carries_the_dedupe_key(message: AlertMessage) -> None:
    with WebhookReceiver() as receiver:
        SlackChannel(webhook_url=SecretStr(receiver.url)).send(message, key="chatmon-7-x-slack")
    (body,) = receiver.bodies
    assert body["metadata"] == {
        "event_type": "chatmon_alert",
        "event_payload": {
            "dedupe_key": "chatmon-7-x-slack",
            "rule": "error_rate",
            "kind": "firing",
        },
    }
    assert body["blocks"][-1] == {
        "type": "context",
        "elements": [{"type": "mrkdwn", "text": "alert key `chatmon-7-x-slack`"}],
    }


# ----------------------------------------------------------------------------- send deadline


@pytest.mark.parametrize("drip", [b"", SMTP_DRIP], ids=["silent", "greets-forever"])
def test_email_send_ends_at_its_deadline(message: AlertMessage, drip: bytes) -> None:
    with StallingServer(drip=drip) as stalled:
        channel = EmailChannel(
            host=stalled.host,
            port=stalled.port,
            sender="a@example.com",
            recipients=["b@example.com"],
            starttls=False,
            timeout=30.0,
            deadline=1.0,
        )
        started = time.monotonic()
        with pytest.raises(DeliveryError) as caught:
            channel.send(message, key=KEY)
        elapsed = time.monotonic() - started
        # the connection is closed, not left to a thread that might still send later
        assert wait_for(lambda: stalled.closed == stalled.accepted == 1, timeout=5)
    assert str(caught.value) == (
        f"no answer within the 1 s send deadline from 127.0.0.1:{stalled.port}"
    )
    assert elapsed < 15  # the deadline, not the 30 s read timeout (a trickle never hits it)


@pytest.mark.parametrize("drip", [b"", HTTP_DRIP], ids=["silent", "headers-never-end"])
def test_slack_send_ends_at_its_deadline(message: AlertMessage, drip: bytes) -> None:
    with StallingServer(drip=drip) as stalled:
        url = f"http://127.0.0.1:{stalled.port}/services/T1/B1/stalled-secret-path"
        channel = SlackChannel(webhook_url=SecretStr(url), timeout=30.0, deadline=1.0)
        started = time.monotonic()
        with pytest.raises(DeliveryError) as caught:
            channel.send(message, key=KEY)
        elapsed = time.monotonic() - started
        assert wait_for(lambda: stalled.closed == stalled.accepted == 1, timeout=5)
    assert str(caught.value) == "no answer within the 1 s send deadline from the webhook"
    assert "stalled-secret-path" not in str(caught.value)
    assert elapsed < 15
