"""The alerting and recording rules: the rendered files are current, promtool accepts and
unit-tests them, the PrometheusRule carries the very same groups, every alert is tested
firing and silent, and every name used exists in the exporter.

The rules come from the jsonnet mixin in deploy/mixin, rendered by tools/render_mixin.py
(tests/test_mixin.py checks the mixin's overrides). Content checks read the checked-in
files, which the stale check keeps equal to a fresh rendering. promtool comes from Debian's
`prometheus` package, jsonnet from Debian's `jsonnet` (scripts/test.sh installs both).
"""

import glob
import os
import re
import shutil
import subprocess

import pytest
import yaml

from e2e import repo
from e2e.repo import needs_jsonnet

gen = repo.renderer()
PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (apt-get install prometheus)")
RULE_TESTS = sorted(glob.glob(os.path.join(repo.RULE_TESTS_DIR, "*.test.yml")))


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120)


def load(rel: str):
    with open(repo.path(rel), encoding="utf-8") as f:
        return yaml.safe_load(f)


def all_rules() -> list[dict]:
    return [r for g in repo.rule_groups() for r in g["rules"]]


def alert_rules() -> list[dict]:
    return [r for r in all_rules() if "alert" in r]


def alert_names() -> list[str]:
    """Distinct alert names, in rule order."""
    return list(dict.fromkeys(r["alert"] for r in alert_rules()))


def name(rule: dict) -> str:
    return rule.get("alert") or rule["record"]


def rules_with(tmp_path, overrides: str) -> str:
    """Write the mixin's rules with these _config overrides (jsonnet) as tmp/vma-exporter.rules.yml."""
    groups = gen.jsonnet(f"local m = (import 'mixin.libsonnet') + {{ _config+:: {overrides} }};"
                         " m.prometheusAlerts.groups + m.prometheusRules.groups")
    path = tmp_path / "vma-exporter.rules.yml"
    path.write_text(gen.rules_text(groups))
    return str(path)


# --- rendered output -----------------------------------------------------------------------------

@needs_jsonnet
def test_checked_in_rules_equal_a_fresh_rendering():
    stale = [rel for rel in gen.stale() if not rel.startswith(gen.DASHBOARD_DIR)]
    assert not stale, f"stale rendered files {stale}: run python3 tools/render_mixin.py"
    assert gen.main(["--check"]) == 0


@needs_jsonnet
def test_render_check_reports_a_stale_file(tmp_path):
    """--check names a file that differs, and passes a tree that is current."""
    for rel, text in gen.outputs().items():
        os.makedirs(tmp_path / os.path.dirname(rel), exist_ok=True)
        (tmp_path / rel).write_text(text, encoding="utf-8")
    assert gen.stale(str(tmp_path)) == []
    (tmp_path / gen.RULES_FILE).write_text("groups: []\n", encoding="utf-8")
    (tmp_path / gen.DASHBOARD_DIR / "leftover.json").write_text("{}", encoding="utf-8")
    assert gen.stale(str(tmp_path)) == [gen.RULES_FILE, f"{gen.DASHBOARD_DIR}/leftover.json"]


def test_prometheus_rule_carries_exactly_the_rules_file_groups():
    """The Kubernetes PrometheusRule and the plain rules file never drift apart."""
    rules = load(gen.RULES_FILE)
    pr = load(gen.PROMETHEUS_RULE)
    assert pr["apiVersion"] == "monitoring.coreos.com/v1"
    assert pr["kind"] == "PrometheusRule"
    assert pr["metadata"]["name"] == "vma-exporter"
    assert pr["spec"]["groups"] == rules["groups"]
    assert set(pr) == {"apiVersion", "kind", "metadata", "spec"}


def test_one_group_with_the_recording_rules_first():
    """Prometheus evaluates a group's rules in order at one timestamp: with the records first,
    every alert reads the ratios recorded in the same evaluation (oneRuleGroup)."""
    groups = repo.rule_groups()
    assert [g["name"] for g in groups] == ["vma-exporter"]
    kinds = ["record" if "record" in r else "alert" for r in groups[0]["rules"]]
    assert kinds == sorted(kinds, key=lambda k: k != "record"), "a recording rule after an alert"
    assert kinds.count("record") >= 9 and kinds.count("alert") >= 13


