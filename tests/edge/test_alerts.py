"""The alerting rules and the dashboard only use metrics a real node exposes
(issue 14): every ``livescore_*`` name in ``deploy/prometheus/alerts.yml`` and
``deploy/grafana/livescore.json`` is scraped from a running ``livescore
serve``'s ``/metrics`` with the right type, and both files' PromQL passes
``promtool check rules`` (Debian's ``prometheus`` package) where promtool is
installed (required in CI: ``LIVESCORE_REQUIRE_TOOLS``)."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from tests.edge.conftest import EdgeNode

ROOT = Path(__file__).resolve().parents[2]
ALERTS = ROOT / "deploy" / "prometheus" / "alerts.yml"
DASHBOARD = ROOT / "deploy" / "grafana" / "livescore.json"
NAME = re.compile(r"\blivescore_[a-z0-9_]+")
HISTOGRAM_SERIES = ("_bucket", "_sum", "_count")


def alert_rules() -> list[dict[str, Any]]:
    data = yaml.safe_load(ALERTS.read_text())
    return [rule for group in data["groups"] for rule in group["rules"]]


def dashboard_exprs() -> list[str]:
    data = json.loads(DASHBOARD.read_text())
    return [target["expr"] for panel in data["panels"] for target in panel["targets"]]


def exposed(node: EdgeNode) -> dict[str, str]:
    """Every metric the node's /metrics declares, with its type."""
    text = httpx.get(f"{node.url}/metrics", timeout=10).text
    return dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))


def used(expr: str, types: dict[str, str]) -> set[tuple[str, str]]:
    """(series name, metric name) for each livescore_* series ``expr`` reads."""
    found = set()
    for series in NAME.findall(expr):
        base = series
        for suffix in HISTOGRAM_SERIES:
            if series.endswith(suffix) and types.get(series.removesuffix(suffix)) == "histogram":
                base = series.removesuffix(suffix)
        found.add((series, base))
    return found


def promtool() -> str:
    binary = shutil.which("promtool")
    if binary is None:
        if os.environ.get("LIVESCORE_REQUIRE_TOOLS"):
            pytest.fail("promtool is not installed (apt-get install prometheus)")
        pytest.skip("promtool not installed; .ci/run installs it (Debian package prometheus)")
    return binary


def test_the_rules_cover_every_fault_the_issue_names() -> None:
    names = {rule["alert"] for rule in alert_rules()}
    assert {
        "LiveScoreRelayStalled",
        "LiveScoreNoWorker",
        "LiveScoreFeedFailing",
        "LiveScoreStaleLiveMatches",
        "LiveScoreSlowConsumersDropped",
        "LiveScoreCommitToSendLagHigh",
        "LiveScoreHigh5xxRate",
    } <= names
    for rule in alert_rules():
        assert rule["labels"]["severity"] in {"page", "warn"}, rule["alert"]
        assert rule["annotations"]["summary"], rule["alert"]


def test_every_metric_the_rules_and_dashboard_use_is_exposed_by_a_real_node(
    edge: EdgeNode,
) -> None:
    types = exposed(edge)
    exprs = [rule["expr"] for rule in alert_rules()] + dashboard_exprs()
    missing = []
    for expr in exprs:
        for series, base in used(expr, types):
            if base not in types:
                missing.append(series)
            elif series != base:
                assert types[base] == "histogram", f"{series}: {base} is a {types[base]}"
            elif types[base] == "histogram":
                pytest.fail(f"{expr!r} reads the histogram {base} without _bucket/_sum/_count")
    assert not missing, f"not on /metrics: {sorted(set(missing))}"
    # the check can fail: a name that is not exposed is caught
    assert used("rate(livescore_no_such_metric[5m])", types) == {
        ("livescore_no_such_metric", "livescore_no_such_metric")
    }
    assert "livescore_no_such_metric" not in types
    # and the feed metrics the rules rely on are there even before any feed exists
    for name in ("livescore_feed_failures_in_row", "livescore_feed_errors_total"):
        assert name in types


def test_the_rules_pass_promtool_check_rules() -> None:
    result = subprocess.run(
        [promtool(), "check", "rules", str(ALERTS)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(alert_rules())} rules found" in result.stdout


def test_the_dashboard_queries_are_valid_promql(tmp_path: Path) -> None:
    # promtool has no "check query": each panel query becomes a recording rule it parses
    rules = {
        "groups": [
            {
                "name": "dashboard",
                "rules": [
                    {"record": f"livescore:dashboard_query_{i}", "expr": expr}
                    for i, expr in enumerate(dashboard_exprs())
                ],
            }
        ]
    }
    path = tmp_path / "dashboard_rules.yml"
    path.write_text(yaml.safe_dump(rules))
    result = subprocess.run(
        [promtool(), "check", "rules", str(path)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
