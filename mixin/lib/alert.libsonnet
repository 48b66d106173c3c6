// One alerting rule: severity from _config.severities, runbook_url from
// _config.runbookURLBase, and a description written as lines of text (joined with
// single spaces, as a folded YAML block reads them).
function(cfg) {
  // Lines of ||| blocks (a string, or an array of strings: one after the other) joined
  // into one paragraph with single spaces.
  para(parts)::
    local list = if std.isArray(parts) then parts else [parts];
    std.join(' ', [
      l
      for part in list
      for l in std.split(std.stripChars(part, '\n'), '\n')
      if l != ''
    ]),

  new(name, page, rule):: rule {
    alert: name,
    labels+: { severity: cfg.severities[name] },
    annotations+: { runbook_url: cfg.runbookURLBase + page },
  },
}
