// The repository's generated monitoring files, from the mixin in deploy/mixin/ with its
// default _config: repository path -> content. tools/render_mixin.py writes them (YAML for
// the rules, JSON for the dashboards):
//   jsonnet -J deploy/mixin tools/render_mixin.jsonnet
//
// forCap: every `for:` duration of _config (the fields whose names end in For) set to it,
// and nothing else: the end-to-end test runs the real expressions and thresholds with
// for-durations of seconds instead of minutes.
function(forCap=null)
  local defaults = import 'mixin.libsonnet';
  local mixin = if forCap == null then defaults else defaults {
    _config+:: { [k]: forCap for k in std.objectFields(defaults._config) if std.endsWith(k, 'For') },
  };
  // As kube-prometheus' lib/mixin.libsonnet concatenates them.
  local groups = mixin.prometheusAlerts.groups + mixin.prometheusRules.groups;
  {
    'deploy/prometheus/vma-exporter.rules.yml': { groups: groups },
    'deploy/kubernetes/prometheusrule.yaml': {
      apiVersion: 'monitoring.coreos.com/v1',
      kind: 'PrometheusRule',
      metadata: {
        name: 'vma-exporter',
        labels: {
          'app.kubernetes.io/name': 'vma-exporter',
          'app.kubernetes.io/component': 'alerting-rules',
        },
      },
      spec: { groups: groups },
    },
  } + {
    ['grafana/dashboards/' + name]: mixin.grafanaDashboards[name]
    for name in std.objectFields(mixin.grafanaDashboards)
  }
