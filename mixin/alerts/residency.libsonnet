// Alerting rules for data residency (the clusters' `residency:` blocks): a table that a
// rule keeps in some regions is held, or on its way, elsewhere. Regional and
// self-contained: each exporter checks the nodes it is configured with.
local alertlib = import '../lib/alert.libsonnet';
local promql = import '../lib/promql.libsonnet';

function(cfg)
  local v = promql(cfg).vars;
  local a = alertlib(cfg);
  [
    {
      name: 'rpo-exporter.residency',
      rules: [
        a.new('RPOResidencyViolation', 'residency-violation.md', {
          comment:: |||
            A node outside a residency rule's allowed regions holds rows of its tables, or
            receives them (a subscription, a publication it subscribes to, replication
            filters that let them through). No `for`: each reading is a fact the exporter
            read from the database, not a noisy threshold, and the check runs only every
            residency.interval. One alert per reason.
          |||,
          expr: 'rpo_residency_violation%(b)s == 1' % v,
          annotations: {
            summary: 'Restricted data is outside its allowed regions.',
            description: a.para(|||
              Node {{ $labels.node }} of cluster {{ $labels.db_cluster }}, in region
              {{ $labels.node_region }}, breaks residency rule {{ $labels.rule }}:
              {{ $labels.reason }}.
            |||),
          },
        }),

        a.new('RPOResidencyCheckFailing', 'residency-violation.md', {
          comment:: |||
            A residency check cannot run (node unreachable, a missing privilege): whether the
            rule holds there is unknown, not proven.
          |||,
          expr: 'rpo_residency_check_success%(b)s == 0' % v,
          'for': '10m',
          annotations: {
            summary: 'A data residency check cannot run: compliance is unknown.',
            description: a.para(|||
              Residency rule {{ $labels.rule }} of cluster {{ $labels.db_cluster }} could not be
              checked on node {{ $labels.node }} for 10 minutes; the exporter's log says why.
            |||),
          },
        }),
      ],
    },
  ]
