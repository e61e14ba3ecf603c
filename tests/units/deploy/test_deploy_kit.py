"""deploy/: the Prometheus config and alert rules pass promtool, the alerts fire as unit-tested,
and the Grafana dashboard only queries series chatmon exports."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import yaml

from chatmon.observability import series
from chatmon.settings import Settings

DEPLOY = Path(__file__).resolve().parents[3] / "deploy"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    binary = shutil.which("promtool")
    assert binary, "promtool missing: `make test` installs Debian's prometheus package"
    return subprocess.run([binary, *args], cwd=DEPLOY, capture_output=True, text=True, timeout=120)


def test_promtool_check_config() -> None:
    result = promtool("check", "config", "prometheus.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_check_config_of_compose() -> None:
    """Its token file exists only inside the container (a compose secret): syntax only."""
    result = promtool("check", "config", "--syntax-only", "prometheus.docker.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_prometheus_configs_never_scrape_metrics_unauthenticated() -> None:
    """/metrics is behind METRICS_TOKEN or the monitor's login: the compose scrape sends
    the token, and the bare-metal example shows both ways."""
    docker = yaml.safe_load((DEPLOY / "prometheus.docker.yml").read_text())["scrape_configs"][0]
    assert docker["authorization"] == {
        "type": "Bearer",
        "credentials_file": "/run/secrets/metrics_token",
    }
    example = (DEPLOY / "prometheus.yml").read_text()
    assert "basic_auth:" in example and "credentials_file:" in example


def test_promtool_check_rules() -> None:
    result = promtool("check", "rules", "alerts.yml")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 12 rules found" in result.stdout


def test_promtool_alert_unit_tests_pass() -> None:
    result = promtool("test", "rules", "alerts_test.yml")
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_alert_has_a_unit_test() -> None:
    rules = yaml.safe_load((DEPLOY / "alerts.yml").read_text())
    alerts = {rule["alert"] for group in rules["groups"] for rule in group["rules"]}
    tests = yaml.safe_load((DEPLOY / "alerts_test.yml").read_text())
    firing = {
        case["alertname"]
        for test in tests["tests"]
        for case in test["alert_rule_test"]
        if case.get("exp_alerts")
    }
    assert alerts == firing
    assert {
        "ChatmonHighErrorRate",
        "ChatmonHighLatencyP95",
        "ChatmonHourlyCostHigh",
        "ChatmonCircuitBreakerOpen",
        "ChatmonTargetDown",
    } <= alerts


def test_alert_thresholds_mirror_chatmon_defaults() -> None:
    rules = {
        rule["alert"]: rule["expr"]
        for group in yaml.safe_load((DEPLOY / "alerts.yml").read_text())["groups"]
        for rule in group["rules"]
    }
    fields = Settings.model_fields
    window = f"[{fields['alert_window_minutes'].default:g}m]"
    min_requests = f">= {fields['alert_min_requests'].default}"
    assert f"> {fields['alert_error_rate_threshold'].default:g}" in rules["ChatmonHighErrorRate"]
    assert window in rules["ChatmonHighErrorRate"] and min_requests in rules["ChatmonHighErrorRate"]
    assert f"> {fields['alert_latency_p95_threshold'].default:g}" in rules["ChatmonHighLatencyP95"]
    assert (
        window in rules["ChatmonHighLatencyP95"] and min_requests in rules["ChatmonHighLatencyP95"]
    )
    assert f"> {fields['alert_cost_threshold'].default:g}" in rules["ChatmonHourlyCostHigh"]
    assert "[1h]" in rules["ChatmonHourlyCostHigh"]


def _dashboard() -> dict:
    return json.loads((DEPLOY / "grafana" / "chatmon.json").read_text())


def dashboard_queries() -> list[str]:
    """Every PromQL expression of the dashboard (panels and the model variable)."""
    return [target["expr"] for panel in _dashboard()["panels"] for target in panel["targets"]]


def _exported_series() -> set[str]:
    names = set()
    for collector in (
        series.LLM_REQUESTS,
        series.LLM_REQUEST_DURATION,
        series.LLM_TIME_TO_FIRST_TOKEN,
        series.LLM_TOKENS,
        series.LLM_COST,
        series.LLM_RETRIES,
        series.LLM_UNPRICED,
        series.BUDGET_USED_RATIO,
        series.BUDGET_WARN_RATIO,
        series.FEEDBACK,
        series.CIRCUIT_BREAKER_STATE,
        series.RATE_LIMITED,
        series.ALERTS,
    ):
        for family in collector.describe() or collector.collect():
            names.add(family.name)
            if family.type == "counter":
                names.add(family.name + "_total")
            if family.type == "histogram":
                names.update(family.name + suffix for suffix in ("_bucket", "_count", "_sum"))
    return names


def test_dashboard_queries_only_series_chatmon_exports() -> None:
    exported = _exported_series()
    used = {
        name for expr in dashboard_queries() for name in re.findall(r"\bchatmon_[a-z0-9_]+", expr)
    }
    assert used and used <= exported, used - exported
    # every contract series is on the dashboard
    assert {
        "chatmon_llm_requests_total",
        "chatmon_llm_request_duration_seconds_bucket",
        "chatmon_llm_time_to_first_token_seconds_bucket",
        "chatmon_llm_tokens_total",
        "chatmon_llm_cost_usd_total",
        "chatmon_llm_retries_total",
        "chatmon_feedback_total",
        "chatmon_circuit_breaker_state",
        "chatmon_rate_limited_total",
        "chatmon_alerts_total",
        "chatmon_llm_unpriced_requests_total",
        "chatmon_budget_used_ratio",
        "chatmon_budget_warn_ratio",
    } <= used


def test_dashboard_shows_unpriced_requests_and_budgets_with_their_warn_levels() -> None:
    panels = {panel["title"]: panel for panel in _dashboard()["panels"]}
    unpriced = panels["Unpriced requests (cost alerts cannot see them)"]
    assert "chatmon_llm_unpriced_requests_total" in unpriced["targets"][0]["expr"]
    used = panels["Budget used %"]
    exprs = [target["expr"] for target in used["targets"]]
    assert exprs == [
        "max by (period) (chatmon_budget_used_ratio)",  # one figure per period, not a sum
        "max by (level) (chatmon_budget_warn_ratio)",
    ]
    assert used["fieldConfig"]["defaults"]["unit"] == "percentunit"  # ratios: 0.8 = 80 %
    ids = [panel["id"] for panel in _dashboard()["panels"]]
    assert len(ids) == len(set(ids))


def test_dashboard_uses_the_provisioned_datasource() -> None:
    """Every panel asks the ``datasource`` variable, which defaults to the provisioned
    Prometheus: the compose stack works as shipped, and an existing Grafana picks its own
    Prometheus when it imports the file."""
    provisioned = yaml.safe_load(
        (DEPLOY / "grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    uid = provisioned["datasources"][0]["uid"]
    dashboard = _dashboard()
    variables = {v["name"]: v for v in dashboard["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["query"] == "prometheus"
    assert variables["datasource"]["current"]["value"] == uid
    chosen = {"type": "prometheus", "uid": "${datasource}"}
    assert variables["model"]["datasource"] == chosen
    for panel in dashboard["panels"]:
        assert panel["datasource"] == chosen, panel["title"]
        assert all(target["datasource"] == chosen for target in panel["targets"])
    assert uid not in json.dumps(dashboard["panels"])
    ids = [panel["id"] for panel in dashboard["panels"]]
    assert len(ids) == len(set(ids))


def test_grafana_provisioning_path_matches_compose_mount() -> None:
    provider = yaml.safe_load((DEPLOY / "grafana/provisioning/dashboards/chatmon.yml").read_text())
    path = provider["providers"][0]["options"]["path"]
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    mounts = compose["services"]["grafana"]["volumes"]
    assert any(mount.startswith("./grafana/chatmon.json:" + path + "/") for mount in mounts)
