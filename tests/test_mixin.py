"""The jsonnet mixin in deploy/mixin as its users take it: the monitoring-mixins fields, every
_config override reaching every rule and dashboard query, jsonnetfmt, jsonnet-bundler's
layout, and the README's kube-prometheus snippet.

jsonnet and jsonnetfmt come from Debian's `jsonnet` package, promtool from `prometheus`
(scripts/test.sh installs both). Each variant of the mixin is evaluated once per session.
"""

import functools
import glob
import json
import os
import re
import shutil
import subprocess

import pytest

from e2e import grafana, repo

gen = repo.renderer()
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (apt-get install prometheus)")
pytestmark = repo.needs_jsonnet

JSONNET_FILES = sorted(glob.glob(os.path.join(repo.MIXIN_DIR, "**", "*.*sonnet"), recursive=True)
                       + glob.glob(repo.path("tools/*.jsonnet")))
_SELECTED = re.compile(r"\b((?:vma_|vma:)[\w:]+|up|kube_\w+)\b(\{[^}]*\})?")
_NUMBER = re.compile(r"(?<![\w.$])\d+(?:\.\d+)?(?![\w.])")

# The snippet a user writes: import the mixin, override _config, take the three fields.
USER_SNIPPET = """
local vma = (import 'mixin.libsonnet') + {
  _config+:: %s,
};
{
  alerts: vma.prometheusAlerts,
  rules: vma.prometheusRules,
  dashboards: vma.grafanaDashboards,
}
"""

# Overrides of the fields whose new value cannot be derived from the old one.
EXPLICIT = {
    "vmaExporterSelector": 'job="custom"',
    "kubeStateMetricsSelector": 'job="ksm", namespace="kube-system"',
    "clusterLabel": "k8s_cluster",
    "runbookURLPattern": "https://runbooks.example.com/vma/%s.md",
    "ruleGroupInterval": "30s",
    "dashboardTitlePrefix": "Custom VMA / ",
    "dashboardTags": ["custom-tag", "vma"],
    "dashboardRefresh": "30s",
    "dashboardTimeFrom": "now-24h",
    "dashboardTimezone": "utc",
}
# Fields only the dashboards read; every other one must change a rule.
DASHBOARD_ONLY = {"clusterLabel", "dashboardTitlePrefix", "dashboardTags", "dashboardRefresh", "dashboardTimeFrom",
                  "dashboardTimezone"}


def overrides() -> dict:
    """A new value for every _config field, unlike any default: durations and numbers shifted
    by an amount unique to the field, so each can be traced to where it lands."""
    out = {}
    for i, (key, value) in enumerate(sorted(repo.config().items()), start=1):
        if key in EXPLICIT:
            out[key] = EXPLICIT[key]
        elif isinstance(value, bool):
            out[key] = not value
        elif isinstance(value, str) and re.fullmatch(r"\d+[smhd]", value):
            out[key] = f"{int(gen.duration_seconds(value) // 60) + 100 + i}m"
        elif isinstance(value, float) and 0 < value < 1:
            out[key] = round(value * 0.9 - 0.001 * i, 4)
        elif isinstance(value, int):
            out[key] = value + 100 + i
        else:
            pytest.fail(f"_config.{key} = {value!r}: add an override for it to EXPLICIT in tests/test_mixin.py")
    return out


@functools.lru_cache(maxsize=None)
def evaluate(config_json: str) -> dict:
    return gen.jsonnet(USER_SNIPPET % config_json)


def custom() -> dict:
    return evaluate(json.dumps(overrides(), sort_keys=True))


def groups_of(result: dict) -> list[dict]:
    return result["alerts"]["groups"] + result["rules"]["groups"]


def rules_of(result: dict) -> list[dict]:
    return [r for g in groups_of(result) for r in g["rules"]]


def dashboard_queries(result: dict) -> list[tuple[str, str]]:
    """(where, query) of every panel target and every variable of every dashboard."""
    out = []
    for name, d in result["dashboards"].items():
        out += [(f"{name} / {title} / {ref}", expr) for title, ref, expr in grafana.panel_queries(d)]
        out += [(f"{name} / ${var}", selector) for var, selector, _ in grafana.variable_queries(d)]
    return out


def promtool_check(tmp_path, groups: list[dict]) -> subprocess.CompletedProcess:
    path = tmp_path / "rules.yml"
    path.write_text(gen.rules_text(groups))
    return subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=120)


# --- the mixin's form ----------------------------------------------------------------------------

