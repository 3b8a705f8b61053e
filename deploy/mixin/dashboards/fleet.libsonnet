// The fleet view: worst processes and nodes across instances and clusters, nodes with a low
// limit, hugepage exhaustion, exporter health.
//
// Counts use sum(x >= bool t) rather than count(x >= t): the first says 0 when nothing is
// over the line, the second says nothing at all.
local g = import '../lib/grafana.libsonnet';

{
  grafanaDashboards+:: {
    'vma-fleet.json':
      local config = $._config;
      local c = (import 'common.libsonnet')(config);
      local q = c.q;
      local cluster = config.clusterLabel;
      local ratio = q('vma:process_map_areas:ratio');
      local usable = '(%s - %s)' % [q('vma_node_hugepages_free'), q('vma_node_hugepages_reserved')];
      local redFrom1 = g.steps('green', [[1, 'red']]);
      local default = c.num(config.kernelDefaultMaxMapCount);
      local ratioCell = g.gaugeCell('Share of limit', 'percentunit', c.ratioSteps);

      local summary = [
        g.row('Fleet'),
        g.stat('Nodes', 'Exporter targets in the selection.', 'count(%s)' % q('up'), 'short'),
        g.stat('Exporters down',
               'Targets Prometheus cannot scrape: their map areas are not watched.',
               'sum(1 - %s)' % q('up'),
               'short',
               thresholds=redFrom1,
               noValue='0'),
        g.stat('Processes at or above %s' % c.pct(c.critical),
               'Processes at the critical share of vm.max_map_count.',
               'sum(%s >= bool %s)' % [ratio, c.num(c.critical)],
               'short',
               thresholds=redFrom1,
               noValue='0'),
        g.stat('Processes at or above %s' % c.pct(c.warning),
               'Processes at the warning share of vm.max_map_count.',
               'sum(%s >= bool %s)' % [ratio, c.num(c.warning)],
               'short',
               thresholds=g.steps('green', [[1, 'orange']]),
               noValue='0'),
        g.stat('Nodes below the kernel default',
               'Nodes whose vm.max_map_count is below %s.' % default,
               'sum(%s < bool %s)' % [q('vma_node_map_areas_limit'), default],
               'short',
               thresholds=redFrom1,
               noValue='0'),
        g.stat('Exhausted hugepage pools',
               'Configured hugepage pools with no usable page (free - reserved).',
               'sum((%s <= bool 0) * (%s > bool 0))' % [usable, q('vma_node_hugepages')],
               'short',
               thresholds=redFrom1,
               noValue='0'),
      ];

      local worst = [
        g.table('Worst processes',
                "The 20 processes holding the largest share of their node's "
                + 'vm.max_map_count. Click a PID for its process view.',
                [g.target('topk(20, %s)' % ratio)],
                'percentunit',
                columns=[
                  [cluster, 'Cluster'],
                  ['instance', 'Instance'],
                  ['comm', 'Command'],
                  ['pid', 'PID'],
                  ['group', 'Group'],
                  ['Value', 'Share of limit'],
                ],
                sortBy='Value',
                hidden=['job'],
                overrides=[ratioCell, c.processLink()],
                w=14,
                h=10),
        g.table('Worst nodes',
                'The 20 nodes whose busiest watched process holds the largest share of '
                + 'vm.max_map_count (group gauges: every process counts). Click an instance for '
                + 'its node view.',
                [g.target('topk(20, %s)' % q('vma:node_map_areas_max:ratio'))],
                'percentunit',
                columns=[[cluster, 'Cluster'], ['instance', 'Instance'], ['Value', 'Share of limit']],
                sortBy='Value',
                hidden=['job'],
                overrides=[ratioCell, c.nodeLink()],
                w=10,
                h=10),
        g.timeseries('Busiest process per node',
                     'Share of vm.max_map_count held by the busiest process of the '
                     + 'ten worst nodes.',
                     [g.target('topk(10, %s)' % q('vma:node_map_areas_max:ratio'),
                               '{{%s}} {{instance}}' % cluster)],
                     'percentunit',
                     thresholds=c.ratioSteps,
                     w=24,
                     h=8),
        g.table('Soonest exhaustion',
                'Processes growing towards the limit, soonest first: seconds to '
                + 'vm.max_map_count at the trend of the last %s.' % config.exhaustionPredictWindow,
                [g.target('bottomk(20, %s)' % q('vma:process_map_areas:seconds_to_limit'))],
                's',
                columns=[
                  [cluster, 'Cluster'],
                  ['instance', 'Instance'],
                  ['comm', 'Command'],
                  ['pid', 'PID'],
                  ['Value', 'Time to the limit'],
                ],
                sortBy='Value',
                descending=false,
                hidden=['job', 'group'],
                thresholds=c.timeLeftSteps,
                overrides=[
                  c.processLink(),
                  g.override('Time to the limit', {
                    color: { mode: 'thresholds' },
                    'custom.cellOptions': { type: 'color-text' },
                  }),
                ],
                w=12,
                h=8),
        g.table('Leak signatures',
                'Processes whose busiest backing object is still gaining areas (trend of '
                + 'the last %s); the alert fires from %s areas.'
                  % [config.leakWindow, c.num(config.leakMinAreas)],
                [g.target('topk(20, %s and %s > 0)'
                          % [
                            q('vma_process_top_object_map_areas'),
                            q('vma:process_top_object_map_areas:deriv' + config.leakWindow),
                          ])],
                'short',
                columns=[
                  ['instance', 'Instance'],
                  ['comm', 'Command'],
                  ['pid', 'PID'],
                  ['object', 'Object'],
                  ['Value', 'Areas'],
                ],
                sortBy='Value',
                hidden=['job', 'group'],
                overrides=[c.processLink()],
                w=12,
                h=8),
      ];

      local nodes = [
        g.row('Node limits and hugepages'),
        g.table('Lowest vm.max_map_count',
                'The 20 nodes with the lowest limit. Red: below the kernel default '
                + '%s; orange: below the configured minimum %s.'
                  % [default, c.num(c.minimumMaxMapCount)],
                [g.target('bottomk(20, %s)' % q('vma_node_map_areas_limit'))],
                'short',
                columns=[[cluster, 'Cluster'], ['instance', 'Instance'], ['Value', 'vm.max_map_count']],
                sortBy='Value',
                descending=false,
                hidden=['job'],
                thresholds=c.limitSteps,
                overrides=[
                  c.nodeLink(),
                  g.override('vm.max_map_count', {
                    color: { mode: 'thresholds' },
                    'custom.cellOptions': { type: 'color-background' },
                  }),
                ],
                w=12,
                h=8),
        g.table('Hugepage pools by usable pages',
                'Configured pools (nr_hugepages > 0) with the fewest usable '
                + 'pages (free - reserved): at 0 the next hugetlb mapping of '
                + 'that size fails.',
                [g.target('bottomk(20, %s and %s > 0)' % [usable, q('vma_node_hugepages')])],
                'short',
                columns=[
                  [cluster, 'Cluster'],
                  ['instance', 'Instance'],
                  ['pagesize_bytes', 'Page size'],
                  ['Value', 'Usable pages'],
                ],
                sortBy='Value',
                descending=false,
                hidden=['job'],
                thresholds=c.usablePagesSteps,
                overrides=[
                  c.nodeLink(),
                  g.override('Page size', { unit: 'bytes' }),
                  g.override('Usable pages', {
                    color: { mode: 'thresholds' },
                    'custom.cellOptions': { type: 'color-background' },
                  }),
                ],
                w=12,
                h=8),
        g.timeseries('Exporter collection duration',
                     'Slowest collection per cluster: one pass over /proc and /sys.',
                     [g.target('max by (%s) (%s)' % [cluster, q('vma_exporter_scrape_duration_seconds')],
                               '{{%s}}' % cluster)],
                     's',
                     w=12),
        g.timeseries('Exporter read errors',
                     'Process files the exporters could not read, per second, by '
                     + 'reason; permission errors mean a deployment without CAP_SYS_PTRACE.',
                     [g.target('sum by (%s, reason) (rate(%s[$__rate_interval]))'
                               % [cluster, q('vma_exporter_read_errors_total')],
                               '{{%s}} {{reason}}' % cluster)],
                     'cps',
                     w=12),
      ];

      g.dashboard(
        config,
        c.fleetUID,
        'Fleet',
        'Across instances and clusters: the processes and nodes closest to vm.max_map_count, growth towards it, '
        + 'leak signatures, nodes with a low limit, hugepage exhaustion.',
        c.variables(multi=true),
        summary + worst + nodes
      ),
  },
}
