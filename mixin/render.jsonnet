// `jsonnet -S -m DIR mixin/render.jsonnet` writes every generated file under DIR (the
// directories must exist: scripts/gen-mixin.sh makes them).
(import 'files.libsonnet').files
