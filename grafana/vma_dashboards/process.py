"""The process view: map areas against the limit, by kind, the top backing object,
time to exhaustion, VIRT/RES/SHR, hugetlb memory and resource limits."""

from vma_dashboards import lib
from vma_dashboards.common import (PROCESS_UID, RATIO_STEPS, TIME_LEFT_STEPS, WARNING, pct, q, variables)
from vma_mixin import config as rules_config

LIMIT = q("vma_node_map_areas_limit")
WHO = "{{comm}} ({{pid}})"
# RLIMIT_INFINITY is exported as +Inf; Grafana shows a value map keyed by String(value).
UNLIMITED = [{"type": "value", "options": {"Infinity": {"text": "unlimited"}}}]


def p(metric: str, *matchers: str) -> str:
    return q(metric, *matchers, process=True)


def overview() -> list[dict]:
    return [
        lib.row("Map areas"),
        lib.stat("Map areas", "Map areas (VMAs) the process holds now: lines of /proc/PID/maps less [vsyscall].",
                 p("vma_process_map_areas"), "short"),
        lib.stat("Share of vm.max_map_count", "Map areas against the node's vm.max_map_count. At the limit, "
                 "mmap, mprotect and munmap fail with ENOMEM.", p("vma:process_map_areas:ratio"), "percentunit",
                 thresholds=RATIO_STEPS),
        lib.stat("Time to the limit", f"At the least-squares trend of the last {rules_config.PREDICT_WINDOW}, "
                 "when the process reaches vm.max_map_count. Empty when it does not grow.",
                 p("vma:process_map_areas:seconds_to_limit"), "s", no_value="not growing",
                 thresholds=TIME_LEFT_STEPS),
        lib.stat("Top backing object", "The file or shared-memory object mapped in the most areas of this "
                 "process, and in how many.", p("vma_process_top_object_map_areas"), "short", "{{object}}",
                 text_mode="value_and_name", w=6),
        lib.stat("Areas of deleted files", "Map areas backed by files unlinked from their filesystem (an old "
                 "library after an upgrade, a removed /dev/shm object still mapped).",
                 p("vma_process_deleted_map_areas"), "short", w=3),
        lib.stat("Started", "When the process started.", f"{p('vma_process_start_time_seconds')} * 1000",
                 "dateTimeFromNow", w=3),
    ]


def map_areas() -> list[dict]:
    return [
        lib.timeseries("Map areas against the limit", "The process's map areas, the node's vm.max_map_count, "
                       f"and the warning line at {pct(WARNING)} of it.", [
                           lib.target(p("vma_process_map_areas"), WHO),
                           lib.target(LIMIT, "vm.max_map_count"),
                           lib.target(f"{WARNING} * {LIMIT}", f"warning ({pct(WARNING)})"),
                       ], "short",
                       overrides=[lib.override("vm.max_map_count", color={"mode": "fixed", "fixedColor": "red"},
                                               custom__lineStyle={"fill": "dash", "dash": [10, 10]}),
                                  lib.override(f"warning ({pct(WARNING)})",
                                               color={"mode": "fixed", "fixedColor": "orange"},
                                               custom__lineStyle={"fill": "dash", "dash": [4, 8]})]),
        lib.timeseries("Map areas by kind", "Map areas by backing: anon (no name), heap, stack, file, shm "
                       "(POSIX and SysV shared memory, memfd), hugetlb, special ([vdso], sockets, ...). The kind "
                       "that climbs is the one leaking.", [lib.target(p("vma_process_map_areas_by_kind"), "{{kind}}")],
                       "short", stack=True),
        lib.timeseries("Top backing object", "Areas of the object mapped most often, and areas backed by "
                       "deleted files. One object in thousands of areas, still climbing, is the leak "
                       "signature: find the code that maps it.", [
                           lib.target(p("vma_process_top_object_map_areas"), "{{object}}"),
                           lib.target(p("vma_process_deleted_map_areas"), "backed by deleted files"),
                       ], "short"),
        lib.timeseries("Time to the limit", "Seconds until vma:process_map_areas:seconds_to_limit reaches 0 at "
                       f"the trend of the last {rules_config.PREDICT_WINDOW}; shown only while the process grows. "
                       f"The ExhaustionPredicted alert fires under {rules_config.PREDICT_HORIZON_HOURS} h.",
                       [lib.target(p("vma:process_map_areas:seconds_to_limit"), WHO)], "s",
                       thresholds=TIME_LEFT_STEPS),
    ]


def memory() -> list[dict]:
    return [
        lib.row("Memory"),
        lib.timeseries("VIRT, RES, SHR", "top's columns from /proc/PID/status: virtual size (VmSize), resident "
                       "set (VmRSS) and resident shared memory (RssFile + RssShmem).", [
                           lib.target(p("vma_process_virtual_bytes"), "VIRT"),
                           lib.target(p("vma_process_resident_bytes"), "RES"),
                           lib.target(p("vma_process_shared_bytes"), "SHR"),
                       ], "bytes", w=12),
        lib.timeseries("hugetlb memory", "hugetlbfs memory mapped by the process (HugetlbPages): taken from "
                       "the node's hugepage pools, not from ordinary memory.",
                       [lib.target(p("vma_process_hugetlb_bytes"), "hugetlb")], "bytes", w=6),
        lib.stat("Resource limits", "Soft RLIMIT_DATA and RLIMIT_AS: the third cause of ENOMEM besides memory "
                 "and map areas. Compare RLIMIT_AS with VIRT.", [
                     (p("vma_process_rlimit_data_bytes"), "RLIMIT_DATA"),
                     (p("vma_process_rlimit_as_bytes"), "RLIMIT_AS"),
                     (p("vma_process_virtual_bytes"), "VIRT"),
                 ], "bytes", mappings=UNLIMITED, text_mode="value_and_name", w=6, h=8),
    ]


def build() -> dict:
    return lib.dashboard(
        PROCESS_UID, "vma-exporter / Process",
        "One process: map areas against vm.max_map_count, by kind, the busiest backing object, time to "
        "exhaustion, memory and resource limits. Only processes with per-process series (top N and those "
        "near the limit) are listed.",
        variables(multi=False, process=True),
        overview() + map_areas() + memory())
