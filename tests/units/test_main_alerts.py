"""`python -m chatmon alerts check|test` as a user runs them: a real process, a real
database, a real SMTP server and webhook receiver."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from sqlmodel import Session

from chatmon.migrate import upgrade_head
from tests.peers import SMTPSink, WebhookReceiver
from tests.units.services.stats_factory import make_call, record

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SMTP_", "ALERT_", "SLACK_"))
    }
    environment.update(PYTHONPATH=str(ROOT), **env)
    return subprocess.run(
        [sys.executable, "-m", "chatmon", "alerts", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def sink() -> Iterator[SMTPSink]:
    with SMTPSink() as server:
        yield server


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    with WebhookReceiver() as server:
        yield server


def channel_env(sink: SMTPSink, receiver: WebhookReceiver) -> dict[str, str]:
    return {
        "SMTP_HOST": sink.host,
        "SMTP_PORT": str(sink.port),
        "SMTP_STARTTLS": "false",
        "ALERT_EMAIL_FROM": "chatmon@example.com",
        "ALERT_EMAIL_TO": "oncall@example.com",
        "SLACK_WEBHOOK_URL": receiver.url,
    }


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    upgrade_head(url)
    return url


def test_alerts_check_sends_what_fires_once_and_prints_a_table(
    db_url: str, session: Session, tmp_path: Path, sink: SMTPSink, receiver: WebhookReceiver
) -> None:
    now = datetime.now(UTC)
    record(
        session,
        *[
            make_call(
                at=now - timedelta(seconds=10 * (i + 1)),
                status="error" if i < 3 else "ok",
                error_category="timeout" if i < 3 else None,
            )
            for i in range(6)
        ],
    )
    env = {**channel_env(sink, receiver), "DATABASE_URL": db_url, "ALERT_MIN_REQUESTS": "4"}

    first = run_cli("check", cwd=tmp_path, **env)
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    error_rate = next(line for line in lines if line.startswith("error_rate "))
    assert "firing" in error_rate and "50.0 %" in error_rate and "fired" in error_rate
    assert any(
        line.split()[:3] == ["error_rate", "firing", "email"] and "sent" in line for line in lines
    )
    assert "channels: email, slack" in first.stdout
    assert receiver.url not in first.stdout + first.stderr
    assert (sink.count(), receiver.count()) == (1, 1)

    second = run_cli("check", cwd=tmp_path, **env)
    assert second.returncode == 0, second.stderr
    assert "no message was due" in second.stdout
    assert (sink.count(), receiver.count()) == (1, 1)


def test_alerts_test_reaches_every_channel(
    sqlite_url: str, tmp_path: Path, sink: SMTPSink, receiver: WebhookReceiver
) -> None:
    result = run_cli("test", cwd=tmp_path, DATABASE_URL=sqlite_url, **channel_env(sink, receiver))
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == ["email: sent", "slack: sent"]
    assert sink.subjects() == ["[chatmon] Test message: alerts reach this channel"]
    assert receiver.count() == 1


def test_alerts_test_names_the_channel_that_failed(
    sqlite_url: str, tmp_path: Path, sink: SMTPSink, receiver: WebhookReceiver
) -> None:
    receiver.status = 500
    result = run_cli("test", cwd=tmp_path, DATABASE_URL=sqlite_url, **channel_env(sink, receiver))
    assert result.returncode == 1
    assert "email: sent" in result.stdout
    assert "slack: FAILED: HTTP 500" in result.stdout
    assert "failed on: slack" in result.stderr
    assert "secret-token-123" not in result.stdout + result.stderr


def test_alerts_test_without_channels_says_what_to_set(sqlite_url: str, tmp_path: Path) -> None:
    result = run_cli("test", cwd=tmp_path, DATABASE_URL=sqlite_url)
    assert result.returncode == 2
    assert "SLACK_WEBHOOK_URL" in result.stderr and "SMTP_HOST" in result.stderr


def test_alerts_check_bad_setting_names_the_variable(sqlite_url: str, tmp_path: Path) -> None:
    result = run_cli("check", cwd=tmp_path, DATABASE_URL=sqlite_url, SMTP_HOST="mail.example.com")
    assert result.returncode == 2
    assert "ALERT_EMAIL_TO" in result.stderr and "Traceback" not in result.stderr


def test_alerts_backtest_prints_what_would_have_fired_under_a_proposed_threshold(
    db_url: str, session: Session, tmp_path: Path
) -> None:
    """40 minutes ago, 20 minutes at 7 % errors: quiet at 10 %, one episode at 5 %."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    record(
        session,
        *[
            make_call(
                at=now - timedelta(minutes=60) + timedelta(seconds=24 * i),
                status="error" if 25 <= i < 75 and i % 14 == 0 else "ok",
                error_category="server_error" if 25 <= i < 75 and i % 14 == 0 else None,
            )
            for i in range(150)  # 2.5 a minute for an hour; minutes 10-30 lose 1 in 14
        ],
    )
    env = {"DATABASE_URL": db_url, "ALERT_MIN_REQUESTS": "10"}
    result = run_cli(
        "backtest", "--since", "2h", "--set", "ALERT_ERROR_RATE_THRESHOLD=5", cwd=tmp_path, **env
    )
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "proposed: ALERT_ERROR_RATE_THRESHOLD=5"
    row = next(line for line in lines if line.startswith("error_rate ")).split()
    assert row[:3] == ["error_rate", "5", "%"] and row[3] == "1×"
    assert row[-3] == "0"  # messages under the current 10 %
    assert any(line.startswith("probe_failed ") and "not replayed" in line for line in lines)
    assert row[-2:] == ["no", "channel"]  # where the messages would go: none configured
    episode = next(line for line in lines[lines.index("") :] if line.startswith("error_rate "))
    assert "still firing" not in episode


def test_alerts_backtest_says_where_the_messages_would_have_gone(
    sqlite_url: str, tmp_path: Path, sink: SMTPSink, receiver: WebhookReceiver
) -> None:
    env = {**channel_env(sink, receiver), "DATABASE_URL": sqlite_url}
    env["ALERT_ROUTES"] = "critical=email,slack;warning=slack"
    result = run_cli("backtest", "--since", "1h", cwd=tmp_path, **env)
    assert result.returncode == 0, result.stderr
    rows = {line.split()[0]: line for line in result.stdout.splitlines() if line}
    assert rows["breaker_open"].endswith("email, slack")  # critical
    assert rows["cost_hourly"].endswith("  slack")  # warning
    assert (sink.count(), receiver.count()) == (0, 0)  # a backtest sends nothing


def test_alerts_backtest_refuses_a_setting_it_does_not_replay(
    sqlite_url: str, tmp_path: Path
) -> None:
    bad = run_cli("backtest", "--set", "SMTP_HOST=x", cwd=tmp_path, DATABASE_URL=sqlite_url)
    assert bad.returncode == 2 and "SMTP_HOST" in bad.stderr
    worse = run_cli(
        "backtest", "--set", "ALERT_MIN_REQUESTS=-3", cwd=tmp_path, DATABASE_URL=sqlite_url
    )
    assert worse.returncode == 2 and "ALERT_MIN_REQUESTS" in worse.stderr
    assert "Traceback" not in bad.stderr + worse.stderr
