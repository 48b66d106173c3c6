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

# The adversarial soak (tests/adversarial_soak.rs) runs ten minutes: it is ignored
# by the workspace run and runs here on its own, in parallel with it, so the suite
# takes max(soak, rest) rather than their sum. Either failing fails the script.
soak_log=$(mktemp "${TMPDIR:-/tmp}/rpo-soak.XXXXXX")
cargo test --locked --test adversarial_soak -- --ignored --nocapture >"$soak_log" 2>&1 &
soak_pid=$!
# If the script stops early (a failed workspace run, Ctrl-C), stop the soak too.
trap 'kill "$soak_pid" 2>/dev/null || true' EXIT

workspace_status=0
cargo test --workspace --locked --no-fail-fast "$@" || workspace_status=$?
soak_status=0
wait "$soak_pid" || soak_status=$?
trap - EXIT

echo "--- adversarial soak (cargo test --test adversarial_soak -- --ignored) ---"
cat "$soak_log"
rm -f "$soak_log"
if [ "$workspace_status" -ne 0 ]; then
    echo "test.sh: the workspace tests failed (exit $workspace_status)" >&2
fi
if [ "$soak_status" -ne 0 ]; then
    echo "test.sh: the adversarial soak failed (exit $soak_status)" >&2
fi
if [ "$workspace_status" -ne 0 ] || [ "$soak_status" -ne 0 ]; then
    exit 1
fi
