"""End to end, for real: a Prometheus server, the exporter and workload processes.

Prometheus (Debian's package, started here on loopback with a temporary config,
1 s scrape and evaluation intervals, target label cluster="e2e") loads the
project's rules, rendered from the mixin in deploy/mixin with every ``for:``
capped at 5 s (tools/render_mixin.py --test-rules, which overrides the mixin's
_config in jsonnet): the expressions and thresholds are the real ones. The exporter watches only
this test's workloads (a private copy of the workload binary, matched by its
path), so workloads of tests running at the same time cannot interfere:

- at-limit: maps twice vm.max_map_count pages and unmaps every other one until
  munmap fails with ENOMEM: it sits at the limit;
- leak: maps one POSIX shm object 200 times a second and never unmaps;
- areas: a quiet process with a few areas.

Asserted through the HTTP API: the critical alert for the process at the limit
and no other, the leak signature naming the shm object, every rule evaluating
without error, every query of every dashboard panel (variables substituted)
parsing and returning data, and the exporter-down alert once it stops.
"""

import calendar
import contextlib
import os
import shutil
import time
from types import SimpleNamespace

import pytest
import yaml

from e2e import grafana, repo
from e2e.prometheus import BINARY as PROMETHEUS, Prometheus, QueryError, wait_until
from helpers import workload as workload_helper
from helpers.exporter import Exporter
from exporter.procfs.paths import Roots
from exporter.sources import bpf_unavailable
from helpers.host import host_lock
from helpers.tracefs import tracefs_mounted
from helpers.workload import Workload

gen = repo.renderer()

pytestmark = [pytest.mark.e2e, repo.needs_jsonnet,
              pytest.mark.skipif(PROMETHEUS is None, reason="prometheus not installed (apt-get install prometheus)")]

FOR_CAP = "5s"
ALERT_TIMEOUT = 90  # generous: other test sessions may be loading the two cores
QUERY_TIMEOUT = 60
HUGEPAGES_2M = "/sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages"


class PrivateWorkload(Workload):
    """A workload started from this test's own copy of the binary: the exporter's config
    matches that path, so no other session's workloads are watched."""

    def __init__(self, binary: str, *args: str):
        super().__init__(*args)
        self.args[0] = binary


def _read_int(path: str) -> int:
    with open(path) as f:
        return int(f.read())


def _write_int(path: str, value: int) -> None:
    with open(path, "w") as f:
        f.write(f"{value}\n")


class HugepagePool:
    """Make sure a 2 MiB pool is configured, so the hugepage panels have a pool to show.

    Adds pages only when none are configured and we are root, and takes back only what it
    added (other sessions may change the pool too), so the node ends as it was.
    """

    def __init__(self, pages: int = 2):
        self.pages = pages
        self.added = 0
        self.configured = False
        self.reason = ""

    def __enter__(self) -> "HugepagePool":
        if not os.path.exists(HUGEPAGES_2M):
            self.reason = "no 2 MiB hugepage support in this kernel"
            return self
        before = _read_int(HUGEPAGES_2M)
        if before == 0 and os.geteuid() == 0:
            _write_int(HUGEPAGES_2M, before + self.pages)
            self.added = max(_read_int(HUGEPAGES_2M) - before, 0)
            if not self.added:
                self.reason = "the kernel found no free memory for 2 MiB hugepages"
        elif before == 0:
            self.reason = "no hugepages configured and not root to configure them"
        self.configured = _read_int(HUGEPAGES_2M) > 0
        return self

    def __exit__(self, *exc) -> None:
        if self.added:
            _write_int(HUGEPAGES_2M, max(_read_int(HUGEPAGES_2M) - self.added, 0))


def exporter_config(*binaries: str) -> str:
    return yaml.safe_dump({
        "process_names": [{
            "name": "e2e-{{.Matches.Mode}}",  # e2e-at-limit, e2e-leak, e2e-areas, e2e-mmap-rlimit-data
            "exe": list(binaries),
            "cmdline": [r"^\S+ (?P<Mode>[a-z-]+)"],
        }],
        "per_process": {"top_n": 20, "min_limit_ratio": 0.5},
    })


