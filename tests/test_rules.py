"""The alerting and recording rules: generated output is current, promtool accepts
and unit-tests them, the PrometheusRule carries the very same groups, every alert
is tested firing and silent, and every name used exists in the exporter.

promtool comes from Debian's `prometheus` package (scripts/test.sh installs it).
"""

import glob
import os
import re
import shutil
import subprocess

import pytest
import yaml

from e2e import repo

gen = repo.generator()
import vma_mixin  # noqa: E402  (on sys.path once the generator is loaded)
from vma_mixin import config, recording, render  # noqa: E402

PROMTOOL = shutil.which("promtool")
needs_promtool = pytest.mark.skipif(PROMTOOL is None, reason="promtool not installed (apt-get install prometheus)")
RULE_TESTS = sorted(glob.glob(os.path.join(repo.RULE_TESTS_DIR, "*.test.yml")))


def promtool(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([PROMTOOL, *args], capture_output=True, text=True, timeout=120)


def load(rel: str):
    with open(repo.path(rel), encoding="utf-8") as f:
        return yaml.safe_load(f)


def alert_rules() -> list[dict]:
    return [r for g in vma_mixin.groups() for r in g["rules"] if "alert" in r]


# --- generated output --------------------------------------------------------------------------

def test_checked_in_rules_equal_a_fresh_generation():
    stale = [rel for rel in gen.stale() if not rel.startswith(gen.DASHBOARD_DIR)]
    assert not stale, f"stale generated files {stale}: run python3 tools/generate.py"


def test_generation_is_deterministic():
    assert render.rules_file() == render.rules_file()
    assert render.prometheus_rule() == render.prometheus_rule()


def test_generate_check_flag_reports_a_stale_file(tmp_path):
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


def test_for_cap_shortens_only_for_durations():
    real = vma_mixin.groups()
    fast = vma_mixin.groups(for_cap="5s")
    for g_real, g_fast in zip(real, fast, strict=True):
        for r_real, r_fast in zip(g_real["rules"], g_fast["rules"], strict=True):
            if "for" in r_real:
                assert vma_mixin.duration_seconds(r_fast["for"]) == min(5, vma_mixin.duration_seconds(r_real["for"]))
            assert {k: v for k, v in r_fast.items() if k != "for"} == {k: v for k, v in r_real.items() if k != "for"}
    assert real == vma_mixin.groups(), "the cap must not change the real rules"


@pytest.mark.parametrize("text, seconds", [("15m", 900), ("1h30m", 5400), ("90s", 90), ("250ms", 0.25)])
def test_duration_seconds(text, seconds):
    assert vma_mixin.duration_seconds(text) == seconds


@pytest.mark.parametrize("text", ["", "15", "m", "1.5h", "5 m", "-5m"])
def test_duration_seconds_rejects_malformed(text):
    with pytest.raises(ValueError, match="not a Prometheus duration"):
        vma_mixin.duration_seconds(text)


def test_generate_test_rules_writes_the_capped_copy(tmp_path):
    out = tmp_path / "r.yml"
    assert gen.main(["--test-rules", str(out), "--for-cap", "5s"]) == 0
    assert out.read_text() == render.rules_file(for_cap="5s")
    fors = [r["for"] for g in yaml.safe_load(out.read_text())["groups"] for r in g["rules"] if "for" in r]
    assert fors and set(fors) == {"5s"}


def test_generate_test_rules_rejects_a_bad_cap(tmp_path, capsys):
    assert gen.main(["--test-rules", str(tmp_path / "r.yml"), "--for-cap", "soon"]) == 2
    assert "--for-cap" in capsys.readouterr().err
    assert not (tmp_path / "r.yml").exists()


# --- promtool ----------------------------------------------------------------------------------

@needs_promtool
def test_promtool_check_rules_accepts_the_rules_file():
    out = promtool("check", "rules", repo.path(gen.RULES_FILE))
    assert out.returncode == 0, out.stdout + out.stderr
    assert f"SUCCESS: {sum(len(g['rules']) for g in vma_mixin.groups())} rules found" in out.stdout


@needs_promtool
def test_promtool_check_rules_accepts_the_prometheus_rule_spec(tmp_path):
    spec = tmp_path / "spec.yml"
    spec.write_text(yaml.safe_dump({"groups": load(gen.PROMETHEUS_RULE)["spec"]["groups"]}))
    out = promtool("check", "rules", str(spec))
    assert out.returncode == 0, out.stdout + out.stderr


@needs_promtool
def test_promtool_check_rules_rejects_a_broken_rule(tmp_path):
    """The check above can fail: a typo in an expression is caught."""
    broken = render.rules_file().replace("vma_node_map_areas_limit{", "vma_node_map_areas_limit{{", 1)
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
def test_promtool_unit_tests_catch_a_changed_threshold(tmp_path):
    """The unit tests can fail: with the critical threshold moved they do."""
    text = render.rules_file().replace(f">= {config.CRITICAL_RATIO}\n", ">= 0.99\n")
    assert text != render.rules_file()
    rules = tmp_path / "vma-exporter.rules.yml"
    rules.write_text(text)
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
    folded = 'max by (pod_uid, namespace, pod, node) (\n'
    text = render.rules_file().replace(folded, "(\n")
    assert text != render.rules_file()
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


def test_every_pod_rule_is_unit_tested():
    """Each pod join is evaluated by promtool and its joined output asserted."""
    tested = {case["expr"] for case in promql_expr_tests() if case.get("exp_samples")}
    for name in recording.POD_RULES:
        assert name in tested, f"no promql_expr_test asserts the samples of {name}"


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
        name, severity = rule["alert"], rule["labels"]["severity"]
        assert severity in firing.get(name, set()), f"no unit test sees {name} ({severity}) fire"
        assert name in silent, f"no unit test sees {name} stay silent"


# --- conventions -------------------------------------------------------------------------------

PER_PROCESS = {"VmaProcessMapAreasNearLimit", "VmaProcessMapAreasExhaustionPredicted",
               "VmaProcessMapAreasLeakSignature"}


def test_alert_conventions():
    names = vma_mixin.alert_names()
    assert PER_PROCESS <= set(names)
    for rule in alert_rules():
        name, ann = rule["alert"], rule["annotations"]
        assert re.fullmatch(r"Vma(?:[A-Z][a-z]+)+", name), name
        assert rule["labels"]["severity"] in ("info", "warning", "critical"), name
        assert set(ann) == {"summary", "description", "runbook_url"}, name
        assert "{{" not in ann["summary"] and ann["summary"].endswith("."), f"{name}: summary must be a static sentence"
        assert "{{ $labels.instance }}" in ann["description"], name
        # The figure; VmaExporterDown has none (up is 0), its description gives the duration instead.
        assert "$value" in ann["description"] or name == "VmaExporterDown", name
        if name in PER_PROCESS:
            for label in ("group", "pid", "comm"):
                assert f"{{{{ $labels.{label} }}}}" in ann["description"], f"{name} must name the {label}"
        assert ann["runbook_url"] == f"{config.RUNBOOK_URL}#{name.lower()}"
    severities = {r["labels"]["severity"] for r in alert_rules()}
    assert severities == {"info", "warning", "critical"}


def test_near_limit_has_a_warning_and_a_short_critical():
    near = [r for r in alert_rules() if r["alert"] == "VmaProcessMapAreasNearLimit"]
    by_severity = {r["labels"]["severity"]: r for r in near}
    assert set(by_severity) == {"warning", "critical"}
    assert f">= {config.WARNING_RATIO}" in by_severity["warning"]["expr"]
    assert f">= {config.CRITICAL_RATIO}" in by_severity["critical"]["expr"]
    crit, warn = (vma_mixin.duration_seconds(by_severity[s]["for"]) for s in ("critical", "warning"))
    assert crit <= 300 and crit < warn


def test_every_selector_carries_the_job_selector():
    """Each exporter metric in every rule is selected with the configured job."""
    for g in vma_mixin.groups():
        for rule in g["rules"]:
            for m in re.finditer(r"\b((?:vma_|vma:)[\w:]+|up)\b(\{[^}]*\})?", rule["expr"]):
                assert m.group(2) and config.SELECTOR in m.group(2), \
                    f"{rule.get('alert') or rule.get('record')}: {m.group(0)} lacks {config.SELECTOR}"


def test_every_kube_state_metrics_series_carries_its_selector():
    """The pod joins read kube-state-metrics' series only, never another job's copy of them."""
    used = 0
    for g in vma_mixin.groups():
        for rule in g["rules"]:
            for m in re.finditer(r"\b(kube_\w+)\b(\{[^}]*\})?", rule["expr"]):
                used += 1
                assert m.group(2) and config.KUBE_STATE_METRICS_SELECTOR in m.group(2), \
                    f"{rule.get('alert') or rule.get('record')}: {m.group(0)} lacks {config.KUBE_STATE_METRICS_SELECTOR}"
    assert used >= 2, "the pod joins read kube_pod_info and kube_pod_container_info"


def test_rules_have_one_source():
    """No rule file under deploy/ but the generated ones: a hand-written rule would be a second source."""
    found = []
    for dirpath, _, files in os.walk(repo.path("deploy")):
        for name in files:
            if not name.endswith((".yml", ".yaml")):
                continue
            path = os.path.join(dirpath, name)
            with open(path, encoding="utf-8") as f:
                docs = [d for d in yaml.safe_load_all(f) if isinstance(d, dict)]
            if any(d.get("kind") == "PrometheusRule" or "groups" in d for d in docs):
                found.append(os.path.relpath(path, repo.ROOT))
    assert sorted(found) == sorted([gen.RULES_FILE, gen.PROMETHEUS_RULE]), \
        f"rule files not generated from vma_mixin: {sorted(set(found) - {gen.RULES_FILE, gen.PROMETHEUS_RULE})}"


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
    for name in vma_mixin.alert_names():
        assert name.lower() in anchors, f"docs/runbook.md has no section '## {name}'"


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
    for g in vma_mixin.groups():
        for rule in g["rules"]:
            unknown = used_metric_names(rule["expr"]) - exposed
            assert not unknown, f"{rule.get('alert') or rule.get('record')} uses {unknown}, not in exporter/metrics.py or exporter/reload.py"


def test_process_labels_match_the_exporter():
    from exporter.metrics import PROCESS_LABELS

    assert tuple(PROCESS_LABELS) == config.PROCESS_LABELS


def test_recorded_names_follow_level_metric_operations():
    records = [r["record"] for g in vma_mixin.groups() for r in g["rules"] if "record" in r]
    assert sorted(records) == sorted(recording.RECORDED)
    for name in records:
        assert re.fullmatch(r"vma:[a-z_]+:[a-z_0-9]+", name), name
