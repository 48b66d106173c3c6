// Recording rules of the global set: they join regions (one sidecar's pairs with another
// sidecar's roles and heartbeat writes), so they run where all regions meet: a global
// Prometheus federating the regional ones (honor_labels), or a Thanos or Mimir ruler.
// On a single Prometheus that sees every region, load them beside the regional set.
//
// Names follow the Prometheus convention level:metric:operation, with these levels:
//   db_cluster: one series per cluster       (env…, db_cluster)
//   node:       one series per database node (env…, db_cluster, node, node_region)
//   source:     one series per writing node  (env…, db_cluster, source_node, source_region)
//   pair:       one series per source → replica pair
//               (env…, db_cluster, source_node, source_region, replica_node, replica_region)
//   region:     one series per regional Prometheus (region, env…)
//
// Every rule aggregates `by` the environment labels and the exporter's own labels. That
// merges the copies several exporters (and regions) make of the same fact and lets one
// sidecar's readings be joined with another's: target labels such as instance and job,
// and the region external label, are dropped on purpose.
local promql = import '../lib/promql.libsonnet';

function(cfg)
  local q = promql(cfg);
  local v = q.vars;
  local regionEnv = std.join(', ', [cfg.regionLabel] + cfg.environmentLabels);
  local w = v { RE: regionEnv };
  [
    {
      name: 'rpo-exporter.global.rules',
      rules: [
        {
          comment:: '--- Per cluster: objectives and settings, one series even with many exporters.',
          record: 'db_cluster:rpo_objective_seconds:max',
          expr: 'max by (%(G)sdb_cluster) (rpo_objective_seconds%(b)s)' % v,
        },
        {
          record: 'db_cluster:rpo_rto_objective_seconds:max',
          expr: 'max by (%(G)sdb_cluster) (rpo_rto_objective_seconds%(b)s)' % v,
        },
        {
          record: 'db_cluster:rpo_heartbeat_interval_seconds:max',
          expr: 'max by (%(G)sdb_cluster) (rpo_heartbeat_interval_seconds%(b)s)' % v,
        },
        {
          record: 'db_cluster:rpo_cluster_info:max',
          expr: 'max by (%(G)sdb_cluster, write_mode) (rpo_cluster_info%(b)s)' % v,
        },
        {
          comment:: |||
            Heartbeats older than this are stale: three intervals, and at least 5 s because one
            worker tick (probe, write, read, native signals) may take several timeouts.
          |||,
          record: 'db_cluster:rpo_heartbeat_stale_after_seconds:max',
          expr: 'clamp_min(3 * db_cluster:rpo_heartbeat_interval_seconds:max, 5)',
        },
        {
          comment:: '--- Per node: reachability and role, as any exporter watching the node sees them.',
          record: 'node:rpo_node_up:max',
          expr: 'max by (%(G)sdb_cluster, node, node_region) (rpo_node_up%(b)s)' % v,
        },
        {
          record: 'node:rpo_node_writable:max',
          expr: 'max by (%(G)sdb_cluster, node, node_region) (rpo_node_writable%(b)s)' % v,
        },
        {
          comment:: |||
            Seconds since a heartbeat was last written on the node, on the exporter's monotonic
            clock (rpo_heartbeat_written_timestamp_seconds is the database's clock and would
            mix in clock skew). Absent until the exporter's first write on the node; it keeps
            growing on a node that stopped accepting writes.
          |||,
          record: 'node:rpo_heartbeat_write_age_seconds:min',
          expr: 'min by (%(G)sdb_cluster, node, node_region) (rpo_measurement_age_seconds{collector="heartbeat_write"%(m)s})' % v,
        },
        {
          comment:: |||
            The live-writer check: nodes that accept writes now and had a heartbeat written
            within the stale threshold. Only their heartbeats measure replication; a stopped
            writer's rows age on every replica without anything being lost. The writer's
            sidecar reports this, usually in another region than the replicas' pairs.
          |||,
          record: 'node:rpo_heartbeat_write_age_seconds:fresh_writer',
          expr: |||
            node:rpo_heartbeat_write_age_seconds:min
              <= on (%(G)sdb_cluster) group_left () db_cluster:rpo_heartbeat_stale_after_seconds:max
            and on (%(G)sdb_cluster, node)
              node:rpo_node_writable:max == 1
          ||| % v,
        },
        {
          comment:: |||
            --- Per pair: data-loss exposure of pairs whose source is a live writer.
            Pairs from a demoted, dead or silent source are left out: their exposure grows
            without measuring any loss (the no-writable-node and stale-heartbeat alerts
            cover those). A replica that cannot be read has no exposure series at all
            (unknown is absent), so it is never anybody's best candidate: RPONodeDown
            (regional) covers it.
          |||,
          record: 'pair:rpo_data_loss_exposure_seconds:writable_source',
          expr: |||
            max by (%(G)sdb_cluster, source_node, source_region, replica_node, replica_region) (rpo_data_loss_exposure_seconds%(b)s)
            and on (%(G)sdb_cluster, source_node)
              label_replace(node:rpo_heartbeat_write_age_seconds:fresh_writer, "source_node", "$1", "node", "(.*)")
          ||| % v,
        },
        {
          comment:: |||
            Growth of the exposure in seconds per second: about 0 on a healthy replica, 1 when
            replay stopped altogether.
          |||,
          record: 'pair:rpo_data_loss_exposure_seconds:deriv2m',
          expr: 'deriv(pair:rpo_data_loss_exposure_seconds:writable_source[2m])',
        },
        {
          comment:: |||
            --- Per source: the best failover candidate, i.e. the least a failover away from
            this writer would lose now. In a single-writer cluster there is one source, so
            this is the cluster's RPO reading; in a multi-writer cluster, one per writer.
          |||,
          record: 'source:rpo_data_loss_exposure_seconds:best_candidate',
          expr: 'min by (%(G)sdb_cluster, source_node, source_region) (pair:rpo_data_loss_exposure_seconds:writable_source)' % v,
        },
        {
          comment:: |||
            --- Per regional Prometheus: the regions whose Prometheus stopped feeding this
            layer. Either its federation target is down (up of the federation job, whose
            targets carry the region as a target label), or its heartbeat
            (region:rpo_regional_prometheus:up, from the regional rules) arrived within the
            memory window but not now (Thanos, Mimir, or a federation that answers without
            it). One series per region.
          |||,
          record: 'region:rpo_regional_prometheus:missing',
          expr: |||
            group by (%(RE)s) (up{%(fed)s} == 0)
            or on (%(region)s)
            (
              group by (%(RE)s) (present_over_time(region:rpo_regional_prometheus:up[%(memory)s]))
              unless on (%(RE)s)
              region:rpo_regional_prometheus:up
            )
          ||| % w,
        },
        {
          comment:: |||
            Per cluster: how many regions that fed its series within the memory window have
            gone silent. While this exists, the cluster's series from those regions are
            missing, not gone: the global verdicts that absence would fake (no writable
            node, stale heartbeats, a best candidate that is really the second best) hold
            back, and RPORegionalPrometheusDown speaks for the region instead.
          |||,
          record: 'db_cluster:rpo_regional_prometheus_missing:count',
          expr: |||
            count by (%(G)sdb_cluster) (
              group by (%(G)sdb_cluster, %(region)s) (present_over_time(rpo_objective_seconds%(b)s[%(memory)s]))
              and on (%(region)s) region:rpo_regional_prometheus:missing
            )
          ||| % w,
        },
      ],
    },
  ]
