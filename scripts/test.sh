#!/usr/bin/env bash
# The whole test suite, against real servers: installs what the tests need from
# Debian packages (scripts/install-deps.sh), checks formatting, then runs every
# test of the workspace. CI runs exactly this (.ci/run).
set -euo pipefail
cd "$(dirname "$0")/.."

if ! command -v cargo >/dev/null 2>&1; then
    echo "test.sh: cargo not found: install a Rust toolchain (1.89 or newer, e.g. with rustup) first" >&2
    exit 1
fi

scripts/install-deps.sh
scripts/install-kubernetes-validate.sh
cargo fmt --all --check
# Build everything first so test timings do not include compilation.
cargo build --workspace --all-targets --locked
cargo test --workspace --locked "$@"
