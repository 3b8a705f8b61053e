"""Snapshot -> Prometheus metric families. The only place that knows metric names.

A custom collector (client_python's pattern): fresh families on every
``collect()``, and ``describe()`` answers without collecting so registering it
costs nothing. Usage and limits are separate gauges in base units; ratios are
PromQL's job (see deploy/prometheus for the recording rules).
"""

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, InfoMetricFamily

from exporter import __version__
from exporter.procfs.maps import KINDS
from exporter.snapshot import READ_ERROR_REASONS, Snapshot

PROCESS_LABELS = ["group", "pid", "comm", "container_id", "pod_uid"]
MAX_LABEL_CHARS = 512  # object paths may be 4096 bytes; a label that long helps no one

# name -> (type, help, extra labels). Order here is the order of the exposition.
_NODE = {
    "vma_node_map_areas_limit": "vm.max_map_count: the most map areas one process may hold.",
    "vma_node_hugepages": "Hugepages configured in the pool (nr_hugepages).",
    "vma_node_hugepages_free": "Hugepages in the pool not yet faulted in (free_hugepages).",
    "vma_node_hugepages_reserved": "Hugepages promised to mappings but not yet faulted in (resv_hugepages).",
    "vma_node_hugepages_surplus": "Hugepages allocated above nr_hugepages by overcommit (surplus_hugepages).",
    "vma_node_numa_hugepages": "Hugepages configured in the pool of one NUMA node.",
    "vma_node_numa_hugepages_free": "Free hugepages in the pool of one NUMA node.",
}
_PROCESS = {
    "vma_process_map_areas": "Map areas (VMAs) of the process: lines of /proc/PID/maps less [vsyscall].",
    "vma_process_virtual_bytes": "Virtual memory size, top's VIRT (VmSize).",
    "vma_process_resident_bytes": "Resident set size, top's RES (VmRSS).",
    "vma_process_shared_bytes": "Resident shared memory, top's SHR (RssFile + RssShmem).",
    "vma_process_hugetlb_bytes": "hugetlbfs memory mapped by the process (HugetlbPages).",
    "vma_process_rlimit_data_bytes": "Soft RLIMIT_DATA; +Inf when unlimited.",
    "vma_process_rlimit_as_bytes": "Soft RLIMIT_AS; +Inf when unlimited.",
    "vma_process_start_time_seconds": "Start time of the process since the Unix epoch.",
    "vma_process_map_areas_by_kind": "Map areas by kind of backing: anon, heap, stack, file, shm, hugetlb, special.",
    "vma_process_deleted_map_areas": "Map areas backed by files unlinked from their filesystem.",
    "vma_process_top_object_map_areas": "Map areas of the backing object (file, shm, hugetlb) mapped in the most areas.",
}
_GROUP = {
    "vma_group_processes": "Watched processes in the group.",
    "vma_group_map_areas_max": "Map areas of the group's process with the most.",
    # Not "..._sum": that suffix belongs to summaries and histograms (promtool check metrics
    # rejects it on a gauge); the other group gauges are sums without a suffix too.
    "vma_group_map_areas": "Map areas summed over the group's processes.",
    "vma_group_virtual_bytes": "Virtual memory summed over the group's processes.",
    "vma_group_resident_bytes": "Resident memory summed over the group's processes.",
    "vma_group_hugetlb_bytes": "hugetlbfs memory summed over the group's processes.",
}


def _label(value: str) -> str:
    return value if len(value) <= MAX_LABEL_CHARS else value[: MAX_LABEL_CHARS - 3] + "..."


def node_families(snap: Snapshot):
    limit = GaugeMetricFamily("vma_node_map_areas_limit", _NODE["vma_node_map_areas_limit"])
    if snap.max_map_count is not None:
        limit.add_metric([], snap.max_map_count)
    yield limit
    pools = {n: GaugeMetricFamily(n, _NODE[n], labels=["pagesize_bytes"]) for n in list(_NODE)[1:5]}
    for p in snap.pools:
        size = [str(p.pagesize_bytes)]
        for name, value in zip(pools, (p.total, p.free, p.reserved, p.surplus)):
            pools[name].add_metric(size, value)
    yield from pools.values()
    numa = {n: GaugeMetricFamily(n, _NODE[n], labels=["numa_node", "pagesize_bytes"]) for n in list(_NODE)[5:]}
    for p in snap.numa_pools:
        key = [str(p.numa_node), str(p.pagesize_bytes)]
        numa["vma_node_numa_hugepages"].add_metric(key, p.total)
        numa["vma_node_numa_hugepages_free"].add_metric(key, p.free)
    yield from numa.values()


