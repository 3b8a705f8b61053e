"""Benchmark: CPU per scrape and peak RSS of vma-exporter, its peers and the C floor, side by side.

On nodes of about 370, 3,000 and 10,000 processes built here (benchmarks/nodes.py),
in the same run, interleaved round by round with the C floor (the order rotates, so
none always meets a warmer cache):

- the floor: benchmarks/floor.c reads every /proc/PID/status and maps file in C;
- vma-exporter's collection, in this process (Collector.collect; CPU of this process),
  with the procfs source, with every breakdown parsed afresh, and with the BPF source;
- vma-exporter's daemons (procfs and BPF), scraped over HTTP (benchmarks/peers.py);
- in three phases, each against the floor measured beside it: procfs, then BPF
  (its tracepoints slow every syscall on the node, the floor's too, so its figure
  is also given against the procfs phase's floor), then the installed peers (a Go
  peer's runtime works on between scrapes, and on two cores that would be counted
  as anyone's CPU).

All of it on one CPU (benchmarks/peers.py, MEASURE_CPU); the node's processes idle
on the other.

It prints, per node, CPU per scrape (median of the rounds), the ratio to the floor
(the median of each round's ratio to that round's floor) and peak RSS. A benchmark,
not a test: it asserts nothing about speed.

    python3 benchmarks/node.py [--sizes 370,3000,10000] [--rounds 9]

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
from peers import Floor, daemons, pinned  # noqa: E402

SCRAPES = {370: 20, 3000: 6, 10000: 3}  # per round and daemon: several, for utime's 10 ms ticks
BUDGET = {370: 1.3, 3000: 1.5}  # the exporter's collection against the floor (issue budgets)
FLOOR = "floor (C: every status and maps)"
BPF_BUDGET = {370: 0.1, 10000: 0.1}  # the BPF source's CPU per scrape against the floor (issue budget)


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


def rotated(steps: dict, rounds: int) -> dict[str, list[float]]:
    """Each step once per round, the order rotating so that none always meets a warmer cache."""
    runs: dict[str, list[float]] = {name: [] for name in steps}
    names = list(steps)
    for r in range(rounds):
        for name in names[r % len(names):] + names[: r % len(names)]:
            runs[name].append(steps[name]())
    return runs


def phase(floor: Floor, daemons_: list, extra: dict, rounds: int, scrapes: int):
    """The floor, *extra* in-process steps and *daemons_* interleaved: ({name: CPU runs}, {name: RSS})."""
    for d in daemons_:
        d.__enter__()
    try:
        for d in daemons_:  # the first scrapes start caches and imports; not measured
            d.scrape()
            d.scrape()
        steps = {FLOOR: lambda: floor.round()[0], **extra}
        for d in daemons_:
            steps[f"{d.name} daemon" if d.name.startswith("vma-exporter") else d.name] = \
                lambda d=d: settled(d.cpu_per_scrape(scrapes))
        runs = rotated(steps, rounds)
        rss = {name: d.peak_rss_mb() for name, d in zip(list(steps)[1 + len(extra):], daemons_)}
    finally:
        for d in daemons_:
            d.__exit__()
    return runs, rss


def measure(size: int, rounds: int, bpf: bool) -> None:
    """Three phases on the same node, each with its own floor: procfs, BPF, the peers.

    Apart, because what one loads changes what the others pay: the BPF source's
    tracepoints put every task on the kernel's slow syscall path (the floor's reads
    too), and a peer's Go runtime keeps working between its scrapes."""
    with build(size), tempfile.TemporaryDirectory() as work, pinned():
        floor = Floor()
        collector = Collector(Roots(), default_config())
        every = daemons(work, bpf)
        procfs_daemons = [d for d in every if d.name == "vma-exporter"]
        bpf_daemons = [d for d in every if d.name.startswith("vma-exporter ")]
        peers = [d for d in every if not d.name.startswith("vma-exporter")]
        scrapes = SCRAPES.get(size, 2)
        try:
            collector.collect()
            snap = collector.collect()
            floor.round()

            def uncached():  # as if every exported process had changed its maps since the last scrape
                collector.source.breakdowns = BreakdownCache()
                return cpu(collector.collect)

            phases = [("procfs", phase(floor, procfs_daemons, {
                "vma-exporter collection (in-process)": lambda: cpu(collector.collect),
                "  ... every breakdown parsed afresh": uncached}, rounds, scrapes))]
            collector.close()
            if bpf:
                bpf_collector = Collector(Roots(), default_config(), source=open_source("bpf", Roots()))
                try:
                    bpf_collector.collect()
                    phases.append(("bpf", phase(floor, bpf_daemons, {
                        "vma-exporter collection, bpf (in-process)": lambda: cpu(bpf_collector.collect)},
                        rounds, scrapes)))
                finally:  # its programs would otherwise stay attached while the peers run
                    bpf_collector.close()
            if peers:
                phases.append(("peers", phase(floor, peers, {}, rounds, scrapes)))
            _, procs, lines = floor.round()
            floor_rss = floor.peak_rss_mb()
        finally:
            floor.close()
    print(f"\n== {procs:,} processes, {lines:,} map areas; {len(snap.exported)} exported, {len(snap.groups)} groups; "
          f"median of {rounds} rounds ==")
    print(f"{'':58} {'CPU per scrape':>15} {'x floor':>8} {'peak RSS':>10}")
    plain = statistics.median(phases[0][1][0][FLOOR])  # the floor with nothing of ours loaded
    for kind, (runs, rss) in phases:
        floors = runs[FLOOR]
        if kind == "bpf":
            print("  (the BPF source: its tracepoints slow every syscall, the floor's too; also against the "
                  "floor of the procfs phase)")
        elif kind == "peers":
            print("  (the peers, against the floor measured beside them)")
        for name, values in runs.items():
            c = statistics.median(values)
            # Paired: each round's figure against the floor of the same round, then the median.
            # The machine's pace drifts over minutes here; a pair shares its moment.
            ratio = statistics.median(v / f for v, f in zip(values, floors))
            note = ""
            if name == "vma-exporter collection (in-process)" and size in BUDGET:
                note = f"  (budget {BUDGET[size]:.1f})"
            elif kind == "bpf" and name != FLOOR:
                budget = f"; budget {BPF_BUDGET[size]:.1f}" if size in BPF_BUDGET else ""
                note = f"  ({c / plain:.2f} of the procfs phase's floor{budget})"
            peak = floor_rss if name == FLOOR else rss.get(name)
            mem = f"{peak:7.1f} MB" if peak is not None else ""
            print(f"{name:58} {c * 1000:12.1f} ms {ratio:8.2f} {mem:>10}{note}")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="370,3000,10000", help="node sizes in processes (default: %(default)s)")
    ap.add_argument("--rounds", type=int, default=9)
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
