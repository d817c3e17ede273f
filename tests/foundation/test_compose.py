"""docker-compose.yml describes the production-like stack (validated without an engine)."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def compose() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return data


def test_compose_file_validates_with_docker_compose_config() -> None:
    binary = shutil.which("docker-compose")
    if binary is None:
        if os.environ.get("LIVESCORE_REQUIRE_TOOLS"):
            pytest.fail("docker-compose is not installed (apt-get install docker-compose)")
        pytest.skip("docker-compose not installed; .ci/run installs it")
    result = subprocess.run(
        [binary, "-f", str(ROOT / "docker-compose.yml"), "config", "--quiet"],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr


def test_stack_has_its_services() -> None:
    services = compose()["services"]
    assert {"postgres", "redis", "migrate", "worker", "edge1", "edge2", "nginx"} <= set(services)


def test_redis_never_evicts_and_persists() -> None:
    command = " ".join(compose()["services"]["redis"]["command"])
    assert "--maxmemory-policy noeviction" in command
    assert "--appendonly yes" in command
    assert compose()["services"]["redis"]["volumes"]


def test_app_services_point_at_compose_postgres_and_redis() -> None:
    services = compose()["services"]
    for name in ("worker", "edge1", "edge2", "migrate"):
        env = services[name]["environment"]
        assert (
            env["DATABASE_URL"].startswith("postgresql://") and "@postgres:" in env["DATABASE_URL"]
        )
        assert env["REDIS_URL"].startswith("redis://redis:")
    assert services["worker"]["command"] == ["livescore", "worker"]
    assert services["edge1"]["environment"]["LIVESCORE_NODE_ID"] == "edge1"
    assert services["edge2"]["environment"]["LIVESCORE_NODE_ID"] == "edge2"
    # behind nginx, the client address is the one nginx forwards
    for edge in ("edge1", "edge2"):
        assert services[edge]["environment"]["LIVESCORE_PROXIES_COUNT"] == "1"


def test_every_long_running_service_has_a_health_check() -> None:
    services = compose()["services"]
    for name in ("postgres", "redis", "edge1", "edge2", "nginx"):
        assert "healthcheck" in services[name], name


def test_nginx_publishes_a_port_and_mounts_the_repo_config() -> None:
    nginx = compose()["services"]["nginx"]
    assert nginx["ports"]
    assert any("deploy/nginx.conf" in v for v in nginx["volumes"])


def test_nginx_upstream_names_both_edge_nodes_and_upgrades_websockets() -> None:
    conf = (ROOT / "deploy" / "nginx.conf").read_text()
    upstream = re.search(r"upstream\s+(\w+)\s*\{(.*?)\}", conf, re.S)
    assert upstream is not None
    servers = re.findall(r"server\s+([\w.-]+):(\d+)", upstream.group(2))
    assert {host for host, _ in servers} == {"edge1", "edge2"}
    assert f"proxy_pass http://{upstream.group(1)}" in conf
    assert "proxy_set_header Upgrade $http_upgrade" in conf
    assert re.search(r"location\s+/ws", conf)


def test_prometheus_and_grafana_are_wired_to_the_repo_rules_and_dashboard() -> None:
    services = compose()["services"]
    prometheus, grafana = services["prometheus"], services["grafana"]
    mounts = " ".join(prometheus["volumes"])
    assert "./deploy/prometheus/prometheus.yml:/etc/prometheus/prometheus.yml" in mounts
    assert "./deploy/prometheus/alerts.yml:/etc/prometheus/alerts.yml" in mounts
    config = yaml.safe_load((ROOT / "deploy" / "prometheus" / "prometheus.yml").read_text())
    assert config["rule_files"] == ["alerts.yml"]  # beside prometheus.yml in the container
    (job,) = config["scrape_configs"]
    assert set(job["static_configs"][0]["targets"]) == {"edge1:8000", "edge2:8000"}
    mounts = " ".join(grafana["volumes"])
    assert "./deploy/grafana/livescore.json:/var/lib/grafana/dashboards/livescore.json" in mounts
    assert "./deploy/grafana/provisioning:/etc/grafana/provisioning" in mounts
    datasource = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/datasources/prometheus.yml").read_text()
    )
    assert datasource["datasources"][0]["url"] == "http://prometheus:9090"
    provider = yaml.safe_load(
        (ROOT / "deploy/grafana/provisioning/dashboards/livescore.yml").read_text()
    )
    assert provider["providers"][0]["options"]["path"] == "/var/lib/grafana/dashboards"
