"""Benchmark: the exporter's CPU time per collection against the floor, and its memory.

Builds a realistic node (hundreds of processes, a few with tens of thousands of
map areas), then, in the same run and interleaved round by round:

- the floor: benchmarks/minimal_reader.py reads the same files and counts lines;
- the exporter: one full scrape in-process (Collector.collect + exposition).

Prints CPU time per collection (user + system of this process, so the kernel's
work of generating /proc text is in both), the ratio, the peak RSS of a real
exporter daemon scraped over HTTP, and that RSS again after it counted a process
with 1,000,000 map areas (root only: vm.max_map_count is raised, then restored).

    python3 benchmarks/collection.py [--rounds 15] [--skip-million]
"""

import argparse
import os
import statistics
import subprocess
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, "..", "tests"), HERE, os.path.join(HERE, "..")]

from prometheus_client import CollectorRegistry, generate_latest  # noqa: E402

import minimal_reader  # noqa: E402
from exporter.collect import Collector  # noqa: E402
from exporter.detail_cache import DetailCache  # noqa: E402
from exporter.metrics import SnapshotCollector  # noqa: E402
from exporter.procfs.paths import Roots  # noqa: E402
from exporter.targets import default_config  # noqa: E402
from helpers.exporter import Exporter  # noqa: E402
from helpers.workload import Workload  # noqa: E402

PYTHON_SLEEPER = "import json, decimal, ssl, sqlite3, time; time.sleep(3600)"


def build_node():
    """~300 processes: small C programs, Python interpreters with many libraries, a few big ones."""
    workloads = [Workload("areas", 100) for _ in range(200)]
    workloads += [Workload("areas", 30_000) for _ in range(3)]
    workloads += [Workload("shm", f"/vma-bench-{os.getpid()}", 20_000)]
    for w in workloads:
        w.start()
    pythons = [subprocess.Popen([sys.executable, "-c", PYTHON_SLEEPER]) for _ in range(80)]
    time.sleep(3)  # let the interpreters finish importing
    return workloads, pythons


def cpu(fn) -> float:
    t = time.process_time()
    fn()
    return time.process_time() - t


def vm_hwm_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def measure_cpu(rounds: int):
    collector = Collector(Roots(), default_config())
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(collector))
    snap = collector.collect()
    exported = tuple(p.pid for p in snap.exported)
    generate_latest(registry)  # warm caches on both sides
    minimal_reader.read_node(limits_for=exported)
    def uncached():
        collector._details = DetailCache()  # as if every exported process had changed its maps
        collector.collect()

    runs = {"floor": [], "collect": [], "uncached": [], "scrape": []}
    fns = {
        "floor": lambda: minimal_reader.read_node(limits_for=exported),
        "collect": collector.collect,
        "uncached": uncached,
        "scrape": lambda: generate_latest(registry),
    }
    for i in range(rounds):
        # Rotate the order so that none always meets a warmer (or colder) cache.
        names = list(fns)[i % 4:] + list(fns)[: i % 4]
        for name in names:
            runs[name].append(cpu(fns[name]))
    return snap, runs


def measure_rss(scrapes: int = 10) -> float:
    with Exporter(None) as e:
        for _ in range(scrapes):
            e.text()
        return vm_hwm_mb(e.proc.pid)


def measure_million() -> list[tuple[int, float]] | str:
    """Peak RSS of one daemon after counting processes of growing size: flat means it
    does not grow with the number of areas (maps is streamed, never held whole)."""
    if os.geteuid() != 0:
        return "skipped: needs root to raise vm.max_map_count"
    path = "/proc/sys/vm/max_map_count"
    old = open(path).read().strip()
    try:
        with open(path, "w") as f:
            f.write("1100000")
        with Exporter(None) as e:
            for _ in range(3):
                e.text()
            peaks = [(0, vm_hwm_mb(e.proc.pid))]
            for areas in (250_000, 1_000_000):
                with Workload("areas", areas, timeout=300) as big:
                    for _ in range(3):  # exported from the second scrape on: counted, then detailed
                        assert f'pid="{big.pid}"' in e.text()
                peaks.append((areas, vm_hwm_mb(e.proc.pid)))
            return peaks
    finally:
        with open(path, "w") as f:
            f.write(old)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--skip-million", action="store_true")
    args = ap.parse_args()
    workloads, pythons = build_node()
    try:
        snap, runs = measure_cpu(args.rounds)
        total_areas = sum(g.map_areas_sum for g in snap.groups)
        f, c, u, s = (statistics.median(runs[k]) for k in ("floor", "collect", "uncached", "scrape"))
        print(f"node: {snap.scanned} processes, {total_areas} map areas, "
              f"{len(snap.exported)} exported, max {snap.processes[0].map_areas} in one process")
        print(f"CPU per collection, median of {args.rounds} interleaved rounds:")
        print(f"  minimal reader of the same files:  {f * 1000:8.1f} ms")
        print(f"  exporter collection:               {c * 1000:8.1f} ms   ratio {c / f:.2f} (budget 1.30)")
        print(f"  ... every breakdown parsed afresh: {u * 1000:8.1f} ms   ratio {u / f:.2f}")
        print(f"  exporter scrape (+ exposition):    {s * 1000:8.1f} ms   ratio {s / f:.2f}")
        print(f"exporter daemon peak RSS (VmHWM):     {measure_rss():8.1f} MB (budget 50)")
    finally:
        for w in workloads:
            w.stop()
        for p in pythons:
            p.kill()
            p.wait()
    if not args.skip_million:
        result = measure_million()
        if isinstance(result, str):
            print(f"1,000,000 map areas: {result}")
        else:
            print("exporter daemon peak RSS after counting a process of N map areas:")
            for areas, peak in result:
                print(f"  N = {areas:>9,}: {peak:6.1f} MB")
            print(f"  growth from 250,000 to 1,000,000 areas: {result[2][1] - result[1][1]:+.1f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
