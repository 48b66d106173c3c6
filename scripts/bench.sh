#!/usr/bin/env bash
# Benchmarks rpo-exporter against postgres_exporter, mysqld_exporter and pt-heartbeat on
# the rpo-lab servers (see docs/benchmarks.md). Installs what is missing (as root),
# builds in release mode, runs every scenario and writes bench/results/.
# Extra arguments go to rpo-bench, e.g. `scripts/bench.sh --idle-secs 30 --scale 10,100`.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --bench
cargo build --release --locked -p rpo-exporter -p rpo-bench
exec target/release/rpo-bench --exporter target/release/rpo-exporter --out bench/results "$@"
