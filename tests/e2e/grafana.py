"""Read the rendered dashboards the way Grafana would: panel queries with the
variables substituted, and the label_values() queries of the variables."""

import json
import os
import re

from e2e import repo

# $name, ${name} and ${name:format}; Grafana's built-ins ($__rate_interval) are names too.
_VAR = re.compile(r"\$(?:\{(\w+)(?::\w+)?\}|(\w+))")
_LABEL_VALUES = re.compile(r"label_values\((.*),\s*(\w+)\)\s*$", re.S)


def load_all() -> dict[str, dict]:
    """File name -> the checked-in dashboard."""
    directory = repo.path("grafana/dashboards")
    out = {}
    for name in sorted(os.listdir(directory)):
        if name.endswith(".json"):
            with open(os.path.join(directory, name), encoding="utf-8") as f:
                out[name] = json.load(f)
    return out


def substitute(text: str, values: dict[str, str]) -> str:
    """Replace every variable; a variable without a value is an error, not an empty string."""
    def one(m: re.Match) -> str:
        name = m.group(1) or m.group(2)
        if name not in values:
            raise KeyError(f"no value for ${name} in {text!r}")
        return values[name]

    return _VAR.sub(one, text)


def variables_used(text: str) -> set[str]:
    return {m.group(1) or m.group(2) for m in _VAR.finditer(text)}


def panels(dashboard: dict) -> list[dict]:
    """Every panel but rows (rows of this generator are never collapsed: no nested panels)."""
    return [p for p in dashboard["panels"] if p["type"] != "row"]


def panel_queries(dashboard: dict) -> list[tuple[str, str, str]]:
    """(panel title, refId, expr) of every query of every panel."""
    return [(p["title"], t["refId"], t["expr"]) for p in panels(dashboard) for t in p["targets"]]


def variable_queries(dashboard: dict) -> list[tuple[str, str, str]]:
    """(variable name, series selector, label) of every label_values() variable."""
    out = []
    for v in dashboard["templating"]["list"]:
        if v["type"] != "query":
            continue
        m = _LABEL_VALUES.match(v["query"])
        if m is None:
            raise ValueError(f"variable {v['name']}: not a label_values(selector, label) query: {v['query']!r}")
        out.append((v["name"], m.group(1).strip(), m.group(2)))
    return out
