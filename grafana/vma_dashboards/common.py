"""What the three dashboards share: selectors, variables, thresholds, links.

Thresholds come from the rules' config (deploy/prometheus/vma_mixin/config.py),
so a cell turns orange exactly where the warning alert starts.
"""

from vma_dashboards import lib
from vma_mixin import config as rules_config

# Every query selects with these three variables (the mixins' convention); the
# hidden cluster variable defaults to All (".*"), which also matches series that
# have no cluster label at all.
SEL = 'cluster=~"$cluster", job=~"$job", instance=~"$instance"'
PROC_SEL = SEL + ', group=~"$group", pid=~"$pid"'

WARNING = rules_config.WARNING_RATIO
CRITICAL = rules_config.CRITICAL_RATIO
RATIO_STEPS = lib.steps("green", (WARNING, "orange"), (CRITICAL, "red"))
LIMIT_STEPS = lib.steps("red", (rules_config.KERNEL_DEFAULT_MAX_MAP_COUNT, "orange"),
                        (rules_config.MIN_MAX_MAP_COUNT or rules_config.KERNEL_DEFAULT_MAX_MAP_COUNT, "green"))
# Fewer than 1 usable hugepage is red; one is already a warning sign in a busy pool.
USABLE_PAGES_STEPS = lib.steps("red", (1, "orange"), (2, "green"))
HORIZON_SECONDS = rules_config.PREDICT_HORIZON_HOURS * 3600
TIME_LEFT_STEPS = lib.steps("red", (HORIZON_SECONDS, "orange"), (4 * HORIZON_SECONDS, "green"))

NODE_UID = "vma-node"
PROCESS_UID = "vma-process"
FLEET_UID = "vma-fleet"


def q(metric: str, *matchers: str, process: bool = False) -> str:
    """``metric{cluster=~"$cluster", job=~"$job", instance=~"$instance"[, ...]}``"""
    return metric + "{" + ", ".join((PROC_SEL if process else SEL, *matchers)) + "}"


def pct(ratio: float) -> str:
    return f"{ratio * 100:g} %"


def variables(*, multi: bool, process: bool = False) -> list[dict]:
    """datasource, hidden cluster, job, instance (and group, pid for the process view).

    The fleet view selects many jobs and instances at once (*multi*); the node
    and process views one instance each.
    """
    build = "vma_exporter_build_info"
    out = [
        lib.datasource_var(),
        lib.query_var("cluster", "Cluster", f"label_values({build}, cluster)", hide=2,
                      multi=True, include_all=True),
        lib.query_var("job", "Job", f'label_values({build}{{cluster=~"$cluster"}}, job)',
                      multi=multi, include_all=multi),
        lib.query_var("instance", "Instance", f'label_values({build}{{cluster=~"$cluster", job=~"$job"}}, instance)',
                      multi=multi, include_all=multi),
    ]
    if process:
        in_group = q("vma_process_map_areas", 'group=~"$group"')
        out += [
            lib.query_var("group", "Group", f"label_values({q('vma_process_map_areas')}, group)"),
            lib.query_var("pid", "PID", f"label_values({in_group}, pid)"),
        ]
    return out


def process_link(header: str = "PID") -> dict:
    """A table cell linking to the process view of the row's process."""
    url = (f"/d/{PROCESS_UID}/?${{datasource:queryparam}}&${{cluster:queryparam}}"
           "&var-job=${__data.fields.job}&var-instance=${__data.fields.instance}"
           "&var-group=${__data.fields.group}&var-pid=${__data.fields.pid}&${__url_time_range}")
    return lib.link(header, "Process view: map areas, kinds, top object, memory", url)


def node_link(header: str = "Instance") -> dict:
    url = (f"/d/{NODE_UID}/?${{datasource:queryparam}}&${{cluster:queryparam}}"
           "&var-job=${__data.fields.job}&var-instance=${__data.fields.instance}&${__url_time_range}")
    return lib.link(header, "Node view: limit, processes, hugepages", url)