def test_mixin_exposes_the_monitoring_mixins_fields():
    """prometheusAlerts, prometheusRules and grafanaDashboards, hidden as mixins have them (so
    `jsonnet mixin.libsonnet` prints {}), the way kube-prometheus looks them up (objectHasAll)."""
    fields = gen.jsonnet("local m = import 'mixin.libsonnet'; "
                         "{all: std.objectFieldsAll(m), visible: std.objectFields(m),"
                         " dashboards: std.objectFields(m.grafanaDashboards), alerts: m.prometheusAlerts,"
                         " rules: m.prometheusRules}")
    assert {"_config", "prometheusAlerts", "prometheusRules", "grafanaDashboards"} <= set(fields["all"])
    assert fields["visible"] == []
    assert fields["dashboards"] == ["vma-fleet.json", "vma-node.json", "vma-process.json"]
    # The default layout (oneRuleGroup): one group, records first, in prometheusAlerts.
    assert [g["name"] for g in fields["alerts"]["groups"]] == ["vma-exporter"]
    assert fields["rules"]["groups"] == []
    assert fields["alerts"]["groups"] == repo.rule_groups()


def test_a_jsonnet_error_names_its_place():
    with pytest.raises(gen.RenderError, match=r"jsonnet failed:\n.*<cmdline>:1:\d+"):
        gen.jsonnet("(import 'mixin.libsonnet') + { _config+:: { vmaExporterSelector: } }")


# --- overrides -----------------------------------------------------------------------------------

def test_overrides_reach_every_rule():
    result, new, default = custom(), overrides(), repo.config()
    rules = rules_of(result)
    assert len(rules) == len([r for g in repo.rule_groups() for r in g["rules"]])
    for rule in rules:
        where = rule.get("alert") or rule["record"]
        for metric, labels in _SELECTED.findall(rule["expr"]):
            wanted = new["kubeStateMetricsSelector"] if metric.startswith("kube_") else new["vmaExporterSelector"]
            assert wanted in labels, f"{where}: {metric}{labels} lacks {wanted}"
        for key in ("vmaExporterSelector", "kubeStateMetricsSelector"):
            assert default[key] not in rule["expr"], f"{where}: the default {key} is left in"
        if "alert" in rule:
            assert rule["annotations"]["runbook_url"] == new["runbookURLPattern"] % rule["alert"].lower()
    # Every for: is an overridden ...For field, none is left at a default.
    fors = {r["for"] for r in rules if "for" in r}
    assert fors == {new[k] for k in new if k.endswith("For")}
    # No default threshold, count or window is left in an expression.
    exprs = "\n".join(r["expr"] for r in rules)
    numbers = set(_NUMBER.findall(exprs))
    for key, value in default.items():
        if isinstance(value, (int, float)) and not isinstance(value, bool) and key not in DASHBOARD_ONLY:
            # str() of a float is its shortest form, as the mixin writes numbers (lib/promql.libsonnet).
            assert str(value) not in numbers, f"_config.{key}: the default {value} is left in the rules"
        if isinstance(value, str) and key.endswith("Window"):
            assert f"[{value}]" not in exprs and f"[{new[key]}]" in exprs, key
    # The layout fields: two groups, with the interval.
    assert [(g["name"], g["interval"]) for g in groups_of(result)] == [("vma-exporter", "30s"),
                                                                       ("vma-exporter.rules", "30s")]


def test_every_config_field_changes_the_output():
    """No field is dead, and no rule or dashboard hard-codes what a field says: with every field
    overridden, each new value shows in the rules (or, for the dashboard fields, the dashboards)."""
    result, new = custom(), overrides()
    rules_text = json.dumps(rules_of(result))
    dashboards_text = json.dumps(result["dashboards"])
    checked_elsewhere = {"oneRuleGroup", "ruleGroupInterval", "runbookURLPattern", "dashboardTags"}
    for key, value in new.items():
        if key in checked_elsewhere:
            continue  # by value, in test_overrides_reach_every_rule and ..._every_dashboard_query
        if key == "exhaustionHorizonHours":
            assert f", {value * 3600})" in rules_text, "the horizon in seconds, predict_linear's argument"
        text = json.dumps(value)[1:-1] if isinstance(value, str) else str(value)
        where = dashboards_text if key in DASHBOARD_ONLY else rules_text
        assert text in where, f"_config.{key} = {value!r} shows nowhere (a field only dashboards read: DASHBOARD_ONLY)"


