// Recording rules: usage ratios per process, group and node; trends; the pod joins.
//
// The exporter exports usage and limit as separate gauges in base units (the ratio is
// PromQL's job); these rules compute the ratios once per evaluation so alerts and
// dashboards share them. Naming: level:metric:operations.
//
// The pod joins name each exported process's namespace, pod and container from
// kube-state-metrics (kube_pod_info, kube_pod_container_info). They are the only
// pod-identity rules: deploy/kubernetes ships no hand-written rule file.
//
// groups.libsonnet puts these in a rule group (see oneRuleGroup in config.libsonnet).
local promql = import '../lib/promql.libsonnet';

{
  vmaRecordingRules+::
    local p = promql.params($._config);
    [
      {
        // Share of vm.max_map_count held by each exported process (top N plus every process
        // at or above per_process.min_limit_ratio).
        record: 'vma:process_map_areas:ratio',
        expr: |||
          vma_process_map_areas{%(vmaExporterSelector)s}
            / %(ignoringProcess)s group_left()
          vma_node_map_areas_limit{%(vmaExporterSelector)s}
        ||| % p,
      },
      {
        // The same for the busiest process of each group: covers every member, also those
        // beyond the per-process top N.
        record: 'vma:group_map_areas_max:ratio',
        expr: |||
          vma_group_map_areas_max{%(vmaExporterSelector)s}
            / ignoring(group) group_left()
          vma_node_map_areas_limit{%(vmaExporterSelector)s}
        ||| % p,
      },
      {
        // The node's busiest watched process: the fleet view ranks nodes by it.
        record: 'vma:node_map_areas_max:ratio',
        expr: |||
          max without(group) (vma:group_map_areas_max:ratio{%(vmaExporterSelector)s})
        ||| % p,
      },
      {
        // Map areas gained per second, least squares over the prediction window.
        record: 'vma:process_map_areas:deriv%(exhaustionPredictWindow)s' % p,
        expr: |||
          deriv(vma_process_map_areas{%(vmaExporterSelector)s}[%(exhaustionPredictWindow)s])
        ||| % p,
      },
      {
        // Seconds until the limit at that trend; only for growing processes (a flat or
        // shrinking one never gets there, and dividing by 0 gives +Inf).
        record: 'vma:process_map_areas:seconds_to_limit',
        expr: |||
          (
            vma_node_map_areas_limit{%(vmaExporterSelector)s}
              - %(ignoringProcess)s group_right()
            vma_process_map_areas{%(vmaExporterSelector)s}
          )
            /
          (vma:process_map_areas:deriv%(exhaustionPredictWindow)s{%(vmaExporterSelector)s} > 0)
        ||| % p,
      },
      {
        // The leak signature's trend: areas of the busiest backing object gained per second.
        // Its labels name the object.
        record: 'vma:process_top_object_map_areas:deriv%(leakWindow)s' % p,
        expr: |||
          deriv(vma_process_top_object_map_areas{%(vmaExporterSelector)s}[%(leakWindow)s])
        ||| % p,
      },
      {
        // Per pod: the process ratio joined with kube-state-metrics' kube_pod_info, whose
        // "uid" label is the exporter's "pod_uid". max by () folds the duplicates of several
        // kube-state-metrics replicas. Pod UIDs are unique across clusters, so the join needs
        // no other label.
        record: 'vma:process_map_areas_ratio:by_pod',
        expr: |||
          vma:process_map_areas:ratio{%(vmaExporterSelector)s, pod_uid!=""}
            * on(pod_uid) group_left(namespace, pod, node)
          max by (pod_uid, namespace, pod, node) (
            label_replace(kube_pod_info{%(kubeStateMetricsSelector)s}, "pod_uid", "$1", "uid", "(.+)")
          )
        ||| % p,
      },
      {
        // Per pod: its busiest exported process. Series of a pod's containers and processes
        // fold into one per pod; after a container restart it continues.
        record: 'vma:pod_map_areas_max:ratio',
        expr: |||
          max without(%(perProcessOnly)s) (vma:process_map_areas_ratio:by_pod{%(vmaExporterSelector)s})
        ||| % p,
      },
      {
        // Per container (by name, so it continues across restarts): its busiest exported
        // process. kube_pod_container_info gives the name of a container ID; only started
        // containers have an ID (a waiting one has container_id="", and several of those
        // would be duplicates on the "one" side of the join: an error for the whole rule).
        // max by () folds several kube-state-metrics replicas. kube-state-metrics writes
        // container_id as "<runtime>://<id>" (containerd://, cri-o://, docker://); the
        // exporter's label is the bare id.
        record: 'vma:container_map_areas_max:ratio',
        expr: |||
          max without(%(perProcessOnly)s) (
            vma:process_map_areas_ratio:by_pod{%(vmaExporterSelector)s, container_id!=""}
              * on(container_id) group_left(container)
            max by (container_id, container) (
              label_replace(kube_pod_container_info{%(kubeStateMetricsSelector)s, container_id!=""}, "container_id", "$1", "container_id", "[a-z0-9.+-]+://(.+)")
            )
          )
        ||| % p,
      },
    ],
}
