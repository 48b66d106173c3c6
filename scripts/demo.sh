#!/usr/bin/env bash
# Starts a local lab (a PostgreSQL primary, a replica and a cascading replica, and a
# MariaDB primary and replica, each
# standing in for a region) and runs rpo-exporter against it on
# http://127.0.0.1:10087/metrics. Ctrl-C stops the exporter and removes the lab.
#
#   --regions  the multi-region layout instead (docs/scaling.md): a sidecar exporter beside
#              each database, a Prometheus per region, a global Prometheus federating them
#              and two clustered Alertmanagers, all on 127.0.0.1; it prints where to look.
#   --keep     keep the lab directories after Ctrl-C.
# Every argument goes to `rpo-lab demo` (see `target/release/rpo-lab demo --help`).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "demo.sh: cargo not found: install a Rust toolchain (1.89 or newer, e.g. with rustup) first" >&2
    exit 1
fi

scripts/install-deps.sh
cargo build --release --locked -p rpo-exporter -p rpo-lab
exec target/release/rpo-lab demo --exporter target/release/rpo-exporter "$@"
