"""Start a process of tests/helpers/patterns.c (one per way map areas multiply)
and read its maps plainly, as a person would, to check what the exporter says."""

import os

from helpers.cbuild import build as build_c
from helpers.workload import Workload

SOURCE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "patterns.c")


def build() -> str:
    return build_c(SOURCE, "patterns")


def pattern_process(*args, **kw) -> Workload:
    """A Workload running the patterns binary: ``with pattern_process("carve", 1000) as p:``."""
    return Workload(*args, binary=build(), **kw)


def maps_lines(pid: int) -> list[tuple[int, int, str, str]]:
    """(start, end, perms, name) of each area, by splitting each line of /proc/PID/maps."""
    out = []
    with open(f"/proc/{pid}/maps") as f:
        for line in f:
            fields = line.split(None, 5)
            start, end = (int(x, 16) for x in fields[0].split("-"))
            name = fields[5].strip() if len(fields) == 6 else ""
            if name != "[vsyscall]":
                out.append((start, end, fields[1], name))
    return out
