"""The PrometheusRule (templates/prometheusrule.yaml): off by default, valid for promtool, every
alert unit-tested by promtool (promtool/alerts_test.yaml) and documented in docs/RUNBOOK.md."""

from __future__ import annotations

import shutil
from pathlib import Path

import chartlib
import pytest
import yaml
from monitoring import (
    PROMTOOL_TESTS,
    RUNBOOK,
    alerts,
    metric_names,
    prometheus_rule,
    run_promtool,
    runbook_anchors,
    write_rules,
)

EXPECTED_ALERTS = {
    "VolopsOpsRequestFailed",
    "VolopsStepPastTimeout",
    "VolopsDatabasePausedTooLong",
    "VolopsAdmissionRequestsRefused",
    "VolopsWebhookTLSHandshakeFailures",
    "VolopsWebhookCertificateExpiring",
    "VolopsWebhookDown",
    "VolopsControllerNotLeading",
    "VolopsControllerDown",
}


def unit_test(rule: dict, tmp_path: Path):
    """promtool test rules of promtool/alerts_test.yaml against `rule`."""
    write_rules(rule, tmp_path)
    shutil.copy(PROMTOOL_TESTS, tmp_path / PROMTOOL_TESTS.name)
    return run_promtool("test", "rules", PROMTOOL_TESTS.name, cwd=tmp_path)


def test_alerts_are_off_by_default(default_docs):
    assert not chartlib.find(default_docs, "PrometheusRule")


def test_the_alerts_issue_23_asks_for_are_there():
    assert {a["alert"] for a in alerts(prometheus_rule())} == EXPECTED_ALERTS


def test_rules_pass_promtool_check(tmp_path):
    out = run_promtool("check", "rules", str(write_rules(prometheus_rule(), tmp_path)))
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(EXPECTED_ALERTS)} rules found" in out.stdout, out.stdout


def test_promtool_unit_tests_pass(tmp_path):
    out = unit_test(prometheus_rule(), tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


def test_unit_tests_catch_changed_rules(tmp_path):
    # The same tests on rules with other thresholds fail, naming the alerts that changed: they
    # pin what each alert does, not only that it parses.
    rule = prometheus_rule(
        {"metrics": {"prometheusRule": {"certificateExpiryDays": 5, "databasePausedLongerThan": "2h"}}}
    )
    out = unit_test(rule, tmp_path)
    report = out.stdout + out.stderr
    assert out.returncode != 0, report
    for alert in ("VolopsWebhookCertificateExpiring", "VolopsDatabasePausedTooLong"):
        assert f"alertname: {alert}" in report, report
    assert "alertname: VolopsOpsRequestFailed" not in report, report


def test_every_alert_has_a_case_that_fires_and_one_that_does_not():
    cases = [c for t in yaml.safe_load(PROMTOOL_TESTS.read_text())["tests"] for c in t["alert_rule_test"]]
    firing = {c["alertname"] for c in cases if c.get("exp_alerts")}
    quiet = {c["alertname"] for c in cases if not c.get("exp_alerts")}
    assert firing == EXPECTED_ALERTS, EXPECTED_ALERTS ^ firing
    assert quiet == EXPECTED_ALERTS, EXPECTED_ALERTS ^ quiet


def test_each_alert_has_a_summary_a_description_and_a_runbook_section():
    anchors = runbook_anchors(RUNBOOK.read_text())
    for alert in alerts(prometheus_rule()):
        notes = alert["annotations"]
        assert notes.get("summary") and notes.get("description"), alert["alert"]
        base, _, anchor = notes["runbook_url"].partition("#")
        assert base.endswith("/docs/RUNBOOK.md"), notes["runbook_url"]
        assert anchor == alert["alert"].lower(), notes["runbook_url"]
        assert anchor in anchors, f"docs/RUNBOOK.md has no section #{anchor}"
        assert alert["labels"]["severity"] in {"warning", "critical"}


def test_values_reach_the_rules():
    rule = prometheus_rule(
        {
            "metrics": {
                "prometheusRule": {
                    "labels": {"release": "prom"},
                    "alertLabels": {"team": "storage"},
                    "runbookURL": "https://wiki.example.com/volops/RUNBOOK.md",
                    "failedRequestWindow": "1h",
                    "databasePausedLongerThan": "30m",
                    "certificateExpiryDays": 30,
                }
            }
        }
    )
    assert rule["metadata"]["labels"]["release"] == "prom"
    by_name = {a["alert"]: a for a in alerts(rule)}
    assert "[1h]" in by_name["VolopsOpsRequestFailed"]["expr"]
    assert by_name["VolopsDatabasePausedTooLong"]["expr"].endswith("> 1800")
    assert by_name["VolopsWebhookCertificateExpiring"]["expr"].endswith("< 2592000")
    for alert in by_name.values():
        assert alert["labels"]["team"] == "storage"
        assert alert["annotations"]["runbook_url"].startswith("https://wiki.example.com/volops/RUNBOOK.md#")


@pytest.mark.parametrize("form,seconds", [("90s", 90), ("45m", 2700), ("2h", 7200), ("1d", 86400)])
def test_pause_threshold_units(form, seconds):
    rule = prometheus_rule({"metrics": {"prometheusRule": {"databasePausedLongerThan": form}}})
    (paused,) = [a for a in alerts(rule) if a["alert"] == "VolopsDatabasePausedTooLong"]
    assert paused["expr"].endswith(f"> {seconds}")


def test_alerts_select_the_series_the_service_monitor_scrapes():
    # Prometheus Operator names a ServiceMonitor's job after the scraped Service.
    values = {"metrics": {"serviceMonitor": {"enabled": True}}}
    docs = chartlib.all_docs(
        chartlib.render_manifests(chartlib.deep_merge(values, {"metrics": {"prometheusRule": {"enabled": True}}}), name="prod", namespace="db-ops")
    )
    service = [s for s in chartlib.find(docs, "Service") if s["metadata"]["name"].endswith("-metrics")]
    assert len(service) == 1
    selector = f'job="{service[0]["metadata"]["name"]}",namespace="db-ops"'
    for alert in alerts(chartlib.one(docs, "PrometheusRule")):
        names = metric_names(alert["expr"]) or {"up"}
        assert alert["expr"].count(selector) >= 1, alert["expr"]
        assert names, alert["alert"]
