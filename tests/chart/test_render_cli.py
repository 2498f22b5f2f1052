"""tests/chart/render.py: the CLI the end-to-end tests use to register the webhook as the chart does."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import chartlib
import yaml

RENDER = Path(__file__).resolve().parent / "render.py"


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, str(RENDER), *args], capture_output=True, text=True, timeout=120, check=False
    )


def test_writes_one_file_per_template_with_sets(tmp_path):
    out = tmp_path / "out"
    res = run("--out", str(out), "--namespace", "e2e", "--set", "webhook.timeoutSeconds=7",
              "--set", "webhook.replicas=1,controller.replicas=1", "--skip-crds")
    assert res.returncode == 0, res.stderr
    written = sorted(Path(line).relative_to(out).as_posix() for line in res.stdout.split())
    expected = sorted(
        p.removeprefix("templates/")
        for p in chartlib.render_manifests({"webhook": {"replicas": 1}, "controller": {"replicas": 1}}, namespace="e2e")
    )
    assert written == expected
    assert "validating-webhook.yaml" in written and "mutating-webhook.yaml" in written
    assert not any(p.startswith("crds/") for p in written)
    assert "webhook-pdb.yaml" not in written  # replicas=1 took effect
    (config,) = yaml.safe_load_all((out / "validating-webhook.yaml").read_text())
    assert config["kind"] == "ValidatingWebhookConfiguration"
    assert {w["timeoutSeconds"] for w in config["webhooks"]} == {7}
    assert {w["clientConfig"]["service"]["namespace"] for w in config["webhooks"]} == {"e2e"}


def test_values_file_and_set_string(tmp_path):
    values = tmp_path / "v.yaml"
    values.write_text("webhook:\n  failurePolicy: Ignore\n  image:\n    tag: from-file\n")
    out = tmp_path / "out"
    res = run("--out", str(out), "-f", str(values), "--set-string", "webhook.image.tag=123")
    assert res.returncode == 0, res.stderr
    (mutating,) = yaml.safe_load_all((out / "mutating-webhook.yaml").read_text())
    assert mutating["webhooks"][0]["failurePolicy"] == "Ignore"
    deploy = next(yaml.safe_load_all((out / "webhook-deployment.yaml").read_text()))
    assert deploy["spec"]["template"]["spec"]["containers"][0]["image"].endswith(":123")


def test_rerun_replaces_previous_output(tmp_path):
    out = tmp_path / "out"
    assert run("--out", str(out), "--set", "metrics.serviceMonitor.enabled=true").returncode == 0
    assert (out / "servicemonitor.yaml").exists()
    assert run("--out", str(out)).returncode == 0
    assert not (out / "servicemonitor.yaml").exists()


def test_bad_values_exit_2_with_helm_message(tmp_path):
    res = run("--out", str(tmp_path / "out"), "--set", "webhook.timeoutSeconds=31")
    assert res.returncode == 2
    assert "/webhook/timeoutSeconds" in res.stderr
    assert not (tmp_path / "out").exists()


def test_refuses_to_empty_a_foreign_directory(tmp_path):
    keep = tmp_path / "keep.txt"
    keep.write_text("mine")
    res = run("--out", str(tmp_path))
    assert res.returncode == 2 and "not written by render.py" in res.stderr
    assert keep.read_text() == "mine"


def test_rendered_files_pass_the_kubernetes_validate_cli(tmp_path):
    # The same check a user or CI runs by hand on render.py output.
    out = tmp_path / "out"
    res = run("--out", str(out), "--set", "certManager.enabled=true,metrics.serviceMonitor.enabled=true")
    assert res.returncode == 0, res.stderr
    files = [line for line in res.stdout.split() if line]
    check = subprocess.run(
        [sys.executable, "-m", "kubernetes_validate", "--strict", "-k", "1.29.0", "--quiet", *files],
        capture_output=True, text=True, timeout=120, check=False,
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "ERROR" not in check.stdout
    warned = {line.split()[1] for line in check.stdout.splitlines() if line.startswith("WARN")}
    # Only the files holding cert-manager / Prometheus Operator kinds lack a schema.
    assert {Path(p).name for p in warned} == {"webhook-certmanager.yaml", "servicemonitor.yaml"}
