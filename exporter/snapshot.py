"""The result of one collection: plain, immutable data, no /proc and no metrics.

A source (exporter/sources) makes a ProcessSample per process, the pass
(exporter/policy.py) fills in its group and what is read only for exported
processes, exporter/assemble.py builds the Snapshot; exporter/metrics.py and the
CLI views read it.
"""

from dataclasses import dataclass, field
from typing import NamedTuple

from exporter.procfs.hugepages import HugePool
from exporter.procfs.limits import Limits
from exporter.procfs.maps import MapsSummary

READ_ERROR_REASONS = ("permission", "vanished", "parse", "io")


class ProcessSample(NamedTuple):
    """One process. A figure the source could not read, or that is read only for
    exported processes and was not, is None: it is left out, never shown as 0.

    Made for every process on every scrape: a NamedTuple costs a fraction of a
    frozen dataclass to make and is as immutable (changed copies: ``_replace``).
    """

    pid: int
    starttime_ticks: int  # /proc/PID/stat field 22: with pid, the identity (pids are reused)
    start_time_seconds: float | None  # None when the node's boot time is unknown
    comm: str
    threads: int
    virtual_bytes: int | None  # top's VIRT
    resident_bytes: int | None  # top's RES
    shared_bytes: int | None  # top's SHR
    hugetlb_bytes: int | None
    map_areas: int | None = None  # None: maps could not be read (permission)
    group: str = ""
    breakdown: MapsSummary | None = None  # by kind and object: exported processes (or every one, for the CLI)
    data_bytes: int | None = None  # VmData: exported processes
    limits: Limits | None = None  # RLIMIT_DATA, RLIMIT_AS: exported processes
    exported: bool = False  # gets per-process series
    container_id: str = ""
    pod_uid: str = ""
    tid: int | None = None  # the live thread read because the leader thread exited
    source_state: object = None  # the source's own handle on the process (the BPF source: its record)
    enomem: dict[tuple[str, str], int] | None = None  # ENOMEM failures by (syscall, cause); None: not counted

    @property
    def identity(self) -> tuple[int, int]:
        """(pid, start time): pids are reused, this pair is not."""
        return (self.pid, self.starttime_ticks)


@dataclass(frozen=True)
class GroupSample:
    """Aggregates over every member of a group, exported or not."""

    name: str
    processes: int
    map_areas_max: int
    map_areas_sum: int
    virtual_bytes: int
    resident_bytes: int
    hugetlb_bytes: int
    # ENOMEM failures by (syscall, cause) of every member since the exporter started, those
    # that exited included (exporter/enomem_ledger.py); None when the source counts none.
    enomem: dict[tuple[str, str], int] | None = None


@dataclass(frozen=True)
class Snapshot:
    timestamp: float
    duration_seconds: float
    max_map_count: int | None
    pools: tuple[HugePool, ...] | None  # None: unreadable (not the same as no hugetlb support)
    numa_pools: tuple[HugePool, ...] | None
    # Most map areas first: the exported processes, or every watched one when the
    # pass was asked for everyone (the CLI views). Groups cover every process either way.
    processes: tuple[ProcessSample, ...]
    groups: tuple[GroupSample, ...]
    scanned: int  # processes examined (kernel threads and zombies excluded)
    watched: int = 0  # processes matched by the targets config
    # Cumulative since start, per reason in READ_ERROR_REASONS.
    read_errors_total: dict[str, int] = field(default_factory=dict)
    # Errors of this collection only, for logs and tools.
    read_errors: dict[str, int] = field(default_factory=dict)
    complete: bool = True  # False when --collect.timeout cut the pass short
    sequence: int = 0  # collections completed since start, this one included
    node_read_success: dict[str, bool] = field(default_factory=dict)  # node file -> read
    source: str = "procfs"  # what read the per-process facts
    # ENOMEM failures on the node by (syscall, cause), and failures the kernel's bounded
    # maps could only count per node, by what overflowed; None when the source counts none.
    node_enomem: dict[tuple[str, str], int] | None = None
    enomem_overflows: dict[str, int] | None = None

    @property
    def exported(self) -> tuple[ProcessSample, ...]:
        return tuple(p for p in self.processes if p.exported)
