"""The Dockerfile, `make image` and the chart agree (no container engine needed): the images
run workspace binaries built with the workspace's Rust version, as the user, on the ports and
with the arguments the chart's Deployments give them, under the names and tag the chart pulls."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import chartlib
import pytest

ROOT = chartlib.REPO_ROOT
DOCKERFILE = ROOT / "Dockerfile"
# Dockerfile target -> the chart's values key and Deployment.
COMPONENTS = {"webhook": "volops-webhook", "controller": "volops-controller"}


@dataclass
class Stage:
    base: str
    name: str
    instructions: list[tuple[str, str]] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [args for kw, args in self.instructions if kw == keyword]

    def one(self, keyword: str) -> str:
        found = self.all(keyword)
        assert len(found) == 1, f"stage {self.name}: expected one {keyword}, found {found}"
        return found[0]


def parse_dockerfile(text: str) -> dict[str, Stage]:
    """Stages by name; continuation lines joined, comments and the syntax directive dropped."""
    logical, current = [], ""
    for line in text.splitlines():
        if not current and (not line.strip() or line.lstrip().startswith("#")):
            continue
        current += line.rstrip("\\").strip() + " " if line.endswith("\\") else line.strip()
        if not line.endswith("\\"):
            logical.append(current)
            current = ""
    stages: dict[str, Stage] = {}
    stage = None
    for line in logical:
        keyword, _, args = line.partition(" ")
        keyword = keyword.upper()
        if keyword == "FROM":
            m = re.fullmatch(r"(\S+)\s+AS\s+(\S+)", args.strip(), re.IGNORECASE)
            assert m, f"every stage is named: FROM {args}"
            stage = stages[m.group(2)] = Stage(m.group(1), m.group(2))
        else:
            assert stage is not None, f"{keyword} before FROM"
            stage.instructions.append((keyword, args.strip()))
    return stages


@pytest.fixture(scope="module")
def stages() -> dict[str, Stage]:
    return parse_dockerfile(DOCKERFILE.read_text())


def workspace() -> dict:
    return tomllib.loads((ROOT / "Cargo.toml").read_text())


def workspace_bins() -> dict[str, str]:
    """Every binary of the workspace -> its package."""
    bins = {}
    for member in workspace()["workspace"]["members"]:
        manifest = tomllib.loads((ROOT / member / "Cargo.toml").read_text())
        package = manifest["package"]["name"]
        declared = manifest.get("bin", [])
        for b in declared:
            bins[b["name"]] = package
        if (ROOT / member / "src" / "main.rs").exists() and not any(b.get("path") == "src/main.rs" for b in declared):
            bins[package] = package
    return bins


def copied_binary(stage: Stage) -> tuple[str, str]:
    """(binary, where it lands) of a run stage's one COPY --from=build."""
    copy = stage.one("COPY")
    parts = copy.split()
    assert parts[0] == "--from=build" and len(parts) == 3, copy
    return Path(parts[1]).name, parts[2]


def deployment(component: str) -> dict:
    docs = chartlib.all_docs(chartlib.render_manifests({}))
    return chartlib.one(docs, "Deployment", COMPONENTS[component])


def target_dir() -> Path:
    return Path(os.environ.get("CARGO_TARGET_DIR") or ROOT / "target") / "debug"


def test_stages(stages):
    assert set(stages) == {"build", *COMPONENTS}


def test_rust_image_is_the_workspace_rust_version(stages):
    rust_version = workspace()["workspace"]["package"]["rust-version"]
    m = re.fullmatch(r"docker\.io/library/rust:([0-9.]+)-\S+", stages["build"].base)
    assert m, stages["build"].base
    assert m.group(1) == rust_version


def test_build_is_locked_release_of_the_packages_whose_bins_are_copied(stages):
    bins = workspace_bins()
    (run,) = stages["build"].all("RUN")
    build = re.search(r"cargo build ([^&]*)", run)
    assert build, run
    args = shlex.split(build.group(1))
    assert "--locked" in args and "--release" in args, args
    packages = {args[i + 1] for i, a in enumerate(args) if a == "-p"}
    for component in COMPONENTS:
        binary, _ = copied_binary(stages[component])
        assert binary in bins, f"{binary} is no workspace bin ({sorted(bins)})"
        assert bins[binary] in packages, f"{binary} is in {bins[binary]}, which the build does not build"
        assert f"target/release/{binary}" in run, f"the build stage does not put {binary} in /out"


