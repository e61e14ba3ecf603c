"""`python -m chatmon digest --send|--print` as a user runs them: a real process, a real
database, a real SMTP server and webhook receiver."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from chatmon.migrate import upgrade_head
from tests.peers import SMTPSink, WebhookReceiver, free_port, text_part

ROOT = Path(__file__).resolve().parents[2]


def run_cli(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith(("SMTP_", "ALERT_", "SLACK_", "DIGEST_"))
    }
    environment.update(PYTHONPATH=str(ROOT), **env)
    return subprocess.run(
        [sys.executable, "-m", "chatmon", "digest", *args],
        cwd=cwd,
        env=environment,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_digest_send_reaches_email_and_slack(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    upgrade_head(url)
    with SMTPSink() as sink, WebhookReceiver() as receiver:
        env = {
            "DATABASE_URL": url,
            "SMTP_HOST": sink.host,
            "SMTP_PORT": str(sink.port),
            "SMTP_STARTTLS": "false",
            "ALERT_EMAIL_FROM": "chatmon@example.com",
            "ALERT_EMAIL_TO": "ops@example.com",
            "SLACK_WEBHOOK_URL": receiver.url,
            "DIGEST_SCHEDULE": "weekly",
        }
        result = run_cli("--send", cwd=tmp_path, **env)
        assert result.returncode == 0, result.stderr
        assert result.stdout.splitlines() == ["email: sent", "slack: sent"]
        assert sink.count() == 1 and receiver.count() == 1
        assert sink.subjects()[0].startswith("[chatmon] week digest: ")
        assert "## Top conversations by spend" in text_part(sink.messages[0])
        assert receiver.url not in result.stdout + result.stderr


def test_digest_send_failure_exits_1_naming_the_channel(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    upgrade_head(url)
    env = {
        "DATABASE_URL": url,
        "SMTP_HOST": "127.0.0.1",
        "SMTP_PORT": str(free_port()),
        "SMTP_STARTTLS": "false",
        "ALERT_EMAIL_FROM": "chatmon@example.com",
        "ALERT_EMAIL_TO": "ops@example.com",
    }
    result = run_cli("--send", cwd=tmp_path, **env)
    assert result.returncode == 1
    assert result.stdout.startswith("email: FAILED: ConnectionRefusedError")


def test_digest_send_without_channels_exits_2(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    upgrade_head(url)
    result = run_cli("--send", cwd=tmp_path, DATABASE_URL=url)
    assert result.returncode == 2 and "SMTP_HOST or SLACK_WEBHOOK_URL" in result.stderr


def test_digest_bad_setting_is_named_without_a_traceback(tmp_path: Path) -> None:
    result = run_cli("--print", cwd=tmp_path, DIGEST_HOUR="25")
    assert result.returncode == 2
    assert "DIGEST_HOUR" in result.stderr and "Traceback" not in result.stderr
