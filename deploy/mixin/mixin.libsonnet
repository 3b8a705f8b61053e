// vma-exporter's monitoring mixin: alerts, recording rules and dashboards.
//
//   local vma = (import 'mixin.libsonnet') + { _config+:: { vmaExporterSelector: 'job="vma"' } };
//   vma.prometheusAlerts, vma.prometheusRules, vma.grafanaDashboards
//
// Settings: config.libsonnet. README.md shows kube-prometheus' way of importing it.
(import 'config.libsonnet') +
(import 'rules/rules.libsonnet') +
(import 'alerts/alerts.libsonnet') +
(import 'groups.libsonnet') +
(import 'dashboards/dashboards.libsonnet')
