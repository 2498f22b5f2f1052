#!/usr/bin/env python3
"""Render the volops chart with the real Helm engine and write one file per template.

    python3 tests/chart/render.py --out DIR [--set k=v ...] [--set-string k=v ...]
        [-f values.yaml ...] [--name volops] [--namespace volops-system]
        [--skip-crds] [--skip-tests]

Writes DIR/<template file name> for every template that renders something (e.g.
validating-webhook.yaml, controller-rbac.yaml), DIR/tests/<file> for `helm test` hooks, and
DIR/crds/<file> for the chart's CRDs unless --skip-crds (as `helm install` does). Prints the
written paths, one per line. Exit status 2 with Helm's message when values are rejected.
"""

from __future__ import annotations

import argparse
import shutil
import sys
from pathlib import Path

import helm_python as helm
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))

import chartlib  # noqa: E402

MARKER = ".volops-render"


def parse_args(argv: list[str]) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--out", required=True, type=Path, help="directory to write (a previous render.py output is replaced)"
    )
    p.add_argument("--set", dest="sets", action="append", default=[], metavar="K=V")
    p.add_argument("--set-string", dest="set_strings", action="append", default=[], metavar="K=V")
    p.add_argument("-f", "--values", dest="values_files", action="append", default=[], type=Path)
    p.add_argument("--name", default=chartlib.DEFAULT_RELEASE, help="release name")
    p.add_argument("--namespace", default=chartlib.DEFAULT_NAMESPACE, help="release namespace")
    p.add_argument("--skip-crds", action="store_true", help="leave out crds/ like `helm install --skip-crds`")
    p.add_argument("--skip-tests", action="store_true", help="leave out `helm test` hook manifests")
    return p.parse_args(argv)


def output_path(out: Path, chart_path: str) -> Path:
    """templates/x.yaml -> out/x.yaml; templates/tests/x.yaml -> out/tests/x.yaml; crds/x -> out/crds/x."""
    if chart_path.startswith("templates/"):
        return out / chart_path[len("templates/") :]
    return out / chart_path


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    values: dict = {}
    for f in args.values_files:
        values = chartlib.deep_merge(values, yaml.safe_load(f.read_text()) or {})
    values = chartlib.deep_merge(values, chartlib.values_from_sets(args.sets, args.set_strings))
    try:
        files = chartlib.render_manifests(
            values,
            name=args.name,
            namespace=args.namespace,
            include_crds=not args.skip_crds,
            include_tests=not args.skip_tests,
        )
    except helm.HelmError as e:
        print(f"render.py: {type(e).__name__}: {e}", file=sys.stderr)
        return 2
    if args.out.exists() and any(args.out.iterdir()):
        # Only ever empty a directory this script wrote, never an arbitrary one.
        if not (args.out / MARKER).exists():
            print(f"render.py: {args.out} is not empty and was not written by render.py", file=sys.stderr)
            return 2
        shutil.rmtree(args.out)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / MARKER).write_text("written by tests/chart/render.py; emptied on the next run\n")
    for chart_path, docs in files.items():
        target = output_path(args.out, chart_path)
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(yaml.safe_dump_all(docs, sort_keys=False))
        print(target)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
