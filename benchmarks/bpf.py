"""The BPF source's cost: one task-iterator pass against the procfs floor, and the
ENOMEM tracepoints' price per call.

- Per pass, on a node of about 370 processes (this machine's plus a fleet,
  about 400,000 map areas in all) and on one of 10,000 processes: the CPU of one
  iterator pass (the kernel's walk plus the read() calls, and then with the
  records parsed in Python) against the CPU of one round of benchmarks/floor.c,
  which reads every /proc/PID/maps and /proc/PID/status once and counts lines.
  Rounds interleave; medians are printed. The issue's budget: BPF at most 1/10
  of the floor.
- Per call: CPU per mmap/munmap of a loop of 4 KiB mappings
  (benchmarks/mmap_loop.c), without and with exporter/bpf/enomem.bpf.c
  attached, and the same for getppid(): enabling any syscall trace event puts
  every task on the kernel's slow syscall path, so every syscall pays a little.

A benchmark, not a test: it prints, it asserts nothing about speed. Needs root
(BPF, and tracefs, mounted for the run if missing). The fleets come from
benchmarks/nodes.py.

    python3 benchmarks/bpf.py [--rounds 31] [--processes 10000] [--calls 200000] [--skip-large]
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

from nodes import Fleet, compile_c  # noqa: E402
from peers import Floor, pinned  # noqa: E402
from helpers.tracefs import tracefs_mounted  # noqa: E402

from exporter.bpf import records  # noqa: E402
from exporter.bpf.enomem import EnomemCounter  # noqa: E402
from exporter.bpf.tasks import CLK_TCK, PAGE_SIZE, TaskIterator  # noqa: E402

BUDGET = 0.1  # BPF CPU per scrape / procfs C floor (issue 13)


def cpu(fn):
    start = time.process_time()
    out = fn()
    return time.process_time() - start, out


def per_pass(title: str, tasks: TaskIterator, floor: Floor, rounds: int) -> None:
    floor.round()
    tasks.read()  # warm both
    runs = {"floor": [], "pass": [], "parse": []}
    for i in range(rounds):
        steps = ["floor", "bpf"] if i % 2 else ["bpf", "floor"]  # neither always goes first
        for step in steps:
            if step == "floor":
                seconds, processes, lines = floor.round()
                runs["floor"].append(seconds)
            else:
                seconds, raw = cpu(tasks.read_raw)
                runs["pass"].append(seconds)
                parse_seconds, p = cpu(lambda raw=raw: records.parse(raw, PAGE_SIZE, CLK_TCK))
                runs["parse"].append(seconds + parse_seconds)
    med = {k: statistics.median(v) for k, v in runs.items()}
    areas = sum(r.map_areas or 0 for r in p.processes)
    print(f"\n== {title} ==")
    print(f"node: {len(p.processes):,} processes (iterator), {processes:,} (floor); {areas:,} map areas "
          f"(iterator), {lines:,} maps lines (floor); {len(raw):,} bytes of records")
    print(f"CPU per round, median of {rounds} interleaved rounds:")
    print(f"  procfs floor in C (every maps and status)     {med['floor'] * 1e3:9.3f} ms")
    for key, label in (("pass", "BPF iterator pass (kernel walk + read)"),
                       ("parse", "BPF pass + parse into ProcessRecords")):
        ratio = med[key] / med["floor"]
        verdict = "within" if ratio <= BUDGET else "OVER"
        print(f"  {label:<45} {med[key] * 1e3:9.3f} ms   {ratio:.4f} of the floor ({verdict} the 1/10 budget)")


def per_call(loop: str, calls: int, rounds: int) -> None:
    """Each round runs every loop without the programs, attaches them, runs it again and
    detaches: this machine's baseline drifts by more than the difference measured, so
    each round's difference is taken, and their median printed."""
    def run(mode: str) -> float:
        out = subprocess.run([loop, mode, str(calls)], capture_output=True, text=True, check=True).stdout
        return float(out)

    modes = ("mmap", "getppid")
    runs = {(mode, state): [] for mode in modes for state in ("off", "on")}
    for _ in range(rounds):
        for mode in modes:
            runs[(mode, "off")].append(run(mode))
        with EnomemCounter():
            for mode in modes:
                runs[(mode, "on")].append(run(mode))
    print(f"\n== the ENOMEM tracepoints, per syscall (median of {rounds} rounds of {calls:,} calls) ==")
    for mode, what in (("mmap", "mmap + munmap of 4 KiB (per call)"), ("getppid", "getppid (any other syscall)")):
        off, on = runs[(mode, "off")], runs[(mode, "on")]
        added = statistics.median(b - a for a, b in zip(off, on))
        print(f"  {what:<36} {statistics.median(off):7.1f} ns without, {statistics.median(on):7.1f} ns with the "
              f"programs attached: +{added:.1f} ns (median of the rounds' differences; "
              f"range {min(b - a for a, b in zip(off, on)):+.0f} to {max(b - a for a, b in zip(off, on)):+.0f})")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=31)
    ap.add_argument("--processes", type=int, default=10_000)
    ap.add_argument("--calls", type=int, default=200_000)
    ap.add_argument("--skip-large", action="store_true", help="skip the node of --processes processes")
    args = ap.parse_args()
    if os.geteuid() != 0:
        print("needs root: BPF programs, tracefs")
        return 1
    print(f"vma-exporter BPF benchmark: {os.cpu_count()} CPUs, Linux {platform.release()}, "
          f"Python {platform.python_version()}")
    work = tempfile.mkdtemp(prefix="vma-bpf-bench-")
    try:
        with open(os.path.join(HERE, "mmap_loop.c")) as f:
            loop_bin = compile_c(f.read(), work, "mmap_loop")
        with TaskIterator() as tasks:
            here = len(tasks.read().processes)
            extra = max(0, 370 - here)
            with Fleet(extra, 1400), pinned():
                floor = Floor()
                try:
                    per_pass(f"about 370 processes: this node's {here} plus {extra} of 1,400 areas each",
                             tasks, floor, args.rounds)
                finally:
                    floor.close()
            if not args.skip_large:
                with Fleet(args.processes, 30), pinned():
                    floor = Floor()
                    try:
                        per_pass(f"{args.processes:,} processes of 30 areas each, plus this node's",
                                 tasks, floor, max(5, args.rounds // 3))
                    finally:
                        floor.close()
        with open("/proc/self/status") as f:
            hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
        print(f"\npeak RSS of this process (Python, libbpf, the objects, the largest pass parsed): {hwm:.1f} MiB")
        with tracefs_mounted():
            per_call(loop_bin, args.calls, max(7, args.rounds // 2))
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
