"""The fleet view: worst processes and nodes across instances and clusters, nodes
with a low limit, hugepage exhaustion, exporter health.

Counts use ``sum(x >= bool t)`` rather than ``count(x >= t)``: the first says 0
when nothing is over the line, the second says nothing at all.
"""

from vma_dashboards import lib
from vma_dashboards.common import (CRITICAL, FLEET_UID, LIMIT_STEPS, RATIO_STEPS, TIME_LEFT_STEPS,
                                   USABLE_PAGES_STEPS, WARNING, node_link, pct, process_link, q, variables)
from vma_mixin import config as rules_config

DEFAULT = rules_config.KERNEL_DEFAULT_MAX_MAP_COUNT
MINIMUM = rules_config.MIN_MAX_MAP_COUNT or DEFAULT
RATIO = q("vma:process_map_areas:ratio")
USABLE = f"({q('vma_node_hugepages_free')} - {q('vma_node_hugepages_reserved')})"
RED_FROM_1 = lib.steps("green", (1, "red"))


def summary() -> list[dict]:
    return [
        lib.row("Fleet"),
        lib.stat("Nodes", "Exporter targets in the selection.", f"count({q('up')})", "short"),
        lib.stat("Exporters down", "Targets Prometheus cannot scrape: their map areas are not watched.",
                 f"sum(1 - {q('up')})", "short", thresholds=RED_FROM_1, no_value="0"),
        lib.stat(f"Processes at or above {pct(CRITICAL)}", "Processes at the critical share of vm.max_map_count.",
                 f"sum({RATIO} >= bool {CRITICAL})", "short", thresholds=RED_FROM_1, no_value="0"),
        lib.stat(f"Processes at or above {pct(WARNING)}", "Processes at the warning share of vm.max_map_count.",
                 f"sum({RATIO} >= bool {WARNING})", "short", thresholds=lib.steps("green", (1, "orange")),
                 no_value="0"),
        lib.stat("Nodes below the kernel default", f"Nodes whose vm.max_map_count is below {DEFAULT}.",
                 f"sum({q('vma_node_map_areas_limit')} < bool {DEFAULT})", "short", thresholds=RED_FROM_1,
                 no_value="0"),
        lib.stat("Exhausted hugepage pools", "Configured hugepage pools with no usable page (free - reserved).",
                 f"sum(({USABLE} <= bool 0) * ({q('vma_node_hugepages')} > bool 0))", "short",
                 thresholds=RED_FROM_1, no_value="0"),
    ]


def worst() -> list[dict]:
    ratio_cell = lib.gauge_cell("Share of limit", "percentunit", RATIO_STEPS)
    return [
        lib.table("Worst processes", "The 20 processes holding the largest share of their node's "
                  "vm.max_map_count. Click a PID for its process view.",
                  [lib.target(f"topk(20, {RATIO})")], "percentunit",
                  columns={"cluster": "Cluster", "instance": "Instance", "comm": "Command", "pid": "PID",
                           "group": "Group", "Value": "Share of limit"},
                  sort_by="Value", hidden=("job",), overrides=[ratio_cell, process_link()], w=14, h=10),
        lib.table("Worst nodes", "The 20 nodes whose busiest watched process holds the largest share of "
                  "vm.max_map_count (group gauges: every process counts). Click an instance for its node view.",
                  [lib.target(f"topk(20, {q('vma:node_map_areas_max:ratio')})")], "percentunit",
                  columns={"cluster": "Cluster", "instance": "Instance", "Value": "Share of limit"},
                  sort_by="Value", hidden=("job",), overrides=[ratio_cell, node_link()], w=10, h=10),
        lib.timeseries("Busiest process per node", "Share of vm.max_map_count held by the busiest process of "
                       "the ten worst nodes.",
                       [lib.target(f"topk(10, {q('vma:node_map_areas_max:ratio')})", "{{cluster}} {{instance}}")],
                       "percentunit", thresholds=RATIO_STEPS, w=24, h=8),
        lib.table("Soonest exhaustion", "Processes growing towards the limit, soonest first: seconds to "
                  f"vm.max_map_count at the trend of the last {rules_config.PREDICT_WINDOW}.",
                  [lib.target(f"bottomk(20, {q('vma:process_map_areas:seconds_to_limit')})")], "s",
                  columns={"cluster": "Cluster", "instance": "Instance", "comm": "Command", "pid": "PID",
                           "Value": "Time to the limit"},
                  sort_by="Value", descending=False, hidden=("job", "group"), thresholds=TIME_LEFT_STEPS,
                  overrides=[process_link(),
                             lib.override("Time to the limit", color={"mode": "thresholds"},
                                          custom__cellOptions={"type": "color-text"})], w=12, h=8),
        lib.table("Leak signatures", "Processes whose busiest backing object is still gaining areas "
                  f"(trend of the last {rules_config.LEAK_WINDOW}); the alert fires from "
                  f"{rules_config.LEAK_MIN_AREAS} areas.",
                  [lib.target(f"topk(20, {q('vma_process_top_object_map_areas')} "
                              f"and {q('vma:process_top_object_map_areas:deriv' + rules_config.LEAK_WINDOW)} > 0)")],
                  "short",
                  columns={"instance": "Instance", "comm": "Command", "pid": "PID", "object": "Object",
                           "Value": "Areas"},
                  sort_by="Value", hidden=("job", "group"), overrides=[process_link()], w=12, h=8),
    ]


