"""Scale benchmark: one process of 1,000,000 map areas, and --collect.timeout on 10,000 processes.

Measured against the C floor (benchmarks/floor.c) in the same run:

- one process of 1,000,000 map areas on this node: CPU per collection against the
  floor, a real daemon scraped over HTTP (seconds per scrape, series, peak RSS), and
  the daemon's peak RSS after counting processes of 250,000 and 1,000,000 areas
  (flat: maps is streamed, never held whole; the step from none to 250,000 is the
  breakdown cache's bounded 4 MiB buffer); the deadline inside one maps read;
- 10,000 processes: a scrape with --collect.timeout far below one collection returns
  in about the timeout, marked incomplete.

A benchmark, not a test: it prints, it asserts nothing about speed.

    python3 benchmarks/scale.py [--processes 10000] [--rounds 5] [--skip-million]

The 1,000,000-area process needs root (vm.max_map_count is raised to 1,100,000 and
restored); 10,000 processes need kernel.pid_max above that (raised, restored).
"""

import argparse
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, "..", "tests"), HERE, os.path.join(HERE, "..")]

import requests  # noqa: E402

from exporter.collect import Collector  # noqa: E402
from exporter.procfs.paths import Roots  # noqa: E402
from exporter.targets import default_config  # noqa: E402
from helpers.exporter import Exporter  # noqa: E402
from helpers.workload import Workload  # noqa: E402
from nodes import Fleet, Sysctl, processes  # noqa: E402
from peers import Floor, peak_rss_mb, pinned  # noqa: E402


def cpu(fn) -> float:
    t = time.process_time()
    fn()
    return time.process_time() - t


def daemon(scrapes: int, *flags: str):
    """A real exporter over HTTP: (seconds per scrape, series, peak RSS MB, last text)."""
    with Exporter(None, *flags) as e:
        times, text = [], ""
        for _ in range(scrapes):
            t = time.perf_counter()
            text = requests.get(e.url + "/metrics", timeout=600).text
            times.append(time.perf_counter() - t)
        series = sum(1 for line in text.splitlines() if line and not line.startswith("#"))
        return statistics.median(times), series, peak_rss_mb(e.proc.pid), text


def value_of(text: str, name: str) -> float:
    return next(float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " "))


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
    with Sysctl("vm.max_map_count", 1_100_000), Exporter(None) as e:
        for _ in range(3):
            e.text()
        peaks = [(0, peak_rss_mb(e.proc.pid))]
        for areas in (250_000, 1_000_000):
            t = time.perf_counter()
            with Workload("areas", areas, timeout=600) as big:
                made = time.perf_counter() - t
                for _ in range(3):  # exported from the second scrape on: counted, then broken down
                    assert f'pid="{big.pid}"' in e.text()
                peaks.append((areas, peak_rss_mb(e.proc.pid)))
                if areas == 1_000_000:
                    one_million(big.pid, made, rounds)
        print("exporter daemon peak RSS after counting a process of N map areas: "
              + ", ".join(f"N = {n:,}: {mb:.1f} MB" for n, mb in peaks)
              + f" (growth from 250,000 to 1,000,000: {peaks[2][1] - peaks[1][1]:+.1f} MB)")


def one_million(pid: int, made: float, rounds: int) -> None:
    floor, collector = Floor(), Collector(Roots(), default_config())
    try:
        collector.collect()
        runs = {"floor": [], "collect": []}
        with pinned():  # beside the floor (benchmarks/peers.py)
            for r in range(rounds):
                for name in (("floor", "collect") if r % 2 else ("collect", "floor")):
                    runs[name].append(floor.round()[0] if name == "floor" else cpu(collector.collect))
    finally:
        floor.close()
    f, c = statistics.median(runs["floor"]), statistics.median(runs["collect"])
    print(f"\n== one process of 1,000,000 map areas (pid {pid}, made in {made:.0f} s) on a node of "
          f"{processes():,} processes ==")
    print(f"CPU per collection: floor {f:.3f} s, exporter {c:.3f} s (x{c / f:.2f})")
    per, series, hwm, _ = daemon(3)
    print(f"exporter daemon over HTTP: {per:.3f} s per scrape, {series:,} series, peak RSS {hwm:.1f} MB")
    view = single_process_view(pid)
    try:
        alone = Collector(Roots(view), default_config())
        t = time.perf_counter()
        alone.collect()
        full = time.perf_counter() - t
        cut = Collector(Roots(view), default_config(), timeout=0.05)
        t = time.perf_counter()
        complete = cut.collect().complete
        short = time.perf_counter() - t
        print(f"that process alone: one collection {full:.3f} s; with --collect.timeout=0.05 {short:.3f} s "
              f"(complete: {complete}): the deadline holds inside one maps read")
    finally:
        shutil.rmtree(view)


def timeout_on_fleet(n: int) -> None:
    with Sysctl("kernel.pid_max", n + 20000) if os.geteuid() == 0 else _Null(), Fleet(max(n - processes(), 1), 30):
        full, series, hwm, _ = daemon(2)
        per, cut_series, _, text = daemon(3, f"--collect.timeout={full / 4:.3f}")
        print(f"\n== {processes():,} processes ==")
        print(f"a whole scrape: {full:.3f} s, {series:,} series, peak RSS {hwm:.1f} MB")
        print(f"--collect.timeout={full / 4:.3f}s: {per:.3f} s per scrape, collection_complete "
              f"{value_of(text, 'vma_exporter_collection_complete'):.0f}, "
              f"{value_of(text, 'vma_exporter_processes_scanned'):,.0f} processes scanned, {cut_series:,} series")


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--processes", type=int, default=10_000)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--skip-million", action="store_true")
    args = ap.parse_args()
    print(f"vma-exporter scale benchmark: {os.cpu_count()} CPUs, Linux {platform.release()}, "
          f"Python {platform.python_version()}")
    if not args.skip_million:
        million(args.rounds)
    timeout_on_fleet(args.processes)
    return 0


if __name__ == "__main__":
    sys.exit(main())