def test_overrides_reach_every_dashboard_query():
    result, new = custom(), overrides()
    queries = dashboard_queries(result)
    assert len(queries) > 70
    for where, query in queries:
        selectors = _SELECTED.findall(query)
        assert selectors, f"{where}: no metric in {query!r}"
        for metric, labels in selectors:
            assert new["vmaExporterSelector"] in labels, f"{where}: {metric}{labels} lacks the selector"
            assert 'job="vma-exporter"' not in labels, where
            if not where.endswith("$cluster"):
                assert f'{new["clusterLabel"]}=~"$cluster"' in labels, f"{where}: {metric}"
        assert not re.search(r"\bcluster\b", query.replace('=~"$cluster"', "")), \
            f"{where}: the label cluster is hard-coded: {query}"
    for name, d in result["dashboards"].items():
        assert d["title"].startswith(new["dashboardTitlePrefix"]), name
        assert (d["tags"], d["refresh"], d["timezone"], d["time"]["from"]) == \
            (new["dashboardTags"], new["dashboardRefresh"], new["dashboardTimezone"], new["dashboardTimeFrom"])
        legends = [t["legendFormat"] for p in grafana.panels(d) for t in p["targets"]]
        assert not any("{{cluster}}" in lg for lg in legends), f"{name}: a legend names the label cluster"
        # Thresholds of every share-of-limit cell follow the overridden ratios.
        for p in grafana.panels(d):
            steps = [s["value"] for s in p["fieldConfig"]["defaults"]["thresholds"]["steps"]]
            if p["fieldConfig"]["defaults"]["unit"] == "percentunit" and len(steps) == 3:
                assert steps == [None, new["mapAreasWarningRatio"], new["mapAreasCriticalRatio"]], p["title"]


@needs_promtool
def test_overridden_rules_pass_promtool(tmp_path):
    result = custom()
    out = promtool_check(tmp_path, groups_of(result))
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(rules_of(result))} rules found" in out.stdout


@needs_promtool
def test_overridden_dashboard_queries_parse(tmp_path):
    values = {"cluster": "c", "job": "j", "instance": "i:1", "group": "g", "pid": "1", "__rate_interval": "1m"}
    rules = [{"record": f"dashboard_query_{i}", "expr": grafana.substitute(query, values)}
             for i, (_, query) in enumerate(dashboard_queries(custom()))]
    out = promtool_check(tmp_path, [{"name": "dashboards", "rules": rules}])
    assert out.returncode == 0, out.stdout + out.stderr


