"""/proc/PID/status: VIRT, RES, SHR, hugetlb and VmData in one read.

proc(5). Values are in kB and returned here in bytes. top's SHR is
RssFile + RssShmem (psutil's caution: statm's "shared" counts only file pages).
Fields an old kernel lacks are ``None``: RssFile/RssShmem came in 4.5,
HugetlbPages in 4.4. Kernel threads and zombies have no Vm* lines at all.
"""

import re
from typing import NamedTuple

from exporter.procfs import ParseError, read_file
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
# A well-formed value is captured as digits; anything else lands in the third group
# and is an error, so nothing malformed is skipped silently.
_LINE = re.compile(rb"\n(VmSize|VmRSS|RssFile|RssShmem|HugetlbPages|VmData):[ \t]*(?:(\d{1,20}) kB(?=\n|$)|([^\n]*))")
_UID = re.compile(rb"\nUid:[ \t]*\d+[ \t]+(\d{1,20})\b")


class ProcStatus(NamedTuple):
    """Made once per process per scrape: a NamedTuple, cheap to build and immutable."""

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
    for key, number, bad in _LINE.findall(data):  # runs for every process: kept lean
        if not number:
            raise ParseError("status", f"{key.decode()}: expected '<n> kB', got {bad.strip()!r}")
        values[_FIELDS[key]] = int(number) << 10
    uid = _UID.search(data)  # real, effective, saved, filesystem: the effective one
    if uid:  # only {{.Username}} needs it: a malformed Uid line is no error
        values["uid"] = int(uid.group(1))
    return ProcStatus(**values)


def read_status(roots: Roots, pid: int) -> ProcStatus:
    return parse_status(read_file(roots.pid(pid, "status")))
