"""The daemon's path against real processes of each pattern (tests/helpers/patterns.c).

The exporter's own Collector reads each process as the daemon does (stat,
status, maps in one streaming read through the detail cache, summarize with
its lanes), and the summary of an exported process must name what
/proc/PID/maps shows multiplying, with its count: the label the
per-process pattern series will carry.
"""

import json
import os
import subprocess
import tempfile
import time
import uuid

import pytest
from helpers.cli import cli
from helpers.host import host_lock, sysfs_value
from helpers.patterns import maps_lines, pattern_process

from exporter.collect import Collector
from exporter.patterns import threads
from exporter.procfs.paths import Roots
from exporter.procfs.stat import read_stat
from exporter.targets.config import parse_config

HUGE_2M = "/sys/kernel/mm/hugepages/hugepages-2048kB"
CONFIG = 'process_names:\n  - name: "p"\n    comm: [patterns]\nper_process:\n  top_n: 50\n'


def summary_of(pid: int):
    """What the daemon computes for *pid* when it exports it (two passes: the first
    predicts, the second reads the breakdown in the same read as the count)."""
    config = parse_config(CONFIG, "test")
    collector = Collector(Roots("/proc", "/sys"), config)
    for _ in range(2):
        snap = collector.collect()
    (sample,) = [p for p in snap.processes if p.pid == pid]
    assert sample.exported and sample.breakdown.detailed
    return sample.breakdown


def test_one_object_mapped_again_and_again():
    name = f"/vma-pat-{uuid.uuid4().hex[:8]}"
    with pattern_process("shm", name, 2000) as p:
        on_maps = sum(1 for a in maps_lines(p.pid) if a[3] == f"/dev/shm{name}")
        first = summary_of(p.pid).patterns[0]
    assert on_maps == 2000
    assert first == ("object", f"/dev/shm{name}", on_maps)


def test_a_reservation_carved_into_alternating_pages():
    with pattern_process("carve", 10_000) as p:
        lo, hi = (int(x, 16) for x in p.detail.split("=")[1].split("-"))
        inside = [a for a in maps_lines(p.pid) if lo <= a[0] and a[1] <= hi]
        s = summary_of(p.pid)
    assert len(inside) == 20_001 and {a[2] for a in inside} == {"rw-p", "---p"}
    # Every page after the first follows one of the other protection.
    assert s.patterns == (("anon_shape", "4KiB rw-p/---p alternating", len(inside) - 1),)
    assert s.top_object != s.patterns[0].label


def test_pieces_left_by_munmap_in_the_middle():
    with pattern_process("munmap", 5000) as p:
        start = int(p.detail.split("=")[1], 16)
        mine = [a for a in maps_lines(p.pid) if start <= a[0] < start + 2 * 5000 * 4096]
        first = summary_of(p.pid).patterns[0]
    assert len(mine) == 5000 and all(b[0] - a[1] == 4096 for a, b in zip(mine, mine[1:])), "holes of a page"
    assert first == ("anon_shape", "4KiB rw-p pieces with holes", len(mine) - 1)


def test_1000_parked_threads_are_1000_stacks_with_their_guards():
    with pattern_process("threads", 1000) as p:
        areas = maps_lines(p.pid)
        first = summary_of(p.pid).patterns[0]
        count = read_stat(Roots("/proc", "/sys"), p.pid).num_threads
    guard_then_stack = sum(1 for a, b in zip(areas, areas[1:]) if a[2] == "---p" and b[2] == "rw-p"
                           and a[1] == b[0] and a[1] - a[0] == 4096 and b[1] - b[0] == 8 << 20 and not a[3] + b[3])
    assert count == 1000 and guard_then_stack == 999
    assert first == ("thread_stacks", "8MiB rw-p + 4KiB guard", 2 * guard_then_stack)
    assert threads.check((first,), count)[0].pattern == "thread_stacks", "one stack per thread: a pool too big"


