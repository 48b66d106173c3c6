// The rpo-exporter monitoring mixin: Prometheus rules split by where they can run, and
// the Grafana dashboards, from one _config (config.libsonnet).
//
//   regionalRules: groups right on one region's series alone; every regional Prometheus
//                  loads them (rules + alerts, DNS, region health, data residency).
//   globalRules:   groups that join regions; the global Prometheus (federation) or the
//                  Thanos / Mimir ruler loads them.
//   A single Prometheus that sees every region loads both.
//
// Each set is an object of rule files: { 'rules.yml': groups, 'alerts.yml': groups, … }.
local dnsAlerts = import 'alerts/dns.libsonnet';
local globalAlerts = import 'alerts/global.libsonnet';
local healthAlerts = import 'alerts/health.libsonnet';
local regionalAlerts = import 'alerts/regional.libsonnet';
local residencyAlerts = import 'alerts/residency.libsonnet';
local dashboards = import 'dashboards/dashboards.libsonnet';
local globalRules = import 'rules/global.libsonnet';
local regionalRules = import 'rules/regional.libsonnet';

(import 'config.libsonnet') + {
  local cfg = self._config,

  regionalRules:: {
    'rules.yml': regionalRules(cfg),
    'alerts.yml': regionalAlerts(cfg),
    'dns.yml': dnsAlerts(cfg),
    'health.yml': healthAlerts(cfg),
    'residency.yml': residencyAlerts(cfg),
  },

  globalRules:: {
    'rules.yml': globalRules(cfg),
    'alerts.yml': globalAlerts(cfg),
  },

  // Every group of a set, as a Prometheus rule file (or PrometheusRule spec) wants them.
  groups(set):: std.flattenArrays([set[f] for f in std.objectFields(set)]),

  grafanaDashboards:: dashboards(cfg),
}