@contextlib.contextmanager
def maybe_tracefs():
    """tracefs mounted for the BPF source's trace events where root can mount it."""
    if os.geteuid() != 0:
        yield
        return
    with tracefs_mounted():
        yield


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    workdir = str(tmp_path_factory.mktemp("e2e"))
    binary = os.path.join(workdir, "workload")
    shutil.copy2(workload_helper.build(), binary)
    rules_path = os.path.join(workdir, "vma-exporter.rules.yml")
    assert gen.main(["--test-rules", rules_path, "--for-cap", FOR_CAP]) == 0
    failing = os.path.join(workdir, "enomem")  # fails one mmap with ENOMEM under a small RLIMIT_DATA
    shutil.copy2(workload_helper.build("enomem"), failing)
    shm_name = f"/vma-e2e-leak-{os.getpid()}"
    started, started_wall = time.monotonic(), time.time()
    # The whole stack under the host lock: its pool, at-limit workload and trace events are
    # the node's, and another run of the suite must not change them under the panels and alerts.
    with host_lock(), maybe_tracefs(), HugepagePool() as pool:
        no_bpf = bpf_unavailable(Roots())
        source = ["--collect.source=bpf"] if no_bpf is None else []
        with PrivateWorkload(binary, "at-limit") as at_limit, \
                PrivateWorkload(binary, "leak", shm_name, "200") as leak, \
                PrivateWorkload(binary, "areas", "10") as quiet, \
                Exporter(exporter_config(binary, failing), *source) as exporter, \
                PrivateWorkload(failing, "mmap-rlimit-data") as enomem:  # after the exporter: counted
            instance = f"127.0.0.1:{exporter.port}"
            prom = Prometheus(workdir, job=repo.job(), targets=[instance], rules_file=rules_path,
                              target_labels={"cluster": "e2e"})
            with prom:
                wait_until(prom.targets_up, 60, "the exporter target to be up")
                yield SimpleNamespace(prom=prom, exporter=exporter, instance=instance, at_limit=at_limit, leak=leak,
                                      quiet=quiet, enomem=enomem, no_bpf=no_bpf, shm_object="/dev/shm" + shm_name,
                                      pool=pool, started=started, started_wall=started_wall)
    print(f"\ne2e stack ran {time.monotonic() - started:.0f} s")


def alerts(prom: Prometheus, alertname: str, **labels) -> list[dict]:
    """Label sets of the pending or firing alerts of that name."""
    matchers = ", ".join([f'alertname="{alertname}"'] + [f'{k}="{v}"' for k, v in labels.items()])
    return [s["metric"] for s in prom.query(f"ALERTS{{{matchers}}}")]


def test_critical_alert_fires_for_the_process_at_the_limit_and_no_other(stack):
    prom, pid = stack.prom, str(stack.at_limit.pid)
    wait_until(lambda: alerts(prom, "VmaProcessMapAreasNearLimit", severity="critical", alertstate="firing", pid=pid),
               ALERT_TIMEOUT, f"the critical alert to fire for the at-limit pid {pid}")
    critical = alerts(prom, "VmaProcessMapAreasNearLimit", severity="critical")
    assert [(a["pid"], a["group"], a["comm"], a["instance"], a["cluster"]) for a in critical] == \
        [(pid, "e2e-at-limit", "workload", stack.instance, "e2e")]
    # The figure behind it: the process holds the whole limit (the kernel lets it reach limit + 1).
    ratio = {s["metric"]["pid"]: float(s["value"][1]) for s in prom.query("vma:process_map_areas:ratio")}
    assert ratio[pid] >= 0.999
    assert ratio[str(stack.quiet.pid)] < 0.01
    # Its group's figure is explained by the exported process: no second alert for the group.
    assert alerts(prom, "VmaGroupMapAreasNearLimit") == []


def test_leak_signature_names_the_shm_object(stack):
    prom, pid = stack.prom, str(stack.leak.pid)
    wait_until(lambda: alerts(prom, "VmaProcessMapAreasLeakSignature", alertstate="firing", pid=pid),
               ALERT_TIMEOUT, f"the leak-signature alert to fire for the leaking pid {pid}")
    leak_alerts = alerts(prom, "VmaProcessMapAreasLeakSignature")
    assert [(a["pid"], a["object"], a["group"]) for a in leak_alerts] == [(pid, stack.shm_object, "e2e-leak")]
    # The recorded trend behind it names the object too. The workload maps it 200 times a
    # second (fewer on a loaded machine); by now the fit spans several seconds of scrapes,
    # and a wrong unit (per minute, per scrape) would be far outside this band.
    trend = prom.query(f'vma:process_top_object_map_areas:deriv{repo.config()["leakWindow"]}{{pid="{pid}"}}')
    assert [s["metric"]["object"] for s in trend] == [stack.shm_object]
    assert 50 < float(trend[0]["value"][1]) < 400
    top = prom.query(f'vma_process_top_object_map_areas{{pid="{pid}"}}')
    assert [s["metric"]["object"] for s in top] == [stack.shm_object]
    assert float(top[0]["value"][1]) >= repo.config()["leakMinAreas"]


