"""Benchmark: CPU per scrape and peak RSS of vma-exporter, its peers and the C floor, side by side.

On nodes of about 370, 3,000 and 10,000 processes built here (benchmarks/nodes.py),
in the same run and interleaved round by round (the order rotates, so none always
meets a warmer cache):

- the floor: benchmarks/floor.c reads every /proc/PID/status and maps file in C;
- vma-exporter's collection, in this process (Collector.collect; CPU of this process);
- vma-exporter's daemon and the installed peers, scraped over HTTP (benchmarks/peers.py).

It prints, per node, CPU per scrape (median of the rounds), the ratio to the floor,
and peak RSS. A benchmark, not a test: it asserts nothing about speed.

    python3 benchmarks/node.py [--sizes 370,3000,10000] [--rounds 7]

10,000 processes need kernel.pid_max above that (raised as root, restored).
"""

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, ".."), HERE]

from exporter.collect import Collector  # noqa: E402
from exporter.procfs.paths import Roots  # noqa: E402
from exporter.sources import bpf_unavailable, open_source  # noqa: E402
from exporter.sources.breakdown import BreakdownCache  # noqa: E402
from exporter.targets import default_config  # noqa: E402
from nodes import Fleet, Sysctl, processes, small_node  # noqa: E402
from peers import Floor, daemons  # noqa: E402

SCRAPES = {370: 5, 3000: 3, 10000: 2}  # per round and daemon: several, for utime's 10 ms ticks
BUDGET = {370: 1.3, 3000: 1.5}  # the exporter's collection against the floor (issue budgets)
BPF_BUDGET = 0.1  # the BPF source's CPU per scrape against the floor


def settled(value: float) -> float:
    """*value*, after a pause: a Go peer's garbage collector runs on after its reply, and
    would otherwise be measured as the next step's CPU on a two-core machine."""
    time.sleep(0.3)
    return value


def cpu(fn) -> float:
    t = time.process_time()
    fn()
    return time.process_time() - t


def build(size: int):
    if size <= 500:
        return small_node()
    return Fleet(max(size - processes(), 1), 30)


def measure(size: int, rounds: int, bpf: bool) -> None:
    with build(size), tempfile.TemporaryDirectory() as work:
        floor = Floor()
        collector = Collector(Roots(), default_config())
        bpf_collector = Collector(Roots(), default_config(), source=open_source("bpf", Roots())) if bpf else None
        peers = daemons(work, bpf)
        for d in peers:
            d.__enter__()
        try:
            collector.collect()
            snap = collector.collect()
            if bpf_collector:
                bpf_collector.collect()
            floor.round()
            for d in peers:
                d.scrape()
                d.scrape()
            scrapes = SCRAPES.get(size, 2)
            def uncached():  # as if every exported process had changed its maps since the last scrape
                collector.source.breakdowns = BreakdownCache()
                return cpu(collector.collect)

            steps = {"floor (C: every status and maps)": lambda: floor.round()[0],
                     "vma-exporter collection (in-process)": lambda: cpu(collector.collect),
                     "  ... every breakdown parsed afresh": uncached}
            if bpf_collector:
                steps["vma-exporter collection, bpf (in-process)"] = lambda: cpu(bpf_collector.collect)
            for d in peers:
                steps[f"{d.name} daemon" if d.name.startswith("vma-exporter") else d.name] = \
                    lambda d=d: settled(d.cpu_per_scrape(scrapes))
            runs: dict[str, list[float]] = {name: [] for name in steps}
            names = list(runs)
            for r in range(rounds):
                order = names[r % len(names):] + names[: r % len(names)]
                for name in order:
                    runs[name].append(steps[name]())
            _, procs, lines = floor.round()
            rss = [floor.peak_rss_mb(), None, None] + ([None] if bpf_collector else []) + [
                d.peak_rss_mb() for d in peers]
        finally:
            for d in peers:
                d.__exit__()
            floor.close()
            if bpf_collector:
                bpf_collector.close()
    base = statistics.median(runs[names[0]])
    print(f"\n== {procs:,} processes, {lines:,} map areas; {len(snap.exported)} exported, {len(snap.groups)} groups; "
          f"median of {rounds} rounds ==")
    print(f"{'':58} {'CPU per scrape':>15} {'x floor':>8} {'peak RSS':>10}")
    for name, peak in zip(names, rss):
        c = statistics.median(runs[name])
        note = ""
        if name == "vma-exporter collection (in-process)" and size in BUDGET:
            note = f"  (budget {BUDGET[size]:.1f})"
        elif "bpf" in name:
            note = f"  (budget {BPF_BUDGET:.1f} of the floor)"
        mem = f"{peak:7.1f} MB" if peak is not None else ""
        print(f"{name:58} {c * 1000:12.1f} ms {c / base:8.2f} {mem:>10}{note}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="370,3000,10000", help="node sizes in processes (default: %(default)s)")
    ap.add_argument("--rounds", type=int, default=7)
    args = ap.parse_args()
    sizes = [int(s) for s in args.sizes.split(",")]
    print(f"vma-exporter node benchmark: {os.cpu_count()} CPUs, Linux {platform.release()}, "
          f"Python {platform.python_version()}, {platform.machine()}")
    no_bpf = bpf_unavailable(Roots())
    if no_bpf:
        print(f"the BPF source is left out: {no_bpf}")
    for size in sizes:
        if size > 30000 or (size > 5000 and os.geteuid() != 0):
            print(f"\n== {size:,} processes: skipped (needs root to raise kernel.pid_max) ==")
            continue
        with Sysctl("kernel.pid_max", size + 20000) if os.geteuid() == 0 else _Null():
            measure(size, args.rounds, no_bpf is None)
    return 0


class _Null:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


if __name__ == "__main__":
    sys.exit(main())
