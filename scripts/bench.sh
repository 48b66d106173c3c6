#!/usr/bin/env bash
# Benchmarks rpo-exporter against postgres_exporter, mysqld_exporter and pt-heartbeat on
# the rpo-lab servers (see docs/benchmarks.md). Installs what is missing (as root),
# builds (the exporter with the dist profile), runs every scenario and writes bench/results/.
# Extra arguments go to rpo-bench, e.g. `scripts/bench.sh --idle-secs 30 --scale 10,100`.
# RPO_BENCH_PROFILE=release measures the release build instead of dist (a quicker build
# for checking the bench itself; the published figures are dist's).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/install-deps.sh --bench
profile="${RPO_BENCH_PROFILE:-dist}"
# The exporter as the Docker image ships it (profile dist: fat LTO); the bench itself
# in release.
cargo build --profile "$profile" --locked -p rpo-exporter
cargo build --release --locked -p rpo-bench
exec target/release/rpo-bench --exporter "target/$profile/rpo-exporter" --out bench/results "$@"
