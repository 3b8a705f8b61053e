"""--collect.source=bpf end to end: the same figures, choices and metrics as procfs, the
breakdown re-read only when the mappings changed, ENOMEM per process, group and node,
and honest about what it needs.

Real workloads (helpers/workload.c, helpers/enomem.c), the real collector and the real
daemon scraped over HTTP. The trace events need tracefs (mounted for the module if
missing, under the host lock, and unmounted again); everything here needs root.
"""

import dataclasses
import json
import os
import shutil
import subprocess
import sys

import pytest
from helpers.daemon import Daemon, one
from helpers.host import sysfs_value
from helpers.tracefs import tracefs_mounted
from helpers.wait import until
from helpers.workload import Workload, kernel_map_areas, unique_comm

from exporter.collect import Collector
from exporter.metrics import Context, families
from exporter.procfs.paths import Roots
from exporter.sources import bpf_unavailable, open_source
from exporter.targets.config import parse_config

pytestmark = [pytest.mark.root, pytest.mark.host]
COMM = unique_comm("bpfsrc")
CONFIG = f"""
process_names:
  - name: "{{{{.Comm}}}}"
    comm: [{COMM}]
per_process:
  top_n: 3
"""


@pytest.fixture(scope="module")
def bpf():
    """The BPF source can open here (root, BTF, libbpf, tracefs), or the module skips saying why."""
    if os.geteuid() != 0:
        pytest.skip("needs root (CAP_BPF, CAP_PERFMON)")
    with tracefs_mounted():
        why = bpf_unavailable(Roots())
        if why:
            pytest.skip(why)
        yield


def collector(source: str) -> Collector:
    roots = Roots()
    return Collector(roots, parse_config(CONFIG, "test"), source=open_source(source, roots))


def ours(snap):
    return {p.identity: p for p in snap.processes}


# --- the same figures, choices and metrics ---------------------------------------------------------

FIGURES = ("comm", "group", "threads", "map_areas", "virtual_bytes", "resident_bytes", "shared_bytes",
           "hugetlb_bytes", "start_time_seconds", "exported")
DEEP = ("data_bytes", "limits", "container_id", "pod_uid")


def test_both_sources_give_the_same_figures_choices_groups_and_metrics(bpf):
    """Idle workloads, so nothing moves between the two passes: every figure, the exported
    (top-N) choice, the group aggregates and the metric families are the same."""
    sources = {name: collector(name) for name in ("procfs", "bpf")}
    try:
        with Workload("areas", 4000, comm=COMM), Workload("areas", 2000, comm=COMM), \
                Workload("shm", f"/vma-bpfsrc-{os.getpid()}", 1000, comm=COMM), Workload("areas", 10, comm=COMM), \
                Workload("leader-exit", 300, comm=COMM):
            snaps = {}
            for name, c in sources.items():
                c.collect()  # learns who is exported
                snaps[name] = c.collect(everyone=True)
    finally:
        for c in sources.values():
            c.close()
    procfs, bpf_ = ours(snaps["procfs"]), ours(snaps["bpf"])
    assert set(procfs) == set(bpf_) and len(procfs) == 5
    for identity, p in procfs.items():
        b = bpf_[identity]
        assert {f: getattr(b, f) for f in FIGURES} == {f: getattr(p, f) for f in FIGURES}, identity
        if p.exported:
            assert {f: getattr(b, f) for f in DEEP} == {f: getattr(p, f) for f in DEEP}, identity
            assert b.breakdown == p.breakdown, identity
    assert sum(p.exported for p in procfs.values()) == 3  # top_n
    # The same groups; only the BPF source counts ENOMEM (nothing failed here: {}).
    assert [dataclasses.replace(g, enomem=None) for g in snaps["bpf"].groups] == list(snaps["procfs"].groups)
    assert [g.enomem for g in snaps["bpf"].groups] == [{}]
    assert snaps["bpf"].max_map_count == snaps["procfs"].max_map_count

    def contract(snap):
        return {(f.name, tuple(sorted({k for s in f.samples for k in s.labels}))) for f in families(Context(snap, None))
                if not f.name.startswith(("vma_exporter_", "vma_node_enomem", "vma_process_enomem",
                                          "vma_group_enomem"))}
    assert contract(snaps["bpf"]) == contract(snaps["procfs"])


