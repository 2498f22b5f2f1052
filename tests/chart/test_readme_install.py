"""README.md's "Install on a cluster" stays true: the images `make image` builds and pushes are
the ones the install pulls, and its values turn on the ServiceMonitor, alerts and dashboard."""

from __future__ import annotations

import re

import chartlib


def install_section() -> str:
    readme = (chartlib.REPO_ROOT / "README.md").read_text()
    start = readme.index("## Install on a cluster")
    return readme[start : readme.index("\n## ", start + 1)]


def sets(text: str) -> list[str]:
    return re.findall(r"--set\s+(\S+=\S+)", text)


def test_install_renders_a_monitored_release_from_the_images_make_image_builds():
    section = install_section()
    first_block = section.split("```sh", 1)[1].split("```", 1)[0]
    registry = re.search(r"make image IMAGE_REGISTRY=(\S+)", first_block).group(1)
    app_version = chartlib.load_chart().metadata["appVersion"]
    pushed = set(re.findall(r"docker push (\S+)", first_block))
    assert pushed == {f"{registry}/volops-{c}:{app_version}" for c in ("webhook", "controller")}

    # The command itself, and the optional kube-prometheus-stack settings shown as comments.
    docs = chartlib.all_docs(chartlib.render_manifests(chartlib.values_from_sets(sets(first_block))))
    for kind in ("ServiceMonitor", "PrometheusRule"):
        assert chartlib.find(docs, kind), f"README's install has no {kind}"
    assert chartlib.find(docs, "ConfigMap", "volops-dashboard")
    images = {
        c["image"]
        for d in chartlib.find(docs, "Deployment")
        for c in d["spec"]["template"]["spec"]["containers"]
    }
    assert images == pushed
    assert chartlib.one(docs, "PrometheusRule")["metadata"]["labels"]["release"] == "kube-prometheus-stack"
    assert chartlib.one(docs, "ConfigMap", "volops-dashboard")["metadata"]["namespace"] == "monitoring"


def test_upgrade_commands_match_the_runbook():
    runbook = (chartlib.REPO_ROOT / "docs" / "RUNBOOK.md").read_text()
    crds = re.search(r"^kubectl apply --server-side .*crds/$", install_section(), re.MULTILINE)
    assert crds, "README's install section shows the CRD upgrade"
    assert crds.group(0) in runbook
