// Recording rules of the regional set: right on one region's series alone. Every
// aggregation keeps the region label and the environment labels (%(R)s); on a regional
// Prometheus the region is an external label (absent from its own TSDB, added to what it
// federates and sends), and a `region` target label, where scrape configs add one, is
// kept as it is.
//
// Level prefixes say so: region_db_cluster:, region_node:, region_pair: are the regional
// counterparts of the global db_cluster:, node:, pair:, so that one Prometheus can load
// both sets (the single-Prometheus layout) without two rules writing the same series.
local promql = import '../lib/promql.libsonnet';

function(cfg)
  local q = promql(cfg);
  local v = q.vars;
  [
    {
      name: 'rpo-exporter.regional.rules',
      rules: [
        {
          comment:: |||
            The regional Prometheus's heartbeat for the global layer: one series, always 1,
            that gains the region external label on its way up (federation, remote write).
            When it stops arriving, the global layer knows this region went silent (one
            meta-alert there) rather than reading its missing series as facts.
          |||,
          record: 'region:rpo_regional_prometheus:up',
          expr: 'vector(1)',
        },
        {
          comment:: |||
            --- Per cluster, as this region's exporters export it (every sidecar exports its
            cluster's objectives and settings: these merge the copies).
          |||,
          record: 'region_db_cluster:rpo_objective_seconds:max',
          expr: 'max by (%(R)sdb_cluster) (rpo_objective_seconds%(b)s)' % v,
        },
        {
          record: 'region_db_cluster:rpo_heartbeat_interval_seconds:max',
          expr: 'max by (%(R)sdb_cluster) (rpo_heartbeat_interval_seconds%(b)s)' % v,
        },
        {
          record: 'region_db_cluster:rpo_cluster_info:max',
          expr: 'max by (%(R)sdb_cluster, write_mode) (rpo_cluster_info%(b)s)' % v,
        },
        {
          comment:: |||
            Heartbeats older than this are stale: three intervals, and at least 5 s because one
            worker tick (probe, write, read, native signals) may take several timeouts.
          |||,
          record: 'region_db_cluster:rpo_heartbeat_stale_after_seconds:max',
          expr: 'clamp_min(3 * region_db_cluster:rpo_heartbeat_interval_seconds:max, 5)',
        },
        {
          comment:: '--- Per node this region watches: reachability and role.',
          record: 'region_node:rpo_node_up:max',
          expr: 'max by (%(R)sdb_cluster, node, node_region) (rpo_node_up%(b)s)' % v,
        },
        {
          record: 'region_node:rpo_node_writable:max',
          expr: 'max by (%(R)sdb_cluster, node, node_region) (rpo_node_writable%(b)s)' % v,
        },
        {
          comment:: |||
            Nodes this region's exporters know to be no live writer now: read-only, down, or
            writable with no heartbeat written (exporter clock) within the stale threshold.
            Their rows age on every replica without anything being lost. A node this region
            does not watch (the primary's sidecar lives in another region) is unknown, and
            its pairs count: only the global layer, where all regions meet, sees both ends.
          |||,
          record: 'region_node:rpo_not_live_writer:group',
          expr: |||
            group by (%(R)sdb_cluster, node, node_region) (
              region_node:rpo_node_writable:max == 0
              or
              region_node:rpo_node_up:max == 0
              or
              (
                min by (%(R)sdb_cluster, node, node_region) (rpo_measurement_age_seconds{collector="heartbeat_write"%(m)s})
                  > on (%(R)sdb_cluster) group_left () region_db_cluster:rpo_heartbeat_stale_after_seconds:max
              )
            )
          ||| % v,
        },
        {
          comment:: |||
            --- Per pair, as the replica's own exporter reads it: the data-loss exposure of
            every pair reported in this region, except pairs whose source this region knows
            to be no live writer. A replica that cannot be read has no exposure series
            (unknown is absent): RPONodeDown covers it.
          |||,
          record: 'region_pair:rpo_data_loss_exposure_seconds:max',
          expr: |||
            max by (%(R)sdb_cluster, source_node, source_region, replica_node, replica_region) (rpo_data_loss_exposure_seconds%(b)s)
            unless on (%(R)sdb_cluster, source_node)
              label_replace(region_node:rpo_not_live_writer:group, "source_node", "$1", "node", "(.*)")
          ||| % v,
        },
        {
          comment:: |||
            Growth of the exposure in seconds per second: about 0 on a healthy replica (idle
            or busy, the exposure saw-tooths between 0 and two intervals: up to one at the
            read, aged up to one more until the scrape), 1 when replay stopped altogether.
          |||,
          record: 'region_pair:rpo_data_loss_exposure_seconds:deriv2m',
          expr: 'deriv(region_pair:rpo_data_loss_exposure_seconds:max[2m])',
        },
        {
          comment:: |||
            Seconds until the exposure reaches the RPO at its current growth; only while it
            grows (negative once it is already beyond the RPO).
          |||,
          record: 'region_pair:rpo_data_loss_exposure_seconds:seconds_to_objective',
          expr: |||
            (
              region_db_cluster:rpo_objective_seconds:max
                - on (%(R)sdb_cluster) group_right () region_pair:rpo_data_loss_exposure_seconds:max
            )
            / (region_pair:rpo_data_loss_exposure_seconds:deriv2m > 0)
          ||| % v,
        },
      ],
    },
  ]
