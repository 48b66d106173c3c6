// The settings of the rpo-exporter mixin. Override any of them in your own jsonnet:
//
//   local rpo = (import 'rpo-exporter-mixin/mixin.libsonnet') + {
//     _config+:: { jobSelector: 'job="db-sidecars"', environmentLabels: ['cluster'] },
//   };
//
// then render rpo.regionalRules, rpo.globalRules and rpo.grafanaDashboards (see
// mixin/README.md). scripts/gen-mixin.sh renders the files this repository ships from
// these defaults.
{
  _config+:: {
    // Matches the `up` series of the scrape job(s) that scrape rpo-exporter.
    // RPOExporterDown fires on `up{<jobSelector>} == 0`, and on any target that exported
    // rpo_exporter_build_info in the last 6 hours whatever its job.
    jobSelector: 'job="rpo-exporter"',

    // Extra label matchers added to every rpo_* selector of the rules and dashboards,
    // e.g. 'job="rpo-exporter"' to ignore copies scraped by other jobs. Empty: the rpo_
    // prefix is the exporter's own.
    metricSelector: '',

    // The external label every regional Prometheus sets (`external_labels: {region: …}`):
    // the regional rules keep it in every `by (…)`/`on (…)`, the global layer reads it to
    // tell which regional Prometheus went silent, and the overview dashboard compares
    // regions by it. On a single Prometheus without it, rules and dashboards still work.
    regionLabel: 'region',

    // Labels that keep environments apart (external labels of every Prometheus, or target
    // labels set on every rpo-exporter target): every rule and dashboard query keeps them in
    // its `by (…)`/`on (…)`, so two environments that reuse db_cluster names never merge.
    // They must be the same on every series of one environment, in every region. Absent
    // labels are harmless (an empty value matches an empty value).
    environmentLabels: ['env'],

    // The global Prometheus's job(s) scraping the regional Prometheus servers' /federate.
    // Each target must carry the regional Prometheus's region as a target label. With
    // Thanos or Mimir there is no such job; the regional heartbeat series
    // (region:rpo_regional_prometheus:up) alone tells that a region went silent.
    federationSelector: 'job="rpo-federate"',

    // How long the global layer remembers a region (or a cluster's presence in a region)
    // after its regional Prometheus went silent: RPORegionalPrometheusDown fires, and the
    // global verdicts that a vanished region would fake stay guarded, for this long.
    regionalMemory: '6h',

    // Severity per alert: critical pages, warning opens a ticket, info is a notice
    // (deploy/alertmanager/alertmanager.yml routes them so).
    severities: {
      // RPO: the cluster-wide verdict (global) pages; what one replica's sidecar knows
      // (regional) tickets.
      RPOBreached: 'critical',
      RPOReplicaBeyondObjective: 'warning',
      RPOBreachPredicted: 'warning',
      // Cluster state (global).
      RPONoWritableNode: 'critical',
      RPOSplitBrain: 'critical',
      RPOHeartbeatsStale: 'warning',
      RPORegionalPrometheusDown: 'critical',
      // Nodes, replication and the exporter (regional).
      RPONodeDown: 'critical',
      RPOExporterDown: 'critical',
      RPOExporterLoopStale: 'warning',
      RPOReplicationStreamDown: 'warning',
      RPOCollectorFailing: 'warning',
      RPOClockSkew: 'warning',
      RPOHeartbeatRowInvalid: 'warning',
      RPOReplicationReplayPaused: 'info',
      RPONodeRoleChanged: 'info',
      // DNS and region health (regional: each exporter's own vantage point).
      RPODNSNotPublished: 'critical',
      RPODNSNotPropagated: 'critical',
      RPODNSSerialsDisagree: 'warning',
      RPODNSResolverFailing: 'warning',
      RPORegionUnhealthy: 'critical',
      RPOProbeFailing: 'warning',
      RPOCertificateExpiringSoon: 'warning',
      // Data residency (regional).
      RPOResidencyViolation: 'critical',
      RPOResidencyCheckFailing: 'warning',
    },

    // Where the runbook_url annotations point (keep the trailing slash). Point it at your
    // own copy of docs/runbooks/ (a wiki, a fork).
    runbookURLBase: 'https://github.com/rpo-exporter/rpo-exporter/blob/main/docs/runbooks/',

    // Grafana: the tag every dashboard carries (their links list dashboards by it).
    dashboardTag: 'rpo-exporter',
  },
}
