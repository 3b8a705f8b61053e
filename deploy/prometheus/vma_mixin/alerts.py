"""Alerting rules. Every one has a severity, a static summary, a templated
description naming where and how much, and a runbook_url into docs/runbook.md.

Names share the prefix "Vma". Descriptions of per-process alerts name
instance, group, pid, comm and the figure; node and exporter alerts have no
process to name and give the instance and the figure.
"""

from vma_mixin import config as c
from vma_mixin.recording import (GROUP_RATIO, IGNORING_PROCESS, PROCESS_DERIV, PROCESS_RATIO, TOP_OBJECT_DERIV,
                                 sel)

WHO = ("process {{ $labels.comm }} (pid {{ $labels.pid }}, group {{ $labels.group }}) "
       "on {{ $labels.instance }}")
CONSEQUENCE = ("At the limit mmap, mprotect and even munmap fail with ENOMEM, and memory that "
               "glibc's free() cannot return stays leaked.")


def pct(ratio: float) -> str:
    return f"{ratio * 100:g} %"


def alert(name: str, expr: str, for_: str | None, severity: str, summary: str, description: str) -> dict:
    rule = {"alert": name, "expr": expr}
    if for_:
        rule["for"] = for_
    rule["labels"] = {"severity": severity}
    rule["annotations"] = {
        "summary": summary,
        "description": description,
        "runbook_url": f"{c.RUNBOOK_URL}#{name.lower()}",
    }
    return rule


def process_near_limit() -> list[dict]:
    name = "VmaProcessMapAreasNearLimit"
    out = []
    for severity, ratio, for_ in (("warning", c.WARNING_RATIO, c.WARNING_FOR),
                                  ("critical", c.CRITICAL_RATIO, c.CRITICAL_FOR)):
        description = f"The {WHO} holds {{{{ $value | humanizePercentage }}}} of the map areas vm.max_map_count allows."
        if severity == "critical":
            description += " " + CONSEQUENCE
        out.append(alert(
            name, f"{PROCESS_RATIO}{sel()} >= {ratio}\n", for_, severity,
            f"A process holds {pct(ratio)} or more of the map areas vm.max_map_count allows.",
            description))
    return out


def group_near_limit() -> list[dict]:
    # The group gauge covers every member, also processes without per-process series
    # (beyond top_n, or per-process series turned off). When an exported process explains
    # the figure, VmaProcessMapAreasNearLimit already names it: "unless" keeps one alert.
    name = "VmaGroupMapAreasNearLimit"
    out = []
    for severity, ratio, for_ in (("warning", c.WARNING_RATIO, c.WARNING_FOR),
                                  ("critical", c.CRITICAL_RATIO, c.CRITICAL_FOR)):
        ignoring = "ignoring(" + ", ".join(x for x in c.PROCESS_LABELS if x != "group") + ")"
        expr = f"""\
{GROUP_RATIO}{sel()} >= {ratio}
  unless {ignoring}
{PROCESS_RATIO}{sel()} >= {ratio}
"""
        out.append(alert(
            name, expr, for_, severity,
            f"A process without per-process series holds {pct(ratio)} or more of the map areas "
            "vm.max_map_count allows.",
            "The busiest process of group {{ $labels.group }} on {{ $labels.instance }} holds "
            "{{ $value | humanizePercentage }} of the map areas vm.max_map_count allows. It has no "
            "per-process series (pid and comm unknown here: outside per_process.top_n), so find it on the node."
            + (" " + CONSEQUENCE if severity == "critical" else "")))
    return out


def exhaustion_predicted() -> dict:
    seconds = c.PREDICT_HORIZON_HOURS * 3600
    expr = f"""\
{PROCESS_RATIO}{sel()} >= {c.PREDICT_MIN_RATIO}
  and
(
  predict_linear(vma_process_map_areas{sel()}[{c.PREDICT_WINDOW}], {seconds})
    >= {IGNORING_PROCESS} group_left()
  vma_node_map_areas_limit{sel()}
)
  and
{PROCESS_DERIV}{sel()} > 0
"""
    # The last clause keeps a process sitting flat at the limit out: its prediction equals
    # the limit, but it is not heading anywhere (VmaProcessMapAreasNearLimit covers it).
    return alert(
        "VmaProcessMapAreasExhaustionPredicted", expr, c.PREDICT_FOR, "warning",
        f"A process will run out of map areas within {c.PREDICT_HORIZON_HOURS} hours at its current trend.",
        f"The {WHO} holds {{{{ $value | humanizePercentage }}}} of vm.max_map_count and, at its trend "
        f"over the last {c.PREDICT_WINDOW}, reaches the limit within {c.PREDICT_HORIZON_HOURS} hours.")


