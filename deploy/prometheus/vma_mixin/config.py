"""The one place for selectors, thresholds and durations of every rule.

Edit here, then run ``python3 tools/generate.py``: it rewrites
deploy/prometheus/vma-exporter.rules.yml, deploy/kubernetes/prometheusrule.yaml and
grafana/dashboards/*.json (the dashboards colour their cells with the same
thresholds). The tests fail while the checked-in files differ from a fresh
generation, so an edit here cannot silently miss one of them.
"""

# --- Selectors -------------------------------------------------------------------------------

# The Prometheus job that scrapes vma-exporter. Every rule selects with SELECTOR, so no rule
# ever reads another job's series of the same name (a second exporter, a federated copy).
# On Kubernetes a ServiceMonitor names the job after the Service (here: "vma-exporter");
# a PodMonitor names it "<namespace>/<podmonitor>": change JOB (or relabel) to match.
JOB = "vma-exporter"
SELECTOR = f'job="{JOB}"'

# kube-state-metrics, for the pod joins (kube_pod_info, kube_pod_container_info). Only the
# pod recording rules use it: vma:process_map_areas_ratio:by_pod, vma:pod_map_areas_max:ratio
# and vma:container_map_areas_max:ratio.
KUBE_STATE_METRICS_SELECTOR = 'job="kube-state-metrics"'

# Labels the exporter puts on per-process series (exporter/metrics.py, PROCESS_LABELS).
# Node series lack them: a process series is divided by its node's limit *ignoring* these,
# so every other target label (instance, job, cluster, ...) must match: no label list
# to keep in step with the scrape config.
PROCESS_LABELS = ("group", "pid", "comm", "container_id", "pod_uid")

# --- One process against vm.max_map_count ----------------------------------------------------

# Share of vm.max_map_count held by one process (node_exporter's mixin alerts at two
# severities under one name in the same way).
WARNING_RATIO = 0.80
CRITICAL_RATIO = 0.95
WARNING_FOR = "15m"
# Short on purpose: at the limit mmap, mprotect and even munmap fail with ENOMEM (a munmap
# in the middle of an area needs a split, and the split needs a new area), and glibc's
# free() then leaks silently. Minutes matter.
CRITICAL_FOR = "2m"

# Exhaustion predicted: at the trend fitted over PREDICT_WINDOW (predict_linear, i.e. a
# least-squares line), the process reaches the limit within PREDICT_HORIZON_HOURS.
PREDICT_WINDOW = "1h"
PREDICT_HORIZON_HOURS = 4
# Quiet below this share: a young process ramping up from 1 % is no news, and a straight
# line through its first minutes says little about hours ahead.
PREDICT_MIN_RATIO = 0.5
PREDICT_FOR = "15m"

# The leak signature: one backing object (a file, a shm object) mapped in this many
# areas or more and still growing over LEAK_WINDOW. Healthy programs map a library or a
# jar in a handful of areas; thousands of areas of one object is a mapping made per
# request and never unmapped.
LEAK_MIN_AREAS = 1000
LEAK_WINDOW = "15m"
LEAK_FOR = "15m"

# --- Nodes ------------------------------------------------------------------------------------

# DEFAULT_MAX_MAP_COUNT in include/linux/mm.h (USHRT_MAX - MAPCOUNT_ELF_CORE_MARGIN).
# Below it, something lowered the limit on purpose or by mistake (the DPDK incident: 3096).
KERNEL_DEFAULT_MAX_MAP_COUNT = 65530
# The minimum your workloads need; below it (but at or above the kernel default) an info
# alert fires. Elasticsearch's bootstrap check asks 262144; some distributions ship
# 1048576. None removes the alert.
MIN_MAX_MAP_COUNT: int | None = 262144
NODE_LIMIT_FOR = "5m"  # sysctls are applied early at boot; a few minutes covers that

# A configured hugepage pool with no usable page (free - reserved <= 0): the next hugetlb
# mapping fails.
HUGEPAGES_FOR = "10m"

# --- The exporter itself ----------------------------------------------------------------------

EXPORTER_DOWN_FOR = "5m"
# Reads of process files denied (a deployment without CAP_SYS_PTRACE) over this window.
READ_ERRORS_WINDOW = "10m"
READ_ERRORS_FOR = "15m"
INCOMPLETE_FOR = "15m"  # --collect.timeout cut collections short this long
# The last reload (SIGHUP, POST /-/reload) was refused and the exporter still serves the
# previous config this long: as Prometheus' PrometheusConfigReloadFailed and the
# Alertmanager mixin's AlertmanagerFailedReload. Long enough for a fix pushed right after.
RELOAD_FAILED_FOR = "10m"

# --- Annotations -------------------------------------------------------------------------------

# runbook_url of every alert is RUNBOOK_URL + "#" + the alert name in lower case (the
# anchor GitHub gives the runbook's heading of that name). Point it at your copy.
RUNBOOK_URL = "https://github.com/vma-exporter/vma-exporter/blob/main/docs/runbook.md"

# --- Rule groups -------------------------------------------------------------------------------

# Evaluation interval of both groups; None uses Prometheus' global evaluation_interval.
GROUP_INTERVAL: str | None = None
