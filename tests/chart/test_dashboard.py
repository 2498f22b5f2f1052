"""The Grafana dashboard (templates/grafana-dashboard.yaml, dashboards/volops.json): off by
default, found by Grafana's sidecar, showing what issue 23 asks for, every query valid PromQL."""

from __future__ import annotations

import chartlib
import yaml
from monitoring import dashboard, dashboard_configmap, dashboard_exprs, metric_names, run_promtool

# What the dashboard must show (issue 23), each as (panel title, a metric its queries read).
REQUIRED_PANELS = [
    ("Requests by phase", "volops_controller_ops_phase_total"),
    ("Step durations", "volops_controller_step_duration_seconds_bucket"),
    ("PVC expansions", "volops_controller_pvc_expansions_total"),
    ("Admission rate", "volops_webhook_admission_requests_total"),
    ("Admission latency", "volops_webhook_admission_duration_seconds_bucket"),
    ("Denials by rule", "volops_webhook_admission_denials_total"),
]


def test_dashboard_is_off_by_default(default_docs):
    assert not [d for d in chartlib.find(default_docs, "ConfigMap") if "dashboard" in d["metadata"]["name"]]


def test_the_sidecar_finds_it_by_its_label_in_the_namespace_asked():
    cm = dashboard_configmap()
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert cm["metadata"]["namespace"] == "volops-system"
    cm = dashboard_configmap(
        {
            "metrics": {
                "grafanaDashboard": {
                    "label": "my_dashboards",
                    "labelValue": "volops",
                    "namespace": "monitoring",
                    "annotations": {"grafana_folder": "Storage"},
                }
            }
        }
    )
    assert cm["metadata"]["labels"]["my_dashboards"] == "volops"
    assert "grafana_dashboard" not in cm["metadata"]["labels"]
    assert cm["metadata"]["namespace"] == "monitoring"
    assert cm["metadata"]["annotations"] == {"grafana_folder": "Storage"}


def test_the_panels_issue_23_asks_for_are_there():
    panels = {p["title"]: p for p in dashboard()["panels"]}
    for title, metric in REQUIRED_PANELS:
        assert title in panels, f"no panel {title!r}: {sorted(panels)}"
        exprs = " ".join(t["expr"] for t in panels[title]["targets"])
        assert metric in metric_names(exprs), f"{title}: {exprs}"
    denials = " ".join(t["expr"] for t in panels["Denials by rule"]["targets"])
    assert "by (rule)" in denials
    phases = " ".join(t["expr"] for t in panels["Requests by phase"]["targets"])
    assert "phase" in phases


def test_layout_and_variables():
    board = dashboard()
    assert board["uid"] == "volops"
    ids = [p["id"] for p in board["panels"]]
    assert len(ids) == len(set(ids)), ids
    for p in board["panels"]:
        pos = p["gridPos"]
        assert pos["x"] + pos["w"] <= 24, p["title"]
    variables = {v["name"] for v in board["templating"]["list"]}
    assert variables == {"datasource", "namespace"}
    for p in board["panels"]:
        for t in p.get("targets", []):
            assert t["datasource"]["uid"] == "${datasource}", p["title"]
            assert 'namespace="$namespace"' in t["expr"], t["expr"]


def test_every_query_is_valid_promql(tmp_path):
    # promtool checks PromQL in rule files: each query becomes a recording rule, with Grafana's
    # variables replaced by what Grafana would put there.
    exprs = dashboard_exprs(dashboard())
    rules = [
        {"record": f"dashboard:query{i}", "expr": e.replace("$__rate_interval", "5m").replace("$namespace", "volops-system")}
        for i, e in enumerate(exprs)
    ]
    path = tmp_path / "dashboard-queries.yaml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    out = run_promtool("check", "rules", str(path))
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in out.stdout

    # A broken query is caught the same way.
    path.write_text(yaml.safe_dump({"groups": [{"name": "d", "rules": [{"record": "x:y", "expr": "sum by (le"}]}]}))
    assert run_promtool("check", "rules", str(path)).returncode != 0