def test_no_minimum_max_map_count_removes_its_alert():
    result = evaluate(json.dumps({"minMaxMapCount": None}))
    alerts = {r["alert"] for r in rules_of(result) if "alert" in r}
    assert "VmaNodeMaxMapCountBelowDefault" in alerts and "VmaNodeMaxMapCountBelowMinimum" not in alerts
    fleet = {p["title"]: p for p in grafana.panels(result["dashboards"]["vma-fleet.json"])}
    limit_steps = fleet["Lowest vm.max_map_count"]["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["value"] for s in limit_steps] == [None, 65530, 65530]


# --- jsonnetfmt and jsonnet-bundler ---------------------------------------------------------------

def test_jsonnetfmt_is_clean():
    """jsonnetfmt's defaults (2 spaces, single quotes, // comments) are the mixins' style."""
    assert len(JSONNET_FILES) >= 10
    out = subprocess.run(["jsonnetfmt", "--test", *JSONNET_FILES], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, f"not formatted (run jsonnetfmt -i on them): {out.stdout}{out.stderr}"


def test_jsonnetfmt_test_fails_on_a_misformatted_file(tmp_path):
    """The check above can fail."""
    bad = tmp_path / "bad.libsonnet"
    bad.write_text('{a:"x",\n    b: 1}\n')
    assert subprocess.run(["jsonnetfmt", "--test", str(bad)], capture_output=True, timeout=60).returncode != 0


def test_jsonnetfile_lets_jsonnet_bundler_vendor_the_mixin():
    """jsonnet-bundler reads deploy/mixin/jsonnetfile.json for the mixin's own dependencies:
    none (plain jsonnet, no grafonnet)."""
    with open(os.path.join(repo.MIXIN_DIR, "jsonnetfile.json"), encoding="utf-8") as f:
        doc = json.load(f)
    assert doc["version"] == 1
    assert doc["dependencies"] == []


def test_every_import_is_relative_and_inside_the_mixin():
    """Vendored under vendor/github.com/..., the mixin finds its files without any -J path."""
    imports = 0
    for path in JSONNET_FILES:
        if not path.startswith(repo.MIXIN_DIR + os.sep):
            continue
        with open(path, encoding="utf-8") as f:
            for target in re.findall(r"\bimport(?:str)?\s+'([^']+)'", f.read()):
                imports += 1
                resolved = os.path.normpath(os.path.join(os.path.dirname(path), target))
                assert os.path.isfile(resolved), f"{path}: import '{target}' is not a file beside it"
                assert resolved.startswith(repo.MIXIN_DIR + os.sep), f"{path}: import '{target}' leaves deploy/mixin"
    assert imports >= 10


# --- the README's kube-prometheus snippet ------------------------------------------------------------

# Stand-ins for the two kube-prometheus files the snippet imports (kube-prometheus is not in
# the package registries): the contract the snippet relies on, as kube-prometheus'
# lib/mixin.libsonnet and main.libsonnet keep it. The first makes one PrometheusRule of a
# mixin's prometheusAlerts and prometheusRules groups, looked up with std.objectHasAll.
KUBE_PROMETHEUS_ADD_MIXIN = """
function(params) {
  local config = { namespace: 'monitoring', labels: { prometheus: 'k8s' } } + params,
  local mixin = config.mixin,
  local groups(field) = if std.objectHasAll(mixin, field) then mixin[field].groups else [],
  prometheusRules: {
    apiVersion: 'monitoring.coreos.com/v1',
    kind: 'PrometheusRule',
    metadata: { labels: config.labels, name: config.name, namespace: config.namespace },
    spec: { groups: groups('prometheusAlerts') + groups('prometheusRules') },
  },
  grafanaDashboards: if std.objectHasAll(mixin, 'grafanaDashboards') then mixin.grafanaDashboards else {},
}
"""
KUBE_PROMETHEUS_MAIN = """
{
  values:: { common: { namespace: 'default' }, grafana: { dashboards: {} } },
  grafana: { dashboardDefinitions: $.values.grafana.dashboards },
}
"""


def readme_snippet() -> str:
    with open(repo.path("README.md"), encoding="utf-8") as f:
        blocks = re.findall(r"```jsonnet\n(.*?)```", f.read(), re.S)
    snippets = [b for b in blocks if "deploy/mixin/mixin.libsonnet" in b]
    assert len(snippets) == 1, "README.md has one jsonnet snippet importing the mixin"
    return snippets[0]


def test_readme_snippet_names_only_real_config_fields():
    """A misspelt _config field would be ignored without a word: the README's must all exist."""
    block = re.search(r"_config\+::\s*\{(.*?)\n\s*\},", readme_snippet(), re.S).group(1)
    used = re.findall(r"^\s*(\w+):", block, re.M)
    assert used and set(used) <= set(repo.config()), f"unknown _config fields {set(used) - set(repo.config())}"


@needs_promtool
def test_readme_snippet_runs_on_a_vendored_copy(tmp_path):
    """The snippet, with the mixin where `jb install github.com/vma-exporter/vma-exporter/deploy/mixin`
    puts it: its PrometheusRule passes promtool with the overrides in, and the dashboards are there."""
    vendor = tmp_path / "vendor"
    shutil.copytree(repo.MIXIN_DIR, vendor / "github.com/vma-exporter/vma-exporter/deploy/mixin")
    (vendor / "kube-prometheus/lib").mkdir(parents=True)
    (vendor / "kube-prometheus/lib/mixin.libsonnet").write_text(KUBE_PROMETHEUS_ADD_MIXIN)
    (vendor / "kube-prometheus/main.libsonnet").write_text(KUBE_PROMETHEUS_MAIN)
    (tmp_path / "main.jsonnet").write_text(readme_snippet())
    out = subprocess.run(["jsonnet", "-J", str(vendor), str(tmp_path / "main.jsonnet")],
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert out.returncode == 0, out.stderr
    manifests = json.loads(out.stdout)
    rule = manifests["vma-exporter-prometheusRule"]
    assert rule["kind"] == "PrometheusRule" and rule["metadata"]["namespace"] == "monitoring"
    check = promtool_check(tmp_path, rule["spec"]["groups"])
    assert check.returncode == 0, check.stdout + check.stderr
    exprs = [r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]]
    selector = re.search(r"vmaExporterSelector: '([^']*)'", readme_snippet()).group(1)
    assert all(selector in e for e in exprs), "the snippet's selector reaches every rule"
    assert sorted(manifests["grafana-dashboardDefinitions"]) == ["vma-fleet.json", "vma-node.json",
                                                                  "vma-process.json"]
