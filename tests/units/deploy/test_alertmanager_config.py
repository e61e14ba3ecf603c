"""deploy/alertmanager.yml passes Debian's amtool, routes each severity where the kit says,
and every Prometheus rule carries a severity it routes on and a runbook that exists."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("amtool")
    assert binary, "amtool missing: `make test` installs Debian's prometheus-alertmanager"
    return subprocess.run([binary, *args], cwd=DEPLOY, capture_output=True, text=True, timeout=60)


def _rules() -> list[dict]:
    groups = yaml.safe_load((DEPLOY / "alerts.yml").read_text())["groups"]
    return [rule for group in groups for rule in group["rules"]]


def test_amtool_check_config() -> None:
    result = amtool("check-config", "alertmanager.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize(
    ("labels", "receiver"),
    [
        (["severity=critical", "alertname=ChatmonTargetDown"], "page"),
        (["severity=warning", "alertname=ChatmonHighLatencyP95"], "chat"),
        (["alertname=SomethingUnlabelled"], "chat"),
    ],
)
def test_amtool_routes_each_severity(labels: list[str], receiver: str) -> None:
    result = amtool("config", "routes", "test", "--config.file=alertmanager.yml", *labels)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receiver


def test_page_receiver_emails_and_chat_receiver_does_not() -> None:
    receivers = {
        r["name"]: r for r in yaml.safe_load((DEPLOY / "alertmanager.yml").read_text())["receivers"]
    }
    assert receivers["page"]["email_configs"] and receivers["page"]["slack_configs"]
    assert "email_configs" not in receivers["chat"] and receivers["chat"]["slack_configs"]


def test_every_rule_has_a_routed_severity_and_a_runbook_section() -> None:
    runbook = (ROOT / "docs" / "runbook.md").read_text()
    anchors = {
        re.sub(r"[^a-z0-9 -]", "", line.lstrip("#").strip().lower()).replace(" ", "-")
        for line in runbook.splitlines()
        if line.startswith("## ")
    }
    for rule in _rules():
        assert rule["labels"]["severity"] in {"critical", "warning"}, rule["alert"]
        url = rule["annotations"]["runbook_url"]
        assert url == f"docs/runbook.md#{rule['alert'].lower()}"
        assert rule["alert"].lower() in anchors, f"docs/runbook.md has no ## {rule['alert']}"


def test_prometheus_sends_to_alertmanager() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    targets = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert targets == ["localhost:9093"]
