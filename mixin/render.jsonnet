// `jsonnet -S -m DIR mixin/render.jsonnet` writes every generated text file (rule files,
// PrometheusRules) under DIR; `jsonnet -m DIR mixin/render-json.jsonnet` the JSON ones
// (dashboards). The directories must exist: scripts/gen-mixin.sh makes them. The
// mixin's defaults.
(import 'files.libsonnet')(import 'mixin.libsonnet').text
