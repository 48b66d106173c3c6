// Alerting rules of the global set: cluster-wide verdicts that join regions (a replica's
// exposure in one region with the writer's liveness in another; every node's role), so
// they run where all regions meet. They need the global recording rules
// (rules/global.libsonnet) and keep the environment labels in every `by (…)`/`on (…)`.
//
// A region whose Prometheus went silent is not a region whose nodes died: the verdicts
// that a vanished region would fake hold back for the clusters it fed
// (`unless on (…) db_cluster:rpo_regional_prometheus_missing:count`), and one
// RPORegionalPrometheusDown per silent region speaks for it.
local alertlib = import '../lib/alert.libsonnet';
local promql = import '../lib/promql.libsonnet';

function(cfg)
  local q = promql(cfg);
  local v = q.vars;
  local a = alertlib(cfg);
  local G = q.envLabels;
  local duration = '{{ . | first | value | humanizeDuration }}';
  local objective = q.withQuery('db_cluster:rpo_objective_seconds:max', G + ['db_cluster'], duration);
  local guard = 'unless on (%(G)sdb_cluster) db_cluster:rpo_regional_prometheus_missing:count' % v;
  [
    {
      name: 'rpo-exporter.global.alerts',
      rules: [
        a.new('RPOBreached', 'rpo-breached.md', {
          comment:: |||
            ---------------------------------------------------------------- RPO
            The cluster-wide verdict. Per pair of the breached source, so the notification
            lists every replica and its exposure; it fires only when even the best
            candidate of a live writer is beyond the RPO.
          |||,
          expr: |||
            pair:rpo_data_loss_exposure_seconds:writable_source
            and on (%(G)sdb_cluster, source_node)
            (
              source:rpo_data_loss_exposure_seconds:best_candidate
                > on (%(G)sdb_cluster) group_left () db_cluster:rpo_objective_seconds:max
            )
          ||| % v + guard + '\n',
          'for': '30s',
          annotations: {
            summary: 'Even the best failover candidate would lose more writes than the RPO allows.',
            description: a.para([|||
              A failover from {{ $labels.source_node }} ({{ $labels.source_region }}) to
              {{ $labels.replica_node }} ({{ $labels.replica_region }}) would lose the last
              {{ $value | humanizeDuration }} of writes, and no replica of db_cluster
              {{ $labels.db_cluster }} is within its RPO of
            |||, objective + '.']),
          },
        }),

        a.new('RPOHeartbeatsStale', 'heartbeats-stale.md', {
          comment:: |||
            ---------------------------------------------------------------- heartbeats
            Value: seconds since any heartbeat was written in the cluster (exporter clock),
            or -1 when none was written since the exporter started.
          |||,
          expr: |||
            (
              min by (%(G)sdb_cluster) (node:rpo_heartbeat_write_age_seconds:min)
              or on (%(G)sdb_cluster)
              (0 * db_cluster:rpo_heartbeat_interval_seconds:max - 1)
            )
            unless on (%(G)sdb_cluster) node:rpo_heartbeat_write_age_seconds:fresh_writer
          ||| % v + guard + '\n',
          'for': '1m',
          annotations: {
            summary: 'No heartbeat is being written; replication lag of the cluster is not measured.',
            description: a.para([|||
              No heartbeat has been written in db_cluster {{ $labels.db_cluster }}
              {{ if lt $value 0.0 }}since the exporter started{{ else }}for {{ $value | humanizeDuration }}{{ end }}
              (interval
            |||, q.withQuery('db_cluster:rpo_heartbeat_interval_seconds:max', G + ['db_cluster'], duration) + '):', |||
              the heartbeat writer fails or no node accepts writes, and the RPO alerts of
              this cluster are blind until heartbeats flow again.
            |||]),
          },
        }),

        a.new('RPONoWritableNode', 'no-writable-node.md', {
          comment:: 'Value: how many nodes of the cluster answer (all of them read-only).',
          expr: |||
            sum by (%(G)sdb_cluster) (node:rpo_node_up:max)
            unless on (%(G)sdb_cluster) (node:rpo_node_writable:max == 1)
          ||| % v + guard + '\n',
          'for': '1m',
          annotations: {
            summary: 'No node of the cluster accepts writes.',
            description: a.para([|||
              None of the
            |||, q.withQuery('node:rpo_node_up:max', G + ['db_cluster'], '{{ . | first | value }}', prefix='count(', suffix=')'), |||
              nodes of db_cluster {{ $labels.db_cluster }} accepts writes (nodes answering:
              {{ $value }}, all read-only): the primary is down or unreachable, or a failover
              stopped halfway.
            |||]),
          },
        }),

        a.new('RPOSplitBrain', 'split-brain.md', {
          comment:: |||
            A vanished region can only hide writable nodes, never add one: no guard needed.
          |||,
          expr: |||
            sum by (%(G)sdb_cluster) (node:rpo_node_writable:max) > 1
            and on (%(G)sdb_cluster) db_cluster:rpo_cluster_info:max{write_mode="single-writer"}
          ||| % v,
          'for': '30s',
          annotations: {
            summary: 'More than one node of a single-writer cluster accepts writes (split brain).',
            description: a.para(|||
              {{ $value }} nodes of single-writer db_cluster {{ $labels.db_cluster }}
              accept writes:
            ||| + '{{ range $i, $n := ' + q.query('node:rpo_node_writable:max', G + ['db_cluster'], suffix=' == 1') + ' | sortByLabel "node" }}{{ if $i }}, {{ end }}{{ $n.Labels.node }} ({{ $n.Labels.node_region }}){{ end }}.\n' + |||
              Writes to them diverge and cannot simply be merged later.
            |||),
          },
        }),

        a.new('RPORegionalPrometheusDown', 'regional-prometheus-down.md', {
          comment:: |||
            ---------------------------------------------------------------- the global layer
            One alert per regional Prometheus that stopped feeding this layer, instead of
            a flood of RPO alerts about the series it no longer sends. Value: 1.
          |||,
          expr: 'region:rpo_regional_prometheus:missing',
          'for': '2m',
          annotations: {
            summary: 'A regional Prometheus stopped feeding the global layer; its region is not watched from here.',
            description: a.para(|||
              The global layer has received nothing from the regional Prometheus of
            ||| + '%(r)s {{ $labels.%(r)s }} for 2 minutes (its federation target is down, or its heartbeat region:rpo_regional_prometheus:up stopped arriving). ' % { r: cfg.regionLabel } + |||
              Alerts evaluated there may not reach Alertmanager either, and the global
              verdicts (RPOBreached, RPONoWritableNode, RPOHeartbeatsStale) of the
              {{ with query "count(db_cluster:rpo_regional_prometheus_missing:count)" }}{{ . | first | value }}{{ else }}0{{ end }}
              clusters that had series there hold back until it is back.
            |||),
          },
        }),
      ],
    },
  ]
