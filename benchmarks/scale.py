"""Scale benchmark: a node of 10,000 processes, and one process of 1,000,000 map areas.

For each, measured in the same run against the floor (benchmarks/minimal_reader.py,
which reads the same files and counts lines) and interleaved round by round:

- time per collection, wall and CPU (user + system of this process, so the
  kernel's work of generating /proc text is in both), and their ratio;
- a real exporter daemon scraped over HTTP: time per scrape, series count,
  exposition size, peak RSS (VmHWM), against the floor's peak RSS;
- ``--collect.timeout``: a scrape with a deadline far below one collection.

A benchmark, not a test: it prints, it asserts nothing about speed.

    python3 benchmarks/scale.py [--processes 10000] [--areas-per-process 30]
                                [--rounds 5] [--skip-million]

The 1,000,000-area process needs root (vm.max_map_count is raised to 1,100,000
and restored). 10,000 processes need pid_max above that (raised if needed, restored).
"""

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, "..", "tests"), HERE, os.path.join(HERE, "..")]

import requests  # noqa: E402
from prometheus_client import CollectorRegistry, generate_latest  # noqa: E402

import minimal_reader  # noqa: E402
from fleet import Fleet  # noqa: E402
from exporter.collect import Collector  # noqa: E402
from exporter.metrics import SnapshotCollector  # noqa: E402
from exporter.procfs.paths import Roots  # noqa: E402
from exporter.targets import default_config  # noqa: E402
from helpers.exporter import Exporter  # noqa: E402
from helpers.workload import Workload  # noqa: E402

class Sysctl:
    """Raise a sysctl for the duration, restore it after."""

    def __init__(self, name: str, at_least: int):
        self.path = "/proc/sys/" + name.replace(".", "/")
        self.at_least = at_least

    def __enter__(self):
        with open(self.path) as f:
            self.old = f.read().strip()
        if int(self.old) < self.at_least:
            with open(self.path, "w") as f:
                f.write(str(self.at_least))
        return self

    def __exit__(self, *exc):
        with open(self.path, "w") as f:
            f.write(self.old)


def timed(fn) -> tuple[float, float]:
    w, c = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w, time.process_time() - c


def vm_hwm_mb(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024


def floor_peak_rss_mb() -> tuple[float, float]:
    """Peak RSS of a bare interpreter, and of one running the minimal reader once."""
    code = ("import sys; sys.path.insert(0, %r)\n"
            "import minimal_reader\n"
            "%s\n"
            "print(next(int(l.split()[1]) for l in open('/proc/self/status') if l.startswith('VmHWM:')))")
    bare = subprocess.run([sys.executable, "-c", code % (HERE, "")], capture_output=True, text=True, check=True)
    full = subprocess.run([sys.executable, "-c", code % (HERE, "minimal_reader.read_node()")],
                          capture_output=True, text=True, check=True)
    return int(bare.stdout) / 1024, int(full.stdout) / 1024


def in_process(rounds: int, roots: Roots = Roots()):
    """Interleaved rounds of floor, collection, and collection + exposition."""
    collector = Collector(roots, default_config())
    registry = CollectorRegistry()
    registry.register(SnapshotCollector(collector))
    snap = collector.collect()
    exported = tuple(p.pid for p in snap.exported)
    fns = {
        "floor": lambda: minimal_reader.read_node(roots.procfs, limits_for=exported),
        "collect": collector.collect,
        "scrape": lambda: generate_latest(registry),
    }
    generate_latest(registry)
    fns["floor"]()  # warm both sides
    runs = {name: [] for name in fns}
    for i in range(rounds):
        order = list(fns)[i % 3:] + list(fns)[: i % 3]  # none always meets a warmer cache
        for name in order:
            runs[name].append(timed(fns[name]))
    return snap, {name: (statistics.median(w for w, _ in r), statistics.median(c for _, c in r))
                  for name, r in runs.items()}


def daemon(scrapes: int, *flags: str):
    """A real exporter over HTTP: seconds per scrape, series, bytes, peak RSS, last text."""
    with Exporter(None, *flags) as e:
        times, text = [], ""
        for _ in range(scrapes):
            t = time.perf_counter()
            r = requests.get(e.url + "/metrics", timeout=600)
            times.append(time.perf_counter() - t)
            text = r.text
        series = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
        return statistics.median(times), series, len(text.encode()), vm_hwm_mb(e.proc.pid), text


def value_of(text: str, name: str) -> float:
    return next(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " "))


