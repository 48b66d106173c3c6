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
# cargo-deb for tests/package.rs, into target/tools: about 50 s on a clean clone.
scripts/install-cargo-deb.sh
cargo fmt --all --check
# Build everything first so test timings do not include compilation.
cargo build --workspace --all-targets --locked

# Two long tests run on their own, each beside the workspace run, so the suite takes
# about max(longest, rest) rather than their sum; the workspace run ignores them:
# - the adversarial soak (tests/adversarial_soak.rs), ten minutes;
# - the global layout (tests/global_layout.rs), three Prometheus servers and two
#   Alertmanagers, about six minutes of the rules' `for:`.
# Any of them failing fails the script.
long_tests=(adversarial_soak global_layout)
declare -A long_pid long_log
for t in "${long_tests[@]}"; do
    long_log[$t]=$(mktemp "${TMPDIR:-/tmp}/rpo-$t.XXXXXX")
    cargo test --locked --test "$t" -- --ignored --nocapture >"${long_log[$t]}" 2>&1 &
    long_pid[$t]=$!
done
# If the script stops early (a failed workspace run, Ctrl-C), stop them too.
trap 'kill "${long_pid[@]}" 2>/dev/null || true' EXIT

failed=0
workspace_status=0
cargo test --workspace --locked --no-fail-fast "$@" || workspace_status=$?
if [ "$workspace_status" -ne 0 ]; then
    echo "test.sh: the workspace tests failed (exit $workspace_status)" >&2
    failed=1
fi
for t in "${long_tests[@]}"; do
    status=0
    wait "${long_pid[$t]}" || status=$?
    echo "--- $t (cargo test --test $t -- --ignored) ---"
    cat "${long_log[$t]}"
    rm -f "${long_log[$t]}"
    if [ "$status" -ne 0 ]; then
        echo "test.sh: $t failed (exit $status)" >&2
        failed=1
    fi
done
trap - EXIT
exit "$failed"
