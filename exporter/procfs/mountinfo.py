"""/proc/PID/mountinfo: where hugetlbfs is mounted.

proc(5). Fields: id parent major:minor root mountpoint options [optional...] -
fstype source superoptions. The mount point is octal-escaped (``\\040`` for a
space). Read for pid 1: the host's mount namespace when /proc is the host's.

A Kubernetes node with many pods has tens of thousands of mounts, megabytes of
mountinfo: it is streamed, never held whole and never cut, and only the chunks
that name hugetlbfs are split into lines.
"""

import re

from exporter.procfs.maps import iter_chunks
from exporter.procfs.paths import Roots


_OCTAL = re.compile(rb"\\([0-7]{3})")


def _unescape(raw: bytes) -> str:
    """Undo the kernel's \\ooo escapes on the bytes, then decode UTF-8 (names are bytes)."""
    return _OCTAL.sub(lambda m: bytes([int(m[1], 8)]), raw).decode("utf-8", "replace")


def parse_hugetlbfs_mounts(data: bytes) -> list[str]:
    """Mount points of every hugetlbfs in a mountinfo file (pure)."""
    mounts = []
    for line in data.split(b"\n"):
        fields = line.split(b" ")
        try:
            sep = fields.index(b"-", 6)
        except ValueError:
            continue  # blank or truncated line
        if sep + 1 < len(fields) and fields[sep + 1] == b"hugetlbfs":
            mounts.append(_unescape(fields[4]))
    return mounts


_MARK = b" - hugetlbfs "  # the separator and the type: a mount point has its spaces escaped


def read_hugetlbfs_mounts(roots: Roots, pid: int = 1) -> list[str]:
    mounts: list[str] = []
    carry = b""
    for chunk in iter_chunks(roots.pid(pid, "mountinfo")):
        buf = carry + chunk if carry else chunk
        cut = buf.rfind(b"\n") + 1
        if _MARK in buf:
            mounts += parse_hugetlbfs_mounts(buf[:cut])
        carry = buf[cut:]
    if carry:
        mounts += parse_hugetlbfs_mounts(carry)
    return mounts
