"""deploy/nginx/: both shipped server files pass ``nginx -t`` (Debian's nginx, run from a
temp prefix) and say what the README promises of them."""

from __future__ import annotations

from pathlib import Path

from tests.nginx import DEPLOY, Balancer, StaticSite


def test_balancer_config_passes_nginx_t_and_keeps_its_promises(tmp_path: Path) -> None:
    with Balancer(tmp_path, backend="http://127.0.0.1:9"):  # starts only after `nginx -t`
        pass
    text = (DEPLOY / "chatmon.conf").read_text()
    for line in (
        "proxy_set_header Upgrade $http_upgrade;",
        "proxy_set_header Connection $connection_upgrade;",
        "proxy_set_header Host $http_host;",
        "proxy_http_version 1.1;",
        "proxy_read_timeout 1h;",
        "#   listen 443 ssl;",
    ):
        assert line in text, line


def test_static_config_passes_nginx_t_with_the_documented_try_files(tmp_path: Path) -> None:
    (tmp_path / "site").mkdir()
    with StaticSite(tmp_path / "nginx", root=tmp_path / "site"):
        pass
    line = "try_files $uri $uri/ /404.html;"
    assert line in (DEPLOY / "chatmon-static.conf").read_text()
    readme = (DEPLOY.parents[1] / "README.md").read_text()
    assert f"`{line}`" in readme
