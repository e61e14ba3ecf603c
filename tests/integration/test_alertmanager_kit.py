"""The deploy/ kit end to end: a real Prometheus evaluates deploy/alerts.yml and sends to a
real Alertmanager running deploy/alertmanager.yml, which delivers to a local SMTP server
and a local webhook receiver (standing in for Slack: Alertmanager POSTs Slack's JSON).

The configs are the shipped ones with only what a test must change: the SMTP relay and
the Slack URL point at the local peers (both secrets still read from files, as shipped,
only in the test's directory instead of /etc/alertmanager/),
STARTTLS is off (the local SMTP server has no certificate), rule `for:` durations and
Alertmanager's group timings are seconds instead of minutes. Routing, grouping,
inhibition, receivers, rule expressions and labels are untouched.

In the "chatmon down" test Prometheus scrapes a running chatmon (``launch_app``, as
``make run`` starts it) with the shipped bearer-token scrape config, and the app is then
stopped. The routing test posts its alerts to Alertmanager directly; its scrape target is
a stand-in serving chatmon's real exposition, which spares it an app start.
"""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from prometheus_client import generate_latest

import chatmon.metrics  # noqa: F401 - registers chatmon's series in the default registry
from chatmon.devtools.fake_llm_server import FakeLLMServer
from chatmon.devtools.procs import free_port, stop
from tests.integration.conftest import launch_app
from tests.peers import SMTPSink, WebhookReceiver, html_part, wait_for

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SMTP_CREDENTIALS = ("alertmanager@example.com", "smtp-password-for-the-test")
FOR = "2s"  # instead of the rules' minutes
GROUP_TIMINGS = {"group_wait": "1s", "group_interval": "2s", "repeat_interval": "1h"}


class MetricsTarget:
    """An HTTP server answering /metrics with chatmon's series, until stopped."""

    def __init__(self) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = generate_latest()
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *_args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.address = f"127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def start_server(command: list[str], *, ready_url: str, log: Path) -> subprocess.Popen:
    """Start a Debian server binary and wait until ``ready_url`` answers 200."""
    with log.open("w") as out:
        process = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT)
    ok = wait_for(lambda: _ready(process, ready_url), timeout=60, every=0.3)
    assert ok and process.poll() is None, log.read_text()[-3000:]
    return process


def _ready(process: subprocess.Popen, url: str) -> bool:
    if process.poll() is not None:
        return True  # exited: the assertion after the wait shows its log
    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def binary(name: str) -> str:
    path = shutil.which(name)
    assert path, f"{name} missing: `make test` installs Debian's prometheus-alertmanager"
    return path


def alertmanager_config(workdir: Path, *, smtp: SMTPSink, slack: WebhookReceiver) -> Path:
    config = yaml.safe_load((DEPLOY / "alertmanager.yml").read_text())
    glob = config["global"]
    glob["smtp_smarthost"] = f"{smtp.host}:{smtp.port}"
    glob["smtp_require_tls"] = False  # the local server has no certificate
    for key, secret in (
        ("smtp_auth_password_file", SMTP_CREDENTIALS[1]),
        ("slack_api_url_file", slack.url),
    ):
        path = workdir / Path(glob[key]).name  # /etc/alertmanager/... in the kit
        path.write_text(secret)
        glob[key] = str(path)
    config["route"].update(GROUP_TIMINGS)
    for route in config["route"].get("routes", []):
        route.update({k: v for k, v in GROUP_TIMINGS.items() if k in route})
    path = workdir / "alertmanager.yml"
    path.write_text(yaml.safe_dump(config))
    return path


