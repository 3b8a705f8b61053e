// Helpers for writing PromQL from _config.

// A number as PromQL (and a person) reads it: integers in full, other numbers in the
// fewest digits that read back the same. "%s" would give C++ jsonnet's 17 digits
// ("0.80000000000000004") and go-jsonnet's shortest form ("0.8"): this gives "0.8" in both.
local num(x) =
  local shortest(digits) =
    local s = std.format('%.*g', [digits, x]);
    if digits >= 17 || std.parseJson(s) == x then s else shortest(digits + 1);
  if x == std.floor(x) && std.abs(x) < 1e15 then '%d' % x else shortest(1);

// Labels the exporter puts on per-process series (exporter/metrics.py, PROCESS_LABELS).
// Node series lack them: a process series is divided by its node's limit *ignoring*
// these, so every other target label (instance, job, cluster, ...) must match, and there
// is no label list to keep in step with the scrape config.
local processLabels = ['group', 'pid', 'comm', 'container_id', 'pod_uid'];

{
  num:: num,
  processLabels:: processLabels,

  // A share as text: 0.8 -> "80 %".
  pct(ratio):: '%g %%' % (ratio * 100),

  // _config for `||| ... ||| % params`, with every number written by num() and the label
  // lists the rules need.
  params(config):: config {
    [k]: num(config[k])
    for k in std.objectFields(config)
    if std.isNumber(config[k])
  } + {
    // ignoring(group, pid, comm, container_id, pod_uid): a process series against its node's.
    ignoringProcess: 'ignoring(%s)' % std.join(', ', processLabels),
    // ignoring(pid, comm, container_id, pod_uid): a process series against its group's.
    ignoringProcessInGroup: 'ignoring(%s)' % std.join(', ', [l for l in processLabels if l != 'group']),
    // Per-process labels that name no pod or container: max without() them leaves one
    // series per pod, or per container once "container" is joined, with every target label.
    perProcessOnly: std.join(', ', [l for l in processLabels if l != 'pod_uid']),
    exhaustionHorizonSeconds: num(config.exhaustionHorizonHours * 3600),
  },
}