def test_the_breakdown_is_read_again_only_when_the_mappings_changed(bpf):
    c = collector("bpf")
    try:
        with Workload("areas", 3000, comm=COMM) as still, Workload("grow", 20, 0.05, comm=COMM) as growing:
            c.collect()  # learns who is exported
            c.collect()  # reads their maps once: the breakdowns are kept under their mmap lock sequence
            hits = c.source.breakdowns.hits
            seen = kernel_map_areas(growing.pid)
            until(lambda: kernel_map_areas(growing.pid) > seen, "the growing workload to add areas")
            snap = ours(c.collect())
            by_pid = {i[0]: p for i, p in snap.items()}
            assert c.source.breakdowns.hits == hits + 1, "only the still process is served without reading maps"
            assert by_pid[still.pid].breakdown.by_kind["anon"] >= 3000
            grown = by_pid[growing.pid]
            assert sum(grown.breakdown.by_kind.values()) >= seen  # read afresh, after the growth
    finally:
        c.close()


# --- ENOMEM through the daemon ------------------------------------------------------------------------

def failures(samples, name: str, **labels) -> dict[tuple[str, str], float]:
    return {(s.labels["syscall"], s.labels["cause"]): s.value for s in samples.get(name, [])
            if all(s.labels.get(k) == v for k, v in labels.items())}


@pytest.fixture()
def daemon(bpf, tmp_path):
    config = tmp_path / "targets.yml"
    config.write_text(CONFIG.replace("top_n: 3", "top_n: 10"))
    with Daemon(f"--config.file={config}", "--collect.source=bpf") as d:
        yield d


def test_a_refused_mmap_under_rlimit_data_is_counted_for_the_process_its_group_and_the_node(daemon):
    before = failures(daemon.metrics(), "vma_node_enomem_failures_total")
    with Workload("mmap-rlimit-data", program="enomem", comm=COMM) as w, Workload("quiet", 500, program="enomem",
                                                                                    comm=COMM) as quiet:
        assert w.detail.endswith("errno=12"), w.detail
        samples = daemon.metrics()
    assert failures(samples, "vma_process_enomem_failures_total", pid=str(w.pid)) == {("mmap", "rlimit_data"): 1}
    assert failures(samples, "vma_process_enomem_failures_total", pid=str(quiet.pid)) == {}  # a quiet one: not at all
    assert failures(samples, "vma_group_enomem_failures_total", group=COMM) == {("mmap", "rlimit_data"): 1}
    node = failures(samples, "vma_node_enomem_failures_total")
    assert len(node) == 24  # every pair, from 0
    assert node[("mmap", "rlimit_data")] >= 1 + before.get(("mmap", "rlimit_data"), 0)
    assert one(samples, "vma_exporter_source_info", source="bpf") == 1


def test_munmap_splits_at_the_limit_are_counted_under_munmap_map_count(daemon):
    """Incident 001 (docs/incidents.md): a process maps many pages and unmaps every other one until munmap fails."""
    with sysfs_value("/proc/sys/vm/max_map_count", 3000):
        daemon.metrics()  # the source writes the lowered limit where its programs read it
        with Workload("at-limit", comm=COMM) as w:
            assert "munmap-failed errno=12" in w.detail, w.detail
            samples = daemon.metrics()
        daemon.metrics()
    got = failures(samples, "vma_process_enomem_failures_total", pid=str(w.pid))
    assert got == {("munmap", "map_count"): 1}