def test_stacks_of_threads_never_joined_outnumber_the_threads():
    with pattern_process("unjoined", 50) as p:
        first = summary_of(p.pid).patterns[0]
        count = read_stat(Roots("/proc", "/sys"), p.pid).num_threads
    assert count == 1
    assert first == ("thread_stacks", "8MiB rw-p + 4KiB guard", 100)
    assert threads.check((first,), count)[0].pattern == "exited_thread_stacks"


def test_3000_files_of_one_directory_each_mapped_once(tmp_path):
    with pattern_process("files", str(tmp_path), 3000) as p:
        mine = [a for a in maps_lines(p.pid) if a[3].startswith(f"{tmp_path}/")]
        s = summary_of(p.pid)
    assert len({a[3] for a in mine}) == len(mine) == 3000
    assert s.patterns[0] == ("directory", f"{tmp_path}/", 3000)
    assert s.top_object_areas == 5, "no single object stands out: the top object is only the binary"


@pytest.fixture
def hugetlbfs():
    """A hugetlbfs mount of a pool with 64 more 2 MiB pages; both undone afterwards."""
    if os.geteuid() != 0:
        pytest.skip("needs root: mounts hugetlbfs and grows the hugepage pool")
    if not os.path.isdir(HUGE_2M):
        pytest.skip("no 2 MiB hugepage pool on this kernel")
    with host_lock():
        old = int(open(f"{HUGE_2M}/nr_hugepages").read())
        free = int(open(f"{HUGE_2M}/free_hugepages").read())
        want = old + max(0, 64 - free)
        with sysfs_value(f"{HUGE_2M}/nr_hugepages", want) as got:
            if got < want:
                pytest.skip(f"the pool grew to {got} of {want} pages (memory fragmented)")
            mount = tempfile.mkdtemp(prefix="vma-hugetlbfs-")
            try:
                subprocess.run(["mount", "-t", "hugetlbfs", "-o", "pagesize=2M", "none", mount], check=True)
            except (subprocess.CalledProcessError, FileNotFoundError) as exc:
                os.rmdir(mount)
                pytest.skip(f"cannot mount hugetlbfs: {exc}")
            try:
                yield mount
            finally:
                subprocess.run(["umount", mount], check=True)  # frees the files' pages
                os.rmdir(mount)


@pytest.mark.root
def test_dpdk_hugepage_files_are_one_family(hugetlbfs):
    """Incident 004 (docs/incidents.md): one file per hugepage, rtemap_0 ... rtemap_N, each mapped once."""
    with pattern_process("hugefiles", hugetlbfs, 64) as p:
        mine = [a for a in maps_lines(p.pid) if a[3].startswith(f"{hugetlbfs}/rtemap_")]
        s = summary_of(p.pid)
        explained = cli("explain", str(p.pid), "--json")
    assert len(mine) == 64 and all(a[1] - a[0] == 2 << 20 for a in mine)
    assert s.patterns[0] == ("family", f"{hugetlbfs}/rtemap_*", 64)
    assert s.by_kind["hugetlb"] == 64, "the mount is known: the files are hugetlb"
    first = json.loads(explained.stdout)["patterns"][0]
    assert (first["pattern"], first["label"], first["map_areas"]) == ("family", f"{hugetlbfs}/rtemap_*", 64)
    region = (int(first["region"]["start"], 16), int(first["region"]["end"], 16))
    assert region == (min(a[0] for a in mine), max(a[1] for a in mine))
    assert first["mapped_bytes"] == 64 * (2 << 20)


def test_the_label_stays_while_the_pattern_grows():
    """Scrape after scrape the count grows and the label does not change: no address in it."""
    with pattern_process("carve-grow", 20_000, 3000) as p:
        seen, deadline = [], time.monotonic() + 60
        while len(seen) < 3:
            assert time.monotonic() < deadline, f"the reservation stopped growing: {seen}"
            first = summary_of(p.pid).patterns[0]
            if not seen or first.areas > seen[-1].areas:
                seen.append(first)
    assert {(x.pattern, x.label) for x in seen} == {("anon_shape", "4KiB rw-p/---p alternating")}
    assert seen[0].areas < seen[1].areas < seen[2].areas