def test_an_enomem_failure_fires_naming_process_syscall_and_cause(stack):
    """The BPF source counts the workload's refused 1 MiB mmap (its RLIMIT_DATA is VmData +
    256 KiB): the ENOMEM alert names it, mmap and rlimit_data, and the RLIMIT_DATA alert's
    critical severity fires for the same process; the other processes stay quiet."""
    if stack.no_bpf:
        pytest.skip(f"the BPF source cannot run here: {stack.no_bpf}")
    prom, pid = stack.prom, str(stack.enomem.pid)
    assert stack.enomem.detail.endswith("errno=12"), stack.enomem.detail
    wait_until(lambda: alerts(prom, "VmaProcessEnomemFailures", alertstate="firing", pid=pid),
               ALERT_TIMEOUT, f"the ENOMEM alert to fire for pid {pid}")
    fired = alerts(prom, "VmaProcessEnomemFailures")
    assert [(a["pid"], a["syscall"], a["cause"], a["group"]) for a in fired] == \
        [(pid, "mmap", "rlimit_data", "e2e-mmap-rlimit-data")]
    wait_until(lambda: alerts(prom, "VmaProcessDataNearRlimit", severity="critical", alertstate="firing", pid=pid),
               ALERT_TIMEOUT, f"the RLIMIT_DATA alert to fire for pid {pid}")
    node = {(s["metric"]["syscall"], s["metric"]["cause"]): float(s["value"][1])
            for s in prom.query("vma_node_enomem_failures_total")}
    assert len(node) == 24 and node[("mmap", "rlimit_data")] >= 1
    assert alerts(prom, "VmaGroupEnomemFailures") == []  # the process alert names it


def test_node_limit_alerts_match_this_node(stack):
    limit = _read_int("/proc/sys/vm/max_map_count")
    config = repo.config()
    expected = set()
    if limit < config["kernelDefaultMaxMapCount"]:
        expected.add("VmaNodeMaxMapCountBelowDefault")
    elif config["minMaxMapCount"] and limit < config["minMaxMapCount"]:
        expected.add("VmaNodeMaxMapCountBelowMinimum")
    node_alerts = lambda: {s["metric"]["alertname"] for s in stack.prom.query(  # noqa: E731
        'ALERTS{alertname=~"VmaNodeMaxMapCount.*", alertstate="firing"}')}
    # Poll until the set matches; when none is expected, first wait for the rules to have been
    # evaluated for twice the for: (an alert would be firing by then), not for the clock.
    if not expected:
        wait_until(lambda: evaluated_since(stack.prom) > stack.started_wall + 2 * gen.duration_seconds(FOR_CAP),
                   ALERT_TIMEOUT, "the rules to be evaluated past twice the for: duration")
    wait_until(lambda: node_alerts() == expected, ALERT_TIMEOUT, f"node alerts {expected or 'none'} (limit {limit})")


def evaluated_since(prom: Prometheus) -> float:
    """When Prometheus last evaluated the rule group, seconds since the epoch (0 before the first)."""
    stamps = [g["lastEvaluation"] for g in prom.rules()]
    if not stamps or stamps[0].startswith("0001-"):
        return 0.0
    return calendar.timegm(time.strptime(stamps[0][:19], "%Y-%m-%dT%H:%M:%S"))  # UTC, whole seconds


def test_every_rule_evaluates_without_error(stack):
    """No rule errs on real data (a many-to-many match, a duplicate series after a join)."""
    def evaluated():
        rules = [r for g in stack.prom.rules() for r in g["rules"]]
        return rules if rules and not any(r["lastEvaluation"].startswith("0001-") for r in rules) else None

    rules = wait_until(evaluated, 60, "every rule to be evaluated")
    assert len(rules) == sum(len(g["rules"]) for g in repo.rule_groups())
    bad = [(r["name"], r["lastError"]) for r in rules if r["health"] != "ok" or r.get("lastError")]
    assert not bad, f"rules failing to evaluate: {bad}"


