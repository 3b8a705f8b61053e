"""Recording rules: usage ratios per process, group and node; trends; the pod joins.

The exporter exports usage and limit as separate gauges in base units (the
ratio is PromQL's job); these rules compute the ratios once per evaluation so
alerts and dashboards share them. Naming: level:metric:operations.

The pod joins name each exported process's namespace, pod and container from
kube-state-metrics (kube_pod_info, kube_pod_container_info). They are the only
pod-identity rules: deploy/kubernetes ships no hand-written rule file.
"""

from vma_mixin import config as c


def sel(*matchers: str) -> str:
    """A label selector with the job selector first: ``{job="vma-exporter", kind="shm"}``."""
    return "{" + ", ".join((c.SELECTOR, *matchers)) + "}"


# "ignoring(group, pid, comm, container_id, pod_uid)": divide a process series by its node's.
IGNORING_PROCESS = "ignoring(" + ", ".join(c.PROCESS_LABELS) + ")"

PROCESS_RATIO = "vma:process_map_areas:ratio"
GROUP_RATIO = "vma:group_map_areas_max:ratio"
NODE_RATIO = "vma:node_map_areas_max:ratio"
PROCESS_DERIV = f"vma:process_map_areas:deriv{c.PREDICT_WINDOW}"
SECONDS_TO_LIMIT = "vma:process_map_areas:seconds_to_limit"
TOP_OBJECT_DERIV = f"vma:process_top_object_map_areas:deriv{c.LEAK_WINDOW}"
POD_RATIO = "vma:process_map_areas_ratio:by_pod"
POD_MAX_RATIO = "vma:pod_map_areas_max:ratio"
CONTAINER_MAX_RATIO = "vma:container_map_areas_max:ratio"

POD_RULES = (POD_RATIO, POD_MAX_RATIO, CONTAINER_MAX_RATIO)
RECORDED = (PROCESS_RATIO, GROUP_RATIO, NODE_RATIO, PROCESS_DERIV, SECONDS_TO_LIMIT, TOP_OBJECT_DERIV,
            *POD_RULES)

# Per-process labels that do not name a pod or container: max without() them leaves one
# series per pod, or per container once "container" is joined, with every target label
# (instance, job, cluster, ...).
PER_PROCESS_ONLY = "group, pid, comm, container_id"

# kube-state-metrics writes container_id as "<runtime>://<id>" (containerd://, cri-o://,
# docker://); the exporter's label is the bare id.
RUNTIME_PREFIX = "[a-z0-9.+-]+://(.+)"


def ksm(metric: str, *matchers: str) -> str:
    """A kube-state-metrics series: ``kube_pod_info{job="kube-state-metrics"}``."""
    return metric + "{" + ", ".join((c.KUBE_STATE_METRICS_SELECTOR, *matchers)) + "}"


def rules() -> list[dict]:
    return [
        {
            # Share of vm.max_map_count held by each exported process (top N plus every
            # process at or above per_process.min_limit_ratio).
            "record": PROCESS_RATIO,
            "expr": f"""\
vma_process_map_areas{sel()}
  / {IGNORING_PROCESS} group_left()
vma_node_map_areas_limit{sel()}
""",
        },
        {
            # The same for the busiest process of each group: covers every member, also
            # those beyond the per-process top N.
            "record": GROUP_RATIO,
            "expr": f"""\
vma_group_map_areas_max{sel()}
  / ignoring(group) group_left()
vma_node_map_areas_limit{sel()}
""",
        },
        {
            # The node's busiest watched process: the fleet view ranks nodes by it.
            "record": NODE_RATIO,
            "expr": f"max without(group) ({GROUP_RATIO}{sel()})\n",
        },
        {
            # Map areas gained per second, least squares over the prediction window.
            "record": PROCESS_DERIV,
            "expr": f"deriv(vma_process_map_areas{sel()}[{c.PREDICT_WINDOW}])\n",
        },
        {
            # Seconds until the limit at that trend; only for growing processes (a flat
            # or shrinking one never gets there, and dividing by 0 gives +Inf).
            "record": SECONDS_TO_LIMIT,
            "expr": f"""\
(
  vma_node_map_areas_limit{sel()}
    - {IGNORING_PROCESS} group_right()
  vma_process_map_areas{sel()}
)
  /
({PROCESS_DERIV}{sel()} > 0)
""",
        },
        {
            # The leak signature's trend: areas of the busiest backing object gained per
            # second. Its labels name the object.
            "record": TOP_OBJECT_DERIV,
            "expr": f"deriv(vma_process_top_object_map_areas{sel()}[{c.LEAK_WINDOW}])\n",
        },
        {
            # Per pod: the process ratio joined with kube-state-metrics' kube_pod_info,
            # whose "uid" label is the exporter's "pod_uid". max by () folds the
            # duplicates of several kube-state-metrics replicas. Pod UIDs are unique
            # across clusters, so the join needs no other label.
            "record": POD_RATIO,
            "expr": f"""\
{PROCESS_RATIO}{sel('pod_uid!=""')}
  * on(pod_uid) group_left(namespace, pod, node)
max by (pod_uid, namespace, pod, node) (
  label_replace({ksm("kube_pod_info")}, "pod_uid", "$1", "uid", "(.+)")
)
""",
        },
        {
            # Per pod: its busiest exported process. Series of a pod's containers and
            # processes fold into one per pod; after a container restart it continues.
            "record": POD_MAX_RATIO,
            "expr": f"max without({PER_PROCESS_ONLY}) ({POD_RATIO}{sel()})\n",
        },
        {
            # Per container (by name, so it continues across restarts): its busiest
            # exported process. kube_pod_container_info gives the name of a container ID;
            # only started containers have an ID (a waiting one has container_id="", and
            # several of those would be duplicates on the "one" side of the join: an error
            # for the whole rule). max by () folds several kube-state-metrics replicas.
            "record": CONTAINER_MAX_RATIO,
            "expr": f"""\
max without({PER_PROCESS_ONLY}) (
  {POD_RATIO}{sel('container_id!=""')}
    * on(container_id) group_left(container)
  max by (container_id, container) (
    label_replace({ksm("kube_pod_container_info", 'container_id!=""')}, "container_id", "$1", "container_id", "{RUNTIME_PREFIX}")
  )
)
""",
        },
    ]
