"""Snapshot -> Prometheus metric families. The only place that knows metric names.

Every metric is one declaration below: its name as exposed, its help, the labels
it adds to its scope's, and how its value comes from the object of its scope
(a Snapshot, a hugepage pool, an exported process, a group). Adding a metric is
adding a line; nothing is matched by position. A value of None leaves the sample
out: a figure the kernel does not have, or that could not be read, is missing,
never a 0 that looks real.

A custom collector (client_python's pattern): fresh families on every
``collect()``, and ``describe()`` answers without collecting so registering it
costs nothing. Usage and limits are separate gauges in base units; ratios are
PromQL's job (the mixin in deploy/mixin records them).
"""

from dataclasses import dataclass
from typing import Any, Callable, Iterable, NamedTuple

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily

from exporter import __version__
from exporter.patterns import threads as thread_check
from exporter.procfs.maps import KINDS
from exporter.snapshot import READ_ERROR_REASONS, Snapshot

PROCESS_LABELS = ("group", "pid", "comm", "container_id", "pod_uid")
MAX_LABEL_CHARS = 512  # object paths may be 4096 bytes; a label that long helps no one

Samples = Iterable[tuple[tuple[str, ...], float]]


@dataclass(frozen=True)
class Metric:
    name: str  # as exposed: counters end in _total, info metrics in _info
    help: str
    value: Callable[[Any], float | None] | None = None  # one sample per object
    labels: tuple[str, ...] = ()  # added to the scope's labels
    samples: Callable[[Any], Samples] | None = None  # several per object: (extra label values, value)
    type: str = "gauge"  # gauge, counter or info (value: a dict of label values)


class ReloadState(NamedTuple):
    successful: bool
    success_timestamp: float


class Context(NamedTuple):
    snapshot: Snapshot
    reload: ReloadState | None


@dataclass(frozen=True)
class Scope:
    labels: tuple[str, ...]
    objects: Callable[[Context], Iterable]
    label_values: Callable[[Any], list[str]]
    metrics: tuple[Metric, ...]


def _label(value: str) -> str:
    return value if len(value) <= MAX_LABEL_CHARS else value[: MAX_LABEL_CHARS - 3] + "..."


def _breakdown(attr: str):
    """A figure of the maps breakdown; None for a process whose breakdown is missing
    (it vanished between its count and its breakdown)."""
    return lambda p: getattr(p.breakdown, attr) if p.breakdown is not None else None


def _limit(attr: str):
    return lambda p: getattr(p.limits, attr) if p.limits is not None else None


def _by_kind(p) -> Samples:
    b = p.breakdown
    return (((kind,), b.by_kind[kind]) for kind in KINDS) if b is not None else ()


def _failures(counts) -> Samples:
    """ENOMEM counters by (syscall, cause): those that have counted, for a process or group
    (bounded by what happened); nothing when the source counts none."""
    return (((syscall, cause), n) for (syscall, cause), n in sorted(counts.items())) if counts else ()


def _patterns(p) -> Samples:
    """What holds most of the process's areas: at most 3, thread stacks checked against
    its thread count (more stacks than threads: exited_thread_stacks)."""
    b = p.breakdown
    if b is None:
        return ()
    return (((pat.pattern, _label(pat.label)), pat.areas) for pat in thread_check.check(b.patterns, p.threads))


def _top_object(p) -> Samples:
    b = p.breakdown
    return (((_label(b.top_object),), b.top_object_areas),) if b is not None and b.top_object else ()