def dashboard_values(stack, file_name: str) -> dict[str, str]:
    """What a user would pick: this cluster, job and instance; in the process view the leak."""
    values = {"cluster": "e2e", "job": repo.job(), "instance": stack.instance,
              "group": "e2e-leak", "pid": str(stack.leak.pid), "__rate_interval": "10s"}
    if file_name == "vma-fleet.json":  # the fleet view's default: All jobs and instances
        values.update(job=".*", instance=".*")
    return values


def test_every_dashboard_query_parses_and_returns_data(stack):
    prom = stack.prom
    pending = []
    for name, d in grafana.load_all().items():
        values = dashboard_values(stack, name)
        for title, ref, expr in grafana.panel_queries(d):
            pending.append((f"{name} / {title} / {ref}", grafana.substitute(expr, values)))
    assert len(pending) > 60
    # Configured-pool panels need a pool: without one (not root, no hugetlb) they must be empty.
    needs_pool = [(w, e) for w, e in pending if "vma_node_hugepages{" in e and "> 0" in e and "bool" not in e]
    assert needs_pool, "the fleet view's configured-pool panel is missing"
    if not stack.pool.configured:
        for where, expr in needs_pool:
            assert prom.query(expr) == [], f"{where}: data without a configured pool"
        pending = [p for p in pending if p not in needs_pool]
    # The failing workload's panels: its ENOMEM failures (the BPF source's: without it those
    # must be empty) and its finite RLIMIT_DATA (the leak's is unlimited, which the panel leaves
    # out). In the process view they are shown for the failing workload, not the leak.
    def for_failing(expr: str) -> str:
        return expr.replace(f'pid=~"{stack.leak.pid}"', f'pid=~"{stack.enomem.pid}"').replace(
            'group=~"e2e-leak"', 'group=~"e2e-mmap-rlimit-data"')

    enomem = [(w, e) for w, e in pending if "enomem" in e]
    limited = [(w, e) for w, e in pending if "< +Inf" in e]
    assert len(enomem) >= 3 and limited, "the ENOMEM or RLIMIT_DATA panels are missing"
    pending = [p for p in pending if p not in enomem and p not in limited]
    pending += [(w, for_failing(e)) for w, e in limited]
    if stack.no_bpf:
        for where, expr in enomem:
            assert prom.query(for_failing(expr)) == [], f"{where}: data without the BPF source"
    else:
        pending += [(w, for_failing(e)) for w, e in enomem]
    deadline = time.monotonic() + QUERY_TIMEOUT
    while True:
        empty = []
        for where, expr in pending:
            try:
                result = prom.query(expr)
            except QueryError as exc:
                pytest.fail(f"{where}: does not parse or evaluate: {exc}\n{expr}")
            if not result:
                empty.append((where, expr))
        if not empty or time.monotonic() > deadline:
            break
        pending = empty  # range functions need two samples, rates two scrapes: try again
        time.sleep(1)
    assert not empty, "queries returning no data:\n" + "\n".join(f"{w}\n    {e}" for w, e in empty)


def test_every_dashboard_variable_lists_the_expected_value(stack):
    prom = stack.prom
    for name, d in grafana.load_all().items():
        values = dashboard_values(stack, name)
        for var, selector, label in grafana.variable_queries(d):
            series = grafana.substitute(selector, values)
            found = wait_until(lambda series=series, label=label: {s.get(label) for s in prom.series(series)},
                               QUERY_TIMEOUT, f"{name}: ${var}")
            wanted = {"job": repo.job(), "instance": stack.instance}.get(var, values[var])
            assert wanted in found, f"{name}: ${var} lists {found}, not {wanted}"


def test_exporter_down_alert_fires_once_the_exporter_stops(stack):
    """Last in this module: it stops the exporter."""
    # stop() may be called again: the fixture's Exporter.__exit__ finds it stopped and cleaned up.
    stack.exporter.stop()
    down = wait_until(lambda: alerts(stack.prom, "VmaExporterDown"), ALERT_TIMEOUT, "VmaExporterDown")
    assert [(a["instance"], a["job"]) for a in down] == [(stack.instance, repo.job())]
