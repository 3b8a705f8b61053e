"""/proc/PID/statm: VIRT, RES and SHR in one short line.

proc(5); fs/proc/array.c (proc_pid_statm) writes seven page counts::

    size resident shared text lib data dt

``size`` is mm->total_vm (VmSize), ``resident`` the file + anon + shmem RSS
counters (VmRSS), ``shared`` the file + shmem ones (RssFile + RssShmem since 4.5;
before, file pages, which then included shmem). top reads this very file for
VIRT, RES and SHR, so these are top's figures on every kernel. ``data`` is
VmData + VmStk, not VmData: RLIMIT_DATA figures come from status. ``lib`` and
``dt`` are always 0 since 2.6. The kernel writes statm with a fraction of the
work of status (no per-field formatting), which is why the exporter reads it for
every process and status only where it must.
"""

import mmap
import re
from typing import NamedTuple

from exporter.procfs import ParseError, read_file
from exporter.procfs.paths import Roots

PAGE_SIZE = mmap.PAGESIZE  # the unit of statm; the kernel's PAGE_SIZE on this machine
# Read for every process on every scrape: one match in C validates and splits it
# (counters of at most 20 digits, as the kernel's %lu writes them).
_STATM = re.compile(rb"(\d{1,20}) (\d{1,20}) (\d{1,20}) (\d{1,20}) \d{1,20} (\d{1,20})(?: \d{1,20})?\n?")


class Statm(NamedTuple):
    """In bytes. Made once per process per scrape: a NamedTuple, cheap and immutable."""

    virtual: int  # top's VIRT
    resident: int  # top's RES
    shared: int  # top's SHR
    text: int
    data_and_stack: int


def parse_statm(data: bytes) -> Statm:
    """Parse the bytes of /proc/PID/statm (pure)."""
    m = _STATM.fullmatch(data)
    if m is None:
        raise ParseError("statm", f"expected 7 page counts, got {data[:80]!r}")
    size, resident, shared, text, data_stack = map(int, m.groups())
    return Statm(size * PAGE_SIZE, resident * PAGE_SIZE, shared * PAGE_SIZE, text * PAGE_SIZE,
                 data_stack * PAGE_SIZE)


def read_statm_bytes(roots: Roots, pid: int, tid: int | None = None) -> bytes:
    """The file as the kernel wrote it: a caller that compares it with the last
    pass's parses it only when it changed."""
    return read_file(roots.pid(pid, "statm", tid))


def read_statm(roots: Roots, pid: int, tid: int | None = None) -> Statm:
    return parse_statm(read_statm_bytes(roots, pid, tid))
