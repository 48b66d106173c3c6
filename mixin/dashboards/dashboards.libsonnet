// The Grafana dashboards, by file name (dashboards/<name>.json). Each dashboard file
// keeps its static structure (panels, layout, descriptions) as Grafana JSON and passes
// every query through d.e(), a jsonnet format string with these placeholders:
//   %(J)s  the job matcher: job=~"$job" (the dashboard's variable), plus
//          _config.metricSelector if set
//   %(G)s  the environment labels, each followed by ", ": cluster-level `by (…)` and
//          `on (…)` keep them, so two environments that reuse db_cluster names never merge
//   %(b)s  braces for a bare rpo_* selector: "" or "{<metricSelector>}"
local promql = import '../lib/promql.libsonnet';

function(cfg)
  local q = promql(cfg);
  local R = cfg.regionLabel;
  local vars = q.vars {
    J: 'job=~"$job"' + q.vars.m,
  };
  local d = {
    tag: cfg.dashboardTag,
    e(template):: template % vars,

    // "Regions side by side" (overview): one row per region, `region_name`. A database
    // series that carries the region external label (a regional Prometheus's, as a global
    // Prometheus federates it) counts for that region; one without it (a single
    // Prometheus) for the exporter's own label: node_region, or replica_region for pairs.
    regionsSideBySide(ref)::
      local f = {
        A(key, kp, m): 'sum by (%s) (max by (%s%sdb_cluster, node, node_region) (rpo_node_up{%s, db_cluster=~"$db_cluster", node_region=~"$region", %s}))'
                       % [key, kp, vars.G, vars.J, m],
        B(key, kp, m): 'sum by (%s) (1 - max by (%s%sdb_cluster, node, node_region) (rpo_node_up{%s, db_cluster=~"$db_cluster", node_region=~"$region", %s}))'
                       % [key, kp, vars.G, vars.J, m],
        C(key, kp, m): 'sum by (%s) (max by (%s%sdb_cluster, node, node_region) (rpo_node_writable{%s, db_cluster=~"$db_cluster", node_region=~"$region", %s}))'
                       % [key, kp, vars.G, vars.J, m],
        D(key, kp, m): 'max by (%s) (max by (%s%sdb_cluster, source_node, source_region, replica_node, replica_region) (rpo_data_loss_exposure_seconds{%s, db_cluster=~"$db_cluster", replica_region=~"$region", %s}))'
                       % [key, kp, vars.G, vars.J, m],
        E(key, kp, m): 'max by (%s) (\n    max by (%s%sdb_cluster, source_node, source_region, replica_node, replica_region) (rpo_data_loss_exposure_seconds{%s, db_cluster=~"$db_cluster", replica_region=~"$region", %s})\n    / on (%sdb_cluster) group_left () max by (%sdb_cluster) (rpo_objective_seconds{%s, db_cluster=~"$db_cluster"})\n  )'
                       % [key, kp, vars.G, vars.J, m, vars.G, vars.G, vars.J],
      }[ref];
      local own = if std.member(['D', 'E'], ref) then 'replica_region' else 'node_region';
      'max by (region_name) (\n'
      + '  label_replace(' + f(R, R + ', ', R + '!=""') + ', "region_name", "$1", "' + R + '", "(.*)")\n'
      + '  or\n'
      + '  label_replace(' + f(own, '', R + '=""') + ', "region_name", "$1", "' + own + '", "(.*)")\n'
      + ')',
  };
  {
    'rpo-overview': (import 'overview.libsonnet')(d),
    'rpo-cluster-detail': (import 'cluster-detail.libsonnet')(d),
    'rpo-dns-health': (import 'dns-health.libsonnet')(d),
  }
