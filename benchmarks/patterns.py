"""What the pattern analysis costs on the daemon's path: summarize() with and without it.

For maps of 30,000 and of 1,000,000 areas, of real processes (tests/helpers/patterns.c)
read from /proc, it times maps.summarize() over the file in the daemon's 256 KiB
chunks, with patterns=False (the breakdown by kind and the top object only) and
with patterns=True (the same plus the anonymous shapes and the name groups),
interleaved round by round, and prints the medians and their ratio. It also
times the read of the file from the kernel, which the daemon pays either way,
and prints the ratio for the whole per-process step (read + summarize).

A benchmark, not a test: it prints, it asserts nothing.

    python3 benchmarks/patterns.py [--rounds 7] [--skip-million]

The million-area processes need root (vm.max_map_count is raised to 1,100,000 under
the tests' host lock, and restored).
"""

import argparse
import os
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path[:0] = [os.path.join(HERE, "..", "tests"), os.path.join(HERE, "..")]

from helpers.host import sysfs_value  # noqa: E402
from helpers.patterns import pattern_process  # noqa: E402

from exporter.procfs.maps import CHUNK, Classifier, iter_chunks, summarize  # noqa: E402

MAX_MAP_COUNT = "/proc/sys/vm/max_map_count"


def chunks_of(data: bytes) -> list[bytes]:
    return [data[i:i + CHUNK] for i in range(0, len(data), CHUNK)]


def measure(name: str, pid: int, rounds: int) -> None:
    path = f"/proc/{pid}/maps"
    data = b"".join(iter_chunks(path))
    chunks = chunks_of(data)
    classifier = Classifier()
    read, plain, full = [], [], []
    for _ in range(rounds):
        t = time.perf_counter()
        for _chunk in iter_chunks(path):
            pass
        read.append(time.perf_counter() - t)
        t = time.perf_counter()
        summarize(chunks, classifier, patterns=False)
        plain.append(time.perf_counter() - t)
        t = time.perf_counter()
        found = summarize(chunks, classifier).patterns
        full.append(time.perf_counter() - t)
    r, p, f = (statistics.median(x) * 1e3 for x in (read, plain, full))
    areas = data.count(b"\n")
    print(f"{name:34s} {areas:>9,} areas  read {r:7.1f} ms  summarize {p:7.1f} -> {f:7.1f} ms "
          f"(x{f / p:4.2f})  read+summarize x{(r + f) / (r + p):4.2f}")
    print(f"{'':34s} {found[0].pattern} {found[0].label!r} {found[0].areas}" if found else "")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--rounds", type=int, default=7)
    ap.add_argument("--skip-million", action="store_true")
    args = ap.parse_args()
    print(f"python {sys.version.split()[0]}, {os.cpu_count()} CPUs, {os.uname().release}; medians of "
          f"{args.rounds} interleaved rounds")
    with pattern_process("carve", 15_000) as p:
        measure("carved reservation (regular)", p.pid, args.rounds)
    with pattern_process("munmap", 30_000) as p:
        measure("pieces left by munmap (regular)", p.pid, args.rounds)
    with pattern_process("threads", 3_000) as p:
        measure("3,000 thread stacks", p.pid, args.rounds)
    with tempfile.TemporaryDirectory() as d, pattern_process("files", d, 30_000) as p:
        measure("30,000 files of one directory", p.pid, args.rounds)
    if args.skip_million:
        return 0
    if os.geteuid() != 0:
        print("1,000,000 areas: skipped (needs root to raise vm.max_map_count)")
        return 0
    # The host lock and the restore of tests/helpers/host.py: test runs beside this one see
    # their own vm.max_map_count again afterwards, and none changes it meanwhile.
    with sysfs_value(MAX_MAP_COUNT, 1_100_000):
        with pattern_process("carve", 500_000, timeout=300) as p:
            measure("carved reservation (regular)", p.pid, max(3, args.rounds // 2))
        with pattern_process("munmap", 1_000_000, timeout=300) as p:
            measure("pieces left by munmap (regular)", p.pid, max(3, args.rounds // 2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
