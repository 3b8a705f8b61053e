// The node view: the limit, processes ranked by usage, map areas over time against the
// limit line, groups, hugepage pools per size and NUMA node, exporter health.
local g = import '../lib/grafana.libsonnet';

{
  grafanaDashboards+:: {
    'vma-node.json':
      local c = (import 'common.libsonnet')($._config);
      local q = c.q;
      local limit = q('vma_node_map_areas_limit');
      local warningLine = 'warning (%s)' % c.pct(c.warning);
      local upMappings = [{ type: 'value', options: {
        '0': { text: 'down', color: 'red' },
        '1': { text: 'up', color: 'green' },
      } }];
      local completeMappings = [{ type: 'value', options: {
        '0': { text: 'cut short', color: 'orange' },
        '1': { text: 'complete', color: 'green' },
      } }];
      local ratioCell = g.gaugeCell('Share of limit', 'percentunit', c.ratioSteps);

      local overview = [
        g.row('Map areas'),
        g.stat('vm.max_map_count',
               'The most map areas one process may hold on this node. Red: below the '
               + "kernel default; orange: below the fleet's configured minimum.",
               limit,
               'short',
               thresholds=c.limitSteps),
        g.stat('Busiest process',
               'Share of vm.max_map_count held by the watched process with the most map '
               + 'areas, exported or not (from the group gauges).',
               q('vma:node_map_areas_max:ratio'),
               'percentunit',
               thresholds=c.ratioSteps),
        g.stat('Processes at or above %s' % c.pct(c.warning),
               'Exported processes holding at least the warning share of vm.max_map_count.',
               'sum(%s >= bool %s)' % [q('vma:process_map_areas:ratio'), c.num(c.warning)],
               'short',
               thresholds=g.steps('green', [[1, 'orange']]),
               noValue='0'),
        g.stat('Processes at or above %s' % c.pct(c.critical),
               'Exported processes holding at least the critical share: at the limit munmap fails and memory leaks.',
               'sum(%s >= bool %s)' % [q('vma:process_map_areas:ratio'), c.num(c.critical)],
               'short',
               thresholds=g.steps('green', [[1, 'red']]),
               noValue='0'),
        g.stat('Growing towards the limit',
               'Exported processes whose map areas grow (least-squares trend '
               + 'of the last hour; vma:process_map_areas:seconds_to_limit exists '
               + 'only for them).',
               'count(%s)' % q('vma:process_map_areas:seconds_to_limit'),
               'short',
               noValue='0'),
        g.stat('Processes watched',
               "Processes matched by the exporter's targets config in the last "
               + 'collection; only the top N and those near the limit get per-process series.',
               q('vma_exporter_processes_watched'),
               'short'),
      ];

      local processes = [
        g.table('Processes ranked by map areas',
                'Exported processes (top N by map areas, plus every process '
                + 'near the limit), busiest first. Click a PID for its process view.',
                [
                  g.target(q('vma:process_map_areas:ratio')),
                  g.target(q('vma_process_map_areas')),
                  g.target(q('vma_process_virtual_bytes')),
                  g.target(q('vma_process_resident_bytes')),
                ],
                'short',
                columns=[
                  ['comm', 'Command'],
                  ['pid', 'PID'],
                  ['group', 'Group'],
                  ['Value #A', 'Share of limit'],
                  ['Value #B', 'Map areas'],
                  ['Value #C', 'VIRT'],
                  ['Value #D', 'RES'],
                ],
                sortBy='Value #B',
                w=24,
                h=9,
                overrides=[
                  ratioCell,
                  g.override('VIRT', { unit: 'bytes' }),
                  g.override('RES', { unit: 'bytes' }),
                  c.processLink(),
                ]),
        g.timeseries('Map areas against the limit',
                     'Map areas of the ten busiest exported processes, with '
                     + 'vm.max_map_count and the warning line at %s of it.' % c.pct(c.warning),
                     [
                       g.target('topk(10, %s)' % q('vma_process_map_areas'), '{{comm}} ({{pid}})'),
                       g.target(limit, 'vm.max_map_count'),
                       g.target('%s * %s' % [c.num(c.warning), limit], warningLine),
                     ],
                     'short',
                     w=16,
                     h=9,
                     overrides=[
                       g.override('vm.max_map_count', {
                         color: { mode: 'fixed', fixedColor: 'red' },
                         'custom.lineStyle': { fill: 'dash', dash: [10, 10] },
                       }),
                       g.override(warningLine, {
                         color: { mode: 'fixed', fixedColor: 'orange' },
                         'custom.lineStyle': { fill: 'dash', dash: [4, 8] },
                       }),
                     ]),
        g.timeseries('Busiest process per group',
                     "Share of vm.max_map_count held by each group's busiest "
                     + 'process (every member counts, exported or not); the ten highest groups.',
                     [g.target('topk(10, %s)' % q('vma:group_map_areas_max:ratio'), '{{group}}')],
                     'percentunit',
                     w=8,
                     h=9,
                     thresholds=c.ratioSteps),
        g.table('Top backing object per process',
                'For each exported process, the file or shared-memory object '
                + 'mapped in the most areas. Thousands of areas of one object is '
                + 'the leak signature.',
                [g.target(q('vma_process_top_object_map_areas'))],
                'short',
                columns=[
                  ['comm', 'Command'],
                  ['pid', 'PID'],
                  ['group', 'Group'],
                  ['object', 'Object'],
                  ['Value', 'Areas'],
                ],
                sortBy='Value',
                w=12,
                h=8,
                overrides=[c.processLink()]),
        g.table('Groups',
                "Every group of the targets config: members, the busiest member's map areas, and sums "
                + 'over all members.',
                [
                  g.target(q('vma_group_processes')),
                  g.target(q('vma_group_map_areas_max')),
                  g.target(q('vma_group_map_areas')),
                  g.target(q('vma_group_resident_bytes')),
                  g.target(q('vma_group_hugetlb_bytes')),
                ],
                'short',
                columns=[
                  ['group', 'Group'],
                  ['Value #A', 'Processes'],
                  ['Value #B', 'Max map areas'],
                  ['Value #C', 'Map areas (sum)'],
                  ['Value #D', 'RES (sum)'],
                  ['Value #E', 'hugetlb (sum)'],
                ],
                sortBy='Value #B',
                w=12,
                h=8,
                overrides=[g.override('RES (sum)', { unit: 'bytes' }), g.override('hugetlb (sum)', { unit: 'bytes' })]),
        g.timeseries('ENOMEM failures on the node',
                     'Calls of mmap, munmap, mprotect, mremap, brk and shmat that failed with ENOMEM, by '
                     + 'syscall and the cause judged in the kernel (map_count: at vm.max_map_count; '
                     + 'rlimit_data, rlimit_as: at that limit; memory: none of those). Counted as they '
                     + 'happen by --collect.source=bpf, every process of the node included; empty with the '
                     + 'procfs source.',
                     [g.target('increase(%s[$__rate_interval])' % q('vma_node_enomem_failures_total'),
                               '{{syscall}} ({{cause}})')],
                     'short',
                     w=12,
                     h=8),
        g.table('ENOMEM failures per group',
                'Failures of each group since the exporter started, members that exited included, by syscall and cause.',
                [g.target(q('vma_group_enomem_failures_total'))],
                'short',
                columns=[
                  ['group', 'Group'],
                  ['syscall', 'Syscall'],
                  ['cause', 'Cause'],
                  ['Value', 'Failures'],
                ],
                sortBy='Value',
                w=12,
                h=8),
      ];

      local pool = '{{pagesize_bytes}} B pages';
      local hugepages = [
        g.row('Hugepages'),
        g.timeseries('Hugepage pools',
                     'Node-wide pools per page size: configured (nr_hugepages), free, reserved '
                     + 'for mappings not yet faulted in, surplus, and usable = free - reserved '
                     + '(what a new mapping can get).',
                     [
                       g.target(q('vma_node_hugepages'), 'configured, ' + pool),
                       g.target(q('vma_node_hugepages_free'), 'free, ' + pool),
                       g.target(q('vma_node_hugepages_reserved'), 'reserved, ' + pool),
                       g.target(q('vma_node_hugepages_surplus'), 'surplus, ' + pool),
                       g.target('%s - %s' % [q('vma_node_hugepages_free'), q('vma_node_hugepages_reserved')],
                                'usable, ' + pool),
                     ],
                     'short',
                     w=12),
        g.timeseries('Hugepage pools per NUMA node',
                     "Configured and free hugepages of each NUMA node's pool, per "
                     + 'page size (a process bound to one node can use only that '
                     + "node's pages).",
                     [
                       g.target(q('vma_node_numa_hugepages'), 'configured, node {{numa_node}}, ' + pool),
                       g.target(q('vma_node_numa_hugepages_free'), 'free, node {{numa_node}}, ' + pool),
                     ],
                     'short',
                     w=12),
      ];

      local exporter = [
        g.row('Exporter'),
        g.stat('Scrape',
               'Whether Prometheus reaches the exporter (up).',
               q('up'),
               'none',
               mappings=upMappings,
               thresholds=g.steps('red', [[1, 'green']]),
               w=3,
               h=8),
        g.stat('Last collection',
               'Whether the last collection read every watched process, or '
               + '--collect.timeout cut it short.',
               q('vma_exporter_collection_complete'),
               'none',
               mappings=completeMappings,
               thresholds=g.steps('orange', [[1, 'green']]),
               w=3,
               h=8),
        g.timeseries('Collection duration',
                     'Seconds one pass over /proc and /sys took.',
                     [g.target(q('vma_exporter_scrape_duration_seconds'), 'duration')],
                     's',
                     w=6,
                     h=8),
        g.timeseries('Processes',
                     'Processes examined, matched by the targets config, and given per-process series.',
                     [
                       g.target(q('vma_exporter_processes_scanned'), 'scanned'),
                       g.target(q('vma_exporter_processes_watched'), 'watched'),
                       g.target(q('vma_exporter_processes_exported'), 'exported'),
                     ],
                     'short',
                     w=6,
                     h=8),
        g.timeseries('Read errors',
                     'Process files the exporter could not read, per second, by reason. '
                     + 'permission: no CAP_SYS_PTRACE; vanished: processes that exited while read (normal).',
                     [g.target('rate(%s[$__rate_interval])' % q('vma_exporter_read_errors_total'), '{{reason}}')],
                     'cps',
                     w=6,
                     h=8),
      ];

      g.dashboard(
        $._config,
        c.nodeUID,
        'Node',
        "Map areas (VMAs) of one node's processes against vm.max_map_count, hugepage pools, exporter health.",
        c.variables(multi=false),
        overview + processes + hugepages + exporter
      ),
  },
}
