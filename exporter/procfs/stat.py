"""/proc/PID/stat: comm, state, parent, kernel-thread flag and start time.

proc(5). The comm may hold spaces and parentheses, so split after the *last*
``)`` (as client_python's process_collector does). Field numbers below are the
1-based numbers of proc(5).
"""

import os
from typing import NamedTuple

from exporter.procfs import ParseError, parse_u64, read_file
from exporter.procfs.paths import Roots

PF_KTHREAD = 0x00200000  # include/linux/sched.h: "I am a kernel thread"

# Clock ticks per second for field 22 (starttime); sysconf is per machine, not per process.
CLK_TCK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


class ProcStat(NamedTuple):
    """Made once per process per scrape: a NamedTuple is several times cheaper to
    build than a frozen dataclass, and just as immutable."""

    comm: str
    state: str
    ppid: int
    flags: int
    num_threads: int
    starttime_ticks: int

    @property
    def is_kernel_thread(self) -> bool:
        return bool(self.flags & PF_KTHREAD)

    @property
    def is_zombie(self) -> bool:
        return self.state in ("Z", "X")


def parse_stat(data: bytes) -> ProcStat:
    """Parse the bytes of /proc/PID/stat."""
    open_ = data.find(b"(")
    close = data.rfind(b")")
    if open_ < 0 or close < open_:
        raise ParseError("stat", "no '(comm)' field")
    # Only the first 20 fields after comm are needed; leave the other ~30 unsplit.
    rest = data[close + 1 :].split(None, 20)
    if len(rest) < 20:  # starttime is field 22, i.e. rest[19]
        raise ParseError("stat", f"{len(rest) + 2} fields, need at least 22 (truncated?)")
    try:  # positional: keyword construction of a NamedTuple costs twice as much, per process
        return ProcStat(data[open_ + 1 : close].decode("utf-8", "replace"), rest[0].decode("ascii", "replace"),
                        int(rest[1]), int(rest[6]), int(rest[17]), int(rest[19]))
    except ValueError as exc:
        raise ParseError("stat", f"non-numeric field: {exc}") from None


def read_stat(roots: Roots, pid: int) -> ProcStat:
    return parse_stat(read_file(roots.pid(pid, "stat")))


def parse_boot_time(data: bytes) -> float:
    """Seconds since the epoch at boot: the ``btime`` line of /proc/stat."""
    for line in data.splitlines():
        if line.startswith(b"btime "):
            fields = line.split()
            if len(fields) == 2:
                return float(parse_u64(fields[1], "/proc/stat", "btime"))  # whole seconds: no nan, inf or 1e400
            break
    raise ParseError("/proc/stat", "no valid btime line")


def read_boot_time(roots: Roots) -> float:
    return parse_boot_time(read_file(roots.proc("stat")))
