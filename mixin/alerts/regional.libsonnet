// Alerting rules of the regional set: each is right when evaluated on one region's
// series alone, so every regional Prometheus loads them (and a single Prometheus that
// sees every region loads them beside the global set). They need the regional
// recording rules (rules/regional.libsonnet) and keep the region label and the
// environment labels in every `by (…)`/`on (…)`.
//
// Nothing here joins one region's readings with another's: a replica's exposure is
// judged on what its own exporter reports (the exposure and the cluster's objective),
// a node's state on what the exporter watching it reports. The cluster-wide verdicts
// are in alerts/global.libsonnet.
local alertlib = import '../lib/alert.libsonnet';
local promql = import '../lib/promql.libsonnet';

function(cfg)
  local q = promql(cfg);
  local v = q.vars;
  local a = alertlib(cfg);
  local R = q.regionalLabels;
  local duration = '{{ . | first | value | humanizeDuration }}';
  local objective = q.withQuery('region_db_cluster:rpo_objective_seconds:max', R + ['db_cluster'], duration);
  [
    {
      name: 'rpo-exporter.regional.alerts',
      rules: [
        a.new('RPOReplicaBeyondObjective', 'replica-beyond-objective.md', {
          comment:: |||
            ---------------------------------------------------------------- RPO
            What the replica's own exporter knows: its exposure to a writer and the
            cluster's RPO. Beyond it, this replica is no safe failover target. Whether the
            cluster as a whole is beyond its RPO (no replica within it) is for the global
            layer, where every replica's exposure and the writer's liveness meet. A pair
            whose source this region knows to be no live writer is left out (see
            region_node:rpo_not_live_writer:group).
          |||,
          expr: |||
            region_pair:rpo_data_loss_exposure_seconds:max
              > on (%(R)sdb_cluster) group_left () region_db_cluster:rpo_objective_seconds:max
          ||| % v,
          'for': '1m',
          annotations: {
            summary: 'A replica is further behind than the RPO; it is no safe failover target.',
            description: a.para([|||
              {{ $labels.replica_node }} ({{ $labels.replica_region }}) misses the last
              {{ $value | humanizeDuration }} of writes from {{ $labels.source_node }}
              ({{ $labels.source_region }}), more than the RPO of
            |||, objective, |||
              of db_cluster {{ $labels.db_cluster }}: do not fail over to it.
            |||]),
          },
        }),

        a.new('RPOBreachPredicted', 'breach-predicted.md', {
          comment:: |||
            The exposure level gate (above three heartbeat intervals) keeps the healthy
            saw-tooth, between 0 and two intervals at scrape time (plus a round trip),
            idle primary or busy, out for good.
          |||,
          expr: |||
            region_pair:rpo_data_loss_exposure_seconds:seconds_to_objective > 0
              < on (%(R)sdb_cluster) group_left () region_db_cluster:rpo_objective_seconds:max
            and on (%(R)sdb_cluster, source_node, replica_node)
            (
              region_pair:rpo_data_loss_exposure_seconds:max
                > on (%(R)sdb_cluster) group_left () 3 * region_db_cluster:rpo_heartbeat_interval_seconds:max
            )
          ||| % v,
          'for': '1m',
          annotations: {
            summary: 'Data-loss exposure is growing and will cross the RPO soon.',
            description: a.para([|||
              {{ $labels.replica_node }} ({{ $labels.replica_region }}) is
            |||, q.withQuery('region_pair:rpo_data_loss_exposure_seconds:max', R + ['db_cluster', 'source_node', 'replica_node'], duration), |||
              behind {{ $labels.source_node }} ({{ $labels.source_region }}) and falling
              further behind: at this pace it crosses the RPO of
            |||, objective, |||
              of db_cluster {{ $labels.db_cluster }} in {{ $value | humanizeDuration }}.
            |||]),
          },
        }),

        a.new('RPONodeDown', 'node-down.md', {
          comment:: |||
            ---------------------------------------------------------------- nodes
            As the exporter watching the node sees it (the node's own sidecar, or the
            per-cluster exporter). replica_node and source_node repeat the node's name so
            that Alertmanager can inhibit the pair alerts of a dead node (inhibition
            matches equal label names). Value: seconds since the node last answered, 0 if
            never since the exporter started.
          |||,
          expr: |||
            label_replace(
              label_replace(
                (
                  max by (%(R)sdb_cluster, node, node_region) (rpo_measurement_age_seconds{collector="role"%(m)s})
                    and on (%(R)sdb_cluster, node) (region_node:rpo_node_up:max == 0)
                )
                or on (%(R)sdb_cluster, node)
                (0 * (region_node:rpo_node_up:max == 0)),
                "replica_node", "$1", "node", "(.*)"),
              "source_node", "$1", "node", "(.*)")
          ||| % v,
          'for': '1m',
          annotations: {
            summary: 'A database node does not answer; its replication lag is unknown.',
            description: a.para(|||
              {{ $labels.node }} ({{ $labels.node_region }}) of db_cluster
              {{ $labels.db_cluster }} has not answered the exporter
              {{ if gt $value 0.0 }}for {{ $value | humanizeDuration }}{{ else }}since the exporter started{{ end }}:
              its lag and exposure series are absent (unknown), and it is no failover
              target until it is back.
            |||),
          },
        }),

        a.new('RPOReplicationStreamDown', 'replication-stream-down.md', {
          comment:: |||
            ---------------------------------------------------------------- replication
            PostgreSQL: the WAL receiver is not streaming. MySQL/MariaDB: a channel's IO
            (receiver) thread is not "Yes", or its SQL (applier) thread stopped. The writer of
            a single-writer cluster replicates from nobody, so a stopped receiver or a
            leftover channel there is no alert; multi-writer nodes replicate from each other.
            The node's role comes from the same exporter as its stream, so this is regional.
          |||,
          expr: |||
            (
              max by (%(R)sdb_cluster, node, node_region) (rpo_pg_wal_receiver_status{status="streaming"%(m)s}) == 0
              or
              min by (%(R)sdb_cluster, node, node_region, channel) (rpo_mysql_replica_io_state{state="yes"%(m)s}) == 0
              or
              min by (%(R)sdb_cluster, node, node_region, channel) (rpo_mysql_replica_sql_running%(b)s) == 0
            )
            unless on (%(R)sdb_cluster, node)
            (
              region_node:rpo_node_writable:max == 1
              and on (%(R)sdb_cluster) region_db_cluster:rpo_cluster_info:max{write_mode="single-writer"}
            )
          ||| % v,
          'for': '2m',
          annotations: {
            summary: 'A replica receives or applies no changes from its upstream.',
            description: a.para(|||
              {{ if $labels.channel }}Replication channel {{ $labels.channel }} of
              {{ $labels.node }} ({{ $labels.node_region }}) in db_cluster
              {{ $labels.db_cluster }} has had its IO or SQL thread stopped for 2 minutes{{ else }}The
              WAL receiver of {{ $labels.node }} ({{ $labels.node_region }}) in db_cluster
              {{ $labels.db_cluster }} has not been streaming for 2 minutes{{ end }}: the
              replica falls behind and its data-loss exposure grows.
            |||),
          },
        }),

        a.new('RPOReplicationReplayPaused', 'replay-paused.md', {
          expr: 'max by (%(R)sdb_cluster, node, node_region) (rpo_pg_replay_paused%(b)s) == 1' % v,
          'for': '5m',
          annotations: {
            summary: 'WAL replay is paused on a replica.',
            description: a.para(|||
              WAL replay on {{ $labels.node }} ({{ $labels.node_region }}) of db_cluster
              {{ $labels.db_cluster }} has been paused for 5 minutes (pg_wal_replay_pause()):
              it receives WAL but applies none, so its exposure grows until
              pg_wal_replay_resume().
            |||),
          },
        }),

        a.new('RPONodeRoleChanged', 'node-role-changed.md', {
          comment:: |||
            A notice for the record (and for whoever handles the next page): a promotion,
            a demotion or a read_only toggle in the last 10 minutes.
          |||,
          expr: 'sum by (%(R)sdb_cluster, node, node_region) (increase(rpo_node_role_changes_total%(b)s[10m])) > 0' % v,
          annotations: {
            summary: 'A database node changed role (failover, switchover or read_only toggle).',
            description: a.para([|||
              {{ $labels.node }} ({{ $labels.node_region }}) of db_cluster
              {{ $labels.db_cluster }} changed role in the last 10 minutes and now
            |||, q.withQuery('region_node:rpo_node_writable:max', R + ['db_cluster', 'node'], '{{ if eq (. | first | value) 1.0 }}accepts writes{{ else }}is read-only{{ end }}', 'does not answer') + '.']),
          },
        }),

        a.new('RPOExporterDown', 'exporter-down.md', {
          comment:: |||
            ---------------------------------------------------------------- the exporter
            The first branch matches the scrape job of _config.jobSelector; the second finds
            rpo-exporter targets under any job name by the rpo_exporter_build_info they
            exported in the last 6 hours.
          |||,
          expr: |||
            up{%(job)s} == 0
            or
            (up == 0 and on (%(R)sjob, instance) max_over_time(rpo_exporter_build_info%(b)s[6h]))
          ||| % v,
          'for': '3m',
          annotations: {
            summary: 'Prometheus cannot scrape rpo-exporter; RPO alerting is blind.',
            description: a.para(|||
              Prometheus has failed to scrape rpo-exporter at {{ $labels.instance }}
              (job {{ $labels.job }}) for 3 minutes: replication lag, data-loss exposure
              and every RPO alert it feeds are unknown.
            |||),
          },
        }),

        a.new('RPOExporterLoopStale', 'exporter-loop-stale.md', {
          comment:: |||
            Value: how old the loop's last round is, in seconds. A DNS or region-probe
            loop finishes a round every interval (at most the interval plus its timeout):
            5 minutes without one means its results are frozen. Crashes that the
            exporter recovered from are counted in rpo_exporter_task_restarts_total.
          |||,
          expr: |||
            max by (%(R)sjob, instance) (rpo_dns_round_age_seconds%(b)s) > 300
            or
            max by (%(R)sjob, instance) (rpo_probe_round_age_seconds%(b)s) > 300
          ||| % v,
          'for': '2m',
          annotations: {
            summary: "An exporter's DNS or region-probe results are frozen.",
            description: a.para(|||
              rpo-exporter at {{ $labels.instance }} (job {{ $labels.job }}) last finished a
              DNS or region-probe round {{ $value | humanizeDuration }} ago: the DNS and
              region-health series it exports are stale, and alerts fed by them are blind.
            |||),
          },
        }),

        a.new('RPOCollectorFailing', 'collector-failing.md', {
          comment:: |||
            Value: the share of the collector's runs that failed over 5 minutes (runs happen
            once per heartbeat interval). Nodes that are down are RPONodeDown's business.
          |||,
          expr: |||
            (
              sum by (%(R)sdb_cluster, node, node_region, collector) (rate(rpo_collector_errors_total%(b)s[5m]))
                * on (%(R)sdb_cluster) group_left () region_db_cluster:rpo_heartbeat_interval_seconds:max
            ) > 0.25
            unless on (%(R)sdb_cluster, node) (region_node:rpo_node_up:max == 0)
          ||| % v,
          'for': '5m',
          annotations: {
            summary: 'An exporter collector keeps failing on a node.',
            description: a.para(|||
              The {{ $labels.collector }} collector failed in
              {{ $value | humanizePercentage }} of its runs on {{ $labels.node }}
              ({{ $labels.node_region }}) of db_cluster {{ $labels.db_cluster }} over the
              last 5 minutes; rpo_collector_errors_total{reason} says why.
            |||),
          },
        }),

        a.new('RPOClockSkew', 'clock-skew.md', {
          comment:: |||
            ---------------------------------------------------------------- clocks and rows
            Two kinds: a replica reading a heartbeat row written in its future (sidecars,
            which compare database clocks), and a node whose clock is more than 0.5 s off
            the median of the nodes one exporter watches (with two nodes: they disagree by
            more than 1 s). Value of the second: the node's distance from the median.
          |||,
          expr: |||
            (
              max by (%(R)sdb_cluster, source_node, source_region, replica_node, replica_region)
                (rpo_heartbeat_row_status{status="future_timestamp"%(m)s}) == 1
            )
            or
            (
              abs(
                rpo_node_clock_offset_seconds%(b)s
                  - on (%(R)sdb_cluster, job, instance) group_left ()
                    quantile by (%(R)sdb_cluster, job, instance) (0.5, rpo_node_clock_offset_seconds%(b)s)
              ) > 0.5
            )
          ||| % v,
          'for': '5m',
          annotations: {
            summary: 'Database clocks disagree; heartbeat readings that compare them are wrong.',
            description: a.para(|||
              {{ if $labels.replica_node }}{{ $labels.replica_node }} ({{ $labels.replica_region }})
              reads heartbeats of {{ $labels.source_node }} ({{ $labels.source_region }}) in
              db_cluster {{ $labels.db_cluster }} that were written in its future: their
              clocks disagree, and this pair's lag and exposure are unknown.{{ else }}The
              database clock of {{ $labels.node }} ({{ $labels.node_region }}) in db_cluster
              {{ $labels.db_cluster }} is {{ $value | humanizeDuration }} away from the
              other nodes' median, as exporter {{ $labels.instance }} measures it.{{ end }}
            |||),
          },
        }),

        a.new('RPOHeartbeatRowInvalid', 'heartbeat-row-invalid.md', {
          expr: |||
            max by (%(R)sdb_cluster, source_node, source_region, replica_node, replica_region, status)
              (rpo_heartbeat_row_status{status=~"null_timestamp|invalid_timestamp|invalid_sequence|identity_mismatch"%(m)s}) == 1
          ||| % v,
          'for': '5m',
          annotations: {
            summary: 'A heartbeat row cannot be read as a measurement; that pair is not measured.',
            description: a.para(|||
              The heartbeat row of {{ $labels.source_node }} ({{ $labels.source_region }})
              as {{ $labels.replica_node }} ({{ $labels.replica_region }}) reads it in
              db_cluster {{ $labels.db_cluster }} has status {{ $labels.status }}: this
              pair's lag and exposure are unknown.
            |||),
          },
        }),
      ],
    },
  ]
