// `jsonnet -m DIR mixin/render-json.jsonnet`: the generated JSON files (dashboards).
// See render.jsonnet.
(import 'files.libsonnet')(import 'mixin.libsonnet').json
