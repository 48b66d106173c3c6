#!/usr/bin/env bash
# Benchmarks rpo-exporter against postgres_exporter, mysqld_exporter and pt-heartbeat on
# the rpo-lab servers (see docs/benchmarks.md). Installs what is missing (as root),
# builds (the exporter with the dist profile), runs every scenario and writes bench/results/.
# Extra arguments go to rpo-bench, e.g. `scripts/bench.sh --idle-secs 30 --scale 10,100`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --bench
# The exporter as the Docker image ships it (profile dist: fat LTO); the bench itself
# in release.
cargo build --profile dist --locked -p rpo-exporter
cargo build --release --locked -p rpo-bench
exec target/release/rpo-bench --exporter target/dist/rpo-exporter --out bench/results "$@"
