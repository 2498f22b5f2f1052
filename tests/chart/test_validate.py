"""Every rendered manifest validates strictly against Kubernetes 1.29, the oldest we support."""

from __future__ import annotations

import re

import chartlib
import helm_python as helm
import kubernetes_validate
import pytest
import yaml
from scenarios import SCENARIOS, rendered

MIN_KUBE = "1.29.0"
# Custom resources of other projects: kubernetes-validate has no schema for them.
NO_SCHEMA = {
    ("cert-manager.io/v1", "Certificate"),
    ("cert-manager.io/v1", "Issuer"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PrometheusRule"),
}


def test_every_manifest_validates_strict_on_oldest_kube(scenario):
    errors = []
    checked = 0
    for path, docs in rendered(scenario).items():
        for doc in docs:
            what = f"{path}: {doc.get('kind')}/{doc.get('metadata', {}).get('name')}"
            try:
                kubernetes_validate.validate(doc, MIN_KUBE, strict=True)
                checked += 1
            except kubernetes_validate.SchemaNotFoundError:
                if (doc["apiVersion"], doc["kind"]) not in NO_SCHEMA:
                    errors.append(f"{what}: no schema for {doc['apiVersion']} {doc['kind']} in {MIN_KUBE}")
            except kubernetes_validate.ValidationError as e:
                errors.append(f"{what}: {'.'.join(map(str, e.path))}: {e.message}")
    assert not errors, "\n".join(errors)
    assert checked >= 10


def test_validator_catches_a_broken_manifest(default_docs):
    # Guard against a validator that passes everything: drop a required field.
    config = yaml.safe_load(yaml.safe_dump(chartlib.one(default_docs, "ValidatingWebhookConfiguration")))
    del config["webhooks"][0]["sideEffects"]
    with pytest.raises(kubernetes_validate.ValidationError, match="sideEffects"):
        kubernetes_validate.validate(config, MIN_KUBE, strict=True)


def test_helm_lint_strict_clean_for_oldest_kube(scenario):
    report = helm.lint(
        str(chartlib.CHART_DIR), SCENARIOS[scenario], strict=True, kube_version=f"v{MIN_KUBE}", namespace="volops-system"
    )
    problems = [m for m in report["messages"] if m["severity"] >= 2] + report.get("errors", [])
    assert report["total_charts_linted"] == 1
    assert not problems, problems


def test_validation_version_is_the_charts_declared_minimum():
    # The chart refuses older clusters (kubeVersion); validation must use exactly that floor.
    constraint = chartlib.load_chart().metadata["kubeVersion"]
    match = re.fullmatch(r">=\s*(\d+\.\d+\.\d+)-0", constraint)
    assert match, f"kubeVersion {constraint!r} is not a plain lower bound"
    assert match.group(1) == MIN_KUBE
