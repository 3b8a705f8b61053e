"""The node view: the limit, processes ranked by usage, map areas over time against
the limit line, groups, hugepage pools per size and NUMA node, exporter health."""

from vma_dashboards import lib
from vma_dashboards.common import (CRITICAL, LIMIT_STEPS, NODE_UID, RATIO_STEPS, WARNING, pct, process_link, q,
                                   variables)

LIMIT = q("vma_node_map_areas_limit")
UP_MAPPINGS = [{"type": "value", "options": {"0": {"text": "down", "color": "red"},
                                             "1": {"text": "up", "color": "green"}}}]
COMPLETE_MAPPINGS = [{"type": "value", "options": {"0": {"text": "cut short", "color": "orange"},
                                                   "1": {"text": "complete", "color": "green"}}}]


def overview() -> list[dict]:
    return [
        lib.row("Map areas"),
        lib.stat("vm.max_map_count", "The most map areas one process may hold on this node. Red: below the "
                 "kernel default; orange: below the fleet's configured minimum.", LIMIT, "short",
                 thresholds=LIMIT_STEPS),
        lib.stat("Busiest process", "Share of vm.max_map_count held by the watched process with the most map "
                 "areas, exported or not (from the group gauges).", q("vma:node_map_areas_max:ratio"),
                 "percentunit", thresholds=RATIO_STEPS),
        lib.stat(f"Processes at or above {pct(WARNING)}", "Exported processes holding at least the warning "
                 "share of vm.max_map_count.", f"sum({q('vma:process_map_areas:ratio')} >= bool {WARNING})",
                 "short", thresholds=lib.steps("green", (1, "orange")), no_value="0"),
        lib.stat(f"Processes at or above {pct(CRITICAL)}", "Exported processes holding at least the critical "
                 "share: at the limit munmap fails and memory leaks.",
                 f"sum({q('vma:process_map_areas:ratio')} >= bool {CRITICAL})", "short",
                 thresholds=lib.steps("green", (1, "red")), no_value="0"),
        lib.stat("Growing towards the limit", "Exported processes whose map areas grow (least-squares trend "
                 "of the last hour; vma:process_map_areas:seconds_to_limit exists only for them).",
                 f"count({q('vma:process_map_areas:seconds_to_limit')})", "short", no_value="0"),
        lib.stat("Processes watched", "Processes matched by the exporter's targets config in the last "
                 "collection; only the top N and those near the limit get per-process series.",
                 q("vma_exporter_processes_watched"), "short"),
    ]


def processes() -> list[dict]:
    ratio_cell = lib.gauge_cell("Share of limit", "percentunit", RATIO_STEPS)
    return [
        lib.table("Processes ranked by map areas", "Exported processes (top N by map areas, plus every "
                  "process near the limit), busiest first. Click a PID for its process view.", [
                      lib.target(q("vma:process_map_areas:ratio")),
                      lib.target(q("vma_process_map_areas")),
                      lib.target(q("vma_process_virtual_bytes")),
                      lib.target(q("vma_process_resident_bytes")),
                  ], "short",
                  columns={"comm": "Command", "pid": "PID", "group": "Group", "Value #A": "Share of limit",
                           "Value #B": "Map areas", "Value #C": "VIRT", "Value #D": "RES"},
                  sort_by="Value #B", w=24, h=9,
                  overrides=[ratio_cell, lib.override("VIRT", unit="bytes"), lib.override("RES", unit="bytes"),
                             process_link()]),
        lib.timeseries("Map areas against the limit", "Map areas of the ten busiest exported processes, with "
                       f"vm.max_map_count and the warning line at {pct(WARNING)} of it.", [
                           lib.target(f"topk(10, {q('vma_process_map_areas')})", "{{comm}} ({{pid}})"),
                           lib.target(LIMIT, "vm.max_map_count"),
                           lib.target(f"{WARNING} * {LIMIT}", f"warning ({pct(WARNING)})"),
                       ], "short", w=16, h=9,
                       overrides=[lib.override("vm.max_map_count", color={"mode": "fixed", "fixedColor": "red"},
                                               custom__lineStyle={"fill": "dash", "dash": [10, 10]}),
                                  lib.override(f"warning ({pct(WARNING)})",
                                               color={"mode": "fixed", "fixedColor": "orange"},
                                               custom__lineStyle={"fill": "dash", "dash": [4, 8]})]),
        lib.timeseries("Busiest process per group", "Share of vm.max_map_count held by each group's busiest "
                       "process (every member counts, exported or not); the ten highest groups.",
                       [lib.target(f"topk(10, {q('vma:group_map_areas_max:ratio')})", "{{group}}")],
                       "percentunit", w=8, h=9, thresholds=RATIO_STEPS),
        lib.table("Top backing object per process", "For each exported process, the file or shared-memory "
                  "object mapped in the most areas. Thousands of areas of one object is the leak signature.",
                  [lib.target(q("vma_process_top_object_map_areas"))], "short",
                  columns={"comm": "Command", "pid": "PID", "group": "Group", "object": "Object",
                           "Value": "Areas"}, sort_by="Value", w=12, h=8, overrides=[process_link()]),
        lib.table("Groups", "Every group of the targets config: members, the busiest member's map areas, "
                  "and sums over all members.", [
                      lib.target(q("vma_group_processes")),
                      lib.target(q("vma_group_map_areas_max")),
                      lib.target(q("vma_group_map_areas")),
                      lib.target(q("vma_group_resident_bytes")),
                      lib.target(q("vma_group_hugetlb_bytes")),
                  ], "short",
                  columns={"group": "Group", "Value #A": "Processes", "Value #B": "Max map areas",
                           "Value #C": "Map areas (sum)", "Value #D": "RES (sum)", "Value #E": "hugetlb (sum)"},
                  sort_by="Value #B", w=12, h=8,
                  overrides=[lib.override("RES (sum)", unit="bytes"), lib.override("hugetlb (sum)", unit="bytes")]),
    ]


