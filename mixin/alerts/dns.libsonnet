// Alerting rules for DNS failover records (the exporter's `dns:` section). After a
// regional failover traffic only moves when DNS does: these say when it does not.
//
// Regional and self-contained (no recording rule needed). Unlike the database alerts
// they keep the target labels (`instance`, `job`): each exporter asks its own resolvers
// from where it runs, so what it sees is one vantage point, and the alert says whose.
// Thresholds come from the exported TTL and timestamps, never from numbers copied per
// record.
local alertlib = import '../lib/alert.libsonnet';
local promql = import '../lib/promql.libsonnet';

function(cfg)
  local v = promql(cfg).vars;
  local a = alertlib(cfg);
  [
    {
      name: 'rpo-exporter.dns',
      rules: [
        a.new('RPODNSNotPublished', 'dns-not-published.md', {
          comment:: |||
            The active region changed (a database failover, or the exporter started) and
            after 5 minutes the authoritative servers still do not all serve its answer:
            the failover automation did not update DNS, a zone update is stuck, or the
            active region has no answer in the exporter's config. Value: seconds since the
            expected answer changed.
          |||,
          expr: |||
            (time() - rpo_dns_expected_answer_changed_timestamp_seconds%(b)s) > 300
            unless on (%(R)sinstance, job, record, record_type) rpo_dns_published_timestamp_seconds%(b)s
          ||| % v,
          'for': '1m',
          annotations: {
            summary: "The authoritative DNS servers do not serve the active region's answer.",
            description: a.para(|||
              {{ $value | humanizeDuration }} after the expected answer of {{ $labels.record }}
              ({{ $labels.record_type }}) changed, not every authoritative server serves the
              answer of the active region
              {{ with printf "rpo_dns_record_info{instance=%q,record=%q,record_type=%q}" $labels.instance $labels.record $labels.record_type | query }}{{ . | first | label "active_region" }}{{ end }}
              (seen by {{ $labels.instance }}): clients are still sent elsewhere.
            |||),
          },
        }),

        a.new('RPODNSNotPropagated', 'dns-not-propagated.md', {
          comment:: |||
            A resolver that answers, but still with another value than the active region's,
            more than twice the record's TTL (plus a minute) after every authoritative
            server switched: its cache outlives the TTL (a minimum-TTL override, a stale
            forwarder, serve-expired) and its clients still go to the old region. Failing
            resolvers are RPODNSResolverFailing's. One alert per resolver.
          |||,
          expr: |||
            (
              rpo_dns_answer_matches{mode="recursive"%(m)s} == 0
              and on (%(R)sinstance, job, record, record_type, resolver, mode) rpo_dns_query_success%(b)s == 1
            )
            and ignoring (resolver, mode)
            (
              time() - rpo_dns_published_timestamp_seconds%(b)s
                > 2 * max without (resolver, mode) (rpo_dns_answer_ttl_seconds{mode="authoritative"%(m)s}) + 60
            )
          ||| % v,
          'for': '1m',
          annotations: {
            summary: "A resolver still serves an old DNS answer long after the record's TTL.",
            description: a.para(|||
              Resolver {{ $labels.resolver }} still answers {{ $labels.record }}
              ({{ $labels.record_type }}) with something other than the active region's answer
              {{ with printf "time() - rpo_dns_published_timestamp_seconds{instance=%q,record=%q,record_type=%q}" $labels.instance $labels.record $labels.record_type | query }}{{ . | first | value | humanizeDuration }}{{ end }}
              after every authoritative server switched, although the TTL is
              {{ with printf "max(rpo_dns_answer_ttl_seconds{instance=%q,record=%q,record_type=%q,mode=\"authoritative\"})" $labels.instance $labels.record $labels.record_type | query }}{{ . | first | value | humanizeDuration }}{{ end }}
              (seen by {{ $labels.instance }}).
            |||),
          },
        }),

        a.new('RPODNSSerialsDisagree', 'dns-serials-disagree.md', {
          comment:: |||
            The zone's authoritative servers report different SOA serials for 10 minutes: a
            secondary missed the update (zone transfer failing, NOTIFY not sent), so
            resolvers asking it get the old answer whatever the TTL.
          |||,
          expr: 'rpo_dns_soa_serials_agree%(b)s == 0' % v,
          'for': '10m',
          annotations: {
            summary: "The zone's authoritative DNS servers serve different versions of it.",
            description: a.para(|||
              The authoritative servers of zone {{ $labels.dns_zone }} have reported different
              SOA serials for 10 minutes (seen by {{ $labels.instance }}):
              {{ range $i, $s := printf "rpo_dns_soa_serial{instance=%q,dns_zone=%q}" $labels.instance $labels.dns_zone | query | sortByLabel "resolver" }}{{ if $i }}, {{ end }}{{ $s.Labels.resolver }} has serial {{ $s.Value }}{{ end }}.
            |||),
          },
        }),

        a.new('RPODNSResolverFailing', 'dns-resolver-failing.md', {
          comment:: |||
            A resolver or authoritative server (label mode) gave no usable answer for the
            record in every check for 5 minutes. The reason is in the description.
          |||,
          expr: 'rpo_dns_query_success%(b)s == 0' % v,
          'for': '5m',
          annotations: {
            summary: 'A DNS server keeps failing to answer a failover record.',
            description: a.para(|||
              The {{ $labels.mode }} server {{ $labels.resolver }} has failed to answer
              {{ $labels.record }} ({{ $labels.record_type }}) for 5 minutes, reason:
              {{ with printf "rpo_dns_query_failure_reason{instance=%q,record=%q,record_type=%q,resolver=%q,mode=%q} == 1" $labels.instance $labels.record $labels.record_type $labels.resolver $labels.mode | query }}{{ . | first | label "reason" }}{{ else }}unknown{{ end }}
              (seen by {{ $labels.instance }}).
            |||),
          },
        }),
      ],
    },
  ]
