"""Collection semantics on the real /proc: describe() without collecting, fresh families,
identity by (pid, start time), regrouping on rename, prediction of the detailed set."""

import os
import subprocess
import sys

import psutil
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from exporter.collect import Collector
from exporter.metrics import SnapshotCollector
from exporter.procfs.paths import Roots
from exporter.sources.known import REFRESH
from exporter.targets.config import parse_config
from helpers.wait import until
from helpers.workload import Workload, kernel_map_areas, unique_comm

COMM = unique_comm("collect")

RENAMER = """
import ctypes, sys
libc = ctypes.CDLL(None)
def rename(name):
    libc.prctl(15, ctypes.c_char_p(name.encode()), 0, 0, 0)  # PR_SET_NAME
rename("vma-before")
print("ready", flush=True)
sys.stdin.readline()
rename("vma-after")
print("renamed", flush=True)
sys.stdin.readline()
"""


def config(text: str):
    return parse_config(text, "test")


def test_registering_does_not_collect_and_each_scrape_gets_fresh_families():
    collector = Collector(Roots(), config('process_names: [{name: "x", comm: [no-such-comm]}]'))
    registry = CollectorRegistry(auto_describe=True)
    registry.register(SnapshotCollector(collector))  # calls describe()
    assert collector.collect().sequence == 1, "describe() must not have collected"
    first = generate_latest(registry).decode()
    second = generate_latest(registry).decode()
    assert "vma_exporter_collections_total 2.0" in first
    assert "vma_exporter_collections_total 3.0" in second


def test_a_process_is_identified_by_pid_and_start_time():
    collector = Collector(Roots(), config(f'process_names: [{{name: "wl", comm: [{COMM}]}}]'))
    with Workload("areas", 5, comm=COMM) as wl:
        [sample] = [p for p in collector.collect().processes if p.pid == wl.pid]
        stat = open(f"/proc/{wl.pid}/stat", "rb").read().rsplit(b")", 1)[1].split()
        assert sample.identity == (wl.pid, int(stat[19]))
        assert abs(sample.start_time_seconds - psutil.Process(wl.pid).create_time()) < 0.02