def leak_signature() -> dict:
    expr = f"""\
vma_process_top_object_map_areas{sel()} >= {c.LEAK_MIN_AREAS}
  and
{TOP_OBJECT_DERIV}{sel()} > 0
"""
    return alert(
        "VmaProcessMapAreasLeakSignature", expr, c.LEAK_FOR, "warning",
        f"One object is mapped in {c.LEAK_MIN_AREAS} or more areas of a process, and still more.",
        f"The {WHO} maps {{{{ $labels.object }}}} in {{{{ $value }}}} areas, more than "
        f"{c.LEAK_WINDOW} ago: a mapping made again and again and never unmapped.")


def node_limit() -> list[dict]:
    out = [alert(
        "VmaNodeMaxMapCountBelowDefault",
        f"vma_node_map_areas_limit{sel()} < {c.KERNEL_DEFAULT_MAX_MAP_COUNT}\n", c.NODE_LIMIT_FOR, "warning",
        f"vm.max_map_count is below the kernel default of {c.KERNEL_DEFAULT_MAX_MAP_COUNT}.",
        "vm.max_map_count on {{ $labels.instance }} is {{ $value }}, below the kernel default of "
        f"{c.KERNEL_DEFAULT_MAX_MAP_COUNT}: processes fail with ENOMEM after that many map areas, "
        "long before memory runs out.")]
    if c.MIN_MAX_MAP_COUNT is not None:
        # Not below the default too: the warning above covers that node already.
        out.append(alert(
            "VmaNodeMaxMapCountBelowMinimum",
            f"vma_node_map_areas_limit{sel()} >= {c.KERNEL_DEFAULT_MAX_MAP_COUNT} < {c.MIN_MAX_MAP_COUNT}\n",
            c.NODE_LIMIT_FOR, "info",
            f"vm.max_map_count is below the configured minimum of {c.MIN_MAX_MAP_COUNT}.",
            "vm.max_map_count on {{ $labels.instance }} is {{ $value }}, below the minimum of "
            f"{c.MIN_MAX_MAP_COUNT} this fleet's workloads are configured to need."))
    return out


def hugepages_exhausted() -> dict:
    expr = f"""\
(vma_node_hugepages_free{sel()} - vma_node_hugepages_reserved{sel()}) <= 0
  and
vma_node_hugepages{sel()} > 0
"""
    return alert(
        "VmaNodeHugePagesExhausted", expr, c.HUGEPAGES_FOR, "warning",
        "A configured hugepage pool has no usable page left.",
        "The pool of {{ $labels.pagesize_bytes | humanize1024 }}B hugepages on {{ $labels.instance }} "
        "has {{ $value }} usable pages (free - reserved) though pages are configured: the next "
        "hugetlb mapping of that size fails.")


def exporter() -> list[dict]:
    denied = "vma_exporter_read_errors_total" + sel('reason="permission"')
    return [
        alert("VmaExporterDown", f"up{sel()} == 0\n", c.EXPORTER_DOWN_FOR, "warning",
              "Prometheus cannot scrape vma-exporter.",
              "vma-exporter on {{ $labels.instance }} has not been scraped for "
              f"{c.EXPORTER_DOWN_FOR}: map areas on that node are not watched."),
        alert("VmaExporterPermissionDenied",
              f"increase({denied}[{c.READ_ERRORS_WINDOW}]) > 0\n",
              c.READ_ERRORS_FOR, "warning",
              "vma-exporter is denied reading processes' map areas.",
              "vma-exporter on {{ $labels.instance }} was denied {{ $value | humanize }} reads of process "
              f"files in the last {c.READ_ERRORS_WINDOW}: without CAP_SYS_PTRACE (or root) it cannot read "
              "/proc/PID/maps of other users' processes, which then go uncounted."),
        # The value is the last collection's duration: the figure to compare with the timeout.
        alert("VmaExporterCollectionIncomplete",
              f"vma_exporter_scrape_duration_seconds{sel()}\n  and\nvma_exporter_collection_complete{sel()} == 0\n",
              c.INCOMPLETE_FOR, "info",
              "vma-exporter collections are cut short by --collect.timeout.",
              "vma-exporter on {{ $labels.instance }} stops its collections at --collect.timeout (the last "
              "took {{ $value | humanizeDuration }}) before it has read every process: the processes it did "
              "not reach are missing."),
        # A refused reload leaves the previous config serving (exporter/reload.py). The value is
        # the age of that config: how long the fleet has been running something else than pushed.
        alert("VmaExporterConfigReloadFailed",
              f"time() - vma_exporter_config_last_reload_success_timestamp_seconds{sel()}\n  and\n"
              f"vma_exporter_config_last_reload_successful{sel()} == 0\n",
              c.RELOAD_FAILED_FOR, "warning",
              "vma-exporter failed to reload its configuration.",
              "vma-exporter on {{ $labels.instance }} refused its last configuration reload and keeps "
              "serving the configuration it loaded {{ $value | humanizeDuration }} ago: changes to the "
              "targets config or the web config since then are not in effect."),
    ]


def rules() -> list[dict]:
    return [
        *process_near_limit(),
        *group_near_limit(),
        exhaustion_predicted(),
        leak_signature(),
        *node_limit(),
        hugepages_exhausted(),
        *exporter(),
    ]
