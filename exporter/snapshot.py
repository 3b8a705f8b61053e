"""The result of one collection: plain, immutable data, no /proc and no metrics.

collect.py builds it; metrics.py and the CLI views read it.
"""

from dataclasses import dataclass, field
from typing import NamedTuple

from exporter.procfs.hugepages import HugePool
from exporter.procfs.limits import Limits
from exporter.procfs.maps import MapsSummary
from exporter.procfs.status import ProcStatus

READ_ERROR_REASONS = ("permission", "vanished", "parse", "io")


class ProcessSample(NamedTuple):
    """One watched process. ``maps`` is None when its maps could not be read.

    Built for every process on every scrape: a NamedTuple costs a fraction of a
    frozen dataclass to make and is as immutable (changed copies: ``_replace``).
    """

    pid: int
    starttime_ticks: int
    start_time_seconds: float
    comm: str
    group: str
    status: ProcStatus
    maps: MapsSummary | None
    limits: Limits | None = None  # read only for exported processes
    exported: bool = False  # gets per-process series
    container_id: str = ""
    pod_uid: str = ""
    via: str = ""  # "PID/task/TID" when the leader thread exited and a live thread was read

    @property
    def map_areas(self) -> int | None:
        return self.maps.areas if self.maps else None

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


@dataclass(frozen=True)
class Snapshot:
    timestamp: float
    duration_seconds: float
    max_map_count: int | None
    pools: tuple[HugePool, ...]
    numa_pools: tuple[HugePool, ...]
    # Most map areas first: the exported processes, or every watched one when the
    # collector's detail_all is set (the CLI views). Groups cover every process either way.
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

    @property
    def exported(self) -> tuple[ProcessSample, ...]:
        return tuple(p for p in self.processes if p.exported)
