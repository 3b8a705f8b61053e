"""/proc/PID/status: VIRT, RES, SHR, hugetlb and VmData in one read.

proc(5). Values are in kB and returned here in bytes. top's SHR is
RssFile + RssShmem (psutil's caution: statm's "shared" counts only file pages).
Fields an old kernel lacks are ``None``: RssFile/RssShmem came in 4.5,
HugetlbPages in 4.4. Kernel threads and zombies have no Vm* lines at all.
"""

import re
from dataclasses import dataclass

from exporter.procfs import ParseError, is_u64, read_file
from exporter.procfs.paths import Roots

_FIELDS = {
    b"VmSize": "virtual",
    b"VmRSS": "resident",
    b"RssFile": "rss_file",
    b"RssShmem": "rss_shmem",
    b"HugetlbPages": "hugetlb",
    b"VmData": "data",
}
# One findall picks the few lines we want out of ~55: a Python loop over every
# line cost more than the kernel spends writing the file.
# (Anchored on "\n", not "^" with re.M: a literal first character lets the regex
# engine skip ahead; none of these keys is the first line, which is Name.)
_LINE = re.compile(rb"\n(VmSize|VmRSS|RssFile|RssShmem|HugetlbPages|VmData|Uid):[ \t]*([^\n]*)")


@dataclass(frozen=True)
class ProcStatus:
    virtual: int | None = None
    resident: int | None = None
    rss_file: int | None = None
    rss_shmem: int | None = None
    hugetlb: int | None = None
    data: int | None = None
    uid: int | None = None  # effective uid, for the {{.Username}} template

    @property
    def shared(self) -> int | None:
        """top's SHR: file-backed plus shmem resident pages."""
        if self.rss_file is None and self.rss_shmem is None:
            return None
        return (self.rss_file or 0) + (self.rss_shmem or 0)


def parse_status(data: bytes) -> ProcStatus:
    """Parse the bytes of /proc/PID/status; only the memory lines and Uid are kept."""
    values: dict[str, int] = {}
    for key, rest in _LINE.findall(data):
        if key == b"Uid":  # real, effective, saved, filesystem
            parts = rest.split()
            if len(parts) >= 2 and is_u64(parts[1]):  # only {{.Username}} needs it: no error
                values["uid"] = int(parts[1])
            continue
        # Inline rather than split() and a helper per field: this runs for every process.
        number = rest[:-3].rstrip() if rest.endswith(b" kB") else b""
        if not is_u64(number):
            raise ParseError("status", f"{key.decode()}: expected '<n> kB', got {rest.strip()!r}")
        values[_FIELDS[key]] = int(number) * 1024
    return ProcStatus(**values)


def read_status(roots: Roots, pid: int) -> ProcStatus:
    return parse_status(read_file(roots.pid(pid, "status")))