def report(title: str, snap, medians, rounds: int) -> None:
    areas = sum(g.map_areas_sum for g in snap.groups)
    top = snap.processes[0].map_areas if snap.processes else 0
    print(f"\n== {title} ==")
    print(f"node: {snap.scanned:,} processes scanned, {areas:,} map areas, the largest {top:,}; "
          f"{len(snap.exported)} exported, {len(snap.groups)} groups")
    fw, fc = medians["floor"]
    print(f"per collection, median of {rounds} interleaved rounds:      wall        CPU")
    print(f"  minimal reader of the same files (floor)   {fw:8.3f} s  {fc:8.3f} s")
    for label, key in (("exporter collection", "collect"), ("exporter scrape (collection + exposition)", "scrape")):
        w, c = medians[key]
        print(f"  {label:<42} {w:8.3f} s  {c:8.3f} s   ratio {w / fw:.2f} wall, {c / fc:.2f} CPU")


def http_report(scrapes: int, floor_rss: tuple[float, float]) -> str:
    per, series, size, hwm, text = daemon(scrapes)
    print(f"exporter daemon over HTTP, {scrapes} scrapes: {per:.3f} s per scrape (median), "
          f"{series:,} series, {size / 1024:.0f} KiB, peak RSS {hwm:.1f} MiB "
          f"(minimal reader {floor_rss[1]:.1f} MiB, a bare interpreter {floor_rss[0]:.1f} MiB)")
    return text


def timeout_report(timeout: float) -> None:
    per, series, _, _, text = daemon(3, f"--collect.timeout={timeout:.3f}")
    print(f"--collect.timeout={timeout:.3f}s: {per:.3f} s per scrape, collection_complete "
          f"{value_of(text, 'vma_exporter_collection_complete'):.0f}, "
          f"{value_of(text, 'vma_exporter_processes_scanned'):,.0f} processes scanned, {series:,} series")


def single_process_view(pid: int) -> str:
    """A procfs root holding only *pid* (and the node files) as symlinks into /proc:
    the reads are the kernel's, the deadline has nothing but that one process to cut."""
    view = tempfile.mkdtemp(prefix="vma-view-")
    for name in (str(pid), "stat", "sys", "meminfo"):
        os.symlink(f"/proc/{name}", os.path.join(view, name))
    return view


def million(rounds: int) -> None:
    if os.geteuid() != 0:
        print("\n== one process of 1,000,000 map areas: skipped (needs root to raise vm.max_map_count) ==")
        return
    with Sysctl("vm.max_map_count", 1_100_000):
        t = time.perf_counter()
        with Workload("areas", 1_000_000, timeout=600) as big:
            made = time.perf_counter() - t
            snap, medians = in_process(rounds)
            report(f"one process of 1,000,000 map areas (pid {big.pid}, made in {made:.0f} s) on this node",
                   snap, medians, rounds)
            http_report(3, floor_peak_rss_mb())
            view = single_process_view(big.pid)
            try:
                collector = Collector(Roots(view), default_config(), timeout=0.05)
                w, _ = timed(collector.collect)
                complete = collector.collect().complete
                alone = Collector(Roots(view), default_config())
                w_full, _ = timed(alone.collect)
                print(f"that process alone: one collection {w_full:.3f} s; with --collect.timeout=0.05 "
                      f"{w:.3f} s (complete: {complete}): the deadline holds inside one maps read")
            finally:
                shutil.rmtree(view)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--processes", type=int, default=10_000)
    ap.add_argument("--areas-per-process", type=int, default=30)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--skip-million", action="store_true")
    args = ap.parse_args()
    print(f"vma-exporter scale benchmark: {os.cpu_count()} CPUs, Linux {platform.release()}, "
          f"Python {platform.python_version()}")
    with Sysctl("kernel.pid_max", args.processes + 5000) if os.geteuid() == 0 else _null():
        t = time.perf_counter()
        with Fleet(args.processes, args.areas_per_process):
            made = time.perf_counter() - t
            snap, medians = in_process(args.rounds)
            report(f"{args.processes:,} processes of {args.areas_per_process} extra map areas, 50 comm groups "
                   f"(started in {made:.0f} s)", snap, medians, args.rounds)
            floor_rss = floor_peak_rss_mb()  # again, now with the fleet to read
            http_report(args.rounds, floor_rss)
            timeout_report(medians["collect"][0] / 4)
    if not args.skip_million:
        million(args.rounds)
    return 0


class _null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


if __name__ == "__main__":
    sys.exit(main())
