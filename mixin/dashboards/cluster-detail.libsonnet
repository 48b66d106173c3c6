// The Grafana dashboard "RPO / Cluster detail" (uid rpo-cluster-detail):
// its static structure as Grafana JSON, every query through d.e() (the selectors and
// labels of _config; see dashboards.libsonnet).
function(d)
  {
    annotations: {
      list: [],
    },
    description: "Why is a replica behind? Lag and exposure per pair over time, the engines' own replication signals beside the heartbeat, the heartbeat writer, collectors, clock skew, and data residency.",
    editable: true,
    fiscalYearStartMonth: 0,
    graphTooltip: 1,
    id: null,
    links: [
      {
        title: 'rpo-exporter dashboards',
        type: 'dashboards',
        tags: [d.tag],
        asDropdown: false,
        includeVars: true,
        keepTime: true,
        icon: 'external link',
        targetBlank: false,
        tooltip: '',
        url: '',
      },
    ],
    liveNow: false,
    panels: [
      {
        type: 'row',
        title: 'Heartbeat lag and data-loss exposure per pair',
        id: 1,
        collapsed: false,
        gridPos: {
          h: 1,
          w: 24,
          x: 0,
          y: 0,
        },
        panels: [],
      },
      {
        type: 'timeseries',
        title: 'Replication lag per pair',
        description: 'Age of the oldest heartbeat written on the source that the replica does not show yet (rpo_replication_lag_seconds). 0 when the replica has everything, even on an idle primary. A gap in a line is unknown (replica unreadable), never 0.',
        datasource: {
          type: 'prometheus',
          uid: '${datasource}',
        },
        targets: [
          {
            datasource: {
              type: 'prometheus',
              uid: '${datasource}',
            },
            refId: 'A',
            expr: d.e('max by (%(G)sdb_cluster, source_node, source_region, replica_node, replica_region) (rpo_replication_lag_seconds{%(J)s, db_cluster=~"$db_cluster", replica_region=~"$region"})'),
            legendFormat: '{{db_cluster}}: {{source_node}} → {{replica_node}} ({{replica_region}})',
            range: true,
            instant: false,
            editorMode: 'code',
          },
        ],
        fieldConfig: {
          defaults: {
            unit: 's',
            thresholds: {
              mode: 'absolute',
              steps: [
                {
                  color: 'green',
                  value: null,
                },
              ],
            },
            mappings: [],
            color: {
              mode: 'palette-classic',
            },
            custom: {
              drawStyle: 'line',
              lineInterpolation: 'linear',
              lineWidth: 1,
              fillOpacity: 10,
              gradientMode: 'none',
              showPoints: 'never',
              pointSize: 4,
              spanNulls: false,
              axisPlacement: 'auto',
              axisSoftMin: 0,
              stacking: {
                mode: 'none',
                group: 'A',
              },
              thresholdsStyle: {
                mode: 'off',
              },
              barAlignment: 0,
              hideFrom: {
                legend: false,
                tooltip: false,
                viz: false,
              },
            },
          },
          overrides: [],
        },
        options: {
          legend: {
            showLegend: true,
            displayMode: 'table',
            placement: 'bottom',
            calcs: [
              'lastNotNull',
              'max',
            ],
          },
          tooltip: {
            mode: 'multi',
            sort: 'desc',
          },
        },
        id: 2,
        gridPos: {
          h: 8,
          w: 12,
          x: 0,
          y: 1,
        },
      },
      {
        type: 'timeseries',
        title: 'Data-loss exposure per pair vs RPO',
        description: "Age of the newest source heartbeat the replica shows: what a failover to it would lose now. Dashed red: each cluster's RPO (rpo_objective_seconds).",
        datasource: {
          type: 'prometheus',
          uid: '${datasource}',
        },
        targets: [
          {
            datasource: {
              type: 'prometheus',
              uid: '${datasource}',
            },
            refId: 'A',
            expr: d.e('max by (%(G)sdb_cluster, source_node, source_region, replica_node, replica_region) (rpo_data_loss_exposure_seconds{%(J)s, db_cluster=~"$db_cluster", replica_region=~"$region"})'),
            legendFormat: '{{db_cluster}}: {{source_node}} → {{replica_node}} ({{replica_region}})',
            range: true,
            instant: false,
            editorMode: 'code',
          },
          {
            datasource: {
              type: 'prometheus',
              uid: '${datasource}',
            },
            refId: 'B',
            expr: d.e('max by (%(G)sdb_cluster) (rpo_objective_seconds{%(J)s, db_cluster=~"$db_cluster"})'),
            legendFormat: 'RPO {{db_cluster}}',
            range: true,
            instant: false,
            editorMode: 'code',
          },
        ],
        fieldConfig: {
          defaults: {
            unit: 's',
            thresholds: {
              mode: 'absolute',
              steps: [
                {
                  color: 'green',
                  value: null,
                },
              ],
            },
            mappings: [],
            color: {
              mode: 'palette-classic',
            },
            custom: {
              drawStyle: 'line',
              lineInterpolation: 'linear',
              lineWidth: 1,
              fillOpacity: 10,
              gradientMode: 'none',
              showPoints: 'never',
              pointSize: 4,
              spanNulls: false,
              axisPlacement: 'auto',
              axisSoftMin: 0,
              stacking: {
                mode: 'none',
                group: 'A',
              },
              thresholdsStyle: {
                mode: 'off',
              },
              barAlignment: 0,
              hideFrom: {
                legend: false,
                tooltip: false,
                viz: false,
              },
            },
          },
          overrides: [
            {
              matcher: {
                id: 'byFrameRefID',
                options: 'B',
              },
              properties: [
                {
                  id: 'color',
                  value: {
                    mode: 'fixed',
                    fixedColor: 'red',
                  },
                },
                {
                  id: 'custom.lineStyle',
                  value: {
                    fill: 'dash',
                    dash: [
                      10,
                      10,
                    ],
                  },
                },
                {
                  id: 'custom.fillOpacity',
                  value: 0,
                },
                {
                  id: 'custom.lineWidth',
                  value: 2,
                },
              ],
            },
          ],
        },
        options: {
          legend: {
            showLegend: true,
            displayMode: 'table',
            placement: 'bottom',
            calcs: [
              'lastNotNull',
              'max',
            ],
          },
          tooltip: {
            mode: 'multi',
            sort: 'desc',
          },
        },
        id: 3,
        gridPos: {
          h: 8,
          w: 12,
          x: 12,
          y: 1,
        },
      },
      {
        type: 'timeseries',
        title: 'Measurement age',
        description: 'Seconds since each collector last succeeded on each node (rpo_measurement_age_seconds). It stays below one or two heartbeat intervals; a line that keeps climbing is a node or collector that stopped answering, and the lag readings above are then absent.',
        datasource: {
          type: 'prometheus',
          uid: '${datasource}',
        },
        targets: [
          {
            datasource: {
              type: 'prometheus',
              uid: '${datasource}',
            },
            refId: 'A',
            expr: d.e('max by (%(G)sdb_cluster, node, node_region, collector) (rpo_measurement_age_seconds{%(J)s, db_cluster=~"$db_cluster", node_region=~"$region"})'),
            legendFormat: '{{db_cluster}} · {{node}} ({{node_region}}) {{collector}}',
            range: true,
            instant: false,
            editorMode: 'code',
          },
        ],
        fieldConfig: {
          defaults: {
            unit: 's',
            thresholds: {
              mode: 'absolute',
              steps: [
                {
                  color: 'green',
                  value: null,
                },
              ],
            },
            mappings: [],
            color: {
              mode: 'palette-classic',
            },
            custom: {
              drawStyle: 'line',
              lineInterpolation: 'linear',
              lineWidth: 1,
              fillOpacity: 10,
              gradientMode: 'none',
              showPoints: 'never',
              pointSize: 4,
              spanNulls: false,
              axisPlacement: 'auto',
              axisSoftMin: 0,
              stacking: {
                mode: 'none',
                group: 'A',
              },
              thresholdsStyle: {
                mode: 'off',
              },
              barAlignment: 0,
              hideFrom: {
                legend: false,
                tooltip: false,
                viz: false,
              },
            },
          },
          overrides: [],
        },
        options: {
          legend: {
            showLegend: true,
            displayMode: 'table',
            placement: 'bottom',
            calcs: [
              'lastNotNull',
              'max',
            ],
          },
          tooltip: {
            mode: 'multi',
            sort: 'desc',
          },
        },
        id: 4,
        gridPos: {
          h: 8,
          w: 12,
          x: 0,
          y: 9,
        },
      },
      {
        type: 'table',
        title: 'Heartbeat row status per pair',
        description: "How the replica reads each source's heartbeat row now: ok, null_timestamp, invalid_timestamp or invalid_sequence (a damaged or forged row), future_timestamp (clock skew) or identity_mismatch (a DSN pointing at the wrong server). Anything but ok means the pair's lag and exposure are unknown.",
        datasource: {
          type: 'prometheus',
          uid: '${datasource}',
        },
        targets: [
          {
            datasource: {
              type: 'prometheus',
              uid: '${datasource}',
            },
            refId: 'A',
            expr: d.e('max by (%(G)sdb_cluster, source_node, source_region, replica_node, replica_region, status) (rpo_heartbeat_row_status{%(J)s, db_cluster=~"$db_cluster", replica_region=~"$region"}) == 1'),
            legendFormat: '__auto',
            range: false,
            instant: true,
            editorMode: 'code',
            format: 'table',
          },
        ],
        fieldConfig: {
          defaults: {
            thresholds: {
              mode: 'absolute',
              steps: [
                {
                  color: 'green',
                  value: null,
                },
              ],
            },
            mappings: [],
            color: {
              mode: 'thresholds',
            },
            custom: {
              align: 'auto',
              cellOptions: {
                type: 'auto',
              },
              inspect: false,
              filterable: false,
            },
          },
          overrides: [
            {
              matcher: {
                id: 'byName',
                options: 'Row status',
              },
              properties: [
                {
                  id: 'custom.cellOptions',
                  value: {
                    type: 'color-background',
                  },
                },
                {
                  id: 'mappings',
                  value: [
                    {
                      type: 'value',
                      options: {
                        ok: {
                          color: 'green',
                          index: 0,
                        },
                      },
                    },
                    {
                      type: 'regex',
                      options: {
                        pattern: '.+',
                        result: {
                          color: 'red',
                          index: 1,
                        },
                      },
                    },
                  ],
                },
              ],
            },
          ],
        },
        options: {
          showHeader: true,
          cellHeight: 'sm',
          footer: {
            show: false,
            reducer: [
              'sum',
            ],
            countRows: false,
            fields: '',
          },
        },
        transformations: [
          {
            id: 'organize',
            options: {
              excludeByName: {
                Time: true,
                Value: true,
              },
              renameByName: {
                db_cluster: 'Cluster',
                source_node: 'Source',
                source_region: 'Source region',
                replica_node: 'Replica',
                replica_region: 'Replica region',
                status: 'Row status',
              },
            },
          },
        ],
        id: 5,
        gridPos: {
          h: 8,
          w: 12,
          x: 12,
          y: 9,
        },
      },
      {
        type: 'row',
        title: 'Heartbeat writer and collectors',
        id: 6,
        collapsed: false,
        gridPos: {
          h: 1,
          w: 24,
          x: 0,
          y: 17,
        },
        panels: [],
      },
      {
        type: 'timeseries',
        title: 'Heartbeat write rate',
        description: 'Heartbeats written per second on each writable node (rpo_heartbeat_writes_total), against the expected 1 ÷ interval (dashed). A writer at 0 means no replication is being measured (RPOHeartbeatsStale).',
        datasource: {
          type: 'prometheus',
          uid: '${datasource}',
        },
        targets: [
          {
            datasource: {
              type: 'prometheus',
              uid: '${datasource}',
            },
            refId: 'A',
            expr: d.e('sum by (%(G)sdb_cluster, node, node_region) (rate(rpo_heartbeat_writes_total{%(J)s, db_cluster=~"$db_cluster", node_region=~"$region"}[$__rate_interval]))'),
            legendFormat: '{{db_cluster}} · {{node}} ({{node_region}})',
            range: true,
            instant: false,
            editorMode: 'code',
          },
          {
            datasource: {
              type: 'prometheus',
              uid: '${datasource}',
            },
            refId: 'B',
            expr: d.e('1 / max by (%(G)sdb_cluster) (rpo_heartbeat_interval_seconds{%(J)s, db_cluster=~"$db_cluster"})'),
            legendFormat: 'expected {{db_cluster}}',
            range: true,
            instant: false,
            editorMode: 'code',
          },
        ],
        fieldConfig: {
          defaults: {
            unit: 'wps',
            thresholds: {
              mode: 'absolute',
              steps: [
                {
                  color: 'green',
                  value: null,
                },
              ],
            },
            mappings: [],
            color: {
              mode: 'palette-classic',
            },
            custom: {
              drawStyle: 'line',
              lineInterpolation: 'linear',
              lineWidth: 1,
              fillOpacity: 10,
              gradientMode: 'none',
              showPoints: 'never',
              pointSize: 4,
              spanNulls: false,
              axisPlacement: 'auto',
              axisSoftMin: 0,
              stacking: {
                mode: 'none',
                group: 'A',
              },
              thresholdsStyle: {
                mode: 'off',
              },
              barAlignment: 0,
              hideFrom: {
                legend: false,
                tooltip: false,
                viz: false,
              },
            },
          },
          overrides: [
            {
              matcher: {
                id: 'byFrameRefID',
                options: 'B',
              },
              properties: [
                {
                  id: 'custom.lineStyle',
                  value: {
                    fill: 'dash',
                    dash: [
                      10,
                      10,
                    ],
                  },
                },
                {
                  id: 'custom.fillOpacity',
                  value: 0,
                },
              ],
            },
          ],
        },
        options: {
          legend: {
            showLegend: true,
            displayMode: 'table',
            placement: 'bottom',
            calcs: [
              'lastNotNull',
              'max',
            ],
          },
          tooltip: {
            mode: 'multi',
            sort: 'desc',
          },
        },
        id: 7,
        gridPos: {
          h: 8,
          w: 12,
          x: 0,
          y: 18,
        },
      },
      {
        type: 'timeseries',
        title: 'Collector errors by reason',
        description: 'Failed collector runs per second by node, collector (role, heartbeat_write, heartbeat_read, replication) and bounded reason (connect, auth, timeout, permission, missing_table, read_only, query). Flat at 0 while nothing fails.',
        datasource: {
          type: 'prometheus',
          uid: '${datasource}',
        },
        targets: [
          {
            datasource: {
              type: 'prometheus',
              uid: '${datasource}',
            },
            refId: 'A',
            expr: d.e('sum by (%(G)sdb_cluster, node, node_region, collector, reason) (rate(rpo_collector_errors_total{%(J)s, db_cluster=~"$db_cluster", node_region=~"$region"}[$__rate_interval]))\nor\nsum by (%(G)sdb_cluster, node, node_region, collector) (0 * rpo_collector_success{%(J)s, db_cluster=~"$db_cluster", node_region=~"$region"})'),
            legendFormat: '{{db_cluster}} · {{node}} ({{node_region}}) {{collector}} {{reason}}',
            range: true,
            instant: false,
            editorMode: 'code',
          },
        ],
        fieldConfig: {
          defaults: {
            unit: 'ops',
            thresholds: {
              mode: 'absolute',
              steps: [
                {
                  color: 'green',
                  value: null,
                },
              ],
            },
            mappings: [],
            color: {
              mode: 'palette-classic',
            },
            custom: {
              drawStyle: 'line',
              lineInterpolation: 'linear',
              lineWidth: 1,
              fillOpacity: 10,
              gradientMode: 'none',
              showPoints: 'never',
              pointSize: 4,
              spanNulls: false,
              axisPlacement: 'auto',
              axisSoftMin: 0,
              stacking: {
                mode: 'none',
                group: 'A',
              },
              thresholdsStyle: {
                mode: 'off',
              },
              barAlignment: 0,
              hideFrom: {
                legend: false,
                tooltip: false,
                viz: false,
              },
            },
          },
          overrides: [],
        },
        options: {
          legend: {
            showLegend: true,
            displayMode: 'table',
            placement: 'bottom',
            calcs: [
              'lastNotNull',
              'max',
            ],
          },
          tooltip: {
            mode: 'multi',
            sort: 'desc',
          },
        },
        id: 8,
        gridPos: {
          h: 8,
          w: 12,
          x: 12,
          y: 18,
        },
      },
      {
        type: 'state-timeline',
        title: 'Collector success',
        description: "1 if the collector's last run on the node succeeded (rpo_collector_success). Red stretches line up with the errors beside and with gaps in the lag lines.",
        datasource: {
          type: 'prometheus',
          uid: '${datasource}',
        },
        targets: [
          {
            datasource: {
              type: 'prometheus',
              uid: '${datasource}',
            },
            refId: 'A',
            expr: d.e('min by (%(G)sdb_cluster, node, node_region, collector) (rpo_collector_success{%(J)s, db_cluster=~"$db_cluster", node_region=~"$region"})'),
            legendFormat: '{{db_cluster}} · {{node}} ({{node_region}}) {{collector}}',
            range: true,
            instant: false,
            editorMode: 'code',
          },
        ],
        fieldConfig: {
          defaults: {
            thresholds: {
              mode: 'absolute',
              steps: [
                {
                  color: 'green',
                  value: null,
                },
              ],
            },
            mappings: [
              {
                type: 'value',
                options: {
                  '1': {
                    text: 'ok',
                    color: 'green',
                    index: 0,
                  },
                  '0': {
                    text: 'failing',
                    color: 'red',
                    index: 1,
                  },
                },
              },
            ],
            color: {
              mode: 'thresholds',
            },
            custom: {
              lineWidth: 0,
              fillOpacity: 80,
              hideFrom: {
                legend: false,
                tooltip: false,
                viz: false,
              },
            },
          },
          overrides: [],
        },
        options: {
          mergeValues: true,
          showValue: 'auto',
          alignValue: 'left',
          rowHeight: 0.85,
          legend: {
            showLegend: true,
            displayMode: 'list',
            placement: 'bottom',
          },
          tooltip: {
            mode: 'single',
            sort: 'none',
          },
        },
        id: 9,
        gridPos: {
          h: 8,
          w: 12,
          x: 0,
          y: 26,
        },
      },
      {
        type: 'timeseries',
        title: 'Collector duration',
        description: "Duration of each collector's last run (rpo_collector_duration_seconds). A collector close to the cluster's heartbeat timeout is about to fail with reason timeout.",
        datasource: {
          type: 'prometheus',
          uid: '${datasource}',
        },
        targets: [
          {
            datasource: {
              type: 'prometheus',
              uid: '${datasource}',
            },
            refId: 'A',
            expr: d.e('max by (%(G)sdb_cluster, node, node_region, collector) (rpo_collector_duration_seconds{%(J)s, db_cluster=~"$db_cluster", node_region=~"$region"})'),
            legendFormat: '{{db_cluster}} · {{node}} ({{node_region}}) {{collector}}',
            range: true,
            instant: false,
            editorMode: 'code',
          },
        ],
        fieldConfig: {
          defaults: {
            unit: 's',
            thresholds: {
              mode: 'absolute',
              steps: [
                {
                  color: 'green',
                  value: null,
                },
              ],
            },
            mappings: [],
            color: {
              mode: 'palette-classic',
            },
            custom: {
              drawStyle: 'line',
              lineInterpolation: 'linear',
              lineWidth: 1,
              fillOpacity: 10,
              gradientMode: 'none',
              showPoints: 'never',
              pointSize: 4,
              spanNulls: false,
              axisPlacement: 'auto',
              axisSoftMin: 0,
              stacking: {
                mode: 'none',
                group: 'A',
              },
              thresholdsStyle: {
                mode: 'off',
              },
              barAlignment: 0,
              hideFrom: {
                legend: false,
                tooltip: false,
                viz: false,
              },
            },
          },
          overrides: [],
        },
        options: {
          legend: {
            showLegend: true,
            displayMode: 'table',
            placement: 'bottom',
            calcs: [
              'lastNotNull',
              'max',
            ],
          },
          tooltip: {
            mode: 'multi',
            sort: 'desc',
          },
        },
        id: 10,
        gridPos: {
          h: 8,
          w: 12,
          x: 12,
          y: 26,
        },
      },
      {
        type: 'row',
        title: 'PostgreSQL: native signals beside the heartbeat',
        id: 11,
        collapsed: false,
        gridPos: {
          h: 1,
          w: 24,
          x: 0,
          y: 34,
        },
        panels: [],
      },
      {
        type: 'timeseries',
        title: 'PostgreSQL: heartbeat lag vs pg_stat_replication lag',
        description: "Heartbeat lag of PostgreSQL pairs (solid) beside pg_stat_replication write_lag, flush_lag and replay_lag as the upstream reports them per standby. pg_stat_replication's lags vanish when no WAL is being sent and keep reading 'streaming' for a frozen standby; trust the heartbeat.",
        datasource: {
          type: 'prometheus',
          uid: '${datasource}',
        },
        targets: [
          {
            datasource: {
              type: 'prometheus',
              uid: '${datasource}',
            },
            refId: 'A',
            expr: d.e('max by (%(G)sdb_cluster, source_node, source_region, replica_node, replica_region) (rpo_replication_lag_seconds{%(J)s, db_cluster=~"$db_cluster", replica_region=~"$region"}) and on (%(G)sdb_cluster) rpo_pg_standbys{%(J)s, db_cluster=~"$db_cluster"}'),
            legendFormat: 'heartbeat {{db_cluster}}: {{source_node}} → {{replica_node}} ({{replica_region}})',
            range: true,
            instant: false,
            editorMode: 'code',
          },
          {
            datasource: {
              type: 'prometheus',
              uid: '${datasource}',
            },
            refId: 'B',
            expr: d.e('max by (%(G)sdb_cluster, node, node_region, standby, stage) (rpo_pg_standby_lag_seconds{%(J)s, db_cluster=~"$db_cluster"})'),
            legendFormat: 'pg {{stage}}_lag {{node}} → {{standby}}',
            range: true,
            instant: false,
            editorMode: 'code',
          },
        ],
        fieldConfig: {
          defaults: {
            unit: 's',
            thresholds: {
              mode: 'absolute',
              steps: [
                {
                  color: 'green',
                  value: null,
                },
              ],
            },
            mappings: [],
            color: {
              mode: 'palette-classic',
            },
            custom: {
              drawStyle: 'line',
              lineInterpolation: 'linear',
              lineWidth: 1,
              fillOpacity: 10,
              gradientMode: 'none',
              showPoints: 'never',
              pointSize: 4,
              spanNulls: false,
              axisPlacement: 'auto',
              axisSoftMin: 0,
              stacking: {
                mode: 'none',
                group: 'A',
              },
              thresholdsStyle: {
                mode: 'off',
              },
              barAlignment: 0,
              hideFrom: {
                legend: false,
                tooltip: false,
                viz: false,
              },
            },
          },
          overrides: [],
        },
        options: {
          legend: {
            showLegend: true,
            displayMode: 'table',
            placement: 'bottom',
            calcs: [
              'lastNotNull',
              'max',
            ],
          },
          tooltip: {
            mode: 'multi',
            sort: 'desc',
          },
        },
        id: 12,
        gridPos: {
          h: 8,
          w: 12,
          x: 0,
          y: 35,
        },
      },
      {
        type: 'timeseries',
        title: 'PostgreSQL: WAL byte lag',
        description: "Bytes of WAL between each upstream's position and its standbys' sent, write, flush and replay positions (rpo_pg_standby_lag_bytes), and WAL a replica received but has not replayed yet (rpo_pg_unreplayed_bytes). Growing replay bytes with flat write bytes: replay is stuck or paused.",
        datasource: {
          type: 'prometheus',
          uid: '${datasource}',
        },
        targets: [
          {
            datasource: {
              type: 'prometheus',
              uid: '${datasource}',
            },
            refId: 'A',
            expr: d.e('max by (%(G)sdb_cluster, node, node_region, standby, stage) (rpo_pg_standby_lag_bytes{%(J)s, db_cluster=~"$db_cluster"})'),
            legendFormat: '{{node}} → {{standby}} {{stage}}',
            range: true,
            instant: false,
            editorMode: 'code',
          },
          {
            datasource: {
              type: 'prometheus',
              uid: '${datasource}',
            },
            refId: 'B',
            expr: d.e('max by (%(G)sdb_cluster, node, node_region) (rpo_pg_unreplayed_bytes{%(J)s, db_cluster=~"$db_cluster", node_region=~"$region"})'),
            legendFormat: '{{node}} unreplayed',
            range: true,
            instant: false,
            editorMode: 'code',
          },
        ],
        fieldConfig: {
          defaults: {
            unit: 'bytes',
            thresholds: {
              mode: 'absolute',
              steps: [
                {
                  color: 'green',
                  value: null,
                },
              ],
            },
            mappings: [],
            color: {
              mode: 'palette-classic',
            },
            custom: {
              drawStyle: 'line',
              lineInterpolation: 'linear',
              lineWidth: 1,
              fillOpacity: 10,
              gradientMode: 'none',
              showPoints: 'never',
              pointSize: 4,
              spanNulls: false,
              axisPlacement: 'auto',
              axisSoftMin: 0,
              stacking: {
                mode: 'none',
                group: 'A',
              },
              thresholdsStyle: {
                mode: 'off',
              },
              barAlignment: 0,
              hideFrom: {
                legend: false,
                tooltip: false,
                viz: false,
              },
            },
          },
          overrides: [],
        },
        options: {
          legend: {
            showLegend: true,
            displayMode: 'table',
            placement: 'bottom',
            calcs: [
              'lastNotNull',
              'max',
            ],
          },
          tooltip: {
            mode: 'multi',
            sort: 'desc',
          },
        },
        id: 13,
        gridPos: {
          h: 8,
          w: 12,
          x: 12,
          y: 35,
        },
      },
      {
        type: 'state-timeline',
        title: 'PostgreSQL: WAL receiver streaming, replay paused',
        description: 'Per replica: whether its WAL receiver is streaming (rpo_pg_wal_receiver_status) and whether replay is paused (pg_wal_replay_pause(); RPOReplicationReplayPaused).',
        datasource: {
          type: 'prometheus',
          uid: '${datasource}',
        },
        targets: [
          {
            datasource: {
              type: 'prometheus',
              uid: '${datasource}',
            },
            refId: 'A',
            expr: d.e('max by (%(G)sdb_cluster, node, node_region) (rpo_pg_wal_receiver_status{%(J)s, db_cluster=~"$db_cluster", node_region=~"$region", status="streaming"})'),
            legendFormat: '{{node}} receiver',
            range: true,
            instant: false,
            editorMode: 'code',
          },
          {
            datasource: {
              type: 'prometheus',
              uid: '${datasource}',
            },
            refId: 'B',
            expr: d.e('max by (%(G)sdb_cluster, node, node_region) (rpo_pg_replay_paused{%(J)s, db_cluster=~"$db_cluster", node_region=~"$region"})'),
            legendFormat: '{{node}} replay',
            range: true,
            instant: false,
            editorMode: 'code',
          },
        ],
        fieldConfig: {
          defaults: {
            thresholds: {
              mode: 'absolute',
              steps: [
                {
                  color: 'green',
                  value: null,
                },
              ],
            },
            mappings: [],
            color: {
              mode: 'thresholds',
            },
            custom: {
              lineWidth: 0,
              fillOpacity: 80,
              hideFrom: {
                legend: false,
                tooltip: false,
                viz: false,
              },
            },
          },
          overrides: [
            {
              matcher: {
                id: 'byFrameRefID',
                options: 'A',
              },
              properties: [
                {
                  id: 'mappings',
                  value: [
                    {
                      type: 'value',
                      options: {
                        '1': {
                          text: 'streaming',
                          color: 'green',
                          index: 0,
                        },
                        '0': {
                          text: 'not streaming',
                          color: 'red',
                          index: 1,
                        },
                      },
                    },
                  ],
                },
              ],
            },
            {
              matcher: {
                id: 'byFrameRefID',
                options: 'B',
              },
              properties: [
                {
                  id: 'mappings',
                  value: [
                    {
                      type: 'value',
                      options: {
                        '1': {
                          text: 'PAUSED',
                          color: 'orange',
                          index: 0,
                        },
                        '0': {
                          text: 'replaying',
                          color: 'green',
                          index: 1,
                        },
                      },
                    },
                  ],
                },
              ],
            },
          ],
        },
        options: {
          mergeValues: true,
          showValue: 'auto',
          alignValue: 'left',
          rowHeight: 0.85,
          legend: {
            showLegend: true,
            displayMode: 'list',
            placement: 'bottom',
          },
          tooltip: {
            mode: 'single',
            sort: 'none',
          },
        },
        id: 14,
        gridPos: {
          h: 8,
          w: 12,
          x: 0,
          y: 43,
        },
      },
      {
        type: 'table',
        title: 'PostgreSQL: standbys (pg_stat_replication)',
        description: 'Standbys connected to each node and their state (startup, catchup, streaming, backup, stopping). A replica missing here is not connected to its upstream.',
        datasource: {
          type: 'prometheus',
          uid: '${datasource}',
        },
        targets: [
          {
            datasource: {
              type: 'prometheus',
              uid: '${datasource}',
            },
            refId: 'A',
            expr: d.e('max by (%(G)sdb_cluster, node, node_region, standby, state) (rpo_pg_standby_state{%(J)s, db_cluster=~"$db_cluster"}) == 1'),
            legendFormat: '__auto',
            range: false,
            instant: true,
            editorMode: 'code',
            format: 'table',
          },
        ],
        fieldConfig: {
          defaults: {
            thresholds: {
              mode: 'absolute',
              steps: [
                {
                  color: 'green',
                  value: null,
                },
              ],
            },
            mappings: [],
            color: {
              mode: 'thresholds',
            },
            custom: {
              align: 'auto',
              cellOptions: {
                type: 'auto',
              },
              inspect: false,
              filterable: false,
            },
          },
          overrides: [],
        },
        options: {
          showHeader: true,
          cellHeight: 'sm',
          footer: {
            show: false,
            reducer: [
              'sum',
            ],
            countRows: false,
            fields: '',
          },
        },
        transformations: [
          {
            id: 'organize',
            options: {
              excludeByName: {
                Time: true,
                Value: true,
              },
              renameByName: {
                db_cluster: 'Cluster',
                node: 'Upstream',
                node_region: 'Region',
                standby: 'Standby',
                state: 'State',
              },
            },
          },
        ],
        id: 15,
        gridPos: {
          h: 8,
          w: 12,
          x: 12,
          y: 43,
        },
      },
      {
        type: 'timeseries',
        title: 'PostgreSQL: time since last replayed transaction (for comparison)',
        description: 'now − pg_last_xact_replay_timestamp() per replica: the lag postgres_exporter shows. It climbs on an idle primary with nothing lost; compare with the heartbeat lag above before acting on it.',
        datasource: {
          type: 'prometheus',
          uid: '${datasource}',
        },
        targets: [
          {
            datasource: {
              type: 'prometheus',
              uid: '${datasource}',
            },
            refId: 'A',
            expr: d.e('time() - max by (%(G)sdb_cluster, node, node_region) (rpo_pg_last_replay_timestamp_seconds{%(J)s, db_cluster=~"$db_cluster", node_region=~"$region"})'),
            legendFormat: '{{db_cluster}} · {{node}} ({{node_region}})',
            range: true,
            instant: false,
            editorMode: 'code',
          },
        ],
        fieldConfig: {
          defaults: {
            unit: 's',
            thresholds: {
              mode: 'absolute',
              steps: [
                {
                  color: 'green',
                  value: null,
                },
              ],
            },
            mappings: [],
            color: {
              mode: 'palette-classic',
            },
            custom: {
              drawStyle: 'line',
              lineInterpolation: 'linear',
              lineWidth: 1,
              fillOpacity: 10,
              gradientMode: 'none',
              showPoints: 'never',
              pointSize: 4,
              spanNulls: false,
              axisPlacement: 'auto',
              axisSoftMin: 0,
              stacking: {
                mode: 'none',
                group: 'A',
              },
              thresholdsStyle: {
                mode: 'off',
              },
              barAlignment: 0,
              hideFrom: {
                legend: false,
                tooltip: false,
                viz: false,
              },
            },
          },
          overrides: [],
        },
        options: {
          legend: {
            showLegend: true,
            displayMode: 'table',
            placement: 'bottom',
            calcs: [
              'lastNotNull',
              'max',
            ],
          },
          tooltip: {
            mode: 'multi',
            sort: 'desc',
          },
        },
        id: 16,
        gridPos: {
          h: 8,
          w: 12,
          x: 0,
          y: 51,
        },
      },
      {
        type: 'row',
        title: 'MySQL / MariaDB: native signals beside the heartbeat',
        id: 17,
        collapsed: false,
        gridPos: {
          h: 1,
          w: 24,
          x: 0,
          y: 59,
        },
        panels: [],
      },
      {
        type: 'timeseries',
        title: 'MySQL: heartbeat lag vs Seconds_Behind_Master',
        description: "Heartbeat lag of MySQL/MariaDB pairs beside Seconds_Behind_Master per replica channel, and the channel's configured SQL_Delay (dashed: a delayed replica's lag settles there). SBM reads 0 on a silently broken network and is NULL (a gap here) with a stopped thread; trust the heartbeat.",
        datasource: {
          type: 'prometheus',
          uid: '${datasource}',
        },
        targets: [
          {
            datasource: {
              type: 'prometheus',
              uid: '${datasource}',
            },
            refId: 'A',
            expr: d.e('max by (%(G)sdb_cluster, source_node, source_region, replica_node, replica_region) (rpo_replication_lag_seconds{%(J)s, db_cluster=~"$db_cluster", replica_region=~"$region"}) and on (%(G)sdb_cluster) rpo_mysql_replica_channels{%(J)s, db_cluster=~"$db_cluster"}'),
            legendFormat: 'heartbeat {{db_cluster}}: {{source_node}} → {{replica_node}} ({{replica_region}})',
            range: true,
            instant: false,
            editorMode: 'code',
          },
          {
            datasource: {
              type: 'prometheus',
              uid: '${datasource}',
            },
            refId: 'B',
            expr: d.e('max by (%(G)sdb_cluster, node, node_region, channel) (rpo_mysql_seconds_behind_source{%(J)s, db_cluster=~"$db_cluster", node_region=~"$region"})'),
            legendFormat: 'SBM {{node}}/{{channel}}',
            range: true,
            instant: false,
            editorMode: 'code',
          },
          {
            datasource: {
              type: 'prometheus',
              uid: '${datasource}',
            },
            refId: 'C',
            expr: d.e('max by (%(G)sdb_cluster, node, node_region, channel) (rpo_mysql_sql_delay_seconds{%(J)s, db_cluster=~"$db_cluster", node_region=~"$region"})'),
            legendFormat: 'SQL_Delay {{node}}/{{channel}}',
            range: true,
            instant: false,
            editorMode: 'code',
          },
        ],
        fieldConfig: {
          defaults: {
            unit: 's',
            thresholds: {
              mode: 'absolute',
              steps: [
                {
                  color: 'green',
                  value: null,
                },
              ],
            },
            mappings: [],
            color: {
              mode: 'palette-classic',
            },
            custom: {
              drawStyle: 'line',
              lineInterpolation: 'linear',
              lineWidth: 1,
              fillOpacity: 10,
              gradientMode: 'none',
              showPoints: 'never',
              pointSize: 4,
              spanNulls: false,
              axisPlacement: 'auto',
              axisSoftMin: 0,
              stacking: {
                mode: 'none',
                group: 'A',
              },
              thresholdsStyle: {
                mode: 'off',
              },
              barAlignment: 0,
              hideFrom: {
                legend: false,
                tooltip: false,
                viz: false,
              },
            },
          },
          overrides: [
            {
              matcher: {
                id: 'byFrameRefID',
                options: 'C',
              },
              properties: [
                {
                  id: 'custom.lineStyle',
                  value: {
                    fill: 'dash',
                    dash: [
                      10,
                      10,
                    ],
                  },
                },
                {
                  id: 'custom.fillOpacity',
                  value: 0,
                },
              ],
            },
          ],
        },
        options: {
          legend: {
            showLegend: true,
            displayMode: 'table',
            placement: 'bottom',
            calcs: [
              'lastNotNull',
              'max',
            ],
          },
          tooltip: {
            mode: 'multi',
            sort: 'desc',
          },
        },
        id: 18,
        gridPos: {
          h: 8,
          w: 12,
          x: 0,
          y: 60,
        },
      },
      {
        type: 'state-timeline',
        title: 'MySQL: replica threads',
        description: 'Per replica channel: IO (receiver) thread connected, SQL (applier) thread running, and whether Seconds_Behind_Master is NULL.',
        datasource: {
          type: 'prometheus',
          uid: '${datasource}',
        },
        targets: [
          {
            datasource: {
              type: 'prometheus',
              uid: '${datasource}',
            },
            refId: 'A',
            expr: d.e('max by (%(G)sdb_cluster, node, node_region, channel) (rpo_mysql_replica_io_state{%(J)s, db_cluster=~"$db_cluster", node_region=~"$region", state="yes"})'),
            legendFormat: '{{node}}/{{channel}} IO',
            range: true,
            instant: false,
            editorMode: 'code',
          },
          {
            datasource: {
              type: 'prometheus',
              uid: '${datasource}',
            },
            refId: 'B',
            expr: d.e('max by (%(G)sdb_cluster, node, node_region, channel) (rpo_mysql_replica_sql_running{%(J)s, db_cluster=~"$db_cluster", node_region=~"$region"})'),
            legendFormat: '{{node}}/{{channel}} SQL',
            range: true,
            instant: false,
            editorMode: 'code',
          },
          {
            datasource: {
              type: 'prometheus',
              uid: '${datasource}',
            },
            refId: 'C',
            expr: d.e('max by (%(G)sdb_cluster, node, node_region, channel) (rpo_mysql_seconds_behind_source_null{%(J)s, db_cluster=~"$db_cluster", node_region=~"$region"})'),
            legendFormat: '{{node}}/{{channel}} SBM',
            range: true,
            instant: false,
            editorMode: 'code',
          },
        ],
        fieldConfig: {
          defaults: {
            thresholds: {
              mode: 'absolute',
              steps: [
                {
                  color: 'green',
                  value: null,
                },
              ],
            },
            mappings: [],
            color: {
              mode: 'thresholds',
            },
            custom: {
              lineWidth: 0,
              fillOpacity: 80,
              hideFrom: {
                legend: false,
                tooltip: false,
                viz: false,
              },
            },
          },
          overrides: [
            {
              matcher: {
                id: 'byFrameRefID',
                options: 'A',
              },
              properties: [
                {
                  id: 'mappings',
                  value: [
                    {
                      type: 'value',
                      options: {
                        '1': {
                          text: 'running',
                          color: 'green',
                          index: 0,
                        },
                        '0': {
                          text: 'stopped',
                          color: 'red',
                          index: 1,
                        },
                      },
                    },
                  ],
                },
              ],
            },
            {
              matcher: {
                id: 'byFrameRefID',
                options: 'B',
              },
              properties: [
                {
                  id: 'mappings',
                  value: [
                    {
                      type: 'value',
                      options: {
                        '1': {
                          text: 'running',
                          color: 'green',
                          index: 0,
                        },
                        '0': {
                          text: 'stopped',
                          color: 'red',
                          index: 1,
                        },
                      },
                    },
                  ],
                },
              ],
            },
            {
              matcher: {
                id: 'byFrameRefID',
                options: 'C',
              },
              properties: [
                {
                  id: 'mappings',
                  value: [
                    {
                      type: 'value',
                      options: {
                        '1': {
                          text: 'NULL',
                          color: 'orange',
                          index: 0,
                        },
                        '0': {
                          text: 'reported',
                          color: 'green',
                          index: 1,
                        },
                      },
                    },
                  ],
                },
              ],
            },
          ],
        },
        options: {
          mergeValues: true,
          showValue: 'auto',
          alignValue: 'left',
          rowHeight: 0.85,
          legend: {
            showLegend: true,
            displayMode: 'list',
            placement: 'bottom',
          },
          tooltip: {
            mode: 'single',
            sort: 'none',
          },
        },
        id: 19,
        gridPos: {
          h: 8,
          w: 12,
          x: 12,
          y: 60,
        },
      },
      {
        type: 'table',
        title: 'MySQL: replica errors',
        description: "Per replica channel: Last_IO_Errno and Last_SQL_Errno (0 = none). A non-zero errno is the reason a thread stopped: look it up in the server's log.",
        datasource: {
          type: 'prometheus',
          uid: '${datasource}',
        },
        targets: [
          {
            datasource: {
              type: 'prometheus',
              uid: '${datasource}',
            },
            refId: 'A',
            expr: d.e('max by (%(G)sdb_cluster, node, node_region, channel, thread) (rpo_mysql_replica_last_errno{%(J)s, db_cluster=~"$db_cluster", node_region=~"$region"})'),
            legendFormat: '__auto',
            range: false,
            instant: true,
            editorMode: 'code',
            format: 'table',
          },
        ],
        fieldConfig: {
          defaults: {
            thresholds: {
              mode: 'absolute',
              steps: [
                {
                  color: 'green',
                  value: null,
                },
              ],
            },
            mappings: [],
            color: {
              mode: 'thresholds',
            },
            custom: {
              align: 'auto',
              cellOptions: {
                type: 'auto',
              },
              inspect: false,
              filterable: false,
            },
          },
          overrides: [
            {
              matcher: {
                id: 'byName',
                options: 'Last errno',
              },
              properties: [
                {
                  id: 'custom.cellOptions',
                  value: {
                    type: 'color-background',
                  },
                },
                {
                  id: 'thresholds',
                  value: {
                    mode: 'absolute',
                    steps: [
                      {
                        color: 'green',
                        value: null,
                      },
                      {
                        color: 'red',
                        value: 1,
                      },
                    ],
                  },
                },
              ],
            },
          ],
        },
        options: {
          showHeader: true,
          cellHeight: 'sm',
          footer: {
            show: false,
            reducer: [
              'sum',
            ],
            countRows: false,
            fields: '',
          },
        },
        transformations: [
          {
            id: 'organize',
            options: {
              excludeByName: {
                Time: true,
              },
              renameByName: {
                db_cluster: 'Cluster',
                node: 'Replica',
                node_region: 'Region',
                channel: 'Channel',
                thread: 'Thread',
                Value: 'Last errno',
              },
            },
          },
        ],
        id: 20,
        gridPos: {
          h: 8,
          w: 12,
          x: 0,
          y: 68,
        },
      },
      {
        type: 'timeseries',
        title: 'MySQL: transactions received but not applied',
        description: 'Per replica channel and GTID domain: highest GTID sequence received minus highest executed. Growing while SBM says 0 means the applier is behind.',
        datasource: {
          type: 'prometheus',
          uid: '${datasource}',
        },
        targets: [
          {
            datasource: {
              type: 'prometheus',
              uid: '${datasource}',
            },
            refId: 'A',
            expr: d.e('max by (%(G)sdb_cluster, node, node_region, channel, gtid_domain) (rpo_mysql_replica_gtid_position{%(J)s, db_cluster=~"$db_cluster", node_region=~"$region", stage="received"})\n- on (%(G)sdb_cluster, node, node_region, channel, gtid_domain)\nmax by (%(G)sdb_cluster, node, node_region, channel, gtid_domain) (rpo_mysql_replica_gtid_position{%(J)s, db_cluster=~"$db_cluster", node_region=~"$region", stage="executed"})'),
            legendFormat: '{{node}}/{{channel}} domain {{gtid_domain}}',
            range: true,
            instant: false,
            editorMode: 'code',
          },
        ],
        fieldConfig: {
          defaults: {
            unit: 'short',
            thresholds: {
              mode: 'absolute',
              steps: [
                {
                  color: 'green',
                  value: null,
                },
              ],
            },
            mappings: [],
            color: {
              mode: 'palette-classic',
            },
            custom: {
              drawStyle: 'line',
              lineInterpolation: 'linear',
              lineWidth: 1,
              fillOpacity: 10,
              gradientMode: 'none',
              showPoints: 'never',
              pointSize: 4,
              spanNulls: false,
              axisPlacement: 'auto',
              axisSoftMin: 0,
              stacking: {
                mode: 'none',
                group: 'A',
              },
              thresholdsStyle: {
                mode: 'off',
              },
              barAlignment: 0,
              hideFrom: {
                legend: false,
                tooltip: false,
                viz: false,
              },
            },
          },
          overrides: [],
        },
        options: {
          legend: {
            showLegend: true,
            displayMode: 'table',
            placement: 'bottom',
            calcs: [
              'lastNotNull',
              'max',
            ],
          },
          tooltip: {
            mode: 'multi',
            sort: 'desc',
          },
        },
        id: 21,
        gridPos: {
          h: 8,
          w: 12,
          x: 12,
          y: 68,
        },
      },
      {
        type: 'row',
        title: 'Clocks and heartbeat rows',
        id: 22,
        collapsed: false,
        gridPos: {
          h: 1,
          w: 24,
          x: 0,
          y: 76,
        },
        panels: [],
      },
      {
        type: 'timeseries',
        title: 'Database clock offset per node',
        description: "Each database's clock minus the exporter host's clock (rpo_node_clock_offset_seconds); the shaded half round trip bounds its error. Sidecars compare database clocks: nodes more than 0.5 s apart make their lag readings wrong (RPOClockSkew).",
        datasource: {
          type: 'prometheus',
          uid: '${datasource}',
        },
        targets: [
          {
            datasource: {
              type: 'prometheus',
              uid: '${datasource}',
            },
            refId: 'A',
            expr: d.e('max by (%(G)sdb_cluster, node, node_region) (rpo_node_clock_offset_seconds{%(J)s, db_cluster=~"$db_cluster", node_region=~"$region"})'),
            legendFormat: '{{db_cluster}} · {{node}} ({{node_region}})',
            range: true,
            instant: false,
            editorMode: 'code',
          },
          {
            datasource: {
              type: 'prometheus',
              uid: '${datasource}',
            },
            refId: 'B',
            expr: d.e('max by (%(G)sdb_cluster, node, node_region) (rpo_node_round_trip_seconds{%(J)s, db_cluster=~"$db_cluster", node_region=~"$region"}) / 2'),
            legendFormat: '± {{db_cluster}} · {{node}} ({{node_region}})',
            range: true,
            instant: false,
            editorMode: 'code',
          },
        ],
        fieldConfig: {
          defaults: {
            unit: 's',
            thresholds: {
              mode: 'absolute',
              steps: [
                {
                  color: 'green',
                  value: null,
                },
              ],
            },
            mappings: [],
            color: {
              mode: 'palette-classic',
            },
            custom: {
              drawStyle: 'line',
              lineInterpolation: 'linear',
              lineWidth: 1,
              fillOpacity: 0,
              gradientMode: 'none',
              showPoints: 'never',
              pointSize: 4,
              spanNulls: false,
              axisPlacement: 'auto',
              axisSoftMin: 0,
              stacking: {
                mode: 'none',
                group: 'A',
              },
              thresholdsStyle: {
                mode: 'off',
              },
              barAlignment: 0,
              hideFrom: {
                legend: false,
                tooltip: false,
                viz: false,
              },
            },
          },
          overrides: [
            {
              matcher: {
                id: 'byFrameRefID',
                options: 'B',
              },
              properties: [
                {
                  id: 'custom.lineStyle',
                  value: {
                    fill: 'dot',
                    dash: [
                      2,
                      6,
                    ],
                  },
                },
                {
                  id: 'custom.fillOpacity',
                  value: 0,
                },
              ],
            },
          ],
        },
        options: {
          legend: {
            showLegend: true,
            displayMode: 'table',
            placement: 'bottom',
            calcs: [
              'lastNotNull',
              'max',
            ],
          },
          tooltip: {
            mode: 'multi',
            sort: 'desc',
          },
        },
        id: 23,
        gridPos: {
          h: 8,
          w: 12,
          x: 0,
          y: 77,
        },
      },
      {
        type: 'stat',
        title: 'Heartbeat rows from the future (clock skew)',
        description: "Pairs whose replica reads the source's heartbeat as written in its future (rpo_heartbeat_row_status status=future_timestamp): the clocks disagree, and those pairs' lag is unknown, never clamped to 0.",
        datasource: {
          type: 'prometheus',
          uid: '${datasource}',
        },
        targets: [
          {
            datasource: {
              type: 'prometheus',
              uid: '${datasource}',
            },
            refId: 'A',
            expr: d.e('sum by (%(G)sdb_cluster) (max by (%(G)sdb_cluster, source_node, source_region, replica_node, replica_region) (rpo_heartbeat_row_status{%(J)s, db_cluster=~"$db_cluster", replica_region=~"$region", status="future_timestamp"}))'),
            legendFormat: '{{db_cluster}}',
            range: false,
            instant: true,
            editorMode: 'code',
          },
        ],
        fieldConfig: {
          defaults: {
            decimals: 0,
            thresholds: {
              mode: 'absolute',
              steps: [
                {
                  color: 'green',
                  value: null,
                },
                {
                  color: 'red',
                  value: 1,
                },
              ],
            },
            mappings: [],
            color: {
              mode: 'thresholds',
            },
          },
          overrides: [],
        },
        options: {
          reduceOptions: {
            calcs: [
              'lastNotNull',
            ],
            fields: '',
            values: false,
          },
          orientation: 'auto',
          textMode: 'value_and_name',
          colorMode: 'background',
          graphMode: 'none',
          justifyMode: 'auto',
          wideLayout: true,
          showPercentChange: false,
        },
        id: 24,
        gridPos: {
          h: 8,
          w: 6,
          x: 12,
          y: 77,
        },
      },
      {
        type: 'stat',
        title: 'Heartbeat sequence regressions and unknown rows',
        description: 'Heartbeat sequences that went backwards (table recreated, a foreign writer) in the selected range, and heartbeat rows no configured node wrote (rpo_heartbeat_unknown_rows).',
        datasource: {
          type: 'prometheus',
          uid: '${datasource}',
        },
        targets: [
          {
            datasource: {
              type: 'prometheus',
              uid: '${datasource}',
            },
            refId: 'A',
            expr: d.e('sum by (%(G)sdb_cluster) (increase(rpo_heartbeat_sequence_regressions_total{%(J)s, db_cluster=~"$db_cluster", replica_region=~"$region"}[$__range]))'),
            legendFormat: '{{db_cluster}} regressions',
            range: false,
            instant: true,
            editorMode: 'code',
          },
          {
            datasource: {
              type: 'prometheus',
              uid: '${datasource}',
            },
            refId: 'B',
            expr: d.e('sum by (%(G)sdb_cluster, reason) (rpo_heartbeat_unknown_rows{%(J)s, db_cluster=~"$db_cluster", replica_region=~"$region"})'),
            legendFormat: '{{db_cluster}} {{reason}} rows',
            range: false,
            instant: true,
            editorMode: 'code',
          },
        ],
        fieldConfig: {
          defaults: {
            decimals: 0,
            thresholds: {
              mode: 'absolute',
              steps: [
                {
                  color: 'green',
                  value: null,
                },
                {
                  color: 'orange',
                  value: 1,
                },
              ],
            },
            mappings: [],
            color: {
              mode: 'thresholds',
            },
          },
          overrides: [],
        },
        options: {
          reduceOptions: {
            calcs: [
              'lastNotNull',
            ],
            fields: '',
            values: false,
          },
          orientation: 'auto',
          textMode: 'value_and_name',
          colorMode: 'background',
          graphMode: 'none',
          justifyMode: 'auto',
          wideLayout: true,
          showPercentChange: false,
        },
        id: 25,
        gridPos: {
          h: 8,
          w: 6,
          x: 18,
          y: 77,
        },
      },
      {
        type: 'row',
        title: 'Data residency',
        id: 26,
        collapsed: false,
        gridPos: {
          h: 1,
          w: 24,
          x: 0,
          y: 85,
        },
        panels: [],
      },
      {
        type: 'stat',
        title: 'Residency violations per rule',
        description: "Per residency rule, the (node, reason) pairs breaking it now (rpo_residency_violation): a node outside the rule's allowed regions holds rows of its tables (rows_present), receives them (subscription), subscribes to a publication holding them (publication), or lets them through its replication filters (replication_filter). Anything above 0 pages (RPOResidencyViolation).",
        datasource: {
          type: 'prometheus',
          uid: '${datasource}',
        },
        targets: [
          {
            datasource: {
              type: 'prometheus',
              uid: '${datasource}',
            },
            refId: 'A',
            expr: d.e('sum by (%(G)sdb_cluster, rule) (rpo_residency_violation{%(J)s, db_cluster=~"$db_cluster", node_region=~"$region"})'),
            legendFormat: '{{db_cluster}} · {{rule}}',
            range: false,
            instant: true,
            editorMode: 'code',
          },
        ],
        fieldConfig: {
          defaults: {
            decimals: 0,
            thresholds: {
              mode: 'absolute',
              steps: [
                {
                  color: 'green',
                  value: null,
                },
                {
                  color: 'red',
                  value: 1,
                },
              ],
            },
            mappings: [],
            color: {
              mode: 'thresholds',
            },
          },
          overrides: [],
        },
        options: {
          reduceOptions: {
            calcs: [
              'lastNotNull',
            ],
            fields: '',
            values: false,
          },
          orientation: 'auto',
          textMode: 'value_and_name',
          colorMode: 'background',
          graphMode: 'none',
          justifyMode: 'auto',
          wideLayout: true,
          showPercentChange: false,
        },
        id: 27,
        gridPos: {
          h: 8,
          w: 6,
          x: 0,
          y: 86,
        },
      },
      {
        type: 'timeseries',
        title: 'Residency violations by node and reason',
        description: 'Each node outside a rule\'s allowed regions, per reason: 1 while it breaks the rule, 0 while the check proves it does not. A gap is unknown (the check could not run; see the panel beside), never compliance.',
        datasource: {
          type: 'prometheus',
          uid: '${datasource}',
        },
        targets: [
          {
            datasource: {
              type: 'prometheus',
              uid: '${datasource}',
            },
            refId: 'A',
            expr: d.e('max by (%(G)sdb_cluster, rule, node, node_region, reason) (rpo_residency_violation{%(J)s, db_cluster=~"$db_cluster", node_region=~"$region"})'),
            legendFormat: '{{db_cluster}} · {{rule}}: {{node}} ({{node_region}}) {{reason}}',
            range: true,
            instant: false,
            editorMode: 'code',
          },
        ],
        fieldConfig: {
          defaults: {
            decimals: 0,
            min: 0,
            max: 1,
            thresholds: {
              mode: 'absolute',
              steps: [
                {
                  color: 'green',
                  value: null,
                },
              ],
            },
            color: {
              mode: 'palette-classic',
            },
            custom: {
              drawStyle: 'line',
              lineInterpolation: 'stepAfter',
              lineWidth: 1,
              fillOpacity: 10,
              showPoints: 'never',
              spanNulls: false,
            },
          },
          overrides: [],
        },
        options: {
          legend: {
            showLegend: true,
            displayMode: 'table',
            placement: 'bottom',
            calcs: [
              'lastNotNull',
              'max',
            ],
          },
          tooltip: {
            mode: 'multi',
            sort: 'desc',
          },
        },
        id: 28,
        gridPos: {
          h: 8,
          w: 12,
          x: 6,
          y: 86,
        },
      },
      {
        type: 'stat',
        title: 'Residency checks that could not run',
        description: 'Per rule, the nodes whose last residency check could not run (rpo_residency_check_success 0: node unreachable, missing privilege). There, compliance is unknown, not proven; RPOResidencyCheckFailing tickets after 10 minutes.',
        datasource: {
          type: 'prometheus',
          uid: '${datasource}',
        },
        targets: [
          {
            datasource: {
              type: 'prometheus',
              uid: '${datasource}',
            },
            refId: 'A',
            expr: d.e('sum by (%(G)sdb_cluster, rule) (1 - rpo_residency_check_success{%(J)s, db_cluster=~"$db_cluster"})'),
            legendFormat: '{{db_cluster}} · {{rule}}',
            range: false,
            instant: true,
            editorMode: 'code',
          },
        ],
        fieldConfig: {
          defaults: {
            decimals: 0,
            thresholds: {
              mode: 'absolute',
              steps: [
                {
                  color: 'green',
                  value: null,
                },
                {
                  color: 'orange',
                  value: 1,
                },
              ],
            },
            mappings: [],
            color: {
              mode: 'thresholds',
            },
          },
          overrides: [],
        },
        options: {
          reduceOptions: {
            calcs: [
              'lastNotNull',
            ],
            fields: '',
            values: false,
          },
          orientation: 'auto',
          textMode: 'value_and_name',
          colorMode: 'background',
          graphMode: 'none',
          justifyMode: 'auto',
          wideLayout: true,
          showPercentChange: false,
        },
        id: 29,
        gridPos: {
          h: 8,
          w: 6,
          x: 18,
          y: 86,
        },
      },
      {
        type: 'row',
        title: 'Last game day (rpo-exporter drill)',
        id: 30,
        collapsed: false,
        gridPos: {
          h: 1,
          w: 24,
          x: 0,
          y: 94,
        },
        panels: [],
      },
      {
        type: 'bargauge',
        title: 'Last drill against the objectives',
        description: "The last failover drill in the time range (rpo-exporter drill, docs/game-day.md): data lost as a share of the RPO, and the RTO figure (the last of writable primary, DNS on every resolver, health probes and writes resumed) as a share of the RTO. Past 100 % the objective failed. Empty until a drill ran in the time range with its listener scraped in the exporter's job.",
        datasource: {
          type: 'prometheus',
          uid: '${datasource}',
        },
        targets: [
          {
            datasource: {
              type: 'prometheus',
              uid: '${datasource}',
            },
            refId: 'A',
            expr: d.e('max by (%(G)sdb_cluster) (last_over_time(rpo_drill_data_loss_seconds{%(J)s, db_cluster=~"$db_cluster", writer="drill"}[$__range]))\n/ on (%(G)sdb_cluster) max by (%(G)sdb_cluster) (last_over_time(rpo_drill_objective_seconds{%(J)s, db_cluster=~"$db_cluster", objective="rpo"}[$__range]))'),
            legendFormat: '{{db_cluster}} · data lost / RPO',
            range: false,
            instant: true,
            editorMode: 'code',
          },
          {
            datasource: {
              type: 'prometheus',
              uid: '${datasource}',
            },
            refId: 'B',
            expr: d.e('max by (%(G)sdb_cluster) (last_over_time(rpo_drill_recovery_seconds{%(J)s, db_cluster=~"$db_cluster"}[$__range]))\n/ on (%(G)sdb_cluster) max by (%(G)sdb_cluster) (last_over_time(rpo_drill_objective_seconds{%(J)s, db_cluster=~"$db_cluster", objective="rto"}[$__range]))'),
            legendFormat: '{{db_cluster}} · recovery / RTO',
            range: false,
            instant: true,
            editorMode: 'code',
          },
        ],
        fieldConfig: {
          defaults: {
            unit: 'percentunit',
            min: 0,
            max: 1.5,
            thresholds: {
              mode: 'absolute',
              steps: [
                {
                  color: 'green',
                  value: null,
                },
                {
                  color: 'orange',
                  value: 0.8,
                },
                {
                  color: 'red',
                  value: 1,
                },
              ],
            },
            mappings: [],
            color: {
              mode: 'thresholds',
            },
          },
          overrides: [],
        },
        options: {
          reduceOptions: {
            values: false,
            calcs: [
              'lastNotNull',
            ],
            fields: '',
          },
          orientation: 'horizontal',
          displayMode: 'gradient',
          showUnfilled: true,
          valueMode: 'color',
          namePlacement: 'auto',
          minVizWidth: 8,
          minVizHeight: 16,
          sizing: 'auto',
        },
        id: 31,
        gridPos: {
          h: 8,
          w: 10,
          x: 0,
          y: 95,
        },
      },
      {
        type: 'table',
        title: 'Last drill: each step, seconds from the first failed write',
        description: "The last drill's timeline in the runbook's order: the old primary fenced, the new primary writable, DNS answering the new region on 80 % and 100 % of the resolvers, the new region's health probes passing, writes resumed; with the data lost (seconds of writes) and the split-brain window (seconds with two writable nodes). The drill's Markdown report has the same figures.",
        datasource: {
          type: 'prometheus',
          uid: '${datasource}',
        },
        targets: [
          {
            datasource: {
              type: 'prometheus',
              uid: '${datasource}',
            },
            refId: 'A',
            expr: d.e('max by (%(G)sdb_cluster, step) (last_over_time(rpo_drill_step_seconds{%(J)s, db_cluster=~"$db_cluster"}[$__range]))'),
            legendFormat: '__auto',
            range: false,
            instant: true,
            editorMode: 'code',
            format: 'table',
          },
          {
            datasource: {
              type: 'prometheus',
              uid: '${datasource}',
            },
            refId: 'B',
            expr: d.e('label_replace(max by (%(G)sdb_cluster) (last_over_time(rpo_drill_data_loss_seconds{%(J)s, db_cluster=~"$db_cluster", writer="drill"}[$__range])), "step", "data lost", "", "")\nor\nlabel_replace(max by (%(G)sdb_cluster) (last_over_time(rpo_drill_split_brain_seconds{%(J)s, db_cluster=~"$db_cluster"}[$__range])), "step", "split brain", "", "")'),
            legendFormat: '__auto',
            range: false,
            instant: true,
            editorMode: 'code',
            format: 'table',
          },
        ],
        fieldConfig: {
          defaults: {
            unit: 's',
            decimals: 3,
            thresholds: {
              mode: 'absolute',
              steps: [
                {
                  color: 'green',
                  value: null,
                },
              ],
            },
            mappings: [],
            color: {
              mode: 'thresholds',
            },
            custom: {
              align: 'auto',
              cellOptions: {
                type: 'auto',
              },
              inspect: false,
              filterable: false,
            },
          },
          overrides: [],
        },
        options: {
          showHeader: true,
          cellHeight: 'sm',
          footer: {
            show: false,
            reducer: [
              'sum',
            ],
            countRows: false,
            fields: '',
          },
        },
        transformations: [
          {
            id: 'merge',
            options: {},
          },
          {
            id: 'organize',
            options: {
              excludeByName: {
                Time: true,
              },
              renameByName: {
                db_cluster: 'Cluster',
                step: 'Step',
                Value: 'Seconds',
              },
            },
          },
        ],
        id: 32,
        gridPos: {
          h: 8,
          w: 14,
          x: 10,
          y: 95,
        },
      },
    ],
    refresh: '30s',
    schemaVersion: 39,
    tags: [d.tag],
    templating: {
      list: [
        {
          name: 'datasource',
          label: 'Data source',
          type: 'datasource',
          query: 'prometheus',
          current: {},
          hide: 0,
          includeAll: false,
          multi: false,
          options: [],
          refresh: 1,
          regex: '',
          skipUrlSync: false,
        },
        {
          name: 'job',
          label: 'Job',
          type: 'query',
          datasource: {
            type: 'prometheus',
            uid: '${datasource}',
          },
          definition: d.e('label_values(rpo_exporter_build_info%(b)s, job)'),
          query: {
            query: d.e('label_values(rpo_exporter_build_info%(b)s, job)'),
            refId: 'PrometheusVariableQueryEditor-VariableQuery',
          },
          refresh: 2,
          regex: '',
          sort: 1,
          hide: 0,
          multi: true,
          includeAll: true,
          current: {
            selected: true,
            text: [
              'All',
            ],
            value: [
              '$__all',
            ],
          },
          options: [],
          skipUrlSync: false,
          description: 'Prometheus jobs scraping rpo-exporter.',
        },
        {
          name: 'db_cluster',
          label: 'Cluster',
          type: 'query',
          datasource: {
            type: 'prometheus',
            uid: '${datasource}',
          },
          definition: d.e('label_values(rpo_objective_seconds{%(J)s}, db_cluster)'),
          query: {
            query: d.e('label_values(rpo_objective_seconds{%(J)s}, db_cluster)'),
            refId: 'PrometheusVariableQueryEditor-VariableQuery',
          },
          refresh: 2,
          regex: '',
          sort: 1,
          hide: 0,
          multi: true,
          includeAll: true,
          current: {
            selected: true,
            text: [
              'All',
            ],
            value: [
              '$__all',
            ],
          },
          options: [],
          skipUrlSync: false,
          description: 'Database clusters (the db_cluster label).',
        },
        {
          name: 'region',
          label: 'Region',
          type: 'query',
          datasource: {
            type: 'prometheus',
            uid: '${datasource}',
          },
          definition: d.e('label_values(rpo_node_up{%(J)s, db_cluster=~"$db_cluster"}, node_region)'),
          query: {
            query: d.e('label_values(rpo_node_up{%(J)s, db_cluster=~"$db_cluster"}, node_region)'),
            refId: 'PrometheusVariableQueryEditor-VariableQuery',
          },
          refresh: 2,
          regex: '',
          sort: 1,
          hide: 0,
          multi: true,
          includeAll: true,
          current: {
            selected: true,
            text: [
              'All',
            ],
            value: [
              '$__all',
            ],
          },
          options: [],
          skipUrlSync: false,
          description: "Regions of the clusters' nodes (node_region; replica_region for pairs).",
        },
      ],
    },
    time: {
      from: 'now-3h',
      to: 'now',
    },
    timepicker: {},
    timezone: '',
    title: 'RPO / Cluster detail',
    uid: 'rpo-cluster-detail',
    version: 1,
    weekStart: '',
  }