def prometheus_config(
    workdir: Path, *, target: str, alertmanager: str, token_file: Path | None = None
) -> Path:
    rules = yaml.safe_load((DEPLOY / "alerts.yml").read_text())
    for group in rules["groups"]:
        for rule in group["rules"]:
            if "for" in rule:
                rule["for"] = FOR
    (workdir / "alerts.yml").write_text(yaml.safe_dump(rules))
    config = yaml.safe_load((DEPLOY / "prometheus.yml").read_text())
    config["global"] = {"scrape_interval": "1s", "evaluation_interval": "1s"}
    config["rule_files"] = [str(workdir / "alerts.yml")]
    config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"] = [alertmanager]
    config["scrape_configs"][0]["static_configs"][0]["targets"] = [target]
    if token_file is not None:  # the commented METRICS_TOKEN block of the shipped file
        config["scrape_configs"][0]["authorization"] = {
            "type": "Bearer",
            "credentials_file": str(token_file),
        }
    path = workdir / "prometheus.yml"
    path.write_text(yaml.safe_dump(config))
    return path


@dataclass
class Stack:
    smtp: SMTPSink
    slack: WebhookReceiver
    stop_target: Callable[[], None]  # chatmon going away, as Prometheus sees it
    prometheus_url: str
    alertmanager_url: str

    def query(self, promql: str) -> list[dict[str, Any]]:
        response = httpx.get(self.prometheus_url + "/api/v1/query", params={"query": promql})
        return response.json()["data"]["result"]

    def slack_titles(self) -> list[str]:
        with self.slack.lock:
            bodies = list(self.slack.bodies)
        return [a.get("title", "") for body in bodies for a in body.get("attachments", [])]


@contextlib.contextmanager
def running_stack(
    tmp_path: Path,
    *,
    target: str,
    stop_target: Callable[[], None],
    token_file: Path | None = None,
) -> Iterator[Stack]:
    """Alertmanager and Prometheus (scraping ``target``) with the kit's configs."""
    smtp = SMTPSink(credentials=SMTP_CREDENTIALS, exclude_auth=("LOGIN",)).start()
    slack = WebhookReceiver().start()
    am_port, prom_port = free_port(), free_port()
    am_dir, prom_dir = tmp_path / "alertmanager", tmp_path / "prometheus"
    am_dir.mkdir()
    prom_dir.mkdir()
    processes: list[subprocess.Popen] = []
    try:
        am_config = alertmanager_config(am_dir, smtp=smtp, slack=slack)
        check = subprocess.run(
            [binary("amtool"), "check-config", str(am_config)], capture_output=True, text=True
        )
        assert check.returncode == 0, check.stdout + check.stderr
        am_url = f"http://127.0.0.1:{am_port}"
        processes.append(
            start_server(
                [
                    binary("prometheus-alertmanager"),
                    f"--config.file={am_config}",
                    f"--storage.path={am_dir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{am_port}",
                    "--cluster.listen-address=",  # no gossip port: a single instance
                ],
                ready_url=am_url + "/-/ready",
                log=am_dir / "alertmanager.log",
            )
        )
        prom_config = prometheus_config(
            prom_dir, target=target, alertmanager=f"127.0.0.1:{am_port}", token_file=token_file
        )
        prom_url = f"http://127.0.0.1:{prom_port}"
        processes.append(
            start_server(
                [
                    binary("prometheus"),
                    f"--config.file={prom_config}",
                    f"--storage.tsdb.path={prom_dir / 'data'}",
                    f"--web.listen-address=127.0.0.1:{prom_port}",
                ],
                ready_url=prom_url + "/-/ready",
                log=prom_dir / "prometheus.log",
            )
        )
        yield Stack(smtp, slack, stop_target, prom_url, am_url)
    finally:
        for process in reversed(processes):
            stop(process)
        slack.stop()
        smtp.stop()


@pytest.fixture
def stack(tmp_path: Path) -> Iterator[Stack]:
    """The kit with a stand-in scrape target (for tests that post their own alerts)."""
    target = MetricsTarget()
    try:
        with running_stack(tmp_path, target=target.address, stop_target=target.stop) as kit:
            yield kit
    finally:
        target.stop()