def test_the_group_counter_keeps_the_failures_of_members_that_exited(daemon):
    with Workload("mmap-rlimit-data", program="enomem", comm=COMM) as w:
        assert w.detail.endswith("errno=12")
        first = daemon.metrics()
    assert failures(first, "vma_process_enomem_failures_total", pid=str(w.pid)) == {("mmap", "rlimit_data"): 1}
    after = daemon.metrics()  # the process is gone: its series too, not its group's count
    assert failures(after, "vma_process_enomem_failures_total", pid=str(w.pid)) == {}
    assert failures(after, "vma_group_enomem_failures_total", group=COMM) == {("mmap", "rlimit_data"): 1}
    with Workload("mmap-rlimit-data", program="enomem", comm=COMM):
        again = daemon.metrics()
    assert failures(again, "vma_group_enomem_failures_total", group=COMM) == {("mmap", "rlimit_data"): 2}


# --- honest about privilege; nothing left behind ------------------------------------------------------

def setpriv_without(*caps: str) -> list[str]:
    setpriv = shutil.which("setpriv")
    if setpriv is None:
        pytest.skip("setpriv (util-linux) is not installed")
    drop = ",".join(f"-{cap}" for cap in caps)
    return [setpriv, f"--inh-caps={drop}", f"--bounding-set={drop}"]


def test_bpf_without_cap_bpf_exits_naming_it_and_auto_falls_back_saying_why(bpf, tmp_path):
    prefix = setpriv_without("bpf", "sys_admin")  # CAP_SYS_ADMIN grants what CAP_BPF does
    r = subprocess.run([*prefix, sys.executable, "-m", "exporter", "--collect.source=bpf",
                        f"--textfile.output={tmp_path / 'x.prom'}"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 1, r.stderr
    assert "--collect.source=bpf" in r.stderr and "CAP_BPF" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "x.prom").exists()
    d = Daemon("--collect.source=auto")
    d.args = [*prefix, *d.args]
    with d:
        samples = d.metrics()
        log = d.log()
    assert one(samples, "vma_exporter_source_info", source="procfs") == 1
    lines = [line for line in log.splitlines() if "--collect.source=auto" in line]
    assert len(lines) == 1 and "level=warn" in lines[0] and "CAP_BPF" in lines[0], log
    assert "vma_process_enomem_failures_total" not in samples


def bpf_objects() -> set[str]:
    """Ids of the kernel's BPF programs and links (bpftool), to see none is left behind."""
    out = set()
    for kind in ("prog", "link"):
        r = subprocess.run(["bpftool", "-j", kind, "list"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        out |= {f"{kind}:{o['id']}" for o in json.loads(r.stdout or "[]")}
    return out


def open_files(pid: int) -> list[str]:
    """What a process holds open, by kind ("anon_inode:bpf-map", a path, ...), sorted.
    Sockets are left out: an HTTP connection the client just closed may still be open in
    the server's thread for a moment, and is not what a reload could leak."""
    out = []
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            target = os.readlink(f"/proc/{pid}/fd/{fd}")
        except FileNotFoundError:
            continue  # closed while we looked
        if not target.startswith("socket:"):
            out.append(target.split("[", 1)[0] if target.startswith("anon_inode:") else target)
    return sorted(out)


def test_reloads_leak_nothing_and_exit_detaches_everything(bpf, tmp_path):
    if shutil.which("bpftool") is None:
        pytest.skip("bpftool is not installed (scripts/test.sh installs it)")
    before = bpf_objects()
    config = tmp_path / "targets.yml"
    config.write_text(CONFIG)
    with Daemon(f"--config.file={config}", "--collect.source=bpf") as d:
        d.metrics()
        files = open_files(d.proc.pid)
        loaded = bpf_objects() - before
        assert loaded, "the daemon's programs are loaded"
        for n in range(1, 6):
            d.proc.send_signal(1)  # SIGHUP: reload
            until(lambda n=n: d.log().count("reloaded config") >= n, "the reload")
            d.metrics()
        assert open_files(d.proc.pid) == files
        assert bpf_objects() - before == loaded
        assert d.stop() == 0
    until(lambda: not (bpf_objects() - before), "every program and link of the daemon to be gone")
