// Alerting rules. Every one has a severity (critical, warning or info), a static summary
// and a templated description naming where and how much; groups.libsonnet adds its
// runbook_url from runbookURLPattern.
//
// Names share the prefix "Vma". Descriptions of per-process alerts name instance, group,
// pid, comm and the figure; node and exporter alerts have no process to name and give the
// instance and the figure. Thresholds and durations come from config.libsonnet.
local promql = import '../lib/promql.libsonnet';

{
  local c = $._config,
  local p = promql.params(c),

  local who = 'process {{ $labels.comm }} (pid {{ $labels.pid }}, group {{ $labels.group }}) on {{ $labels.instance }}',
  local consequence = "At the limit mmap, mprotect and even munmap fail with ENOMEM, and memory that glibc's free() cannot return stays leaked.",
  local thenConsequence(severity) = if severity == 'critical' then ' ' + consequence else '',

  local processNearLimit(severity, ratio, forDuration) = {
    alert: 'VmaProcessMapAreasNearLimit',
    expr: |||
      vma:process_map_areas:ratio{%s} >= %s
    ||| % [c.vmaExporterSelector, promql.num(ratio)],
    'for': forDuration,
    labels: { severity: severity },
    annotations: {
      summary: 'A process holds %s or more of the map areas vm.max_map_count allows.' % promql.pct(ratio),
      description: 'The %s holds {{ $value | humanizePercentage }} of the map areas vm.max_map_count allows.' % who
                   + thenConsequence(severity),
    },
  },

  // The group gauge covers every member, also processes without per-process series (beyond
  // top_n, or per-process series turned off). When an exported process explains the figure,
  // VmaProcessMapAreasNearLimit already names it: "unless" keeps one alert.
  local groupNearLimit(severity, ratio, forDuration) = {
    alert: 'VmaGroupMapAreasNearLimit',
    expr: |||
      vma:group_map_areas_max:ratio{%(sel)s} >= %(ratio)s
        unless %(ignoring)s
      vma:process_map_areas:ratio{%(sel)s} >= %(ratio)s
    ||| % { sel: c.vmaExporterSelector, ratio: promql.num(ratio), ignoring: p.ignoringProcessInGroup },
    'for': forDuration,
    labels: { severity: severity },
    annotations: {
      summary: 'A process without per-process series holds %s or more of the map areas vm.max_map_count allows.'
               % promql.pct(ratio),
      description: 'The busiest process of group {{ $labels.group }} on {{ $labels.instance }} holds '
                   + '{{ $value | humanizePercentage }} of the map areas vm.max_map_count allows. It has no '
                   + 'per-process series (pid and comm unknown here: outside per_process.top_n), so find it on the node.'
                   + thenConsequence(severity),
    },
  },

  // VmData against RLIMIT_DATA (data) or VmSize against RLIMIT_AS (as): a warning at a
  // share, critical once less than one ordinary allocation (rlimitHeadroomBytes) is left.
  // An unlimited limit is +Inf: its share is 0 and its headroom +Inf, never firing.
  local rlimitNear(name, usage, limit, limitName, usageName, calls) = [
    {
      alert: name,
      expr: |||
        %(usage)s{%(sel)s}
          / %(limit)s{%(sel)s} >= %(ratio)s
      ||| % { usage: usage, limit: limit, sel: c.vmaExporterSelector, ratio: promql.num(c.rlimitWarningRatio) },
      'for': c.rlimitWarningFor,
      labels: { severity: 'warning' },
      annotations: {
        summary: 'A process uses %s or more of its soft %s.' % [promql.pct(c.rlimitWarningRatio), limitName],
        description: 'The %s has %s at {{ $value | humanizePercentage }} of its soft %s: past it %s fail '
                     % [who, usageName, limitName, calls] + 'with ENOMEM.',
      },
    },
    {
      alert: name,
      expr: |||
        %(limit)s{%(sel)s}
          - %(usage)s{%(sel)s} < %(headroom)s
      ||| % { usage: usage, limit: limit, sel: c.vmaExporterSelector, headroom: promql.num(c.rlimitHeadroomBytes) },
      'for': c.rlimitCriticalFor,
      labels: { severity: 'critical' },
      annotations: {
        summary: 'A process has less than one ordinary allocation left under its soft %s.' % limitName,
        description: 'The %s has {{ $value | humanize1024 }}B left between its %s and its soft %s: %s '
                     % [who, usageName, limitName, calls] + 'of more than that fail with ENOMEM now.',
      },
    },
  ],

  vmaAlertingRules+:: [
                        processNearLimit('warning', c.mapAreasWarningRatio, c.mapAreasWarningFor),
                        processNearLimit('critical', c.mapAreasCriticalRatio, c.mapAreasCriticalFor),
                        groupNearLimit('warning', c.mapAreasWarningRatio, c.mapAreasWarningFor),
                        groupNearLimit('critical', c.mapAreasCriticalRatio, c.mapAreasCriticalFor),
                      ] + rlimitNear('VmaProcessDataNearRlimit',
                                     'vma_process_data_bytes',
                                     'vma_process_rlimit_data_bytes',
                                     'RLIMIT_DATA',
                                     'VmData',
                                     'brk, malloc and private writable mmaps')
                      + rlimitNear('VmaProcessAddressSpaceNearRlimit',
                                   'vma_process_virtual_bytes',
                                   'vma_process_rlimit_as_bytes',
                                   'RLIMIT_AS',
                                   'VmSize',
                                   'new mappings (mmap, brk, mremap, shmat)')
                      + [
                        {
                          // The BPF source counts each ENOMEM as it happens (exporter/sources/bpf.py). A process's
                          // series appears at its first failure: increase() cannot see that first one, so a
                          // series that did not exist a window ago counts too.
                          alert: 'VmaProcessEnomemFailures',
                          expr: |||
                            increase(vma_process_enomem_failures_total{%(vmaExporterSelector)s}[%(enomemWindow)s]) > 0
                              or
                            (
                              vma_process_enomem_failures_total{%(vmaExporterSelector)s}
                                unless
                              vma_process_enomem_failures_total{%(vmaExporterSelector)s} offset %(enomemWindow)s
                            )
                          ||| % p,
                          'for': c.enomemFailuresFor,
                          labels: { severity: 'critical' },
                          annotations: {
                            summary: 'Memory-mapping calls of a process fail with ENOMEM.',
                            description: ('{{ $value | humanize }} {{ $labels.syscall }} calls of the %s failed with ENOMEM in the '
                                          + 'last %s, cause {{ $labels.cause }} (map_count: at vm.max_map_count; rlimit_data, '
                                          + 'rlimit_as: at that soft limit; memory: none of those).') % [who, c.enomemWindow],
                          },
                        },
                        {
                          // Members without per-process series (beyond top_n) fail too; when an exported member
                          // explains the figure, VmaProcessEnomemFailures names it already.
                          alert: 'VmaGroupEnomemFailures',
                          expr: |||
                            (
                              increase(vma_group_enomem_failures_total{%(vmaExporterSelector)s}[%(enomemWindow)s]) > 0
                                or
                              (
                                vma_group_enomem_failures_total{%(vmaExporterSelector)s}
                                  unless
                                vma_group_enomem_failures_total{%(vmaExporterSelector)s} offset %(enomemWindow)s
                              )
                            )
                              unless %(ignoringProcessInGroup)s
                            (
                              increase(vma_process_enomem_failures_total{%(vmaExporterSelector)s}[%(enomemWindow)s]) > 0
                                or
                              vma_process_enomem_failures_total{%(vmaExporterSelector)s}
                                unless
                              vma_process_enomem_failures_total{%(vmaExporterSelector)s} offset %(enomemWindow)s
                            )
                          ||| % p,
                          'for': c.enomemFailuresFor,
                          labels: { severity: 'critical' },
                          annotations: {
                            summary: 'Memory-mapping calls of a process without per-process series fail with ENOMEM.',
                            description: ('{{ $value | humanize }} {{ $labels.syscall }} calls of processes of group {{ $labels.group }} '
                                          + 'on {{ $labels.instance }} failed with ENOMEM in the last %s, cause {{ $labels.cause }}. '
                                          + 'The failing process has no per-process series (outside per_process.top_n, or exited), so '
                                          + 'find it on the node.') % c.enomemWindow,
                          },
                        },
                        {
                          // The last clause keeps a process sitting flat at the limit out: its prediction equals
                          // the limit, but it is not heading anywhere (VmaProcessMapAreasNearLimit covers it).
                          alert: 'VmaProcessMapAreasExhaustionPredicted',
                          expr: |||
                            vma:process_map_areas:ratio{%(vmaExporterSelector)s} >= %(exhaustionMinRatio)s
                              and
                            (
                              predict_linear(vma_process_map_areas{%(vmaExporterSelector)s}[%(exhaustionPredictWindow)s], %(exhaustionHorizonSeconds)s)
                                >= %(ignoringProcess)s group_left()
                              vma_node_map_areas_limit{%(vmaExporterSelector)s}
                            )
                              and
                            vma:process_map_areas:deriv%(exhaustionPredictWindow)s{%(vmaExporterSelector)s} > 0
                          ||| % p,
                          'for': c.exhaustionPredictedFor,
                          labels: { severity: 'warning' },
                          annotations: {
                            summary: 'A process will run out of map areas within %(exhaustionHorizonHours)s hours at its current trend.' % p,
                            description: ('The %s holds {{ $value | humanizePercentage }} of vm.max_map_count and, at its trend over the '
                                          + 'last %s, reaches the limit within %s hours.')
                                         % [who, c.exhaustionPredictWindow, p.exhaustionHorizonHours],
                          },
                        },
                        {
                          alert: 'VmaProcessMapAreasLeakSignature',
                          expr: |||
                            vma_process_top_object_map_areas{%(vmaExporterSelector)s} >= %(leakMinAreas)s
                              and
                            vma:process_top_object_map_areas:deriv%(leakWindow)s{%(vmaExporterSelector)s} > 0
                          ||| % p,
                          'for': c.leakSignatureFor,
                          labels: { severity: 'warning' },
                          annotations: {
                            summary: 'One object is mapped in %(leakMinAreas)s or more areas of a process, and still more.' % p,
                            description: ('The %s maps {{ $labels.object }} in {{ $value }} areas, more than %s ago: a mapping made '
                                          + 'again and again and never unmapped.') % [who, c.leakWindow],
                          },
                        },
                        {
                          alert: 'VmaNodeMaxMapCountBelowDefault',
                          expr: |||
                            vma_node_map_areas_limit{%(vmaExporterSelector)s} < %(kernelDefaultMaxMapCount)s
                          ||| % p,
                          'for': c.maxMapCountFor,
                          labels: { severity: 'warning' },
                          annotations: {
                            summary: 'vm.max_map_count is below the kernel default of %(kernelDefaultMaxMapCount)s.' % p,
                            description: ('vm.max_map_count on {{ $labels.instance }} is {{ $value }}, below the kernel default of '
                                          + '%(kernelDefaultMaxMapCount)s: processes fail with ENOMEM after that many map areas, long '
                                          + 'before memory runs out.') % p,
                          },
                        },
                      ] + (
    if c.minMaxMapCount == null then [] else [{
      // Not below the default too: VmaNodeMaxMapCountBelowDefault covers that node already.
      alert: 'VmaNodeMaxMapCountBelowMinimum',
      expr: |||
        vma_node_map_areas_limit{%(vmaExporterSelector)s} >= %(kernelDefaultMaxMapCount)s < %(minMaxMapCount)s
      ||| % p,
      'for': c.maxMapCountFor,
      labels: { severity: 'info' },
      annotations: {
        summary: 'vm.max_map_count is below the configured minimum of %(minMaxMapCount)s.' % p,
        description: ('vm.max_map_count on {{ $labels.instance }} is {{ $value }}, below the minimum of '
                      + "%(minMaxMapCount)s this fleet's workloads are configured to need.") % p,
      },
    }]
  ) + [
    {
      alert: 'VmaNodeHugePagesExhausted',
      expr: |||
        (vma_node_hugepages_free{%(vmaExporterSelector)s} - vma_node_hugepages_reserved{%(vmaExporterSelector)s}) <= 0
          and
        vma_node_hugepages{%(vmaExporterSelector)s} > 0
      ||| % p,
      'for': c.hugePagesExhaustedFor,
      labels: { severity: 'warning' },
      annotations: {
        summary: 'A configured hugepage pool has no usable page left.',
        description: 'The pool of {{ $labels.pagesize_bytes | humanize1024 }}B hugepages on {{ $labels.instance }} '
                     + 'has {{ $value }} usable pages (free - reserved) though pages are configured: the next '
                     + 'hugetlb mapping of that size fails.',
      },
    },
    {
      alert: 'VmaExporterDown',
      expr: |||
        up{%(vmaExporterSelector)s} == 0
      ||| % p,
      'for': c.exporterDownFor,
      labels: { severity: 'warning' },
      annotations: {
        summary: 'Prometheus cannot scrape vma-exporter.',
        description: ('vma-exporter on {{ $labels.instance }} has not been scraped for %(exporterDownFor)s: map '
                      + 'areas on that node are not watched.') % p,
      },
    },
    {
      alert: 'VmaExporterPermissionDenied',
      expr: |||
        increase(vma_exporter_read_errors_total{%(vmaExporterSelector)s, reason="permission"}[%(permissionDeniedWindow)s]) > 0
      ||| % p,
      'for': c.permissionDeniedFor,
      labels: { severity: 'warning' },
      annotations: {
        summary: "vma-exporter is denied reading processes' map areas.",
        description: ('vma-exporter on {{ $labels.instance }} was denied {{ $value | humanize }} reads of process '
                      + 'files in the last %(permissionDeniedWindow)s: without CAP_SYS_PTRACE (or root) it cannot '
                      + "read /proc/PID/maps of other users' processes, which then go uncounted.") % p,
      },
    },
    {
      // The value is the last collection's duration: the figure to compare with the timeout.
      alert: 'VmaExporterCollectionIncomplete',
      expr: |||
        vma_exporter_scrape_duration_seconds{%(vmaExporterSelector)s}
          and
        vma_exporter_collection_complete{%(vmaExporterSelector)s} == 0
      ||| % p,
      'for': c.collectionIncompleteFor,
      labels: { severity: 'info' },
      annotations: {
        summary: 'vma-exporter collections are cut short by --collect.timeout.',
        description: 'vma-exporter on {{ $labels.instance }} stops its collections at --collect.timeout (the last '
                     + 'took {{ $value | humanizeDuration }}) before it has read every process: the processes it '
                     + 'did not reach are missing.',
      },
    },
    {
      // A refused reload leaves the previous config serving (exporter/reload.py). The value is
      // the age of that config: how long the fleet has been running something else than pushed.
      alert: 'VmaExporterConfigReloadFailed',
      expr: |||
        time() - vma_exporter_config_last_reload_success_timestamp_seconds{%(vmaExporterSelector)s}
          and
        vma_exporter_config_last_reload_successful{%(vmaExporterSelector)s} == 0
      ||| % p,
      'for': c.configReloadFailedFor,
      labels: { severity: 'warning' },
      annotations: {
        summary: 'vma-exporter failed to reload its configuration.',
        description: 'vma-exporter on {{ $labels.instance }} refused its last configuration reload and keeps '
                     + 'serving the configuration it loaded {{ $value | humanizeDuration }} ago: changes to the '
                     + 'targets config or the web config since then are not in effect.',
      },
    },
    {
      // exporter/node.py: a node file that legitimately has no data (no hugetlb, no NUMA) reads
      // as 1; 0 is a failure. Without max_map_count every ratio rule and near-limit alert goes
      // quiet; without the boot time the start times are left out; without the pools or
      // mountinfo the hugepage alerts and the hugetlb breakdown are wrong or missing.
      alert: 'VmaExporterNodeReadFailed',
      expr: |||
        vma_exporter_node_read_success{%(vmaExporterSelector)s} == 0
      ||| % p,
      'for': c.nodeReadFailedFor,
      labels: { severity: 'warning' },
      annotations: {
        summary: 'vma-exporter cannot read one of the node files its figures rest on.',
        description: ('vma-exporter on {{ $labels.instance }} has not read the node file {{ $labels.file }} for '
                      + '%s: what depends on it (the map area limit and every ratio alert, process start '
                      + 'times, hugepage pools, hugetlbfs mounts) is missing, and its alerts cannot fire.')
                     % c.nodeReadFailedFor,
      },
    },
  ],
}
