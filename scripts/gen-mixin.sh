#!/usr/bin/env bash
# Renders the rpo-exporter monitoring mixin (mixin/) into the files this repository
# ships: the rule files alerts/regional/*.yml and alerts/global/*.yml, the Prometheus
# Operator PrometheusRules deploy/kubernetes/prometheusrule-{regional,global}.yaml and
# the Grafana dashboards dashboards/*.json.
#
#   scripts/gen-mixin.sh          # rewrite the files in the repository
#   scripts/gen-mixin.sh DIR      # write them under DIR instead (same relative paths)
#
# Run it after editing mixin/; tests/mixin.rs renders into a temporary directory and
# fails while a committed file differs. Needs jsonnet (scripts/install-deps.sh) and,
# to check the result, promtool.
set -euo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.."

if ! command -v jsonnet >/dev/null 2>&1; then
    echo "gen-mixin: jsonnet not found: run scripts/install-deps.sh (Debian package jsonnet)" >&2
    exit 1
fi

out=${1:-.}
# Render everything first into a scratch directory, so a jsonnet error leaves the
# repository untouched.
tmp=$(mktemp -d "${TMPDIR:-/tmp}/rpo-mixin.XXXXXX")
trap 'rm -rf "$tmp"' EXIT
files=$(jsonnet -S -e 'std.join("\n", std.objectFields(import "mixin/render.jsonnet")
    + std.objectFields(import "mixin/render-json.jsonnet"))')
for f in $files; do
    mkdir -p "$tmp/$(dirname "$f")"
done
# Text files (rule files, PrometheusRules) as they are; JSON files (dashboards) written
# by jsonnet's own JSON writer.
jsonnet -S -m "$tmp" mixin/render.jsonnet >/dev/null
jsonnet -m "$tmp" mixin/render-json.jsonnet >/dev/null
for f in $files; do
    mkdir -p "$out/$(dirname "$f")"
    install -m 0644 "$tmp/$f" "$out/$f"
done
echo "gen-mixin: wrote $(echo "$files" | wc -l) files under $out"
