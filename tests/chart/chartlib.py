"""Render the volops chart with the real Helm engine (helm-python-sdk) and read the result.

Shared by the pytest suite and by render.py (the CLI the end-to-end tests use).
"""

from __future__ import annotations

import copy
import functools
import os
from pathlib import Path
from typing import Any

import helm_python as helm
import yaml

REPO_ROOT = Path(__file__).resolve().parents[2]
CHART_DIR = REPO_ROOT / "charts" / "volops"
DEFAULT_RELEASE = "volops"
DEFAULT_NAMESPACE = "volops-system"


@functools.lru_cache(maxsize=1)
def load_chart(chart_dir: str = str(CHART_DIR)) -> helm.Chart:
    """The chart, loaded once per process (loading parses every file)."""
    return helm.Chart.load(chart_dir)


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """Merge override into a copy of base the way repeated -f / --set do (maps merge, rest replaces)."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def values_from_sets(sets: list[str], set_strings: list[str] | None = None) -> dict[str, Any]:
    """Values from Helm --set / --set-string expressions, parsed by Helm's own strvals."""
    values: dict[str, Any] = {}
    for expr in sets:
        values = deep_merge(values, helm.parse_set_string(expr))
    for expr in set_strings or []:
        values = deep_merge(values, helm.parse_set_string_values(expr))
    return values


def render_templates(
    values: dict[str, Any] | None = None,
    *,
    name: str = DEFAULT_RELEASE,
    namespace: str = DEFAULT_NAMESPACE,
    chart_dir: Path = CHART_DIR,
) -> dict[str, str]:
    """Rendered text per template path relative to the chart (e.g. "templates/x.yaml").

    Raises helm.HelmValuesError when the values break values.schema.json and
    helm.HelmRenderError when a template fails (e.g. `required`/`fail`).
    """
    chart = load_chart(str(chart_dir))
    rendered = chart.render(values or {}, name=name, namespace=namespace, is_install=True, revision=1)
    chart_name = chart.name
    out: dict[str, str] = {}
    for path, text in rendered.items():
        rel = path.split("/", 1)[1] if path.startswith(chart_name + "/") else path
        out[rel] = text
    return out


def crd_files(chart_dir: Path = CHART_DIR) -> dict[str, str]:
    """crds/*.yaml of the chart (what `helm install` applies unless --skip-crds)."""
    crds = chart_dir / "crds"
    if not crds.is_dir():
        return {}
    return {
        f"crds/{p.name}": p.read_text()
        for p in sorted(crds.iterdir())
        if p.suffix in (".yaml", ".yml", ".json")
    }


def parse_docs(text: str) -> list[dict[str, Any]]:
    """Non-empty YAML documents of one rendered file."""
    return [doc for doc in yaml.safe_load_all(text) if doc]


def is_manifest_path(path: str) -> bool:
    """Helm sends NOTES.txt to the user, not to the cluster; partials render nothing."""
    base = os.path.basename(path)
    return not (base == "NOTES.txt" or base.startswith("_"))


def render_manifests(
    values: dict[str, Any] | None = None,
    *,
    name: str = DEFAULT_RELEASE,
    namespace: str = DEFAULT_NAMESPACE,
    include_crds: bool = False,
    include_tests: bool = True,
    chart_dir: Path = CHART_DIR,
) -> dict[str, list[dict[str, Any]]]:
    """Parsed manifests per file: templates that render something, plus crds/ when asked."""
    files: dict[str, list[dict[str, Any]]] = {}
    if include_crds:
        for path, text in crd_files(chart_dir).items():
            files[path] = parse_docs(text)
    rendered = render_templates(values, name=name, namespace=namespace, chart_dir=chart_dir)
    for path, text in sorted(rendered.items()):
        if not is_manifest_path(path):
            continue
        if not include_tests and path.startswith("templates/tests/"):
            continue
        docs = parse_docs(text)
        if docs:
            files[path] = docs
    return files


def all_docs(files: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    return [doc for docs in files.values() for doc in docs]


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> list[dict[str, Any]]:
    """Documents of a kind (and name)."""
    return [
        d
        for d in docs
        if d.get("kind") == kind and (name is None or d.get("metadata", {}).get("name") == name)
    ]


def crds_by_name(docs: Any) -> dict[str, dict[str, Any]]:
    return {d["metadata"]["name"]: d for d in docs if d and d.get("kind") == "CustomResourceDefinition"}


def crd_drift(generated_yaml: str, committed: dict[str, str]) -> list[str]:
    """Differences between `volops-crdgen --stdout` and the committed crds/ files, compared as
    parsed objects (file split, key order and comments do not matter). Empty when in sync."""
    generated = crds_by_name(yaml.safe_load_all(generated_yaml))
    current = crds_by_name(d for text in committed.values() for d in parse_docs(text))
    problems = []
    if not generated:
        problems.append("the generator printed no CustomResourceDefinition")
    problems += [f"{n}: generated but not in crds/" for n in sorted(generated.keys() - current.keys())]
    problems += [f"{n}: in crds/ but no longer generated" for n in sorted(current.keys() - generated.keys())]
    problems += [
        f"{n}: crds/ is stale, regenerate it with volops-crdgen"
        for n in sorted(generated.keys() & current.keys())
        if generated[n] != current[n]
    ]
    return problems


def one(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    found = find(docs, kind, name)
    assert len(found) == 1, f"expected exactly one {kind} {name or ''}, found {len(found)}"
    return found[0]