@pytest.fixture
def live_stack(tmp_path: Path, fake_llm: FakeLLMServer) -> Iterator[Stack]:
    """The kit scraping a running chatmon with a METRICS_TOKEN, as deploy/ recommends."""
    token = "kit-test-metrics-token-0123456789"
    token_file = tmp_path / "chatmon_metrics_token"
    token_file.write_text(token)
    with contextlib.ExitStack() as app:
        chatmon = app.enter_context(
            launch_app(workdir=tmp_path / "app", fake_llm_url=fake_llm.url, METRICS_TOKEN=token)
        )
        with running_stack(
            tmp_path,
            target=chatmon.url.removeprefix("http://"),
            stop_target=app.close,
            token_file=token_file,
        ) as kit:
            yield kit


def test_chatmon_down_pages_by_email_and_slack_through_alertmanager(live_stack: Stack) -> None:
    up = 'up{job="chatmon"}'
    assert wait_for(lambda: [r["value"][1] for r in live_stack.query(up)] == ["1"], timeout=30)
    assert live_stack.smtp.count() == 0 and live_stack.slack.count() == 0  # healthy: nobody is told

    stopped = time.monotonic()
    live_stack.stop_target()
    assert wait_for(
        lambda: live_stack.smtp.count() >= 1 and live_stack.slack.count() >= 1, timeout=60
    ), (
        live_stack.smtp.subjects(),
        live_stack.slack_titles(),
    )
    print(f"chatmon down -> email + Slack in {time.monotonic() - stopped:.1f} s (for: {FOR})")

    subject = live_stack.smtp.subjects()[0]
    assert "ChatmonTargetDown" in subject and "FIRING" in subject
    body = html_part(live_stack.smtp.messages[0])  # Alertmanager's default email is HTML
    assert "cannot be scraped" in body and "docs/runbook.md#chatmontargetdown" in body
    assert live_stack.smtp.sessions_authenticated == [True]  # the password came from its file
    assert live_stack.slack_titles()[0] == "FIRING: ChatmonTargetDown (critical)"


def post_alerts(stack: Stack, alerts: list[dict[str, str]]) -> None:
    response = httpx.post(
        stack.alertmanager_url + "/api/v2/alerts",
        json=[
            {"labels": labels, "annotations": {"summary": labels["alertname"]}} for labels in alerts
        ],
    )
    assert response.status_code == 200, response.text


def test_warning_goes_to_chat_only_and_target_down_inhibits_the_rest(stack: Stack) -> None:
    """Alerts as Prometheus would post them: a warning reaches Slack and not email; while
    chatmon's target is down, its other alerts are held back (another job's are not)."""
    post_alerts(
        stack,
        [
            {"alertname": "ChatmonTargetDown", "job": "chatmon", "severity": "critical"},
            {"alertname": "ChatmonHighLatencyP95", "job": "chatmon", "severity": "warning"},
            {"alertname": "ChatmonHighLatencyP95", "job": "staging", "severity": "warning"},
        ],
    )
    assert wait_for(lambda: len(stack.slack_titles()) >= 2 and stack.smtp.count() >= 1, timeout=30)
    alerts = httpx.get(stack.alertmanager_url + "/api/v2/alerts").json()
    inhibited = {
        (a["labels"]["alertname"], a["labels"]["job"]) for a in alerts if a["status"]["inhibitedBy"]
    }
    assert inhibited == {("ChatmonHighLatencyP95", "chatmon")}
    titles = stack.slack_titles()
    assert sorted(titles) == [
        "FIRING: ChatmonHighLatencyP95 (warning)",
        "FIRING: ChatmonTargetDown (critical)",
    ]
    with stack.slack.lock:
        texts = [a["text"] for b in stack.slack.bodies for a in b["attachments"]]
    assert len(texts) == 2  # chatmon's latency alert never went out
    assert [s for s in stack.smtp.subjects() if "Latency" in s] == []  # warning: no email
