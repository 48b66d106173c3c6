// Pieces of PromQL shared by the rules and dashboards, built from _config.
//
// Rule expressions are written as jsonnet format strings (`'…' % p.vars`) with these
// placeholders:
//   %(R)s  the regional grouping prefix: the region label and the environment labels,
//          each followed by ", " (e.g. "region, env, "): `by (%(R)sdb_cluster)`
//   %(G)s  the global grouping prefix: the environment labels only (e.g. "env, ")
//   %(b)s  braces for a bare rpo_* selector: "" or "{<metricSelector>}"
//   %(m)s  more matchers inside existing braces: "" or ", <metricSelector>"
//   %(job)s  the jobSelector
//   %(fed)s  the federationSelector
//   %(memory)s  regionalMemory
function(cfg) {
  local envs = cfg.environmentLabels,
  local prefix(labels) = std.join('', [l + ', ' for l in labels]),

  regionLabel: cfg.regionLabel,
  envLabels: envs,
  regionalLabels: [cfg.regionLabel] + envs,

  vars: {
    R: prefix([cfg.regionLabel] + envs),
    G: prefix(envs),
    b: if cfg.metricSelector == '' then '' else '{' + cfg.metricSelector + '}',
    m: if cfg.metricSelector == '' then '' else ', ' + cfg.metricSelector,
    job: cfg.jobSelector,
    fed: cfg.federationSelector,
    memory: cfg.regionalMemory,
    region: cfg.regionLabel,
  },

  // A Go-template query for an alert annotation: `printf "<prefix><metric>{<labels>}<suffix>"
  // <values> | query`, matching `labels` (names) to the alert's own values. An
  // environment or region label the alert lacks reads "", which matches series without
  // it, so the same query works with or without those labels.
  query(metric, labels, prefix='', suffix='')::
    'printf "' + prefix + metric + '{' + std.join(',', [l + '=%q' for l in labels]) + '}' + suffix + '" '
    + std.join(' ', ['$labels.' + l for l in labels])
    + ' | query',

  // `{{ with <query> }}<found>{{ else }}<otherwise>{{ end }}`.
  withQuery(metric, labels, found, otherwise=null, prefix='', suffix='')::
    '{{ with ' + self.query(metric, labels, prefix, suffix) + ' }}' + found
    + (if otherwise == null then '' else '{{ else }}' + otherwise)
    + '{{ end }}',

  // Severity and runbook of an alert from _config.
  severity(name):: cfg.severities[name],
  runbook(page):: cfg.runbookURLBase + page,
}