NODE = (
    Metric("vma_node_map_areas_limit", "vm.max_map_count: the most map areas one process may hold.",
           lambda s: s.max_map_count),
    Metric("vma_node_enomem_failures_total",
           "Calls of mmap, munmap, mprotect, mremap, brk and shmat that failed with ENOMEM on the node, by cause "
           "judged in the kernel (map_count, rlimit_data, rlimit_as, memory); BPF source only.",
           labels=("syscall", "cause"), type="counter",  # every pair from 0: increase() sees the first failure
           samples=lambda s: sorted(((syscall, cause), n) for (syscall, cause), n in (s.node_enomem or {}).items())),
)
POOL = (
    Metric("vma_node_hugepages", "Hugepages configured in the pool (nr_hugepages).", lambda p: p.total),
    Metric("vma_node_hugepages_free", "Hugepages in the pool not yet faulted in (free_hugepages).", lambda p: p.free),
    Metric("vma_node_hugepages_reserved", "Hugepages promised to mappings but not yet faulted in (resv_hugepages).",
           lambda p: p.reserved),
    Metric("vma_node_hugepages_surplus", "Hugepages allocated above nr_hugepages by overcommit (surplus_hugepages).",
           lambda p: p.surplus),
)
NUMA_POOL = (
    Metric("vma_node_numa_hugepages", "Hugepages configured in the pool of one NUMA node.", lambda p: p.total),
    Metric("vma_node_numa_hugepages_free", "Free hugepages in the pool of one NUMA node.", lambda p: p.free),
)
PROCESS = (
    Metric("vma_process_map_areas", "Map areas (VMAs) of the process: lines of /proc/PID/maps less [vsyscall].",
           lambda p: p.map_areas),
    Metric("vma_process_virtual_bytes", "Virtual memory size, top's VIRT (VmSize).", lambda p: p.virtual_bytes),
    Metric("vma_process_resident_bytes", "Resident set size, top's RES (VmRSS).", lambda p: p.resident_bytes),
    Metric("vma_process_shared_bytes", "Resident shared memory, top's SHR (RssFile + RssShmem).",
           lambda p: p.shared_bytes),
    Metric("vma_process_hugetlb_bytes", "hugetlbfs memory mapped by the process (HugetlbPages).",
           lambda p: p.hugetlb_bytes),
    Metric("vma_process_data_bytes", "Private writable non-stack memory (VmData): what RLIMIT_DATA limits.",
           lambda p: p.data_bytes),
    Metric("vma_process_rlimit_data_bytes", "Soft RLIMIT_DATA; +Inf when unlimited.", _limit("data")),
    Metric("vma_process_rlimit_as_bytes", "Soft RLIMIT_AS; +Inf when unlimited.", _limit("address_space")),
    Metric("vma_process_start_time_seconds", "Start time of the process since the Unix epoch.",
           lambda p: p.start_time_seconds),
    Metric("vma_process_threads", "Threads of the process.", lambda p: p.threads),
    Metric("vma_process_map_areas_by_kind",
           "Map areas by kind of backing: anon, heap, stack, file, shm, hugetlb, special.",
           labels=("kind",), samples=_by_kind),
    Metric("vma_process_deleted_map_areas", "Map areas backed by files unlinked from their filesystem.",
           _breakdown("deleted")),
    Metric("vma_process_top_object_map_areas",
           "Map areas of the backing object (file, shm, hugetlb) mapped in the most areas.",
           labels=("object",), samples=_top_object),
    Metric("vma_process_map_areas_by_pattern",
           "Map areas held by what multiplies them, up to 3 per process, busiest first: pattern (object, family, "
           "directory, anon_shape, thread_stacks, exited_thread_stacks, malloc_arenas, anon_name) and what (its "
           "path, family or shape; never an address).",
           labels=("pattern", "what"), samples=_patterns),
    Metric("vma_process_enomem_failures_total",
           "Calls of the process that failed with ENOMEM, by syscall and cause; BPF source only.",
           labels=("syscall", "cause"), samples=lambda p: _failures(p.enomem), type="counter"),
)
GROUP = (
    Metric("vma_group_processes", "Watched processes in the group.", lambda g: g.processes),
    Metric("vma_group_map_areas_max", "Map areas of the group's process with the most.", lambda g: g.map_areas_max),
    # Not "..._sum": that suffix belongs to summaries and histograms (promtool check metrics
    # rejects it on a gauge); the other group gauges are sums without a suffix too.
    Metric("vma_group_map_areas", "Map areas summed over the group's processes.", lambda g: g.map_areas_sum),
    Metric("vma_group_virtual_bytes", "Virtual memory summed over the group's processes.",
           lambda g: g.virtual_bytes),
    Metric("vma_group_resident_bytes", "Resident memory summed over the group's processes.",
           lambda g: g.resident_bytes),
    Metric("vma_group_hugetlb_bytes", "hugetlbfs memory summed over the group's processes.",
           lambda g: g.hugetlb_bytes),
    Metric("vma_group_enomem_failures_total",
           "Calls of the group's processes that failed with ENOMEM, exited members included, by syscall and cause; "
           "BPF source only.",
           labels=("syscall", "cause"), samples=lambda g: _failures(g.enomem), type="counter"),
)
EXPORTER = (
    Metric("vma_exporter_build_info", "Version of vma-exporter.", lambda c: {"version": __version__}, type="info"),
    Metric("vma_exporter_scrape_duration_seconds", "Seconds the last collection of /proc and /sys took.",
           lambda c: c.snapshot.duration_seconds),
    Metric("vma_exporter_processes_scanned",
           "Processes examined in the last collection, unreadable ones included (kernel threads and zombies "
           "excluded).",
           lambda c: c.snapshot.scanned),
    Metric("vma_exporter_processes_watched", "Processes matched by the targets config in the last collection.",
           lambda c: c.snapshot.watched),
    Metric("vma_exporter_processes_exported", "Processes given per-process series (top N plus those near the limit).",
           lambda c: len(c.snapshot.exported)),
    Metric("vma_exporter_collection_complete",
           "1 if the last collection covered every process, 0 if --collect.timeout cut it short.",
           lambda c: 1 if c.snapshot.complete else 0),
    Metric("vma_exporter_collections_total", "Passes over /proc since start; concurrent scrapes share one pass.",
           lambda c: c.snapshot.sequence, type="counter"),
    Metric("vma_exporter_read_errors_total", "Process files that could not be read, by reason.",
           labels=("reason",), type="counter",
           samples=lambda c: (((r,), c.snapshot.read_errors_total.get(r, 0)) for r in READ_ERROR_REASONS)),
    Metric("vma_exporter_source_info", "What reads the per-process figures (--collect.source): procfs or bpf.",
           lambda c: {"source": c.snapshot.source}, type="info"),
    Metric("vma_exporter_enomem_overflows_total",
           "ENOMEM failures the kernel's bounded maps could count only per node (process_map_full) or judge "
           "without their arguments (enter_map_full, exit_unpaired); BPF source only.",
           labels=("reason",), type="counter",
           samples=lambda c: sorted(((r,), n) for r, n in (c.snapshot.enomem_overflows or {}).items())),
    Metric("vma_exporter_node_read_success",
           "1 if the node file was read in the last collection, 0 if it failed (what depends on it is left out).",
           labels=("file",),
           samples=lambda c: (((f,), 1 if ok else 0) for f, ok in c.snapshot.node_read_success.items())),
    Metric("vma_exporter_config_last_reload_successful",
           "1 if the last config reload (start, SIGHUP or POST /-/reload) succeeded, else 0.",
           lambda c: (1 if c.reload.successful else 0) if c.reload else None),
    Metric("vma_exporter_config_last_reload_success_timestamp_seconds",
           "Time of the last successful config load, seconds since the Unix epoch.",
           lambda c: c.reload.success_timestamp if c.reload else None),
)


