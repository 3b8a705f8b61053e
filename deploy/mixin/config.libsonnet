// Every setting of the mixin: selectors, thresholds, durations, links, dashboard defaults.
//
// Override any of them where you import the mixin:
//   (import 'mixin.libsonnet') + { _config+:: { vmaExporterSelector: 'job="vma"' } }
// The repository's rendered files (python3 tools/render_mixin.py) use these defaults.
//
// Naming: thresholds end in Ratio, Areas or Count, look-back windows in Window, and every
// alert's `for:` duration in For. The end-to-end test caps every field ending in For to a
// few seconds (tools/render_mixin.jsonnet), so a new alert's duration must end in For too.
{
  _config+:: {
    // --- Selectors ----------------------------------------------------------------------

    // The series of vma-exporter, inserted between {} in every rule and dashboard query,
    // so nothing reads another job's series of the same name (a second exporter, a
    // federated copy). A ServiceMonitor names the job after the Service ("vma-exporter");
    // a PodMonitor names it "<namespace>/<podmonitor>".
    vmaExporterSelector: 'job="vma-exporter"',

    // kube-state-metrics, for the pod joins (kube_pod_info, kube_pod_container_info) of
    // the recording rules vma:process_map_areas_ratio:by_pod, vma:pod_map_areas_max:ratio
    // and vma:container_map_areas_max:ratio. kube-prometheus names its job "kube-state-metrics".
    kubeStateMetricsSelector: 'job="kube-state-metrics"',

    // The label that tells clusters apart, for the dashboards' hidden $cluster variable.
    // Series without it match too: the variable's "All" is the regex ".*".
    clusterLabel: 'cluster',

    // --- One process against vm.max_map_count -------------------------------------------

    // Share of vm.max_map_count held by one process, at two severities under one alert
    // name (as node-mixin does). The dashboards colour their cells at the same lines.
    mapAreasWarningRatio: 0.80,
    mapAreasCriticalRatio: 0.95,
    mapAreasWarningFor: '15m',
    // Short on purpose: at the limit mmap, mprotect and even munmap fail with ENOMEM (a
    // munmap in the middle of an area needs a split, and the split needs a new area), and
    // glibc's free() then leaks silently. Minutes matter.
    mapAreasCriticalFor: '2m',

    // Exhaustion predicted: at the least-squares trend over exhaustionPredictWindow
    // (predict_linear), the process reaches the limit within exhaustionHorizonHours.
    exhaustionPredictWindow: '1h',
    exhaustionHorizonHours: 4,
    // Quiet below this share: a young process ramping up from 1 % is no news, and a
    // straight line through its first minutes says little about hours ahead.
    exhaustionMinRatio: 0.5,
    exhaustionPredictedFor: '15m',

    // The leak signature: one backing object (a file, a shm object) mapped in this many
    // areas or more and still growing over leakWindow. Healthy programs map a library or
    // a jar in a handful of areas; thousands of areas of one object is a mapping made per
    // request and never unmapped.
    leakMinAreas: 1000,
    leakWindow: '15m',
    leakSignatureFor: '15m',

    // --- One process against its memory limits: ENOMEM's other two causes --------------

    // VmData against the soft RLIMIT_DATA and VmSize against the soft RLIMIT_AS: past them
    // mmap, brk and malloc fail with ENOMEM as they do at vm.max_map_count. A warning at a
    // share of the limit; critical once less than one ordinary allocation is left:
    // rlimitHeadroomBytes (1 MiB: glibc's largest mmap threshold step and the first chunk
    // of a new arena), which is where `vma-exporter check --pid` FAILs too.
    rlimitWarningRatio: 0.9,
    rlimitWarningFor: '15m',
    rlimitHeadroomBytes: 1048576,
    rlimitCriticalFor: '2m',

    // --- ENOMEM as it happens (the BPF source) ---------------------------------------------

    // A call that failed with ENOMEM in the last enomemWindow is the incident itself: the
    // alerts fire a minute after, naming the syscall and the cause judged in the kernel.
    enomemWindow: '5m',
    enomemFailuresFor: '1m',

    // --- Nodes ----------------------------------------------------------------------------

    // DEFAULT_MAX_MAP_COUNT in include/linux/mm.h (USHRT_MAX - MAPCOUNT_ELF_CORE_MARGIN).
    // Below it, something lowered the limit on purpose or by mistake (the DPDK incident: 3096).
    kernelDefaultMaxMapCount: 65530,
    // The minimum your workloads need; below it (but at or above the kernel default) an
    // info alert fires. Elasticsearch's bootstrap check asks 262144; some distributions
    // ship 1048576. null removes the alert.
    minMaxMapCount: 262144,
    maxMapCountFor: '5m',  // sysctls are applied early at boot; a few minutes covers that

    // A configured hugepage pool with no usable page (free - reserved <= 0): the next
    // hugetlb mapping of that size fails.
    hugePagesExhaustedFor: '10m',

    // --- The exporter itself --------------------------------------------------------------

    exporterDownFor: '5m',
    // Reads of process files denied (a deployment without CAP_SYS_PTRACE) over this window.
    permissionDeniedWindow: '10m',
    permissionDeniedFor: '15m',
    collectionIncompleteFor: '15m',  // --collect.timeout cut collections short this long
    // The last reload (SIGHUP, POST /-/reload) was refused and the exporter still serves the
    // previous config this long: as Prometheus' PrometheusConfigReloadFailed and the
    // Alertmanager mixin's AlertmanagerFailedReload. Long enough for a fix pushed right after.
    configReloadFailedFor: '10m',
    // A node file (vm.max_map_count, the boot time, the hugepage pools, mountinfo) has not
    // been read this long: every rule built on it is quiet, and that must not pass for "fine".
    nodeReadFailedFor: '10m',

    // --- Annotations ------------------------------------------------------------------------

    // runbook_url of every alert: this pattern with %s replaced by the alert's name in lower
    // case (the anchor GitHub gives the runbook's heading of that name), as kube-prometheus
    // sets runbookURLPattern for its mixins. Point it at your copy of docs/runbook.md.
    runbookURLPattern: 'https://github.com/vma-exporter/vma-exporter/blob/main/docs/runbook.md#%s',

    // --- Rule groups ----------------------------------------------------------------------

    // true: one group "vma-exporter" in prometheusAlerts, the recording rules first, then the
    // alerts; prometheusRules has no group. Prometheus evaluates a group's rules in order at
    // one timestamp, so the alerts read the ratios recorded in the same evaluation; separate
    // groups run on their own tickers in no fixed order, and an alert may read a ratio one
    // interval old. false: the usual split, recording rules in prometheusRules (group
    // "vma-exporter.rules"), alerts in prometheusAlerts (group "vma-exporter"), for tools
    // that load the two apart. Either way, load both: the alerts read the recorded ratios.
    oneRuleGroup: true,
    // Evaluation interval of the groups; null: Prometheus' global evaluation_interval.
    ruleGroupInterval: null,

    // --- Dashboards -----------------------------------------------------------------------

    dashboardTitlePrefix: 'vma-exporter / ',
    dashboardTags: ['vma-exporter'],
    dashboardRefresh: '1m',
    dashboardTimeFrom: 'now-6h',
    dashboardTimezone: '',  // '' is the viewer's browser; 'utc' for UTC
  },
}
