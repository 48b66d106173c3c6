// The data of every generated rule file (path → {groups}), as Prometheus should read it
// back: tests/mixin.rs parses the written YAML and compares.
local files = (import 'files.libsonnet')(import 'mixin.libsonnet');
{ [p]: { groups: files.ruleFiles[p].groups } for p in std.objectFields(files.ruleFiles) }