def _process_labels(p) -> list[str]:
    return [p.group, str(p.pid), p.comm, p.container_id, p.pod_uid]


SCOPES = (
    Scope((), lambda c: (c.snapshot,), lambda s: [], NODE),
    Scope(("pagesize_bytes",), lambda c: c.snapshot.pools or (), lambda p: [str(p.pagesize_bytes)], POOL),
    Scope(("numa_node", "pagesize_bytes"), lambda c: c.snapshot.numa_pools or (),
          lambda p: [str(p.numa_node), str(p.pagesize_bytes)], NUMA_POOL),
    Scope(PROCESS_LABELS, lambda c: c.snapshot.exported, _process_labels, PROCESS),
    Scope(("group",), lambda c: c.snapshot.groups, lambda g: [g.name], GROUP),
    Scope((), lambda c: (c,), lambda c: [], EXPORTER),
)


def _family(metric: Metric, labels: list[str]):
    if metric.type == "counter":
        return CounterMetricFamily(metric.name.removesuffix("_total"), metric.help, labels=labels)
    if metric.type == "info":
        return InfoMetricFamily(metric.name.removesuffix("_info"), metric.help, labels=labels)
    return GaugeMetricFamily(metric.name, metric.help, labels=labels)


def families(ctx: Context):
    """Every metric family, in declaration order, with the samples of *ctx*."""
    for scope in SCOPES:
        objects = [(obj, scope.label_values(obj)) for obj in scope.objects(ctx)]
        for metric in scope.metrics:
            fam = _family(metric, [*scope.labels, *metric.labels])
            for obj, base in objects:
                if metric.samples is not None:
                    for extra, value in metric.samples(obj):
                        fam.add_metric(base + list(extra), value)
                elif (value := metric.value(obj)) is not None:
                    fam.add_metric(base, value)
            yield fam


def declared() -> list[Metric]:
    """Every declared metric (the README's tables and the golden files list them all)."""
    return [m for scope in SCOPES for m in scope.metrics]


class SnapshotCollector:
    """Registered in a prometheus_client registry; collects on scrape."""

    def __init__(self, collector, reload_state: Callable[[], ReloadState] | None = None):
        self._collector = collector
        self._reload = reload_state

    def describe(self):
        # Families without samples: registering must not trigger a collection of /proc.
        return list(families(Context(_EMPTY, None)))

    def collect(self):
        return families(Context(self._collector.collect(), self._reload() if self._reload else None))


_EMPTY = Snapshot(timestamp=0.0, duration_seconds=0.0, max_map_count=None, pools=(), numa_pools=(),
                  processes=(), groups=(), scanned=0)
