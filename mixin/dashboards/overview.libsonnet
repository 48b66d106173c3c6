// The Grafana dashboard "RPO / Overview: regions side by side" (uid rpo-overview):
// its static structure as Grafana JSON, every query through d.e() (the selectors and
// labels of _config; see dashboards.libsonnet).
function(d)
  {
    annotations: {
      list: [
        {
          name: 'Role changes',
          enable: true,
          iconColor: 'orange',
          datasource: {
            type: 'prometheus',
            uid: '${datasource}',
          },
          expr: d.e('sum by (%(G)sdb_cluster, node, node_region) (changes(rpo_node_role_changes_total{%(J)s, db_cluster=~"$db_cluster"}[$__interval])) > 0'),
          step: '',
          titleFormat: 'Role change: {{node}}',
          textFormat: '{{db_cluster}}: {{node}} ({{node_region}}) changed role (promotion, demotion or read_only toggle)',
          tagKeys: 'db_cluster,node',
          useValueForTime: false,
        },
      ],
    },
    description: 'Is every cluster within its RPO, region by region? Exposure against the RPO, budget used, nodes up and writable, region health, who is primary and when that changed, and the multi-writer lag matrix.',
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
        title: 'RPO now: would a failover lose more than the objective?',
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
        type: 'stat',
        title: 'Best failover candidate: data-loss exposure',
        description: 'Per cluster and writing node: the exposure of the replica that is furthest ahead, i.e. what a failover away from that writer would lose right now. Compare with the RPO beside it.',
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
            expr: d.e('min by (%(G)sdb_cluster, source_node) (max by (%(G)sdb_cluster, source_node, replica_node) (rpo_data_loss_exposure_seconds{%(J)s, db_cluster=~"$db_cluster"}))'),
            legendFormat: '{{db_cluster}} · from {{source_node}}',
            range: true,
            instant: false,
            editorMode: 'code',
          },
        ],
        fieldConfig: {
          defaults: {
            unit: 's',
            decimals: 2,
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
          colorMode: 'value',
          graphMode: 'area',
          justifyMode: 'auto',
          wideLayout: true,
          showPercentChange: false,
        },
        id: 2,
        gridPos: {
          h: 6,
          w: 5,
          x: 0,
          y: 1,
        },
      },
      {
        type: 'bargauge',
        title: 'RPO budget used: best candidate',
        description: "Best candidate's exposure ÷ the cluster's RPO (rpo_objective_seconds). 100% means even the best failover target would lose more than the RPO allows (RPOBreached).",
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
            expr: d.e('min by (%(G)sdb_cluster, source_node) (max by (%(G)sdb_cluster, source_node, replica_node) (rpo_data_loss_exposure_seconds{%(J)s, db_cluster=~"$db_cluster"}))\n  / on (%(G)sdb_cluster) group_left ()\nmax by (%(G)sdb_cluster) (rpo_objective_seconds{%(J)s, db_cluster=~"$db_cluster"})'),
            legendFormat: '{{db_cluster}} · from {{source_node}}',
            range: false,
            instant: true,
            editorMode: 'code',
          },
        ],
        fieldConfig: {
          defaults: {
            unit: 'percentunit',
            min: 0,
            max: 1,
            thresholds: {
              mode: 'absolute',
              steps: [
                {
                  color: 'green',
                  value: null,
                },
                {
                  color: 'yellow',
                  value: 0.5,
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
            calcs: [
              'lastNotNull',
            ],
            fields: '',
            values: false,
          },
          orientation: 'horizontal',
          displayMode: 'gradient',
          showUnfilled: true,
          valueMode: 'color',
          namePlacement: 'auto',
          sizing: 'auto',
          minVizHeight: 16,
          minVizWidth: 8,
          maxVizHeight: 300,
        },
        id: 3,
        gridPos: {
          h: 6,
          w: 5,
          x: 5,
          y: 1,
        },
      },
      {
        type: 'stat',
        title: 'Time until the RPO is reached at the current growth',
        description: 'Per replica whose exposure is growing: seconds until it reaches the RPO at the growth of the last 2 minutes (recording rule region_pair:rpo_data_loss_exposure_seconds:seconds_to_objective, the one RPOBreachPredicted uses; needs alerts/regional/rules.yml loaded in the regional Prometheus, and federated to a global one). Negative: already beyond. Empty is good: no replica is falling behind.',
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
            expr: d.e('min by (%(G)sdb_cluster, source_node, replica_node, replica_region) (region_pair:rpo_data_loss_exposure_seconds:seconds_to_objective{db_cluster=~"$db_cluster", replica_region=~"$region"})'),
            legendFormat: '{{replica_node}} ← {{source_node}} ({{db_cluster}})',
            range: false,
            instant: true,
            editorMode: 'code',
          },
        ],
        fieldConfig: {
          defaults: {
            noValue: 'not growing',
            unit: 's',
            decimals: 0,
            thresholds: {
              mode: 'absolute',
              steps: [
                {
                  color: 'red',
                  value: null,
                },
                {
                  color: 'orange',
                  value: 300,
                },
                {
                  color: 'yellow',
                  value: 900,
                },
                {
                  color: 'green',
                  value: 3600,
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
        id: 4,
        gridPos: {
          h: 6,
          w: 5,
          x: 10,
          y: 1,
        },
      },
      {
        type: 'stat',
        title: 'Writable nodes per cluster',
        description: 'Nodes that answer and accept writes (rpo_node_writable), per cluster. 0: nobody can write (RPONoWritableNode). A single-writer cluster should read 1; a multi-writer cluster one per writer.',
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
            expr: d.e('(\n  sum by (%(G)sdb_cluster) (max by (%(G)sdb_cluster, node) (rpo_node_writable{%(J)s, db_cluster=~"$db_cluster"}))\n  or on (%(G)sdb_cluster) 0 * max by (%(G)sdb_cluster) (rpo_objective_seconds{%(J)s, db_cluster=~"$db_cluster"})\n)\n* on (%(G)sdb_cluster) group_left (write_mode) max by (%(G)sdb_cluster, write_mode) (rpo_cluster_info{%(J)s, db_cluster=~"$db_cluster"})'),
            legendFormat: '{{db_cluster}} ({{write_mode}})',
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
                  color: 'red',
                  value: null,
                },
                {
                  color: 'green',
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
        id: 5,
        gridPos: {
          h: 6,
          w: 5,
          x: 15,
          y: 1,
        },
      },
      {
        type: 'stat',
        title: 'Split brain (single-writer clusters)',
        description: '1 while more than one node of a single-writer cluster accepts writes: writes diverge (RPOSplitBrain). 0 is healthy. Multi-writer clusters are not listed.',
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
            expr: d.e('(sum by (%(G)sdb_cluster) (max by (%(G)sdb_cluster, node) (rpo_node_writable{%(J)s, db_cluster=~"$db_cluster"})) > bool 1)\n* on (%(G)sdb_cluster) group_left () max by (%(G)sdb_cluster) (rpo_cluster_info{%(J)s, db_cluster=~"$db_cluster", write_mode="single-writer"})'),
            legendFormat: '{{db_cluster}}',
            range: false,
            instant: true,
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
                {
                  color: 'red',
                  value: 1,
                },
              ],
            },
            mappings: [
              {
                type: 'value',
                options: {
                  '0': {
                    text: 'OK',
                    color: 'green',
                    index: 0,
                  },
                  '1': {
                    text: 'SPLIT BRAIN',
                    color: 'red',
                    index: 1,
                  },
                },
              },
            ],
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
        id: 6,
        gridPos: {
          h: 6,
          w: 4,
          x: 20,
          y: 1,
        },
      },
      {
        type: 'row',
        title: 'Regions side by side',
        id: 7,
        collapsed: false,
        gridPos: {
          h: 1,
          w: 24,
          x: 0,
          y: 7,
        },
        panels: [],
      },
      {
        type: 'table',
        title: 'Regions side by side',
        description: "One row per region: on a global Prometheus, the region external label of the regional Prometheus each database series came through (in the sidecar layout, where the node runs); on a Prometheus without it, the node's (or replica's) configured region. Per row: database nodes up, down and writable there; the worst data-loss exposure and RPO budget of the replicas in the region (empty for a region without replicas); region health by probed region (probes passing against quorum); for the DNS failover records whose expected answer is this region's, the lowest share of resolvers already serving it. A red cell is where to look first.",
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
            expr: d.regionsSideBySide('A'),
            legendFormat: 'Nodes up',
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
            expr: d.regionsSideBySide('B'),
            legendFormat: 'Nodes down',
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
            refId: 'C',
            expr: d.regionsSideBySide('C'),
            legendFormat: 'Writable',
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
            refId: 'D',
            expr: d.regionsSideBySide('D'),
            legendFormat: 'Worst replica exposure',
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
            refId: 'E',
            expr: d.regionsSideBySide('E'),
            legendFormat: 'RPO budget used',
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
            refId: 'F',
            expr: d.e('max by (region_name) (label_replace(max by (probe_region) (rpo_region_healthy{%(J)s, probe_region=~"$region"}), "region_name", "$1", "probe_region", "(.*)"))'),
            legendFormat: 'Healthy',
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
            refId: 'G',
            expr: d.e('max by (region_name) (label_replace(max by (probe_region) (rpo_region_probes_passing{%(J)s, probe_region=~"$region"}), "region_name", "$1", "probe_region", "(.*)"))'),
            legendFormat: 'Probes passing',
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
            refId: 'H',
            expr: d.e('max by (region_name) (label_replace(max by (probe_region) (rpo_region_probe_quorum{%(J)s, probe_region=~"$region"}), "region_name", "$1", "probe_region", "(.*)"))'),
            legendFormat: 'Quorum',
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
            refId: 'I',
            expr: d.e('max by (region_name) (label_replace(min by (active_region) (max by (record, record_type) (rpo_dns_propagation_ratio{%(J)s}) * on (record, record_type) group_left (active_region) max by (record, record_type, active_region) (rpo_dns_record_info{%(J)s, active_region=~"$region"})), "region_name", "$1", "active_region", "(.*)"))'),
            legendFormat: 'DNS propagated',
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
                options: 'Nodes down',
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
            {
              matcher: {
                id: 'byName',
                options: 'Worst replica exposure',
              },
              properties: [
                {
                  id: 'unit',
                  value: 's',
                },
                {
                  id: 'decimals',
                  value: 2,
                },
              ],
            },
            {
              matcher: {
                id: 'byName',
                options: 'RPO budget used',
              },
              properties: [
                {
                  id: 'unit',
                  value: 'percentunit',
                },
                {
                  id: 'custom.cellOptions',
                  value: {
                    type: 'gauge',
                    mode: 'gradient',
                  },
                },
                {
                  id: 'min',
                  value: 0,
                },
                {
                  id: 'max',
                  value: 1,
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
                        color: 'yellow',
                        value: 0.5,
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
                },
              ],
            },
            {
              matcher: {
                id: 'byName',
                options: 'DNS propagated',
              },
              properties: [
                {
                  id: 'unit',
                  value: 'percentunit',
                },
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
                        color: 'red',
                        value: null,
                      },
                      {
                        color: 'orange',
                        value: 0.5,
                      },
                      {
                        color: 'green',
                        value: 1,
                      },
                    ],
                  },
                },
              ],
            },
            {
              matcher: {
                id: 'byName',
                options: 'Healthy',
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
                        '0': {
                          text: 'unhealthy',
                          color: 'red',
                          index: 0,
                        },
                        '1': {
                          text: 'healthy',
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
            id: 'joinByField',
            options: {
              byField: 'region_name',
              mode: 'outer',
            },
          },
          {
            id: 'organize',
            options: {
              excludeByName: {
                Time: true,
                'Time 1': true,
                'Time 2': true,
                'Time 3': true,
                'Time 4': true,
                'Time 5': true,
                'Time 6': true,
                'Time 7': true,
                'Time 8': true,
                'Time 9': true,
              },
              renameByName: {
                region_name: 'Region',
                'Value #A': 'Nodes up',
                'Value #B': 'Nodes down',
                'Value #C': 'Writable',
                'Value #D': 'Worst replica exposure',
                'Value #E': 'RPO budget used',
                'Value #F': 'Healthy',
                'Value #G': 'Probes passing',
                'Value #H': 'Quorum',
                'Value #I': 'DNS propagated',
              },
              indexByName: {
                region_name: 0,
              },
            },
          },
        ],
        id: 8,
        gridPos: {
          h: 7,
          w: 24,
          x: 0,
          y: 8,
        },
      },
      {
        type: 'stat',
        title: 'Region $region',
        description: 'This region at a glance: database nodes up and writable in it, and its health roll-up (probes passing against the quorum). Repeated for every selected region.',
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
            expr: d.e('sum(max by (%(G)sdb_cluster, node, node_region) (rpo_node_up{%(J)s, db_cluster=~"$db_cluster", node_region=~"$region"}))'),
            legendFormat: 'nodes up',
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
            expr: d.e('sum(max by (%(G)sdb_cluster, node, node_region) (rpo_node_writable{%(J)s, db_cluster=~"$db_cluster", node_region=~"$region"}))'),
            legendFormat: 'writable',
            range: false,
            instant: true,
            editorMode: 'code',
          },
          {
            datasource: {
              type: 'prometheus',
              uid: '${datasource}',
            },
            refId: 'C',
            expr: d.e('max(rpo_region_healthy{%(J)s, probe_region=~"$region"})'),
            legendFormat: 'healthy',
            range: false,
            instant: true,
            editorMode: 'code',
          },
          {
            datasource: {
              type: 'prometheus',
              uid: '${datasource}',
            },
            refId: 'D',
            expr: d.e('max(rpo_region_probes_passing{%(J)s, probe_region=~"$region"})'),
            legendFormat: 'probes passing',
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
                  color: 'blue',
                  value: null,
                },
              ],
            },
            mappings: [],
            color: {
              mode: 'thresholds',
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
                  id: 'mappings',
                  value: [
                    {
                      type: 'value',
                      options: {
                        '0': {
                          text: 'UNHEALTHY',
                          color: 'red',
                          index: 0,
                        },
                        '1': {
                          text: 'healthy',
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
          reduceOptions: {
            calcs: [
              'lastNotNull',
            ],
            fields: '',
            values: false,
          },
          orientation: 'horizontal',
          textMode: 'value_and_name',
          colorMode: 'background',
          graphMode: 'none',
          justifyMode: 'auto',
          wideLayout: true,
          showPercentChange: false,
        },
        repeat: 'region',
        repeatDirection: 'h',
        maxPerRow: 4,
        id: 9,
        gridPos: {
          h: 5,
          w: 6,
          x: 0,
          y: 15,
        },
      },
      {
        type: 'bargauge',
        title: 'RPO budget used per replica',
        description: "Every replica's exposure ÷ its cluster's RPO, grouped by the replica's region. The bar that reaches 100% is a replica you must not fail over to (RPOReplicaBeyondObjective).",
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
            expr: d.e('max by (%(G)sdb_cluster, source_node, source_region, replica_node, replica_region) (rpo_data_loss_exposure_seconds{%(J)s, db_cluster=~"$db_cluster", replica_region=~"$region"})\n  / on (%(G)sdb_cluster) group_left () max by (%(G)sdb_cluster) (rpo_objective_seconds{%(J)s, db_cluster=~"$db_cluster"})'),
            legendFormat: '{{replica_region}} · {{replica_node}} ← {{source_node}} ({{db_cluster}})',
            range: false,
            instant: true,
            editorMode: 'code',
          },
        ],
        fieldConfig: {
          defaults: {
            unit: 'percentunit',
            min: 0,
            max: 1,
            thresholds: {
              mode: 'absolute',
              steps: [
                {
                  color: 'green',
                  value: null,
                },
                {
                  color: 'yellow',
                  value: 0.5,
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
            calcs: [
              'lastNotNull',
            ],
            fields: '',
            values: false,
          },
          orientation: 'horizontal',
          displayMode: 'gradient',
          showUnfilled: true,
          valueMode: 'color',
          namePlacement: 'auto',
          sizing: 'auto',
          minVizHeight: 16,
          minVizWidth: 8,
          maxVizHeight: 300,
        },
        id: 10,
        gridPos: {
          h: 8,
          w: 12,
          x: 0,
          y: 20,
        },
      },
      {
        type: 'timeseries',
        title: 'RPO budget used per region over time',
        description: 'Worst replica exposure ÷ RPO per replica region and cluster; the dashed line is 100% (the RPO). A line climbing steadily is a replica falling behind.',
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
            expr: d.e('max by (%(G)sdb_cluster, replica_region) (\n  max by (%(G)sdb_cluster, source_node, source_region, replica_node, replica_region) (rpo_data_loss_exposure_seconds{%(J)s, db_cluster=~"$db_cluster", replica_region=~"$region"})\n  / on (%(G)sdb_cluster) group_left () max by (%(G)sdb_cluster) (rpo_objective_seconds{%(J)s, db_cluster=~"$db_cluster"})\n)'),
            legendFormat: '{{replica_region}} ({{db_cluster}})',
            range: true,
            instant: false,
            editorMode: 'code',
          },
        ],
        fieldConfig: {
          defaults: {
            unit: 'percentunit',
            min: 0,
            thresholds: {
              mode: 'absolute',
              steps: [
                {
                  color: 'transparent',
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
                mode: 'dashed',
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
        id: 11,
        gridPos: {
          h: 8,
          w: 12,
          x: 12,
          y: 20,
        },
      },
      {
        type: 'timeseries',
        title: 'Data-loss exposure vs RPO: $db_cluster',
        description: "Exposure of every replica of the cluster (what a failover to it would lose now) with the cluster's RPO as a red dashed line. Healthy replicas saw-tooth between 0 and one heartbeat interval; a series that disappears means the replica cannot be read (unknown), not 0.",
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
            expr: d.e('max by (source_node, replica_node, replica_region) (rpo_data_loss_exposure_seconds{%(J)s, db_cluster=~"$db_cluster", replica_region=~"$region"})'),
            legendFormat: '{{replica_region}} · {{replica_node}} ← {{source_node}}',
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
            expr: d.e('max(rpo_objective_seconds{%(J)s, db_cluster=~"$db_cluster"})'),
            legendFormat: 'RPO',
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
        repeat: 'db_cluster',
        repeatDirection: 'h',
        maxPerRow: 2,
        id: 12,
        gridPos: {
          h: 8,
          w: 12,
          x: 0,
          y: 28,
        },
      },
      {
        type: 'row',
        title: 'Who is primary: roles and failovers',
        id: 13,
        collapsed: false,
        gridPos: {
          h: 1,
          w: 24,
          x: 0,
          y: 36,
        },
        panels: [],
      },
      {
        type: 'state-timeline',
        title: 'Node role: primary, replica or down',
        description: 'Per node, its discovered role over time: primary (accepts writes), replica (read-only) or down (not answering). A colour change is a failover, a demotion or an outage.',
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
            expr: d.e('max by (%(G)sdb_cluster, node, node_region) (rpo_node_writable{%(J)s, db_cluster=~"$db_cluster", node_region=~"$region"})\nor\n(max by (%(G)sdb_cluster, node, node_region) (rpo_node_up{%(J)s, db_cluster=~"$db_cluster", node_region=~"$region"}) - 1)'),
            legendFormat: '{{db_cluster}} · {{node}} ({{node_region}})',
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
                    text: 'primary',
                    color: 'blue',
                    index: 0,
                  },
                  '0': {
                    text: 'replica',
                    color: 'green',
                    index: 1,
                  },
                  '-1': {
                    text: 'down',
                    color: 'red',
                    index: 2,
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
        id: 14,
        gridPos: {
          h: 8,
          w: 16,
          x: 0,
          y: 37,
        },
      },
      {
        type: 'timeseries',
        title: 'Role changes (failovers)',
        description: 'Role changes per node (promotions, demotions, read_only toggles) from rpo_node_role_changes_total. Every bar is a failover event; the same events are dashboard annotations.',
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
            expr: d.e('sum by (%(G)sdb_cluster, node, node_region) (increase(rpo_node_role_changes_total{%(J)s, db_cluster=~"$db_cluster", node_region=~"$region"}[$__rate_interval]))'),
            legendFormat: '{{db_cluster}} · {{node}} ({{node_region}})',
            range: true,
            instant: false,
            editorMode: 'code',
          },
        ],
        fieldConfig: {
          defaults: {
            unit: 'short',
            decimals: 0,
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
              drawStyle: 'bars',
              lineInterpolation: 'linear',
              lineWidth: 1,
              fillOpacity: 80,
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
        id: 15,
        gridPos: {
          h: 8,
          w: 8,
          x: 16,
          y: 37,
        },
      },
      {
        type: 'table',
        title: 'Last role change per node',
        description: "When each node's role last changed (exporter host clock). Only nodes whose role changed since their exporter started are listed; the role timeline above shows what they became.",
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
            expr: d.e('max by (%(G)sdb_cluster, node, node_region) (rpo_node_role_last_change_timestamp_seconds{%(J)s, db_cluster=~"$db_cluster", node_region=~"$region"}) * 1000'),
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
                options: 'Last role change',
              },
              properties: [
                {
                  id: 'unit',
                  value: 'dateTimeAsIso',
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
                node: 'Node',
                node_region: 'Region',
                Value: 'Last role change',
              },
            },
          },
        ],
        id: 16,
        gridPos: {
          h: 5,
          w: 24,
          x: 0,
          y: 45,
        },
      },
      {
        type: 'row',
        title: 'Multi-writer clusters: source × replica matrix',
        id: 17,
        collapsed: false,
        gridPos: {
          h: 1,
          w: 24,
          x: 0,
          y: 50,
        },
        panels: [],
      },
      {
        type: 'table',
        title: 'Replication lag matrix: source (rows) × replica (columns)',
        description: 'Lag of every (source → replica) pair of multi-writer clusters: rows are the writing node, columns the replica reading it. One red column is a replica behind every writer (its own problem); one red row is a writer nobody keeps up with (its link or its binlog).',
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
            expr: d.e('max by (%(G)sdb_cluster, source_node, replica_node) (rpo_replication_lag_seconds{%(J)s, db_cluster=~"$db_cluster", replica_region=~"$region"})\nand on (%(G)sdb_cluster) max by (%(G)sdb_cluster) (rpo_cluster_info{%(J)s, db_cluster=~"$db_cluster", write_mode="multi-writer"})'),
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
            decimals: 2,
            thresholds: {
              mode: 'absolute',
              steps: [
                {
                  color: 'green',
                  value: null,
                },
                {
                  color: 'yellow',
                  value: 1,
                },
                {
                  color: 'orange',
                  value: 5,
                },
                {
                  color: 'red',
                  value: 30,
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
                type: 'color-background',
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
            id: 'groupingToMatrix',
            options: {
              columnField: 'replica_node',
              rowField: 'source_node',
              valueField: 'Value',
              emptyValue: 'null',
            },
          },
        ],
        id: 18,
        gridPos: {
          h: 7,
          w: 12,
          x: 0,
          y: 51,
        },
      },
      {
        type: 'table',
        title: 'Data-loss exposure matrix: source (rows) × replica (columns)',
        description: "Exposure of every (source → replica) pair of multi-writer clusters: what a failover to the column's replica would lose of the row's writes.",
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
            expr: d.e('max by (%(G)sdb_cluster, source_node, replica_node) (rpo_data_loss_exposure_seconds{%(J)s, db_cluster=~"$db_cluster", replica_region=~"$region"})\nand on (%(G)sdb_cluster) max by (%(G)sdb_cluster) (rpo_cluster_info{%(J)s, db_cluster=~"$db_cluster", write_mode="multi-writer"})'),
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
            decimals: 2,
            thresholds: {
              mode: 'absolute',
              steps: [
                {
                  color: 'green',
                  value: null,
                },
                {
                  color: 'yellow',
                  value: 1,
                },
                {
                  color: 'orange',
                  value: 5,
                },
                {
                  color: 'red',
                  value: 30,
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
                type: 'color-background',
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
            id: 'groupingToMatrix',
            options: {
              columnField: 'replica_node',
              rowField: 'source_node',
              valueField: 'Value',
              emptyValue: 'null',
            },
          },
        ],
        id: 19,
        gridPos: {
          h: 7,
          w: 12,
          x: 12,
          y: 51,
        },
      },
      {
        type: 'row',
        title: 'Region health and DNS',
        id: 20,
        collapsed: false,
        gridPos: {
          h: 1,
          w: 24,
          x: 0,
          y: 58,
        },
        panels: [],
      },
      {
        type: 'state-timeline',
        title: 'Region health',
        description: 'Per region, whether at least its quorum of HTTP/TCP probes passed (rpo_region_healthy). Fail over only to a healthy region. Details: DNS and health dashboard.',
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
            expr: d.e('max by (probe_region) (rpo_region_healthy{%(J)s, probe_region=~"$region"})'),
            legendFormat: '{{probe_region}}',
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
                    text: 'healthy',
                    color: 'green',
                    index: 0,
                  },
                  '0': {
                    text: 'unhealthy',
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
        id: 21,
        gridPos: {
          h: 6,
          w: 12,
          x: 0,
          y: 59,
        },
      },
      {
        type: 'bargauge',
        title: 'DNS failover records: propagation to the expected region',
        description: "Per failover record: the share of its resolvers serving the answer of the region expected now (→, the followed cluster's writable region or a fixed one). After a failover, 100% means clients follow; details in the DNS and health dashboard.",
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
            expr: d.e('max by (record, record_type) (rpo_dns_propagation_ratio{%(J)s})\n* on (record, record_type) group_left (active_region)\nmax by (record, record_type, active_region) (rpo_dns_record_info{%(J)s})'),
            legendFormat: '{{record}} {{record_type}} → {{active_region}}',
            range: false,
            instant: true,
            editorMode: 'code',
          },
        ],
        fieldConfig: {
          defaults: {
            unit: 'percentunit',
            min: 0,
            max: 1,
            thresholds: {
              mode: 'absolute',
              steps: [
                {
                  color: 'red',
                  value: null,
                },
                {
                  color: 'orange',
                  value: 0.5,
                },
                {
                  color: 'green',
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
          orientation: 'horizontal',
          displayMode: 'gradient',
          showUnfilled: true,
          valueMode: 'color',
          namePlacement: 'auto',
          sizing: 'auto',
          minVizHeight: 16,
          minVizWidth: 8,
          maxVizHeight: 300,
        },
        id: 22,
        gridPos: {
          h: 6,
          w: 12,
          x: 12,
          y: 59,
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
          definition: d.e('query_result(group by (node_region) (rpo_node_up{%(J)s, db_cluster=~"$db_cluster"}) or group by (node_region) (label_replace(rpo_region_healthy{%(J)s}, "node_region", "$1", "probe_region", "(.*)")))'),
          query: {
            query: d.e('query_result(group by (node_region) (rpo_node_up{%(J)s, db_cluster=~"$db_cluster"}) or group by (node_region) (label_replace(rpo_region_healthy{%(J)s}, "node_region", "$1", "probe_region", "(.*)")))'),
            refId: 'PrometheusVariableQueryEditor-VariableQuery',
          },
          refresh: 2,
          regex: '/node_region="([^"]+)"/',
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
          description: "Regions: where the clusters' nodes run (node_region) and where health probes run (probe_region).",
        },
      ],
    },
    time: {
      from: 'now-3h',
      to: 'now',
    },
    timepicker: {},
    timezone: '',
    title: 'RPO / Overview: regions side by side',
    uid: 'rpo-overview',
    version: 1,
    weekStart: '',
  }
