// The process view: map areas against the limit, by kind, the top backing object, time to
// exhaustion, VIRT/RES/SHR, hugetlb memory and resource limits.
local g = import '../lib/grafana.libsonnet';

{
  grafanaDashboards+:: {
    'vma-process.json':
      local c = (import 'common.libsonnet')($._config);
      local p(metric) = c.q(metric, process=true);
      local limit = c.q('vma_node_map_areas_limit');
      local who = '{{comm}} ({{pid}})';
      local warningLine = 'warning (%s)' % c.pct(c.warning);
      local window = $._config.exhaustionPredictWindow;
      // RLIMIT_INFINITY is exported as +Inf; Grafana shows a value map keyed by String(value).
      local unlimited = [{ type: 'value', options: { Infinity: { text: 'unlimited' } } }];

      local overview = [
        g.row('Map areas'),
        g.stat('Map areas',
               'Map areas (VMAs) the process holds now: lines of /proc/PID/maps less [vsyscall].',
               p('vma_process_map_areas'),
               'short'),
        g.stat('Share of vm.max_map_count',
               "Map areas against the node's vm.max_map_count. At the limit, "
               + 'mmap, mprotect and munmap fail with ENOMEM.',
               p('vma:process_map_areas:ratio'),
               'percentunit',
               thresholds=c.ratioSteps),
        g.stat('Time to the limit',
               'At the least-squares trend of the last %s, when the process reaches ' % window
               + 'vm.max_map_count. Empty when it does not grow.',
               p('vma:process_map_areas:seconds_to_limit'),
               's',
               noValue='not growing',
               thresholds=c.timeLeftSteps),
        g.stat('Top backing object',
               'The file or shared-memory object mapped in the most areas of this '
               + 'process, and in how many.',
               p('vma_process_top_object_map_areas'),
               'short',
               '{{object}}',
               textMode='value_and_name',
               w=6),
        g.stat('Areas of deleted files',
               'Map areas backed by files unlinked from their filesystem (an old '
               + 'library after an upgrade, a removed /dev/shm object still mapped).',
               p('vma_process_deleted_map_areas'),
               'short',
               w=3),
        g.stat('Started',
               'When the process started.',
               '%s * 1000' % p('vma_process_start_time_seconds'),
               'dateTimeFromNow',
               w=3),
      ];

      local mapAreas = [
        g.timeseries('Map areas against the limit',
                     "The process's map areas, the node's vm.max_map_count, "
                     + 'and the warning line at %s of it.' % c.pct(c.warning),
                     [
                       g.target(p('vma_process_map_areas'), who),
                       g.target(limit, 'vm.max_map_count'),
                       g.target('%s * %s' % [c.num(c.warning), limit], warningLine),
                     ],
                     'short',
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
        g.timeseries('Map areas by kind',
                     'Map areas by backing: anon (no name), heap, stack, file, shm (POSIX '
                     + 'and SysV shared memory, memfd), hugetlb, special ([vdso], sockets, '
                     + '...). The kind that climbs is the one leaking.',
                     [g.target(p('vma_process_map_areas_by_kind'), '{{kind}}')],
                     'short',
                     stack=true),
        g.timeseries('Top backing object',
                     'Areas of the object mapped most often, and areas backed by deleted '
                     + 'files. One object in thousands of areas, still climbing, is the '
                     + 'leak signature: find the code that maps it.',
                     [
                       g.target(p('vma_process_top_object_map_areas'), '{{object}}'),
                       g.target(p('vma_process_deleted_map_areas'), 'backed by deleted files'),
                     ],
                     'short'),
        g.timeseries('What multiplies',
                     'What holds most of the map areas (up to three): one object mapped again and '
                     + 'again, a family or a directory of files each mapped once, an anonymous shape '
                     + '(a carved reservation, pieces left by munmap), thread stacks, malloc arenas. '
                     + '`vma-exporter explain PID` on the node says where they live and what to do.',
                     [g.target(p('vma_process_map_areas_by_pattern'), '{{pattern}}: {{what}}')],
                     'short'),
        g.timeseries('Time to the limit',
                     'Seconds until vma:process_map_areas:seconds_to_limit reaches 0 at the '
                     + 'trend of the last %s; shown only while the process grows. ' % window
                     + 'The ExhaustionPredicted alert fires under %s h.'
                       % c.num($._config.exhaustionHorizonHours),
                     [g.target(p('vma:process_map_areas:seconds_to_limit'), who)],
                     's',
                     thresholds=c.timeLeftSteps),
      ];

      local memory = [
        g.row('Memory'),
        g.timeseries('VIRT, RES, SHR',
                     "top's columns from /proc/PID/status: virtual size (VmSize), resident "
                     + 'set (VmRSS) and resident shared memory (RssFile + RssShmem).',
                     [
                       g.target(p('vma_process_virtual_bytes'), 'VIRT'),
                       g.target(p('vma_process_resident_bytes'), 'RES'),
                       g.target(p('vma_process_shared_bytes'), 'SHR'),
                     ],
                     'bytes',
                     w=12),
        g.timeseries('hugetlb memory',
                     'hugetlbfs memory mapped by the process (HugetlbPages): taken from the '
                     + "node's hugepage pools, not from ordinary memory.",
                     [g.target(p('vma_process_hugetlb_bytes'), 'hugetlb')],
                     'bytes',
                     w=6),
        g.stat('Resource limits',
               'Soft RLIMIT_DATA and RLIMIT_AS: the other causes of ENOMEM besides memory '
               + 'and map areas. Compare RLIMIT_DATA with VmData, RLIMIT_AS with VIRT.',
               [
                 [p('vma_process_rlimit_data_bytes'), 'RLIMIT_DATA'],
                 [p('vma_process_data_bytes'), 'VmData'],
                 [p('vma_process_rlimit_as_bytes'), 'RLIMIT_AS'],
                 [p('vma_process_virtual_bytes'), 'VIRT'],
               ],
               'bytes',
               mappings=unlimited,
               textMode='value_and_name',
               w=6,
               h=8),
        g.timeseries('VmData against RLIMIT_DATA',
                     'Private writable memory that is not stack (VmData) and its soft limit: past '
                     + 'it brk, malloc and private writable mmaps fail with ENOMEM. No limit line '
                     + 'while it is unlimited.',
                     [
                       g.target(p('vma_process_data_bytes'), 'VmData'),
                       g.target('%s < +Inf' % p('vma_process_rlimit_data_bytes'), 'RLIMIT_DATA'),
                     ],
                     'bytes',
                     w=12),
        g.timeseries('ENOMEM failures',
                     'Calls that failed with ENOMEM, by syscall and the cause the kernel had '
                     + '(map_count, rlimit_data, rlimit_as, memory), counted as they happen by '
                     + '--collect.source=bpf: empty with the procfs source or while nothing fails.',
                     [g.target('increase(%s[$__rate_interval])' % p('vma_process_enomem_failures_total'),
                               '{{syscall}} ({{cause}})')],
                     'short',
                     w=12),
      ];

      g.dashboard(
        $._config,
        c.processUID,
        'Process',
        'One process: map areas against vm.max_map_count, by kind, the busiest backing object, time to '
        + 'exhaustion, memory and resource limits. Only processes with per-process series (top N and those '
        + 'near the limit) are listed.',
        c.variables(multi=false, process=true),
        overview + mapAreas + memory
      ),
  },
}