def nodes() -> list[dict]:
    return [
        lib.row("Node limits and hugepages"),
        lib.table("Lowest vm.max_map_count", f"The 20 nodes with the lowest limit. Red: below the kernel "
                  f"default {DEFAULT}; orange: below the configured minimum {MINIMUM}.",
                  [lib.target(f"bottomk(20, {q('vma_node_map_areas_limit')})")], "short",
                  columns={"cluster": "Cluster", "instance": "Instance", "Value": "vm.max_map_count"},
                  sort_by="Value", descending=False, hidden=("job",), thresholds=LIMIT_STEPS,
                  overrides=[node_link(), lib.override("vm.max_map_count", color={"mode": "thresholds"},
                                                       custom__cellOptions={"type": "color-background"})],
                  w=12, h=8),
        lib.table("Hugepage pools by usable pages", "Configured pools (nr_hugepages > 0) with the fewest "
                  "usable pages (free - reserved): at 0 the next hugetlb mapping of that size fails.",
                  [lib.target(f"bottomk(20, {USABLE} and {q('vma_node_hugepages')} > 0)")], "short",
                  columns={"cluster": "Cluster", "instance": "Instance", "pagesize_bytes": "Page size",
                           "Value": "Usable pages"},
                  sort_by="Value", descending=False, hidden=("job",), thresholds=USABLE_PAGES_STEPS,
                  overrides=[node_link(), lib.override("Page size", unit="bytes"),
                             lib.override("Usable pages", color={"mode": "thresholds"},
                                          custom__cellOptions={"type": "color-background"})],
                  w=12, h=8),
        lib.timeseries("Exporter collection duration", "Slowest collection per cluster: one pass over /proc "
                       "and /sys.", [lib.target(f"max by (cluster) ({q('vma_exporter_scrape_duration_seconds')})",
                                                "{{cluster}}")], "s", w=12),
        lib.timeseries("Exporter read errors", "Process files the exporters could not read, per second, by "
                       "reason; permission errors mean a deployment without CAP_SYS_PTRACE.",
                       [lib.target(f"sum by (cluster, reason) (rate({q('vma_exporter_read_errors_total')}"
                                   "[$__rate_interval]))", "{{cluster}} {{reason}}")], "cps", w=12),
    ]


def build() -> dict:
    return lib.dashboard(
        FLEET_UID, "vma-exporter / Fleet",
        "Across instances and clusters: the processes and nodes closest to vm.max_map_count, growth towards it, "
        "leak signatures, nodes with a low limit, hugepage exhaustion.",
        variables(multi=True),
        summary() + worst() + nodes())
