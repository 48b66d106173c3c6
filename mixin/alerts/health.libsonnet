// Alerting rules for region health (the exporter's `health:` section): whether a region
// a failover would move to is fit to take it. Regional and self-contained. Like the DNS
// alerts they keep the target labels (`instance`, `job`): each exporter probes from
// where it runs, so what it sees is one vantage point, and the alert says whose.
local alertlib = import '../lib/alert.libsonnet';
local promql = import '../lib/promql.libsonnet';

function(cfg)
  local v = promql(cfg).vars;
  local a = alertlib(cfg);
  [
    {
      name: 'rpo-exporter.health',
      rules: [
        a.new('RPORegionUnhealthy', 'region-unhealthy.md', {
          comment:: |||
            Fewer of the region's probes pass than its quorum (by default: all of them).
            Value: the probes passing.
          |||,
          expr: |||
            rpo_region_probes_passing%(b)s < on (%(R)sinstance, job, probe_region) rpo_region_probe_quorum%(b)s
          ||| % v,
          'for': '2m',
          annotations: {
            summary: "A region's health probes are below their quorum.",
            description: a.para(|||
              Only {{ $value }} of the probes of region {{ $labels.probe_region }} pass, fewer
              than its quorum of
              {{ with printf "rpo_region_probe_quorum{instance=%q,probe_region=%q}" $labels.instance $labels.probe_region | query }}{{ . | first | value }}{{ end }}
              (seen by {{ $labels.instance }}): a failover into it would land on a broken region.
            |||),
          },
        }),

        a.new('RPOProbeFailing', 'probe-failing.md', {
          comment:: |||
            One probe keeps failing while its region may still hold its quorum. One alert
            per probe; the reason is in rpo_probe_status.
          |||,
          expr: 'rpo_probe_success%(b)s == 0' % v,
          'for': '5m',
          annotations: {
            summary: 'A region health probe keeps failing.',
            description: a.para(|||
              Probe {{ $labels.probe }} of region {{ $labels.probe_region }} has failed for 5
              minutes with reason
              {{ with printf "rpo_probe_status{instance=%q,probe_region=%q,probe=%q} == 1" $labels.instance $labels.probe_region $labels.probe | query }}{{ . | first | label "status" }}{{ end }}
              (seen by {{ $labels.instance }}).
            |||),
          },
        }),

        a.new('RPOCertificateExpiringSoon', 'certificate-expiring.md', {
          comment:: |||
            The certificate an HTTPS endpoint presents expires within 14 days. Value:
            seconds left.
          |||,
          expr: |||
            rpo_probe_tls_cert_expiry_timestamp_seconds%(b)s - time() < 14 * 86400
          ||| % v,
          'for': '10m',
          annotations: {
            summary: 'A certificate served to a health probe expires within 14 days.',
            description: a.para(|||
              The certificate served to probe {{ $labels.probe }} of region
              {{ $labels.probe_region }} expires in {{ $value | humanizeDuration }} (seen by
              {{ $labels.instance }}).
            |||),
          },
        }),
      ],
    },
  ]
