"""The node's own files, read once per pass, each reporting whether it was read.

Reads /proc/sys/vm/max_map_count, the btime line of /proc/stat (boot time, for
process start times), the hugepage pools under /sys/kernel/mm/hugepages and
/sys/devices/system/node/node*/hugepages, and /proc/1/mountinfo (where hugetlbfs
is mounted). As node_exporter's collectors do, a file that legitimately has no
data (no hugetlb support, no NUMA) is a success with nothing in it; any other
failure is a failure: its value is left out (None), never replaced by a default
that looks real, ``vma_exporter_node_read_success{file}`` says 0, and the first
failure of each file is logged at warn with the path and the error (not again
every scrape; its recovery is logged at info).
"""

import logging
from dataclasses import dataclass, field

from exporter.procfs import ProcfsError
from exporter.procfs.hugepages import HugePool, read_numa_pools, read_pools
from exporter.procfs.mountinfo import read_hugetlbfs_mounts
from exporter.procfs.paths import Roots
from exporter.procfs.stat import read_boot_time
from exporter.procfs.sysctl import read_max_map_count

log = logging.getLogger(__name__)

# The label values of vma_exporter_node_read_success{file}: the reader of each, and
# where it reads (for the log line).
NODE_FILES = {
    "max_map_count": (read_max_map_count, lambda r: r.proc("sys", "vm", "max_map_count")),
    "stat": (read_boot_time, lambda r: r.proc("stat")),
    "hugepages": (read_pools, lambda r: r.sys("kernel", "mm", "hugepages")),
    "numa_hugepages": (read_numa_pools, lambda r: r.sys("devices", "system", "node")),
    "mountinfo": (read_hugetlbfs_mounts, lambda r: r.pid(1, "mountinfo")),
}


@dataclass(frozen=True)
class NodeFacts:
    max_map_count: int | None = None
    boot_time: float | None = None  # seconds since the epoch
    pools: tuple[HugePool, ...] | None = None
    numa_pools: tuple[HugePool, ...] | None = None
    hugetlb_mounts: tuple[str, ...] | None = None
    read_success: dict[str, bool] = field(default_factory=dict)  # NODE_FILES key -> read

    @property
    def hugetlb_in_use(self) -> bool:
        """Whether any process can hold hugetlb pages now: some pool has pages taken
        (HugetlbPages counts faulted pages, and they all come from the pools). True
        when the pools are unknown: then every process must be asked."""
        if self.pools is None:
            return True
        return any(p.total > p.free for p in self.pools)


class NodeReader:
    """Reads the node files for each pass; remembers which failures it has logged."""

    def __init__(self, roots: Roots):
        self.roots = roots
        self._failing: set[str] = set()

    def read(self) -> NodeFacts:
        values, success = {}, {}
        for name, (reader, where) in NODE_FILES.items():
            try:
                values[name] = reader(self.roots)
            except (ProcfsError, OSError) as exc:
                success[name] = False
                if name not in self._failing:
                    self._failing.add(name)
                    log.warning("cannot read %s: %s; what depends on it is left out until it reads again "
                                "(vma_exporter_node_read_success{file=\"%s\"} 0)", where(self.roots), exc, name)
                continue
            success[name] = True
            if name in self._failing:
                self._failing.discard(name)
                log.info("the node's %s reads again", name)
        pools, numa, mounts = (values.get(k) for k in ("hugepages", "numa_hugepages", "mountinfo"))
        return NodeFacts(
            max_map_count=values.get("max_map_count"),
            boot_time=values.get("stat"),
            pools=tuple(pools) if pools is not None else None,
            numa_pools=tuple(numa) if numa is not None else None,
            hugetlb_mounts=tuple(mounts) if mounts is not None else None,
            read_success=success,
        )
