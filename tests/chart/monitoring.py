"""The chart's monitoring objects (PrometheusRule, Grafana dashboard) and Prometheus's promtool.

promtool comes with Debian's `prometheus` package (.ci/run installs it): required when
CI=true, the tests that need it are skipped elsewhere.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import chartlib
import pytest
import yaml

PROMTOOL_TESTS = Path(__file__).resolve().parent / "promtool" / "alerts_test.yaml"
RUNBOOK = chartlib.REPO_ROOT / "docs" / "RUNBOOK.md"
ALERTS_ON = {"metrics": {"prometheusRule": {"enabled": True}}}
DASHBOARD_ON = {"metrics": {"grafanaDashboard": {"enabled": True}}}


def promtool() -> str:
    path = shutil.which("promtool")
    if path:
        return path
    if os.environ.get("CI") == "true":
        pytest.fail("promtool is missing: .ci/run installs Debian's prometheus package (apt-get install prometheus)")
    pytest.skip("promtool is missing (apt-get install prometheus)")


def run_promtool(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([promtool(), *args], cwd=cwd, capture_output=True, text=True, timeout=120)


def prometheus_rule(values: dict[str, Any] | None = None, **render: Any) -> dict[str, Any]:
    docs = chartlib.all_docs(chartlib.render_manifests(chartlib.deep_merge(ALERTS_ON, values or {}), **render))
    return chartlib.one(docs, "PrometheusRule")


def alerts(rule: dict[str, Any]) -> list[dict[str, Any]]:
    return [r for group in rule["spec"]["groups"] for r in group["rules"] if "alert" in r]


def write_rules(rule: dict[str, Any], directory: Path) -> Path:
    """The PrometheusRule's spec as a Prometheus rule file (what the Operator hands Prometheus)."""
    path = directory / "rules.yaml"
    path.write_text(yaml.safe_dump(rule["spec"], sort_keys=False))
    return path


def dashboard_configmap(values: dict[str, Any] | None = None) -> dict[str, Any]:
    docs = chartlib.all_docs(chartlib.render_manifests(chartlib.deep_merge(DASHBOARD_ON, values or {})))
    return chartlib.one(docs, "ConfigMap", "volops-dashboard")


def dashboard(values: dict[str, Any] | None = None) -> dict[str, Any]:
    return json.loads(dashboard_configmap(values)["data"]["volops.json"])


def dashboard_exprs(board: dict[str, Any]) -> list[str]:
    exprs = []
    for panel in board["panels"]:
        exprs += [t["expr"] for t in panel.get("targets", [])]
    return exprs


def runbook_anchors(text: str) -> set[str]:
    """GitHub's anchors of the Markdown headings: lower case, punctuation dropped, spaces to '-'."""
    anchors = set()
    for line in text.splitlines():
        m = re.match(r"^#{1,6}\s+(.*?)\s*$", line)
        if m:
            slug = re.sub(r"[^\w\- ]", "", m.group(1).lower()).replace(" ", "-")
            anchors.add(slug)
    return anchors


METRIC_NAME = re.compile(r"\bvolops_[a-z0-9_]+\b")


def metric_names(text: str) -> set[str]:
    """volops's metric names in PromQL or a dashboard's JSON."""
    return set(METRIC_NAME.findall(text))
