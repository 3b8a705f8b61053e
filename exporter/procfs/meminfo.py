"""/proc/meminfo and /proc/sys/vm/overcommit_memory: is there memory for a new mapping?

proc(5), Documentation/filesystems/proc.rst and
Documentation/mm/overcommit-accounting.rst. Values are in kB and returned here
in bytes. Only the lines ``vma-exporter check`` needs are kept:

- ``MemTotal`` and ``MemAvailable`` (the kernel's estimate of memory a new
  workload can get without swapping; since 3.14, ``None`` before),
- ``CommitLimit`` and ``Committed_AS``: under strict overcommit
  (``vm.overcommit_memory = 2``) a private writable mapping fails with ENOMEM
  once Committed_AS would pass CommitLimit,
- ``Hugepagesize``: the default hugepage size, the one ``vm.nr_hugepages`` sets.
"""

from dataclasses import dataclass

from exporter.procfs import ParseError, parse_u64, read_file
from exporter.procfs.paths import Roots
from exporter.procfs.sysctl import parse_int

_FIELDS = {
    b"MemTotal": "total",
    b"MemAvailable": "available",
    b"CommitLimit": "commit_limit",
    b"Committed_AS": "committed",
    b"Hugepagesize": "hugepage_size",
}

# vm.overcommit_memory values (Documentation/mm/overcommit-accounting.rst).
OVERCOMMIT_HEURISTIC, OVERCOMMIT_ALWAYS, OVERCOMMIT_NEVER = 0, 1, 2


@dataclass(frozen=True)
class MemInfo:
    total: int
    available: int | None = None
    commit_limit: int | None = None
    committed: int | None = None
    hugepage_size: int | None = None  # None on a kernel without hugetlb

    @property
    def commit_headroom(self) -> int | None:
        """CommitLimit - Committed_AS: what strict overcommit still grants."""
        if self.commit_limit is None or self.committed is None:
            return None
        return self.commit_limit - self.committed


def parse_meminfo(data: bytes) -> MemInfo:
    """Parse the bytes of /proc/meminfo (``Key:   <n> kB`` lines)."""
    values: dict[str, int] = {}
    for line in data.split(b"\n"):
        key, sep, rest = line.partition(b":")
        name = _FIELDS.get(key)
        if name is None or not sep:
            continue
        parts = rest.split()
        if len(parts) != 2 or parts[1] != b"kB":
            raise ParseError("meminfo", f"{key.decode()}: expected '<n> kB', got {rest.strip()!r}")
        values[name] = parse_u64(parts[0], "meminfo", key.decode()) * 1024
    if "total" not in values:
        raise ParseError("meminfo", "no MemTotal line (truncated?)")
    return MemInfo(**values)


def read_meminfo(roots: Roots) -> MemInfo:
    return parse_meminfo(read_file(roots.proc("meminfo")))


def read_overcommit_memory(roots: Roots) -> int:
    """vm.overcommit_memory: 0 heuristic, 1 always, 2 never (strict accounting)."""
    return parse_int(read_file(roots.proc("sys", "vm", "overcommit_memory")), "overcommit_memory")