def test_a_process_that_renames_itself_moves_to_its_new_group():
    collector = Collector(Roots(), config("""
process_names:
  - {name: before, comm: [vma-before]}
  - {name: after, comm: [vma-after]}
"""))
    proc = subprocess.Popen([sys.executable, "-c", RENAMER], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "ready"
        assert [p.group for p in collector.collect().processes if p.pid == proc.pid] == ["before"]
        proc.stdin.write("\n")
        proc.stdin.flush()
        assert proc.stdout.readline().strip() == "renamed"
        # A rename changes no memory, so the new comm is seen at the process's next stat
        # refresh (sources/known.py): within REFRESH passes, then for good.
        groups = [[p.group for p in collector.collect().processes if p.pid == proc.pid] for _ in range(REFRESH)]
        assert groups[-1] == ["after"] and ["before"] not in groups[groups.index(["after"]):], groups
    finally:
        proc.kill()
        proc.wait()


def test_exported_processes_are_detailed_even_when_not_predicted():
    collector = Collector(Roots(), config(f"""
process_names: [{{name: wl, comm: [{COMM}]}}]
per_process: {{top_n: 1}}
"""))
    with Workload("areas", 100, comm=COMM) as small:
        collector.collect()
        with Workload("areas", 2000, comm=COMM) as big:  # a new process takes the top place
            snap = collector.collect()
            [top] = snap.exported
            assert top.pid == big.pid
            assert top.breakdown.detailed and top.breakdown.by_kind["anon"] >= 2000
            assert top.limits is not None
            # The next pass predicts the new top: the old one is only counted now.
            snap = collector.collect()
            assert [p.pid for p in snap.processes] == [big.pid], "the daemon keeps only exported samples"
            assert collector._policy.predicted == {top.identity}, f"small={small.pid} big={big.pid}"


def test_a_breakdown_is_reused_only_while_maps_is_unchanged():
    collector = Collector(Roots(), config(f"""
process_names: [{{name: wl, comm: [{COMM}]}}]
per_process: {{top_n: 5}}
"""))
    with Workload("areas", 500, comm=COMM) as still, Workload("grow", 50, 0.05, comm=COMM) as growing:
        collector.collect()  # learns which processes are exported
        collector.collect()  # reads them in detail: fills the cache
        hits = collector.source.breakdowns.hits
        seen = kernel_map_areas(growing.pid)
        until(lambda: kernel_map_areas(growing.pid) > seen, "the growing workload to add areas")
        snap = collector.collect()
        by_pid = {p.pid: p for p in snap.processes}
        # The still process was served from the cache, and its figures are the kernel's.
        assert collector.source.breakdowns.hits == hits + 1
        assert by_pid[still.pid].breakdown.areas == by_pid[still.pid].map_areas
        assert sum(by_pid[still.pid].breakdown.by_kind.values()) == by_pid[still.pid].map_areas
        # The growing one changed between passes, so it was parsed afresh each time.
        before = by_pid[growing.pid].breakdown.by_kind["anon"]
        seen = kernel_map_areas(growing.pid)
        until(lambda: kernel_map_areas(growing.pid) > seen, "the growing workload to add areas")
        snap = collector.collect()
        grown = {p.pid: p for p in snap.processes}[growing.pid]
        assert grown.breakdown.by_kind["anon"] > before
        assert sum(grown.breakdown.by_kind.values()) == grown.map_areas


def test_a_deadline_cuts_even_one_long_maps_read():
    """--collect.timeout must hold inside one process of many areas, not only between processes."""
    import time as clock

    from exporter.procfs import DeadlineExceeded
    from exporter.procfs.maps import iter_chunks, read_map_count

    with Workload("areas", 20_000, comm=COMM) as wl:  # ~1.4 MB of maps: several chunks
        path = f"/proc/{wl.pid}/maps"
        chunks = iter_chunks(path, deadline=clock.monotonic() - 1)
        assert next(chunks), "the first chunk is read"
        with pytest.raises(DeadlineExceeded):
            next(chunks)
        assert read_map_count(Roots(), wl.pid, deadline=clock.monotonic() + 60).areas > 20_000
        collector = Collector(Roots(), config(f'process_names: [{{name: wl, comm: [{COMM}]}}]'), timeout=1e-9)
        snap = collector.collect()
        assert not snap.complete and wl.pid not in {p.pid for p in snap.processes}


def test_read_file_reads_a_multi_page_seq_file_whole():
    """maps and mountinfo hand out about a page per read(): read_file must read on to EOF."""
    from exporter.procfs import read_file

    with Workload("areas", 2_000, comm=COMM) as wl:
        path = f"/proc/{wl.pid}/maps"
        with open(path, "rb") as f:
            whole = f.read()
        assert len(whole) > 64 * 1024
        assert read_file(path) == whole


def test_a_process_whose_main_thread_exited_is_still_counted():
    """main() called pthread_exit: /proc/PID/stat says Z and its maps read empty, but the
    process and its map areas live on in its other threads."""
    collector = Collector(Roots(), config(f'process_names: [{{name: wl, comm: [{COMM}]}}]'))
    with Workload("leader-exit", 3000, comm=COMM) as wl:
        assert open(f"/proc/{wl.pid}/stat").read().rsplit(")", 1)[1].split()[0] == "Z"
        tid = next(t for t in os.listdir(f"/proc/{wl.pid}/task") if int(t) != wl.pid)
        for _ in range(2):  # counted, then (predicted) detailed
            [p] = [p for p in collector.collect().processes if p.pid == wl.pid]
        assert p.map_areas == kernel_map_areas(f"{wl.pid}/task/{tid}") >= 3000
        assert p.breakdown.detailed and p.breakdown.by_kind["anon"] >= 3000
        assert p.virtual_bytes and p.virtual_bytes > 0