def test_run_stages_are_distroless_and_run_the_copied_binary(stages):
    for component in COMPONENTS:
        stage = stages[component]
        assert stage.base.startswith("gcr.io/distroless/cc-debian12"), stage.base
        binary, dest = copied_binary(stage)
        assert binary == COMPONENTS[component]
        entrypoint = json.loads(stage.one("ENTRYPOINT"))
        assert entrypoint == [dest], f"exec form running the copied binary: {entrypoint}"


def test_user_is_the_charts_run_as_user(stages):
    for component in COMPONENTS:
        user, _, group = stages[component].one("USER").partition(":")
        pod = deployment(component)["spec"]["template"]["spec"]["securityContext"]
        assert pod["runAsNonRoot"] is True
        assert int(user) == pod["runAsUser"] != 0
        assert int(group) == pod["runAsGroup"]


def test_exposed_ports_are_the_charts_container_ports(stages):
    for component in COMPONENTS:
        exposed = {int(p.split("/")[0]) for p in stages[component].one("EXPOSE").split()}
        (container,) = deployment(component)["spec"]["template"]["spec"]["containers"]
        assert exposed == {p["containerPort"] for p in container["ports"]}, component


def test_the_chart_runs_the_entrypoint_with_arguments_it_accepts(stages):
    for component in COMPONENTS:
        (container,) = deployment(component)["spec"]["template"]["spec"]["containers"]
        assert "command" not in container, "a command would replace the image's ENTRYPOINT"
        binary = target_dir() / COMPONENTS[component]
        if not binary.exists():
            if os.environ.get("CI") == "true":
                pytest.fail(f"{binary} is missing: `make chart-test` builds it first")
            pytest.skip(f"{binary} is not built (cargo build --bins)")
        usage = subprocess.run([str(binary), "--help"], capture_output=True, text=True, timeout=60).stdout
        for arg in container["args"]:
            flag = arg.split("=", 1)[0]
            assert re.search(rf"(^|\s){re.escape(flag)}[\s=,]", usage), f"{binary.name} has no {flag}"


def test_default_image_tag_is_app_version_is_crate_version():
    chart = chartlib.load_chart()
    app_version = chart.metadata["appVersion"]
    assert app_version == workspace()["workspace"]["package"]["version"]
    values = chart.values
    for component in COMPONENTS:
        assert values[component]["image"]["tag"] == ""
        (container,) = deployment(component)["spec"]["template"]["spec"]["containers"]
        assert container["image"] == f"{values[component]['image']['repository']}:{app_version}"


def test_make_image_builds_each_target_under_the_name_the_chart_pulls():
    out = subprocess.run(
        ["make", "-n", "image", "CONTAINER_ENGINE=docker"], cwd=ROOT, capture_output=True, text=True, timeout=60
    )
    assert out.returncode == 0, out.stderr
    built = dict(re.findall(r"^docker build --target (\S+) -t (\S+) \.$", out.stdout, re.MULTILINE))
    assert set(built) == set(COMPONENTS), out.stdout
    for component in COMPONENTS:
        (container,) = deployment(component)["spec"]["template"]["spec"]["containers"]
        assert built[component] == container["image"]


def test_make_image_without_an_engine_says_so():
    out = subprocess.run(["make", "image", "CONTAINER_ENGINE="], cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert out.returncode != 0
    assert "neither docker nor podman" in out.stderr


def test_dockerignore_keeps_the_build_inputs_and_drops_build_outputs():
    ignored = [
        line.strip().rstrip("/")
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip() and not line.startswith("#")
    ]
    assert "target" in ignored and ".git" in ignored
    needed = ["Cargo.toml", "Cargo.lock", *workspace()["workspace"]["members"]]
    for path in needed:
        assert not any(Path(path).match(p) or path.startswith(p + "/") for p in ignored), path
