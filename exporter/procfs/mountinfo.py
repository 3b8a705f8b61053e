"""/proc/PID/mountinfo: where hugetlbfs is mounted.

proc(5). Fields: id parent major:minor root mountpoint options [optional...] -
fstype source superoptions. The mount point is octal-escaped (``\\040`` for a
space). Read for pid 1: the host's mount namespace when /proc is the host's.
"""

import re

from exporter.procfs import read_file
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


def read_hugetlbfs_mounts(roots: Roots, pid: int = 1) -> list[str]:
    return parse_hugetlbfs_mounts(read_file(roots.pid(pid, "mountinfo")))