@needs_jsonnet
def test_for_cap_shortens_only_for_durations():
    real = gen.rendered()[gen.RULES_FILE]["groups"]
    fast = gen.capped_groups("5s")
    capped = 0
    for g_real, g_fast in zip(real, fast, strict=True):
        for r_real, r_fast in zip(g_real["rules"], g_fast["rules"], strict=True):
            assert ("for" in r_real) == ("for" in r_fast), name(r_real)
            if "for" in r_real:
                assert r_fast["for"] == "5s", f"{name(r_real)}: its for: is not a _config field ending in For"
                capped += gen.duration_seconds(r_real["for"]) > 5
            # A description may quote its own duration ("not scraped for 5m"): it follows the cap.
            assert {k: v for k, v in r_fast.items() if k not in ("for", "annotations")} == \
                {k: v for k, v in r_real.items() if k not in ("for", "annotations")}, name(r_real)
            if "annotations" in r_real:
                for key in ("summary", "runbook_url"):
                    assert r_fast["annotations"][key] == r_real["annotations"][key], name(r_real)
    assert capped == len([r for r in alert_rules() if "for" in r]) > 0


@pytest.mark.parametrize("text, seconds", [("15m", 900), ("1h30m", 5400), ("90s", 90), ("250ms", 0.25)])
def test_duration_seconds(text, seconds):
    assert gen.duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "15", "m", "1.5h", "5 m", "-5m"])
def test_duration_seconds_rejects_malformed(text):
    with pytest.raises(ValueError, match="not a Prometheus duration"):
        gen.duration_seconds(text)


@needs_jsonnet
def test_render_test_rules_writes_the_capped_copy(tmp_path):
    out = tmp_path / "r.yml"
    assert gen.main(["--test-rules", str(out), "--for-cap", "5s"]) == 0
    assert out.read_text() == gen.test_rules("5s")
    groups = yaml.safe_load(out.read_text())["groups"]
    fors = [r["for"] for g in groups for r in g["rules"] if "for" in r]
    assert fors and set(fors) == {"5s"}
    assert [r.get("alert") or r.get("record") for g in groups for r in g["rules"]] == [name(r) for r in all_rules()]


def test_render_test_rules_rejects_a_bad_cap(tmp_path, capsys):
    assert gen.main(["--test-rules", str(tmp_path / "r.yml"), "--for-cap", "soon"]) == 2
    assert "--for-cap" in capsys.readouterr().err
    assert not (tmp_path / "r.yml").exists()


# --- promtool ----------------------------------------------------------------------------------

@needs_promtool
def test_promtool_check_rules_accepts_the_rules_file():
    out = promtool("check", "rules", repo.path(gen.RULES_FILE))
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {len(all_rules())} rules found" in out.stdout


@needs_promtool
def test_promtool_check_rules_accepts_the_prometheus_rule_spec(tmp_path):
    spec = tmp_path / "spec.yml"
    spec.write_text(yaml.safe_dump({"groups": load(gen.PROMETHEUS_RULE)["spec"]["groups"]}))
    out = promtool("check", "rules", str(spec))
    assert out.returncode == 0, out.stdout + out.stderr


@needs_promtool
def test_promtool_check_rules_rejects_a_broken_rule(tmp_path):
    """The check above can fail: a typo in an expression is caught."""
    with open(repo.path(gen.RULES_FILE), encoding="utf-8") as f:
        broken = f.read().replace("vma_node_map_areas_limit{", "vma_node_map_areas_limit{{", 1)
    (tmp_path / "broken.yml").write_text(broken)
    out = promtool("check", "rules", str(tmp_path / "broken.yml"))
    assert out.returncode != 0


@needs_promtool
@pytest.mark.parametrize("test_file", RULE_TESTS, ids=os.path.basename)
def test_promtool_unit_tests_pass(test_file):
    out = promtool("test", "rules", test_file)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "SUCCESS" in out.stdout


@needs_promtool
@needs_jsonnet
def test_promtool_unit_tests_catch_a_changed_threshold(tmp_path):
    """The unit tests can fail: with the critical threshold moved in _config they do."""
    rules_with(tmp_path, "{ mapAreasCriticalRatio: 0.99 }")
    tests = tmp_path / "tests"
    tests.mkdir()
    shutil.copy(os.path.join(repo.RULE_TESTS_DIR, "process.test.yml"), tests)
    out = promtool("test", "rules", str(tests / "process.test.yml"))
    assert out.returncode != 0
    assert "VmaProcessMapAreasNearLimit" in out.stdout + out.stderr


@needs_promtool
def test_promtool_pod_tests_catch_unfolded_replicas(tmp_path):
    """The pod unit tests can fail: without max by (), two kube-state-metrics replicas
    make duplicate series on the "one" side of the join, and the rule errs."""
    with open(repo.path(gen.RULES_FILE), encoding="utf-8") as f:
        real = f.read()
    text = real.replace("max by (pod_uid, namespace, pod, node) (\n", "(\n")
    assert text != real
    (tmp_path / "vma-exporter.rules.yml").write_text(text)
    tests = tmp_path / "tests"
    tests.mkdir()
    shutil.copy(os.path.join(repo.RULE_TESTS_DIR, "pod.test.yml"), tests)
    out = promtool("test", "rules", str(tests / "pod.test.yml"))
    assert out.returncode != 0
    assert "duplicate series" in out.stdout + out.stderr


