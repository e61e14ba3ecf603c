"""A real Prometheus scrapes the running chatmon: PromQL sees exactly the requests sent.

Prometheus (Debian's package) is started by the test on a free port with a temporary
config and data directory; the chat is driven in Chromium like a person would.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlparse

import httpx
import pytest
from playwright.sync_api import Page

from chatmon.devtools.procs import free_port, stop
from tests.integration.conftest import RunningApp
from tests.integration.test_chat_page import send_and_wait

pytestmark = pytest.mark.browser

DEPLOY = Path(__file__).resolve().parents[2] / "deploy"
SCRAPE_INTERVAL = "1s"


class Prometheus:
    """A Prometheus server of the test's own."""

    def __init__(self, url: str) -> None:
        self.url = url

    def query(self, promql: str) -> list[dict]:
        response = httpx.get(self.url + "/api/v1/query", params={"query": promql}, timeout=10)
        body = response.json()
        assert body["status"] == "success", body
        return body["data"]["result"]

    def scalar(self, promql: str) -> float | None:
        result = self.query(promql)
        return float(result[0]["value"][1]) if result else None

    def wait_for(self, promql: str, expected: float, timeout: float = 30) -> float | None:
        deadline = time.monotonic() + timeout
        value = None
        while time.monotonic() < deadline:
            value = self.scalar(promql)
            if value == expected:
                return value
            time.sleep(0.5)
        return value


@pytest.fixture(scope="module")
def prometheus(
    app_server: RunningApp, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Prometheus]:
    binary = shutil.which("prometheus")
    assert binary, "prometheus missing: `make test` installs Debian's prometheus package"
    workdir = tmp_path_factory.mktemp("prometheus")
    target = urlparse(app_server.url).netloc
    config = workdir / "prometheus.yml"
    # /metrics is behind the monitor's login (no METRICS_TOKEN): HTTP Basic, as the
    # deploy/prometheus.yml comments describe, the password in a file.
    password_file = workdir / "chatmon_monitor_password"
    password_file.write_text(app_server.monitor_password or "")
    user = (app_server.monitor_auth or ("", ""))[0]
    config.write_text(
        f"""
global:
  scrape_interval: {SCRAPE_INTERVAL}
  evaluation_interval: {SCRAPE_INTERVAL}
rule_files:
  - {DEPLOY / "alerts.yml"}
scrape_configs:
  - job_name: chatmon
    basic_auth:
      username: {user}
      password_file: {password_file}
    static_configs:
      - targets: ["{target}"]
"""
    )
    port = free_port()
    log = (workdir / "prometheus.log").open("w")
    process = subprocess.Popen(
        [
            binary,
            f"--config.file={config}",
            f"--storage.tsdb.path={workdir / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-lifecycle",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            assert process.poll() is None, (workdir / "prometheus.log").read_text()[-3000:]
            try:
                if httpx.get(url + "/-/ready", timeout=2).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            assert time.monotonic() < deadline, "prometheus did not become ready"
            time.sleep(0.3)
        server = Prometheus(url)
        assert server.wait_for('up{job="chatmon"}', 1.0) == 1.0, "chatmon was never scraped"
        yield server
    finally:
        stop(process)
        log.close()


def _scraped_total(app: RunningApp) -> float:
    """sum(chatmon_llm_requests_total) as /metrics shows it right now."""
    text = httpx.get(app.url + "/metrics", auth=app.monitor_auth, timeout=10).text
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("chatmon_llm_requests_total{")
    )


def test_prometheus_query_returns_the_request_count_sent(
    page: Page, app_server: RunningApp, prometheus: Prometheus
) -> None:
    query = 'sum(chatmon_llm_requests_total{job="chatmon"})'
    baseline = _scraped_total(app_server)
    assert prometheus.wait_for(query, baseline) == baseline  # Prometheus caught up
    sent = 3
    for number in range(sent):
        send_and_wait(page, f"count me {number}")
    assert prometheus.wait_for(query, baseline + sent) == baseline + sent
    ok = prometheus.scalar('sum(chatmon_llm_requests_total{job="chatmon",status="ok"})')
    assert ok is not None and ok >= sent
    tokens = prometheus.scalar('sum(chatmon_llm_tokens_total{job="chatmon",type="output"})')
    assert tokens and tokens > 0
    p95 = prometheus.scalar(
        "histogram_quantile(0.95, sum by (le) "
        "(rate(chatmon_llm_request_duration_seconds_bucket[5m])))"
    )
    assert p95 is not None and 0 < p95 < 5


def test_every_dashboard_query_runs_on_real_prometheus(
    page: Page, app_server: RunningApp, prometheus: Prometheus
) -> None:
    """The Grafana dashboard's PromQL parses and evaluates against real chatmon data.

    The test makes its own traffic and waits until Prometheus holds enough samples for
    a ``rate()``, so it passes whatever ran before it (or did not).
    (Grafana itself is not available offline here; its variables are substituted as
    Grafana would: ``$model`` = all, ``$__rate_interval`` = 5m.)
    """
    query = 'sum(chatmon_llm_requests_total{job="chatmon"})'
    baseline = _scraped_total(app_server)
    for number in range(2):
        send_and_wait(page, f"dashboard data {number}")
    assert prometheus.wait_for(query, baseline + 2) == baseline + 2
    # the budgets reach /metrics whenever they are read (every alert check; here at
    # once): the app runs with the default daily budget (DAILY_COST_THRESHOLD=50)
    periods = httpx.get(app_server.url + "/api/budget", auth=app_server.monitor_auth, timeout=10)
    assert periods.json()["periods"], periods.text
    dashboard = json.loads((DEPLOY / "grafana" / "chatmon.json").read_text())
    data_panels = {
        "Requests per second by status",
        "Request duration percentiles",
        "Tokens per minute",
        "Unpriced requests (cost alerts cannot see them)",  # at 0 from startup
        "Budget used %",
    }
    for panel in dashboard["panels"]:
        for target in panel["targets"]:
            expr = target["expr"].replace('model=~"$model"', 'model=~".*"')
            # Grafana's $__rate_interval is at least 4 scrape intervals; 5m keeps every
            # sample of this test in the window.
            expr = expr.replace("$__rate_interval", "5m")
            result = prometheus.query(expr)  # parses and evaluates, or the query fails
            if panel["title"] in data_panels:
                # a rate() needs two samples of a series: wait for the next scrapes
                deadline = time.monotonic() + 30
                while not result and time.monotonic() < deadline:
                    time.sleep(0.5)
                    result = prometheus.query(expr)
                assert result, f"{panel['title']}: no data for {expr}"


def test_prometheus_loads_chatmons_alert_rules(prometheus: Prometheus) -> None:
    body = httpx.get(prometheus.url + "/api/v1/rules", timeout=10).json()
    names = {rule["name"] for group in body["data"]["groups"] for rule in group["rules"]}
    assert {
        "ChatmonHighErrorRate",
        "ChatmonHighLatencyP95",
        "ChatmonHourlyCostHigh",
        "ChatmonCircuitBreakerOpen",
        "ChatmonTargetDown",
    } <= names
    health = {rule["health"] for group in body["data"]["groups"] for rule in group["rules"]}
    assert health <= {"ok", "unknown"}