def process_families(snap: Snapshot):
    fam = {name: GaugeMetricFamily(name, text, labels=PROCESS_LABELS) for name, text in _PROCESS.items()}
    fam["vma_process_map_areas_by_kind"] = GaugeMetricFamily(
        "vma_process_map_areas_by_kind", _PROCESS["vma_process_map_areas_by_kind"], labels=PROCESS_LABELS + ["kind"])
    fam["vma_process_top_object_map_areas"] = GaugeMetricFamily(
        "vma_process_top_object_map_areas", _PROCESS["vma_process_top_object_map_areas"],
        labels=PROCESS_LABELS + ["object"])
    for p in snap.exported:
        labels = [p.group, str(p.pid), p.comm, p.container_id, p.pod_uid]
        st = p.status
        for name, value in (
            ("vma_process_map_areas", p.map_areas),
            ("vma_process_virtual_bytes", st.virtual),
            ("vma_process_resident_bytes", st.resident),
            ("vma_process_shared_bytes", st.shared),
            ("vma_process_hugetlb_bytes", st.hugetlb),
            ("vma_process_start_time_seconds", p.start_time_seconds),
            ("vma_process_deleted_map_areas", p.maps.deleted if p.maps.detailed else None),
        ):
            if value is not None:  # a field an old kernel lacks is left out, not faked as 0
                fam[name].add_metric(labels, value)
        if p.limits is not None:
            fam["vma_process_rlimit_data_bytes"].add_metric(labels, p.limits.data)
            fam["vma_process_rlimit_as_bytes"].add_metric(labels, p.limits.address_space)
        for kind in KINDS if p.maps.detailed else ():  # not detailed: the process vanished mid-way
            fam["vma_process_map_areas_by_kind"].add_metric(labels + [kind], p.maps.by_kind[kind])
        if p.maps.top_object:
            fam["vma_process_top_object_map_areas"].add_metric(
                labels + [_label(p.maps.top_object)], p.maps.top_object_areas)
    yield from fam.values()


def group_families(snap: Snapshot):
    fam = {name: GaugeMetricFamily(name, text, labels=["group"]) for name, text in _GROUP.items()}
    for g in snap.groups:
        for name, value in zip(fam, (g.processes, g.map_areas_max, g.map_areas_sum,
                                     g.virtual_bytes, g.resident_bytes, g.hugetlb_bytes)):
            fam[name].add_metric([g.name], value)
    yield from fam.values()


def self_families(snap: Snapshot, extra=()):
    yield InfoMetricFamily("vma_exporter_build", "Version of vma-exporter.", value={"version": __version__})
    yield GaugeMetricFamily("vma_exporter_scrape_duration_seconds",
                            "Seconds the last collection of /proc and /sys took.", value=snap.duration_seconds)
    yield GaugeMetricFamily("vma_exporter_processes_scanned",
                            "Processes examined in the last collection (kernel threads and zombies excluded).",
                            value=snap.scanned)
    yield GaugeMetricFamily("vma_exporter_processes_watched",
                            "Processes matched by the targets config in the last collection.",
                            value=snap.watched)
    yield GaugeMetricFamily("vma_exporter_processes_exported",
                            "Processes given per-process series (top N plus those near the limit).",
                            value=len(snap.exported))
    yield GaugeMetricFamily("vma_exporter_collection_complete",
                            "1 if the last collection covered every process, 0 if --collect.timeout cut it short.",
                            value=1 if snap.complete else 0)
    yield CounterMetricFamily("vma_exporter_collections",
                              "Passes over /proc since start; concurrent scrapes share one pass.",
                              value=snap.sequence)
    errors = CounterMetricFamily("vma_exporter_read_errors", "Process files that could not be read, by reason.",
                                 labels=["reason"])
    for reason in READ_ERROR_REASONS:
        errors.add_metric([reason], snap.read_errors_total.get(reason, 0))
    yield errors
    yield from extra


def reload_families(successful: bool, success_timestamp: float):
    """The state of config reloads (reload.Reloader keeps it)."""
    yield GaugeMetricFamily("vma_exporter_config_last_reload_successful",
                            "1 if the last config reload (start, SIGHUP or POST /-/reload) succeeded, else 0.",
                            value=1 if successful else 0)
    yield GaugeMetricFamily("vma_exporter_config_last_reload_success_timestamp_seconds",
                            "Time of the last successful config load, seconds since the Unix epoch.",
                            value=success_timestamp)


class SnapshotCollector:
    """Registered in a prometheus_client registry; collects on scrape."""

    def __init__(self, collector, extra=lambda: ()):
        self._collector = collector
        self._extra = extra

    def describe(self):
        # Families without samples: registering must not trigger a collection of /proc.
        return list(self._families(_EMPTY))

    def collect(self):
        return self._families(self._collector.collect())

    def _families(self, snap: Snapshot):
        yield from node_families(snap)
        yield from process_families(snap)
        yield from group_families(snap)
        yield from self_families(snap, self._extra())


_EMPTY = Snapshot(timestamp=0.0, duration_seconds=0.0, max_map_count=None, pools=(), numa_pools=(),
                  processes=(), groups=(), scanned=0)