def hugepages() -> list[dict]:
    pool = "{{pagesize_bytes}} B pages"
    return [
        lib.row("Hugepages"),
        lib.timeseries("Hugepage pools", "Node-wide pools per page size: configured (nr_hugepages), free, "
                       "reserved for mappings not yet faulted in, surplus, and usable = free - reserved "
                       "(what a new mapping can get).", [
                           lib.target(q("vma_node_hugepages"), f"configured, {pool}"),
                           lib.target(q("vma_node_hugepages_free"), f"free, {pool}"),
                           lib.target(q("vma_node_hugepages_reserved"), f"reserved, {pool}"),
                           lib.target(q("vma_node_hugepages_surplus"), f"surplus, {pool}"),
                           lib.target(f"{q('vma_node_hugepages_free')} - {q('vma_node_hugepages_reserved')}",
                                      f"usable, {pool}"),
                       ], "short", w=12),
        lib.timeseries("Hugepage pools per NUMA node", "Configured and free hugepages of each NUMA node's "
                       "pool, per page size (a process bound to one node can use only that node's pages).", [
                           lib.target(q("vma_node_numa_hugepages"), "configured, node {{numa_node}}, " + pool),
                           lib.target(q("vma_node_numa_hugepages_free"), "free, node {{numa_node}}, " + pool),
                       ], "short", w=12),
    ]


def exporter() -> list[dict]:
    return [
        lib.row("Exporter"),
        lib.stat("Scrape", "Whether Prometheus reaches the exporter (up).", q("up"), "none",
                 mappings=UP_MAPPINGS, thresholds=lib.steps("red", (1, "green")), w=3, h=8),
        lib.stat("Last collection", "Whether the last collection read every watched process, or "
                 "--collect.timeout cut it short.", q("vma_exporter_collection_complete"), "none",
                 mappings=COMPLETE_MAPPINGS, thresholds=lib.steps("orange", (1, "green")), w=3, h=8),
        lib.timeseries("Collection duration", "Seconds one pass over /proc and /sys took.",
                       [lib.target(q("vma_exporter_scrape_duration_seconds"), "duration")], "s", w=6, h=8),
        lib.timeseries("Processes", "Processes examined, matched by the targets config, and given "
                       "per-process series.", [
                           lib.target(q("vma_exporter_processes_scanned"), "scanned"),
                           lib.target(q("vma_exporter_processes_watched"), "watched"),
                           lib.target(q("vma_exporter_processes_exported"), "exported"),
                       ], "short", w=6, h=8),
        lib.timeseries("Read errors", "Process files the exporter could not read, per second, by reason. "
                       "permission: no CAP_SYS_PTRACE; vanished: processes that exited while read (normal).",
                       [lib.target(f"rate({q('vma_exporter_read_errors_total')}[$__rate_interval])", "{{reason}}")],
                       "cps", w=6, h=8),
    ]


def build() -> dict:
    return lib.dashboard(
        NODE_UID, "vma-exporter / Node",
        "Map areas (VMAs) of one node's processes against vm.max_map_count, hugepage pools, exporter health.",
        variables(multi=False),
        overview() + processes() + hugepages() + exporter())
