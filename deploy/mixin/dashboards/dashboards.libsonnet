// grafanaDashboards: file name -> dashboard, as Grafana's provisioning and kube-prometheus
// read them.
(import 'node.libsonnet') +
(import 'process.libsonnet') +
(import 'fleet.libsonnet')
