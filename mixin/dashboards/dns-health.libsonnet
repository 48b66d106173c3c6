// The Grafana dashboard "RPO / DNS and region health" (uid rpo-dns-health):
// its static structure as Grafana JSON, every query through d.e() (the selectors and
// labels of _config; see dashboards.libsonnet).
function(d)
  {
    annotations: {
      list: [],
    },
    description: 'Is the rest of the failover path ready? DNS propagation of the failover records per resolver and authoritative server, and per-region HTTP/TCP health probes with latency, failures and certificate expiry.',
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
        title: 'DNS propagation of failover records',
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
        type: 'bargauge',
        title: 'Propagation: resolvers serving the expected answer',
        description: 'Per failover record: the fraction of its resolvers whose last answer is the one expected now, i.e. the answer of the active region (→). Below 100% after a failover, clients behind the other resolvers still reach the old region. A failing resolver counts as not serving it.',
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
            expr: d.e('max by (record, record_type) (rpo_dns_propagation_ratio{%(J)s, record=~"$record"})\n* on (record, record_type) group_left (active_region)\nmax by (record, record_type, active_region) (rpo_dns_record_info{%(J)s, record=~"$record"})'),
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
        id: 2,
        gridPos: {
          h: 7,
          w: 12,
          x: 0,
          y: 1,
        },
      },
      {
        type: 'timeseries',
        title: 'Propagation ratio over time',
        description: "How the share of resolvers serving the expected answer climbed after the last change: it steps up as each resolver's cached copy expires (about one TTL).",
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
            expr: d.e('max by (record, record_type) (rpo_dns_propagation_ratio{%(J)s, record=~"$record"})'),
            legendFormat: '{{record}} {{record_type}}',
            range: true,
            instant: false,
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
        id: 3,
        gridPos: {
          h: 7,
          w: 12,
          x: 12,
          y: 1,
        },
      },
      {
        type: 'table',
        title: 'Records: expected region, change, publication, propagation time',
        description: "Per record: the region whose answer is expected now; when that expectation last changed (a followed cluster's failover); when every authoritative server first served it (published); how long resolvers then took to all serve it (propagation, compare with the TTL); authoritative servers asked. Empty published: the zone still serves the old answer — fix DNS first.",
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
            expr: d.e('max by (record, record_type, active_region) (rpo_dns_record_info{%(J)s, record=~"$record"})'),
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
            expr: d.e('max by (record, record_type) (rpo_dns_expected_answer_changed_timestamp_seconds{%(J)s, record=~"$record"}) * 1000'),
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
            refId: 'C',
            expr: d.e('max by (record, record_type) (rpo_dns_published_timestamp_seconds{%(J)s, record=~"$record"}) * 1000'),
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
            refId: 'D',
            expr: d.e('max by (record, record_type) (rpo_dns_propagation_seconds{%(J)s, record=~"$record"})'),
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
            refId: 'E',
            expr: d.e('max by (record, record_type) (rpo_dns_authoritative_servers{%(J)s, record=~"$record"})'),
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
                options: 'Expected answer changed',
              },
              properties: [
                {
                  id: 'unit',
                  value: 'dateTimeAsIso',
                },
              ],
            },
            {
              matcher: {
                id: 'byName',
                options: 'Published',
              },
              properties: [
                {
                  id: 'unit',
                  value: 'dateTimeAsIso',
                },
              ],
            },
            {
              matcher: {
                id: 'byName',
                options: 'Propagation',
              },
              properties: [
                {
                  id: 'unit',
                  value: 's',
                },
                {
                  id: 'decimals',
                  value: 1,
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
              byField: 'record',
              mode: 'outer',
            },
          },
          {
            id: 'organize',
            options: {
              excludeByName: {
                'Time 1': true,
                'Time 2': true,
                'Time 3': true,
                'Time 4': true,
                'Time 5': true,
                'record_type 2': true,
                'record_type 3': true,
                'record_type 4': true,
                'record_type 5': true,
                'Value #A': true,
              },
              renameByName: {
                record: 'Record',
                'record_type 1': 'Type',
                active_region: 'Expected region',
                'Value #B': 'Expected answer changed',
                'Value #C': 'Published',
                'Value #D': 'Propagation',
                'Value #E': 'Authoritative servers',
              },
            },
          },
        ],
        id: 4,
        gridPos: {
          h: 6,
          w: 24,
          x: 0,
          y: 8,
        },
      },
      {
        type: 'state-timeline',
        title: 'Answer matches per resolver and authoritative server',
        description: 'Per server asked (mode recursive: a resolver; authoritative: a name server of the zone): whether its last answer was the expected one. An authoritative server still on the old answer means the change was not published everywhere.',
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
            expr: d.e('max by (record, record_type, resolver, mode) (rpo_dns_answer_matches{%(J)s, record=~"$record"})'),
            legendFormat: '{{record}} {{record_type}} · {{mode}} {{resolver}}',
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
                    text: 'expected',
                    color: 'green',
                    index: 0,
                  },
                  '0': {
                    text: 'other / failed',
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
        id: 5,
        gridPos: {
          h: 8,
          w: 12,
          x: 0,
          y: 14,
        },
      },
      {
        type: 'timeseries',
        title: 'TTL seen per server',
        description: "TTL of each server's last answer (rpo_dns_answer_ttl_seconds). A resolver's counts down as its cached copy ages: the time it may keep serving the old answer after a change.",
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
            expr: d.e('max by (record, record_type, resolver, mode) (rpo_dns_answer_ttl_seconds{%(J)s, record=~"$record"})'),
            legendFormat: '{{record}} {{record_type}} · {{mode}} {{resolver}}',
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
        id: 6,
        gridPos: {
          h: 8,
          w: 12,
          x: 12,
          y: 14,
        },
      },
      {
        type: 'table',
        title: 'DNS query failures now',
        description: 'Servers whose last query failed, and why: timeout, network, refused, servfail, nxdomain, nodata, not_authoritative, malformed, other (rpo_dns_query_failure_reason).',
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
            expr: d.e('max by (record, record_type, resolver, mode, reason) (rpo_dns_query_failure_reason{%(J)s, record=~"$record"}) == 1'),
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
                options: 'Reason',
              },
              properties: [
                {
                  id: 'custom.cellOptions',
                  value: {
                    type: 'color-background',
                  },
                },
                {
                  id: 'color',
                  value: {
                    mode: 'fixed',
                    fixedColor: 'red',
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
                Value: true,
              },
              renameByName: {
                record: 'Record',
                record_type: 'Type',
                resolver: 'Server',
                mode: 'Mode',
                reason: 'Reason',
              },
            },
          },
        ],
        id: 7,
        gridPos: {
          h: 8,
          w: 8,
          x: 0,
          y: 22,
        },
      },
      {
        type: 'timeseries',
        title: 'DNS query failures by reason',
        description: 'Failed queries per second by server and reason (rpo_dns_query_failures_total): also the failures between two scrapes, e.g. a resolver that answers only now and then.',
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
            expr: d.e('sum by (record, record_type, resolver, mode, reason) (rate(rpo_dns_query_failures_total{%(J)s, record=~"$record"}[$__rate_interval]))'),
            legendFormat: '{{record}} {{record_type}} · {{mode}} {{resolver}} {{reason}}',
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
                mode: 'normal',
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
          w: 8,
          x: 8,
          y: 22,
        },
      },
      {
        type: 'timeseries',
        title: 'DNS query duration',
        description: "Duration of each server's last query (UDP, and TCP after a truncated answer). A line at the configured dns.timeout is a server that does not answer.",
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
            expr: d.e('max by (record, record_type, resolver, mode) (rpo_dns_query_duration_seconds{%(J)s, record=~"$record"})'),
            legendFormat: '{{record}} {{record_type}} · {{mode}} {{resolver}}',
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
        id: 9,
        gridPos: {
          h: 8,
          w: 8,
          x: 16,
          y: 22,
        },
      },
      {
        type: 'table',
        title: 'SOA serial per authoritative server',
        description: 'The SOA serial each authoritative server reports per zone. Different serials: a secondary has not transferred the change yet, and resolvers asking it get the old answer.',
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
            expr: d.e('max by (dns_zone, resolver) (rpo_dns_soa_serial{%(J)s})'),
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
              },
              renameByName: {
                dns_zone: 'Zone',
                resolver: 'Name server',
                Value: 'SOA serial',
              },
            },
          },
        ],
        id: 10,
        gridPos: {
          h: 7,
          w: 8,
          x: 0,
          y: 30,
        },
      },
      {
        type: 'stat',
        title: 'SOA serials agree',
        description: 'Per zone: 1 if every authoritative server that answered reports the same SOA serial (rpo_dns_soa_serials_agree).',
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
            expr: d.e('min by (dns_zone) (rpo_dns_soa_serials_agree{%(J)s})'),
            legendFormat: '{{dns_zone}}',
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
                  color: 'red',
                  value: null,
                },
                {
                  color: 'green',
                  value: 1,
                },
              ],
            },
            mappings: [
              {
                type: 'value',
                options: {
                  '1': {
                    text: 'agree',
                    color: 'green',
                    index: 0,
                  },
                  '0': {
                    text: 'DIFFER',
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
        id: 11,
        gridPos: {
          h: 7,
          w: 4,
          x: 8,
          y: 30,
        },
      },
      {
        type: 'table',
        title: 'Writable node per cluster: where DNS should point',
        description: "The region of each cluster's writable node(s) now (rpo_node_writable = 1). A record following the cluster expects that region's answer; after a failover this changes first, DNS follows.",
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
            expr: d.e('max by (%(G)sdb_cluster, node, node_region) (rpo_node_writable{%(J)s, db_cluster=~"$db_cluster"}) == 1'),
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
                node: 'Writable node',
                node_region: 'Region',
              },
            },
          },
        ],
        id: 12,
        gridPos: {
          h: 7,
          w: 12,
          x: 12,
          y: 30,
        },
      },
      {
        type: 'row',
        title: 'Region health probes',
        id: 13,
        collapsed: false,
        gridPos: {
          h: 1,
          w: 24,
          x: 0,
          y: 37,
        },
        panels: [],
      },
      {
        type: 'state-timeline',
        title: 'Region healthy',
        description: "Per region: at least its quorum of HTTP/TCP probes passed in the last round (rpo_region_healthy). An unhealthy region is no failover target, whatever its replicas' lag.",
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
        id: 14,
        gridPos: {
          h: 7,
          w: 12,
          x: 0,
          y: 38,
        },
      },
      {
        type: 'bargauge',
        title: 'Probes passing against quorum',
        description: 'Per region: probes that passed in the last round, and how many must pass (quorum). Passing below the quorum is an unhealthy region.',
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
            expr: d.e('max by (probe_region) (rpo_region_probes_passing{%(J)s, probe_region=~"$region"})'),
            legendFormat: '{{probe_region}} passing',
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
            expr: d.e('max by (probe_region) (rpo_region_probe_quorum{%(J)s, probe_region=~"$region"})'),
            legendFormat: '{{probe_region}} quorum',
            range: false,
            instant: true,
            editorMode: 'code',
          },
        ],
        fieldConfig: {
          defaults: {
            decimals: 0,
            min: 0,
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
                options: 'B',
              },
              properties: [
                {
                  id: 'color',
                  value: {
                    mode: 'fixed',
                    fixedColor: 'text',
                  },
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
          displayMode: 'gradient',
          showUnfilled: true,
          valueMode: 'color',
          namePlacement: 'auto',
          sizing: 'auto',
          minVizHeight: 16,
          minVizWidth: 8,
          maxVizHeight: 300,
        },
        id: 15,
        gridPos: {
          h: 7,
          w: 12,
          x: 12,
          y: 38,
        },
      },
      {
        type: 'table',
        title: 'Probe status now',
        description: "Every probe's current outcome: ok, timeout, refused, resolve, tls, bad_status or error (rpo_probe_status), with its last HTTP status code (HTTP probes only).",
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
            expr: d.e('max by (probe_region, probe, status) (rpo_probe_status{%(J)s, probe_region=~"$region"}) == 1'),
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
            expr: d.e('max by (probe_region, probe) (rpo_probe_http_status_code{%(J)s, probe_region=~"$region"})'),
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
                options: 'Outcome',
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
            id: 'merge',
            options: {},
          },
          {
            id: 'organize',
            options: {
              excludeByName: {
                Time: true,
                'Value #A': true,
              },
              renameByName: {
                probe_region: 'Region',
                probe: 'Probe',
                status: 'Outcome',
                'Value #B': 'HTTP status',
              },
            },
          },
        ],
        id: 16,
        gridPos: {
          h: 8,
          w: 12,
          x: 0,
          y: 45,
        },
      },
      {
        type: 'timeseries',
        title: 'Probe latency',
        description: "Duration of each probe's last run: connect, TLS handshake and response, cut at its timeout (rpo_probe_duration_seconds). A line flat at the timeout is a probe timing out.",
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
            expr: d.e('max by (probe_region, probe) (rpo_probe_duration_seconds{%(J)s, probe_region=~"$region"})'),
            legendFormat: '{{probe_region}} · {{probe}}',
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
        id: 17,
        gridPos: {
          h: 8,
          w: 12,
          x: 12,
          y: 45,
        },
      },
      {
        type: 'timeseries',
        title: 'Probe failures by reason',
        description: 'Failed probe runs per second by region, probe and bounded reason (rpo_probe_failures_total): timeout, refused, resolve, tls, bad_status, error.',
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
            expr: d.e('sum by (probe_region, probe, reason) (rate(rpo_probe_failures_total{%(J)s, probe_region=~"$region"}[$__rate_interval]))'),
            legendFormat: '{{probe_region}} · {{probe}} {{reason}}',
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
                mode: 'normal',
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
        id: 18,
        gridPos: {
          h: 8,
          w: 12,
          x: 0,
          y: 53,
        },
      },
      {
        type: 'bargauge',
        title: 'TLS certificate expiry',
        description: 'Time left until the certificate each HTTPS probe was last presented expires (rpo_probe_tls_cert_expiry_timestamp_seconds − now). Orange under 14 days, red under 7.',
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
            expr: d.e('max by (probe_region, probe) (rpo_probe_tls_cert_expiry_timestamp_seconds{%(J)s, probe_region=~"$region"}) - time()'),
            legendFormat: '{{probe_region}} · {{probe}}',
            range: false,
            instant: true,
            editorMode: 'code',
          },
        ],
        fieldConfig: {
          defaults: {
            unit: 'dtdurations',
            min: 0,
            max: 7776000,
            thresholds: {
              mode: 'absolute',
              steps: [
                {
                  color: 'red',
                  value: null,
                },
                {
                  color: 'orange',
                  value: 604800,
                },
                {
                  color: 'green',
                  value: 1209600,
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
        id: 19,
        gridPos: {
          h: 8,
          w: 12,
          x: 12,
          y: 53,
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
          definition: d.e('label_values(rpo_region_healthy{%(J)s}, probe_region)'),
          query: {
            query: d.e('label_values(rpo_region_healthy{%(J)s}, probe_region)'),
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
          description: 'Regions with health probes (probe_region).',
        },
        {
          name: 'record',
          label: 'DNS record',
          type: 'query',
          datasource: {
            type: 'prometheus',
            uid: '${datasource}',
          },
          definition: d.e('label_values(rpo_dns_record_info{%(J)s}, record)'),
          query: {
            query: d.e('label_values(rpo_dns_record_info{%(J)s}, record)'),
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
          description: 'Failover DNS records (the record label).',
        },
      ],
    },
    time: {
      from: 'now-3h',
      to: 'now',
    },
    timepicker: {},
    timezone: '',
    title: 'RPO / DNS and region health',
    uid: 'rpo-dns-health',
    version: 1,
    weekStart: '',
  }
