"""deploy/kubernetes/, validated offline: every manifest against the pinned Kubernetes
version's OpenAPI schemas (kubernetes-validate, strict: no unknown fields), and the
manifests agree with each other and with chatmon (probes, settings, labels)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from chatmon import api
from chatmon.settings import Settings

ROOT = Path(__file__).resolve().parents[3]
KUBE = ROOT / "deploy" / "kubernetes"
KUBERNETES_VERSION = "1.33.0"  # the oldest version the kit promises to fit
MANIFESTS = sorted(p for p in KUBE.glob("*.yaml") if p.name != "kustomization.yaml")
# Read by scripts/start.sh, Reflex or granian rather than chatmon's Settings.
NOT_SETTINGS = {"PORT", "REFLEX_API_URL", "REFLEX_REDIS_URL", "GRANIAN_WORKERS"}
NOT_SETTINGS |= {"PROMETHEUS_MULTIPROC_DIR"}


def _documents(path: Path) -> list[dict[str, Any]]:
    return [doc for doc in yaml.safe_load_all(path.read_text()) if doc]


def _all() -> dict[tuple[str, str], dict[str, Any]]:
    return {
        (doc["kind"], doc["metadata"]["name"]): doc
        for path in MANIFESTS
        for doc in _documents(path)
    }


@pytest.mark.parametrize("path", MANIFESTS, ids=lambda p: p.name)
def test_manifest_is_valid_for_the_pinned_kubernetes(path: Path) -> None:
    for document in _documents(path):
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_the_validator_rejects_a_broken_manifest() -> None:
    deployment = copy.deepcopy(_all()[("Deployment", "chatmon")])
    deployment["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)
    deployment = copy.deepcopy(_all()[("Deployment", "chatmon")])
    deployment["spec"]["template"]["spec"]["containers"][0]["readinessprobe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):  # strict: a misspelt field
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


def test_kustomization_applies_everything_but_the_secret_example() -> None:
    kustomization = yaml.safe_load((KUBE / "kustomization.yaml").read_text())
    assert sorted(kustomization["resources"]) == sorted(
        p.name for p in MANIFESTS if p.name != "secret.example.yaml"
    )


def test_deployment_probes_the_health_routes_and_reads_config_and_secret() -> None:
    paths = {route.path for route in api.routes}
    deployment = _all()[("Deployment", "chatmon")]
    pod = deployment["spec"]["template"]
    (container,) = pod["spec"]["containers"]
    for probe in ("startupProbe", "readinessProbe", "livenessProbe"):
        assert container[probe]["httpGet"]["path"] in paths, probe
    assert container["readinessProbe"]["httpGet"]["path"] == "/health/ready"
    assert container["resources"]["requests"] and container["resources"]["limits"]["memory"]
    sources = {next(iter(s.values()))["name"] for s in container["envFrom"]}
    assert sources == {"chatmon"}
    job = _all()[("Job", "chatmon-migrate")]
    (migrate,) = job["spec"]["template"]["spec"]["containers"]
    assert migrate["image"] == container["image"]
    assert migrate["envFrom"] == container["envFrom"]
    assert migrate["command"][-2:] == ["chatmon", "migrate"]
    service = _all()[("Service", "chatmon")]
    assert service["spec"]["selector"].items() <= pod["metadata"]["labels"].items()
    ingress = _all()[("Ingress", "chatmon")]
    backend = ingress["spec"]["rules"][0]["http"]["paths"][0]["backend"]["service"]
    assert backend == {"name": "chatmon", "port": {"name": service["spec"]["ports"][0]["name"]}}
    annotations = ingress["metadata"]["annotations"]
    assert int(annotations["nginx.ingress.kubernetes.io/proxy-read-timeout"]) > 120  # socket.io


def test_every_configured_variable_is_one_chatmon_reads() -> None:
    settings = {name.upper() for name in Settings.model_fields}
    config = _all()[("ConfigMap", "chatmon")]["data"]
    secret = _all()[("Secret", "chatmon")]["stringData"]
    unknown = (set(config) | set(secret)) - settings - NOT_SETTINGS
    assert not unknown, unknown
    # The Secret's URLs name the external services.
    assert "@chatmon-postgres:" in secret["DATABASE_URL"]
    assert "//chatmon-redis:" in secret["REFLEX_REDIS_URL"]
    assert _all()[("Service", "chatmon-postgres")]["spec"]["type"] == "ExternalName"
