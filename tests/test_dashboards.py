"""The Grafana dashboards: the rendered files are current, the mixins' conventions hold
on every panel, every query parses (promtool), and every metric exists.

The dashboards come from the jsonnet mixin in deploy/mixin (tools/render_mixin.py renders
them); these checks read the checked-in JSON. The end-to-end test (test_e2e_prometheus.py)
runs every query against a real Prometheus; these checks need no server.
"""

import itertools
import re
import shutil
import subprocess

import pytest
import yaml

from e2e import grafana, repo
from e2e.repo import needs_jsonnet

gen = repo.renderer()
DASHBOARDS = grafana.load_all()
UIDS = {"vma-node.json": "vma-node", "vma-process.json": "vma-process", "vma-fleet.json": "vma-fleet"}
SAMPLE_VALUES = {"cluster": "c", "job": "j", "instance": "i:1", "group": "g", "pid": "1",
                 "__rate_interval": "1m", "datasource": "prometheus"}
_SELECTED = re.compile(r"\b((?:vma_|vma:)[\w:]+|up)\b(\{[^}]*\})?")


def all_panels():
    for name, d in DASHBOARDS.items():
        for p in grafana.panels(d):
            yield name, p


@needs_jsonnet
def test_checked_in_dashboards_equal_a_fresh_rendering():
    stale = [rel for rel in gen.stale() if rel.startswith(gen.DASHBOARD_DIR)]
    assert not stale, f"stale dashboards {stale}: run python3 tools/render_mixin.py"
    assert set(DASHBOARDS) == set(UIDS)


@needs_jsonnet
def test_stable_unique_uids_and_titles():
    config = repo.config()
    for name, d in DASHBOARDS.items():
        assert d["uid"] == UIDS[name]
        assert d["title"].startswith(config["dashboardTitlePrefix"]) and d["title"].startswith("vma-exporter / ")
        assert d["tags"] == config["dashboardTags"] == ["vma-exporter"]
        assert (d["refresh"], d["timezone"]) == (config["dashboardRefresh"], config["dashboardTimezone"])
        assert d["description"]
    assert len({d["title"] for d in DASHBOARDS.values()}) == len(DASHBOARDS)


