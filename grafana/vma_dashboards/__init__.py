"""The dashboards of vma-exporter, built in Python (no jsonnet toolchain needed).

One module per dashboard (node, process, fleet) over the builders in lib.py;
tools/generate.py writes the JSON to grafana/dashboards/. The rules' config
(deploy/prometheus/vma_mixin/config.py) supplies the thresholds, so
deploy/prometheus must be importable too (tools/generate.py arranges that).
"""

import json

from vma_dashboards import fleet, node, process

BUILDERS = {
    "vma-node.json": node.build,
    "vma-process.json": process.build,
    "vma-fleet.json": fleet.build,
}


def build_all() -> dict[str, dict]:
    return {name: build() for name, build in BUILDERS.items()}


def render(dashboard: dict) -> str:
    return json.dumps(dashboard, indent=2, sort_keys=False, ensure_ascii=False) + "\n"


def render_all() -> dict[str, str]:
    """File name -> JSON text, byte-stable from run to run."""
    return {name: render(d) for name, d in build_all().items()}
