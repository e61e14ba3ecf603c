"""The Docker files, checked as far as this machine allows (no Docker engine here):
the compose stack's structure and every file it mounts, and the image's contract."""

from __future__ import annotations

import re
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[3]
DEPLOY = ROOT / "deploy"


def _compose() -> dict:
    return yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())


def test_compose_runs_the_whole_stack() -> None:
    services = _compose()["services"]
    assert set(services) == {
        "chatmon",
        "postgres",
        "redis",
        "prometheus",
        "grafana",
        "alertmanager",
    }
    chatmon = services["chatmon"]
    assert chatmon["build"] == ".."
    assert chatmon["environment"]["DATABASE_URL"].startswith("postgresql+psycopg://")
    assert chatmon["environment"]["REFLEX_REDIS_URL"].startswith("redis://redis")
    assert chatmon["depends_on"]["postgres"]["condition"] == "service_healthy"


def test_compose_mounts_only_files_that_exist() -> None:
    for name, service in _compose()["services"].items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (DEPLOY / source).exists(), f"{name} mounts missing {source}"


def test_compose_hands_the_metrics_token_to_prometheus() -> None:
    compose = _compose()
    assert compose["services"]["chatmon"]["environment"]["METRICS_TOKEN"].startswith(
        "${METRICS_TOKEN:?"  # compose refuses to start without one
    )
    assert compose["secrets"]["metrics_token"] == {"environment": "METRICS_TOKEN"}
    assert compose["services"]["prometheus"]["secrets"] == ["metrics_token"]


def test_prometheus_in_compose_scrapes_the_chatmon_service() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus.docker.yml").read_text())
    targets = config["scrape_configs"][0]["static_configs"][0]["targets"]
    assert targets == ["chatmon:3000"]


def test_prometheus_in_compose_sends_alerts_to_the_alertmanager_service() -> None:
    config = yaml.safe_load((DEPLOY / "prometheus.docker.yml").read_text())
    targets = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert targets == ["alertmanager:9093"]
    assert "alertmanager" in _compose()["services"]["prometheus"]["depends_on"]


def test_compose_alertmanager_gets_its_secrets_where_its_config_names_them() -> None:
    """alertmanager.yml reads the Slack URL and SMTP password from files in
    /etc/alertmanager/; compose mounts its secrets there, and git ignores the files
    (they are secrets)."""
    compose = _compose()
    service = compose["services"]["alertmanager"]
    config = yaml.safe_load((DEPLOY / "alertmanager.yml").read_text())["global"]
    mounted = {secret["target"] for secret in service["secrets"]}
    directory = "/etc/alertmanager/"
    assert f"./alertmanager.yml:{directory}alertmanager.yml:ro" in service["volumes"]
    for key in ("slack_api_url_file", "smtp_auth_password_file"):
        assert config[key] in mounted and config[key].startswith(directory)
        name = config[key].removeprefix(directory)
        assert f"deploy/{name}" in (ROOT / ".gitignore").read_text().split()


def test_image_is_multi_stage_non_root_with_healthcheck() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert dockerfile.count("\nFROM ") + dockerfile.startswith("FROM ") >= 2
    assert "\nUSER chatmon" in dockerfile
    assert "HEALTHCHECK" in dockerfile and "/health" in dockerfile
    assert "reflex export --frontend-only" in dockerfile  # frontend built at image build time
    assert 'CMD ["scripts/start.sh"]' in dockerfile  # the start script the tests run
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".venv", ".web", ".env", ".git"} <= set(ignored)


def test_stopping_the_container_leaves_time_for_a_clean_shutdown() -> None:
    """The recorder may need up to 30 s to write what is pending (Recorder.close): the
    stop grace period must be longer, or docker's SIGKILL loses request-log rows."""
    import inspect

    from chatmon.services.recorder import Recorder

    flush_seconds = inspect.signature(Recorder.close).parameters["timeout"].default
    dockerfile = (ROOT / "Dockerfile").read_text()
    assert "\nSTOPSIGNAL SIGTERM" in dockerfile and "--stop-timeout 60" in dockerfile
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    grace = compose["services"]["chatmon"]["stop_grace_period"]
    assert grace.endswith("s") and int(grace[:-1]) > flush_seconds


def _runtime_stage() -> str:
    dockerfile = (ROOT / "Dockerfile").read_text()
    return dockerfile[dockerfile.index(" AS runtime") :]


def test_runtime_image_holds_only_what_serving_needs() -> None:
    """No tests, benchmarks, docs or test dependencies in the image people run; every
    path it copies from the repository exists (a typo would fail the build)."""
    runtime = _runtime_stage()
    copies = [line.split() for line in runtime.splitlines() if line.startswith("COPY ")]
    sources = [
        part
        for words in copies
        if not any(w.startswith("--from") for w in words)
        for part in words[1:-1]
        if not part.startswith("--")
    ]
    assert sources, "the runtime stage copies the application"
    for source in sources:
        assert (ROOT / source).exists(), source
        assert source not in {".", "tests", "bench", "docs", "requirements-dev.txt", "deploy"}
    assert "COPY --from=build --chown=chatmon:chatmon /app /app" not in runtime


def test_image_runs_under_an_init_on_a_pinned_base() -> None:
    dockerfile = (ROOT / "Dockerfile").read_text()
    bases = re.findall(r"^FROM (\S+)", dockerfile, flags=re.MULTILINE)
    assert bases and all(re.fullmatch(r"python:\d+\.\d+\.\d+-slim-\w+", b) for b in bases), bases
    runtime = _runtime_stage()
    assert "tini" in runtime and 'ENTRYPOINT ["/usr/bin/tini", "--"]' in runtime


def test_compose_images_are_pinned_and_prometheus_keeps_its_data() -> None:
    compose = yaml.safe_load((DEPLOY / "docker-compose.yml").read_text())
    services = compose["services"]
    for name, service in services.items():
        if "image" in service:
            image, _, tag = service["image"].partition(":")
            # a release, not a moving major tag (PostgreSQL numbers its releases major.minor)
            assert re.fullmatch(r"v?\d+\.\d+(\.\d+)?", tag), f"{name}: {service['image']}"
    volumes = services["prometheus"]["volumes"]
    assert any(v.split(":")[0] in compose["volumes"] and ":/prometheus" in v for v in volumes)