def test_variables_datasource_job_instance_and_hidden_cluster():
    for name, d in DASHBOARDS.items():
        by_name = {v["name"]: v for v in d["templating"]["list"]}
        assert by_name["datasource"]["type"] == "datasource" and by_name["datasource"]["query"] == "prometheus"
        assert by_name["cluster"]["hide"] == 2, f"{name}: cluster must be hidden"
        assert by_name["cluster"]["includeAll"] and by_name["cluster"]["allValue"] == ".*"
        for v in ("job", "instance"):
            assert by_name[v]["type"] == "query" and by_name[v]["hide"] == 0, f"{name}: ${v}"
        for v in d["templating"]["list"][1:]:
            assert v["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, f"{name}: ${v['name']}"
    assert {"group", "pid"} <= {v["name"] for v in DASHBOARDS["vma-process.json"]["templating"]["list"]}
    fleet = {v["name"]: v for v in DASHBOARDS["vma-fleet.json"]["templating"]["list"]}
    assert fleet["instance"]["multi"] and fleet["instance"]["includeAll"], "the fleet view spans instances"


def test_every_panel_has_datasource_description_and_unit():
    for name, p in all_panels():
        where = f"{name}: {p['title']!r}"
        assert p["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where
        assert len(p["description"]) > 20, where
        assert p["fieldConfig"]["defaults"]["unit"], where
        assert p["targets"], where
        for t in p["targets"]:
            assert t["datasource"] == {"type": "prometheus", "uid": "${datasource}"}, where
        assert len({t["refId"] for t in p["targets"]}) == len(p["targets"]), where


@needs_jsonnet
def test_every_query_uses_the_selector_cluster_job_and_instance():
    config = repo.config()
    for name, p in all_panels():
        for t in p["targets"]:
            selectors = _SELECTED.findall(t["expr"])
            assert selectors, f"{name}: {p['title']!r}: no metric in {t['expr']!r}"
            for metric, labels in selectors:
                assert config["vmaExporterSelector"] in labels, f"{name}: {p['title']!r}: {metric} lacks the selector"
                assert f'{config["clusterLabel"]}=~"$cluster"' in labels, f"{name}: {p['title']!r}: {metric}"
                for v in ("job", "instance"):
                    assert f'{v}=~"${v}"' in labels, f"{name}: {p['title']!r}: {metric} lacks ${v}"
    for name, d in DASHBOARDS.items():
        for var, selector, _ in grafana.variable_queries(d):
            assert config["vmaExporterSelector"] in selector, f"{name}: ${var} lacks the selector"


def test_variables_chain_cluster_job_instance():
    for name, d in DASHBOARDS.items():
        queries = {v: sel for v, sel, _ in grafana.variable_queries(d)}
        assert grafana.variables_used(queries["job"]) == {"cluster"}, name
        assert grafana.variables_used(queries["instance"]) == {"cluster", "job"}, name


def test_rates_use_rate_interval():
    rates = 0
    for name, p in all_panels():
        for t in p["targets"]:
            for m in re.finditer(r"\b(?:rate|irate|increase)\((.*?)\[([^\]]+)\]", t["expr"]):
                rates += 1
                assert m.group(2) == "$__rate_interval", f"{name}: {p['title']!r}: {m.group(0)}"
    assert rates >= 2


def test_every_metric_exists_in_the_exporter_or_the_rules():
    from exporter.metrics import SnapshotCollector

    exposed = {f.name + {"counter": "_total", "info": "_info"}.get(f.type, "")
               for f in SnapshotCollector(collector=None).describe()}
    recorded = {r["record"] for g in repo.rule_groups() for r in g["rules"] if "record" in r}
    known = exposed | recorded | {"up"}
    for name, d in DASHBOARDS.items():
        texts = [e for _, _, e in grafana.panel_queries(d)] + [s for _, s, _ in grafana.variable_queries(d)]
        for text in texts:
            for metric, _ in _SELECTED.findall(text):
                assert metric in known, f"{name}: {metric} is neither exported nor recorded"


def test_layout_fits_24_columns_without_overlap():
    for name, d in DASHBOARDS.items():
        cells = {}
        ids = [p["id"] for p in d["panels"]]
        assert len(ids) == len(set(ids)), name
        for p in d["panels"]:
            g = p["gridPos"]
            assert 0 <= g["x"] and g["x"] + g["w"] <= 24, f"{name}: {p['title']!r}"
            for x, y in itertools.product(range(g["x"], g["x"] + g["w"]), range(g["y"], g["y"] + g["h"])):
                assert (x, y) not in cells, f"{name}: {p['title']!r} overlaps {cells[(x, y)]!r}"
                cells[(x, y)] = p["title"]


def test_data_links_point_at_existing_dashboards_and_fields():
    links = 0
    for name, p in all_panels():
        kept = set()
        for tr in p.get("transformations", []):
            if tr["id"] == "filterFieldsByName":
                kept = set(tr["options"]["include"]["names"])
        for o in p["fieldConfig"]["overrides"]:
            for prop in o["properties"]:
                if prop["id"] != "links":
                    continue
                for link in prop["value"]:
                    links += 1
                    uid = re.match(r"/d/([\w-]+)/", link["url"]).group(1)
                    assert uid in UIDS.values(), f"{name}: link to unknown dashboard {uid}"
                    fields = set(re.findall(r"__data\.fields\.(\w+)", link["url"]))
                    assert fields <= kept, f"{name}: {p['title']!r}: link reads {fields - kept}, not in the table"
    assert links >= 5


@needs_jsonnet
def test_thresholds_follow_the_mixin_config():
    """A share-of-limit cell turns orange where the warning alert starts and red at the critical one."""
    config = repo.config()
    ratio_steps = [None, config["mapAreasWarningRatio"], config["mapAreasCriticalRatio"]]
    coloured = [p for _, p in all_panels() if p["fieldConfig"]["defaults"]["unit"] == "percentunit"
                and p["fieldConfig"]["defaults"]["color"]["mode"] == "thresholds"]
    assert len(coloured) >= 4
    for p in coloured:
        assert [s["value"] for s in p["fieldConfig"]["defaults"]["thresholds"]["steps"]] == ratio_steps, p["title"]
    exprs = [e for d in DASHBOARDS.values() for _, _, e in grafana.panel_queries(d)]
    assert any(f">= bool {config['mapAreasCriticalRatio']}" in e for e in exprs)
    assert any(f"< bool {config['kernelDefaultMaxMapCount']}" in e for e in exprs)


def test_substitute_refuses_unknown_variables():
    assert grafana.substitute('x{a=~"$job"}[$__rate_interval]', SAMPLE_VALUES) == 'x{a=~"j"}[1m]'
    assert grafana.substitute("${datasource:queryparam}", SAMPLE_VALUES) == "prometheus"
    with pytest.raises(KeyError, match="nosuch"):
        grafana.substitute("up{a=\"$nosuch\"}", SAMPLE_VALUES)


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool not installed (apt-get install prometheus)")
def test_every_query_parses(tmp_path):
    """promtool parses each query (variables substituted) as a recording rule's expression."""
    rules = []
    for name, d in DASHBOARDS.items():
        for title, ref, expr in grafana.panel_queries(d):
            rules.append({"record": f"dashboard_query_{len(rules)}", "expr": grafana.substitute(expr, SAMPLE_VALUES),
                          "labels": {"where": f"{name} {title} {ref}"}})
        for var, selector, _ in grafana.variable_queries(d):
            rules.append({"record": f"dashboard_query_{len(rules)}",
                          "expr": grafana.substitute(selector, SAMPLE_VALUES), "labels": {"where": f"{name} ${var}"}})
    path = tmp_path / "queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboards", "rules": rules}]}))
    out = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(rules)} rules found" in out.stdout