def promql_expr_tests() -> list[dict]:
    cases = []
    for test_file in RULE_TESTS:
        with open(test_file, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
        cases += [case for test in doc["tests"] for case in test.get("promql_expr_test", [])]
    return cases


def pod_rules() -> list[str]:
    """The recording rules that read kube-state-metrics, or a rule that does."""
    records = [r for r in all_rules() if "record" in r]
    pod = [r["record"] for r in records if "kube_" in r["expr"]]
    return pod + [r["record"] for r in records if r["record"] not in pod and any(p in r["expr"] for p in pod)]


def test_every_pod_rule_is_unit_tested():
    """Each pod join is evaluated by promtool and its joined output asserted."""
    tested = {case["expr"] for case in promql_expr_tests() if case.get("exp_samples")}
    assert sorted(pod_rules()) == ["vma:container_map_areas_max:ratio", "vma:pod_map_areas_max:ratio",
                                   "vma:process_map_areas_ratio:by_pod"]
    for record in pod_rules():
        assert record in tested, f"no promql_expr_test asserts the samples of {record}"


def test_every_alert_is_unit_tested_firing_and_silent():
    firing: dict[str, set[str]] = {}
    silent: set[str] = set()
    for test_file in RULE_TESTS:
        with open(test_file, encoding="utf-8") as f:
            doc = yaml.safe_load(f)
        assert doc["rule_files"] == ["../vma-exporter.rules.yml"], test_file
        for test in doc["tests"]:
            for case in test.get("alert_rule_test", []):
                if case.get("exp_alerts"):
                    for a in case["exp_alerts"]:
                        firing.setdefault(case["alertname"], set()).add(a["exp_labels"]["severity"])
                else:
                    silent.add(case["alertname"])
    for rule in alert_rules():
        alert, severity = rule["alert"], rule["labels"]["severity"]
        assert severity in firing.get(alert, set()), f"no unit test sees {alert} ({severity}) fire"
        assert alert in silent, f"no unit test sees {alert} stay silent"


# --- conventions -------------------------------------------------------------------------------

PER_PROCESS = {"VmaProcessMapAreasNearLimit", "VmaProcessMapAreasExhaustionPredicted",
               "VmaProcessMapAreasLeakSignature"}


@needs_jsonnet
def test_alert_conventions():
    pattern = repo.config()["runbookURLPattern"]
    assert PER_PROCESS <= set(alert_names())
    for rule in alert_rules():
        alert, ann = rule["alert"], rule["annotations"]
        assert re.fullmatch(r"Vma(?:[A-Z][a-z]+)+", alert), alert
        assert rule["labels"]["severity"] in ("info", "warning", "critical"), alert
        assert set(ann) == {"summary", "description", "runbook_url"}, alert
        assert "{{" not in ann["summary"] and ann["summary"].endswith("."), f"{alert}: summary must be a static sentence"
        assert "{{ $labels.instance }}" in ann["description"], alert
        # The figure. Two alerts have none, their value is a 0 gauge (up; the node file's read
        # success): their descriptions give the duration and, for the node file, which file.
        assert "$value" in ann["description"] or alert in ("VmaExporterDown", "VmaExporterNodeReadFailed"), alert
        if alert in PER_PROCESS:
            for label in ("group", "pid", "comm"):
                assert f"{{{{ $labels.{label} }}}}" in ann["description"], f"{alert} must name the {label}"
        assert ann["runbook_url"] == pattern % alert.lower()
    severities = {r["labels"]["severity"] for r in alert_rules()}
    assert severities == {"info", "warning", "critical"}


@needs_jsonnet
def test_near_limit_has_a_warning_and_a_short_critical():
    config = repo.config()
    near = [r for r in alert_rules() if r["alert"] == "VmaProcessMapAreasNearLimit"]
    by_severity = {r["labels"]["severity"]: r for r in near}
    assert set(by_severity) == {"warning", "critical"}
    assert f">= {config['mapAreasWarningRatio']}\n" in by_severity["warning"]["expr"]
    assert f">= {config['mapAreasCriticalRatio']}\n" in by_severity["critical"]["expr"]
    crit, warn = (gen.duration_seconds(by_severity[s]["for"]) for s in ("critical", "warning"))
    assert crit <= 300 and crit < warn


@needs_jsonnet
def test_every_selector_carries_the_job_selector():
    """Each exporter metric in every rule is selected with the configured selector."""
    selector = repo.config()["vmaExporterSelector"]
    for rule in all_rules():
        for m in re.finditer(r"\b((?:vma_|vma:)[\w:]+|up)\b(\{[^}]*\})?", rule["expr"]):
            assert m.group(2) and selector in m.group(2), f"{name(rule)}: {m.group(0)} lacks {selector}"


@needs_jsonnet
def test_every_kube_state_metrics_series_carries_its_selector():
    """The pod joins read kube-state-metrics' series only, never another job's copy of them."""
    selector = repo.config()["kubeStateMetricsSelector"]
    used = 0
    for rule in all_rules():
        for m in re.finditer(r"\b(kube_\w+)\b(\{[^}]*\})?", rule["expr"]):
            used += 1
            assert m.group(2) and selector in m.group(2), f"{name(rule)}: {m.group(0)} lacks {selector}"
    assert used >= 2, "the pod joins read kube_pod_info and kube_pod_container_info"


def test_rules_have_one_source():
    """No rule file under deploy/ but the rendered ones: a hand-written rule would be a second source."""
    found = []
    for dirpath, _, files in os.walk(repo.path("deploy")):
        for file_name in files:
            if not file_name.endswith((".yml", ".yaml")):
                continue
            path = os.path.join(dirpath, file_name)
            with open(path, encoding="utf-8") as f:
                docs = [d for d in yaml.safe_load_all(f) if isinstance(d, dict)]
            if any(d.get("kind") == "PrometheusRule" or "groups" in d for d in docs):
                found.append(os.path.relpath(path, repo.ROOT))
    assert sorted(found) == sorted([gen.RULES_FILE, gen.PROMETHEUS_RULE]), \
        f"rule files not rendered from deploy/mixin: {sorted(set(found) - {gen.RULES_FILE, gen.PROMETHEUS_RULE})}"


def _github_anchors(markdown: str) -> set[str]:
    """Anchors GitHub makes of headings: lower case, punctuation dropped, spaces to dashes."""
    anchors = set()
    for line in markdown.splitlines():
        if m := re.match(r"#{1,6}\s+(.*)", line):
            anchors.add(re.sub(r"[^\w\- ]", "", m.group(1).strip().lower()).replace(" ", "-"))
    return anchors


def test_every_runbook_url_points_at_a_runbook_section():
    with open(repo.RUNBOOK, encoding="utf-8") as f:
        anchors = _github_anchors(f.read())
    for alert in alert_names():
        assert alert.lower() in anchors, f"docs/runbook.md has no section '## {alert}'"


# --- the exporter's metric contract -------------------------------------------------------------

def exported_metric_names() -> set[str]:
    """Every sample name the daemon can expose, from the code that defines them: exporter/metrics.py,
    plus the reload gauges of exporter/reload.py, wired in as exporter/cli.py's run_daemon does
    (SnapshotCollector(..., reload_state=reloader.state))."""
    from exporter.metrics import SnapshotCollector
    from exporter.reload import Reloader

    reloader = Reloader(collector=None, config_path=None)
    names = set()
    for fam in SnapshotCollector(collector=None, reload_state=reloader.state).describe():
        suffix = {"counter": "_total", "info": "_info"}.get(fam.type, "")
        names.add(fam.name + suffix)
    return names


def used_metric_names(expr: str) -> set[str]:
    return set(re.findall(r"\bvma_[a-z_]+\b", expr))


def test_rules_use_only_metrics_the_exporter_exposes():
    exposed = exported_metric_names()
    assert "vma_process_map_areas" in exposed and "vma_exporter_read_errors_total" in exposed
    assert "vma_exporter_config_last_reload_successful" in exposed
    for rule in all_rules():
        unknown = used_metric_names(rule["expr"]) - exposed
        assert not unknown, f"{name(rule)} uses {unknown}, not in exporter/metrics.py or exporter/reload.py"


def test_ignoring_lists_match_the_exporters_process_labels():
    """A process series meets its node's (ignoring all per-process labels) and its group's
    (ignoring all but group): both lists are the exporter's PROCESS_LABELS."""
    from exporter.metrics import PROCESS_LABELS

    lists = {tuple(m.split(", ")) for r in all_rules() for m in re.findall(r"ignoring\(([^)]*)\)", r["expr"])}
    assert lists == {tuple(PROCESS_LABELS), tuple(x for x in PROCESS_LABELS if x != "group"), ("group",)}


@needs_jsonnet
def test_the_mixins_process_labels_match_the_exporter():
    from exporter.metrics import PROCESS_LABELS

    assert gen.jsonnet("(import 'lib/promql.libsonnet').processLabels") == list(PROCESS_LABELS)


def test_recorded_names_follow_level_metric_operations():
    records = [r["record"] for r in all_rules() if "record" in r]
    assert len(records) == len(set(records)) >= 9
    for record in records:
        assert re.fullmatch(r"vma:[a-z_]+:[a-z_0-9]+", record), record
    used = {n for r in all_rules() for n in re.findall(r"\bvma:[\w:]+", r["expr"])}
    assert used <= set(records), f"rules read {used - set(records)}, recorded by no rule"
