// What the three dashboards share: selectors, variables, thresholds, links.
//
// Thresholds come from _config, so a cell turns orange exactly where the warning alert
// starts. Every query selects with vmaExporterSelector and the variables $cluster, $job and
// $instance (the mixins' convention); the hidden cluster variable defaults to All (".*"),
// which also matches series that have no cluster label at all.
local g = import '../lib/grafana.libsonnet';
local promql = import '../lib/promql.libsonnet';

function(config) {
  local common = self,
  local sel = '%s, %s=~"$cluster", job=~"$job", instance=~"$instance"' % [config.vmaExporterSelector, config.clusterLabel],

  config: config,
  num: promql.num,
  pct: promql.pct,

  nodeUID: 'vma-node',
  processUID: 'vma-process',
  fleetUID: 'vma-fleet',

  // metric{<vmaExporterSelector>, cluster=~"$cluster", job=~"$job", instance=~"$instance"[, matchers]};
  // process=true adds the process view's group=~"$group", pid=~"$pid".
  q(metric, matchers=[], process=false)::
    metric + '{' + std.join(', ', [sel] + (if process then ['group=~"$group", pid=~"$pid"'] else []) + matchers) + '}',

  warning: config.mapAreasWarningRatio,
  critical: config.mapAreasCriticalRatio,
  ratioSteps: g.steps('green', [[common.warning, 'orange'], [common.critical, 'red']]),
  minimumMaxMapCount: if config.minMaxMapCount != null then config.minMaxMapCount else config.kernelDefaultMaxMapCount,
  limitSteps: g.steps('red', [[config.kernelDefaultMaxMapCount, 'orange'], [common.minimumMaxMapCount, 'green']]),
  // Fewer than 1 usable hugepage is red; one is already a warning sign in a busy pool.
  usablePagesSteps: g.steps('red', [[1, 'orange'], [2, 'green']]),
  horizonSeconds: config.exhaustionHorizonHours * 3600,
  timeLeftSteps: g.steps('red', [[common.horizonSeconds, 'orange'], [4 * common.horizonSeconds, 'green']]),

  // datasource, hidden cluster, job, instance (and group, pid for the process view). The
  // fleet view selects many jobs and instances at once (multi); the node and process views
  // one instance each.
  variables(multi, process=false)::
    local build = 'vma_exporter_build_info';
    [
      g.datasourceVariable(),
      g.queryVariable('cluster',
                      'Cluster',
                      'label_values(%s{%s}, %s)' % [build, config.vmaExporterSelector, config.clusterLabel],
                      hide=2,
                      multi=true,
                      includeAll=true),
      g.queryVariable('job',
                      'Job',
                      'label_values(%s{%s, %s=~"$cluster"}, job)' % [build, config.vmaExporterSelector, config.clusterLabel],
                      multi=multi,
                      includeAll=multi),
      g.queryVariable('instance',
                      'Instance',
                      'label_values(%s{%s, %s=~"$cluster", job=~"$job"}, instance)' % [build, config.vmaExporterSelector, config.clusterLabel],
                      multi=multi,
                      includeAll=multi),
    ] + (
      if process then [
        g.queryVariable('group', 'Group', 'label_values(%s, group)' % common.q('vma_process_map_areas')),
        g.queryVariable('pid', 'PID', 'label_values(%s, pid)' % common.q('vma_process_map_areas', ['group=~"$group"'])),
      ] else []
    ),

  // A table cell linking to the process view of the row's process.
  processLink(header='PID')::
    g.link(header,
           'Process view: map areas, kinds, top object, memory',
           '/d/%s/?${datasource:queryparam}&${cluster:queryparam}' % common.processUID
           + '&var-job=${__data.fields.job}&var-instance=${__data.fields.instance}'
           + '&var-group=${__data.fields.group}&var-pid=${__data.fields.pid}&${__url_time_range}'),

  nodeLink(header='Instance')::
    g.link(header,
           'Node view: limit, processes, hugepages',
           '/d/%s/?${datasource:queryparam}&${cluster:queryparam}' % common.nodeUID
           + '&var-job=${__data.fields.job}&var-instance=${__data.fields.instance}&${__url_time_range}'),
}
