#!/usr/bin/env python3
"""Regenerate every derived monitoring file from its one source.

    python3 tools/generate.py            # rewrite the files below
    python3 tools/generate.py --check    # exit 1 naming each file that differs from a fresh generation
    python3 tools/generate.py --test-rules OUT --for-cap 5s
                                         # a copy of the rules with every for: capped (end-to-end tests)

Sources: deploy/prometheus/vma_mixin/ (rules; thresholds and the job selector in its
config.py) and grafana/vma_dashboards/ (dashboards, same config for colours).
Outputs: deploy/prometheus/vma-exporter.rules.yml, deploy/kubernetes/prometheusrule.yaml,
grafana/dashboards/*.json.
"""

import argparse
import os
import sys

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
# The sources are plain directories, not an installed package: put them on the path.
for _source in ("deploy/prometheus", "grafana"):
    _path = os.path.join(REPO, _source)
    if _path not in sys.path:
        sys.path.insert(0, _path)

import vma_dashboards  # noqa: E402
from vma_mixin import duration_seconds, render  # noqa: E402

RULES_FILE = "deploy/prometheus/vma-exporter.rules.yml"
PROMETHEUS_RULE = "deploy/kubernetes/prometheusrule.yaml"
DASHBOARD_DIR = "grafana/dashboards"


def outputs() -> dict[str, str]:
    """Path relative to the repository -> the text it should hold."""
    out = {
        RULES_FILE: render.rules_file(),
        PROMETHEUS_RULE: render.prometheus_rule(),
    }
    for name, text in vma_dashboards.render_all().items():
        out[f"{DASHBOARD_DIR}/{name}"] = text
    return out


def stale(root: str = REPO) -> list[str]:
    """Outputs whose checked-in text differs from a fresh generation (or is missing)."""
    bad = []
    for rel, text in outputs().items():
        try:
            with open(os.path.join(root, rel), encoding="utf-8") as f:
                if f.read() == text:
                    continue
        except FileNotFoundError:
            pass
        bad.append(rel)
    # A dashboard file with no source any more is stale too: it would still be provisioned.
    expected = {rel for rel in outputs() if rel.startswith(DASHBOARD_DIR + "/")}
    directory = os.path.join(root, DASHBOARD_DIR)
    if os.path.isdir(directory):
        bad += sorted(f"{DASHBOARD_DIR}/{n}" for n in os.listdir(directory)
                      if n.endswith(".json") and f"{DASHBOARD_DIR}/{n}" not in expected)
    return bad


def write(root: str = REPO) -> list[str]:
    written = []
    for rel, text in outputs().items():
        path = os.path.join(root, rel)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        tmp = path + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, path)  # never leave a half-written file for Prometheus or Grafana to load
        written.append(rel)
    return written


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--check", action="store_true", help="write nothing; exit 1 if any output is stale")
    p.add_argument("--test-rules", metavar="OUT", help="write only a rules file with for: capped at --for-cap")
    p.add_argument("--for-cap", metavar="DURATION", default="5s",
                   help="the cap of --test-rules (default: %(default)s)")
    args = p.parse_args(argv)
    if args.test_rules:
        try:
            duration_seconds(args.for_cap)
        except ValueError as exc:
            print(f"generate: --for-cap: {exc}", file=sys.stderr)
            return 2
        with open(args.test_rules, "w", encoding="utf-8") as f:
            f.write(render.rules_file(for_cap=args.for_cap))
        return 0
    if args.check:
        bad = stale()
        for rel in bad:
            print(f"stale: {rel} (run: python3 tools/generate.py)", file=sys.stderr)
        return 1 if bad else 0
    for rel in write():
        print(f"wrote {rel}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
