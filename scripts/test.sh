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

# A clean clone builds once and never rebuilds: incremental files would only add
# about 3 GB to target/ (measured). A developer may set CARGO_INCREMENTAL=1.
export CARGO_INCREMENTAL="${CARGO_INCREMENTAL:-0}"

# Disk: a clean clone's target/ grows to 3.0 GB (measured at its peak: the build, the
# cargo-deb build, the Python tools); the tests' servers keep their data in /dev/shm
# when it is there (lab/src/process.rs). Fail now with the numbers rather than in
# the middle of a link ("No space left on device", "Bus error").
mkdir -p target
have_mb=$(df -Pm target | awk 'NR == 2 { print $4 }')
used_mb=$(du -sm target | cut -f1)
need_mb=$((3500 - used_mb))
[ "$need_mb" -lt 500 ] && need_mb=500
if [ "$have_mb" -lt "$need_mb" ]; then
    echo "test.sh: only $have_mb MB free on the filesystem of $(pwd)/target; the build and the tests need about $need_mb MB more (a clean build's target/ peaks at 3.0 GB)" >&2
    exit 1
fi

scripts/install-deps.sh
scripts/install-kubernetes-validate.sh
# cargo-deb for tests/package.rs, into target/tools: about 50 s on a clean clone.
scripts/install-cargo-deb.sh
cargo fmt --all --check
# Build everything first so test timings do not include compilation.
cargo build --workspace --all-targets --locked

# Two long tests run on their own, each beside the rest, so the suite takes about
# max(longest, rest) rather than their sum; the workspace run ignores them:
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
# If the script stops early (a failed run, Ctrl-C), stop them too.
trap 'kill "${long_pid[@]}" "${lane_pid[@]}" 2>/dev/null || true' EXIT

failed=0
declare -a lane_pid=()
# Every `test result:` line, for the totals at the end.
results=$(mktemp "${TMPDIR:-/tmp}/rpo-results.XXXXXX")
if [ "$#" -gt 0 ]; then
    # Arguments (e.g. `--test NAME`, `-- FILTER`) go to one workspace run as they are.
    status=0
    cargo test --workspace --locked --no-fail-fast "$@" || status=$?
    if [ "$status" -ne 0 ]; then
        echo "test.sh: the workspace tests failed (exit $status)" >&2
        failed=1
    fi
else
    # The rest of the workspace in RPO_TEST_LANES parallel lanes (default 3): most
    # tests wait on real time (intervals, failovers, a rule's `for:`), not on the CPU.
    # Each lane is one `cargo test` over a share of the integration-test targets,
    # dealt longest first by the durations below (seconds, measured on the 2-core CI
    # machine; a target not listed counts as 30 s). Lane 1 also runs the unit tests
    # and doc tests. A new test target joins a lane by itself: it only needs a line
    # here when it is long.
    declare -A secs=(
        [alerts_e2e]=53 [mysql_locked]=62 [distance]=48 [mysql_lag]=44 [restart]=43
        [adversarial_db]=43 [ha_pair]=37 [postgres_lag]=32 [stranded]=30 [outage]=21
        [adversarial_http]=20 [prometheus]=17 [postgres_failures]=16 [config_errors]=16
        [dashboards]=15 [web_config]=15 [mysql_failures]=15 [hostile_rows]=14
        [failover]=13 [sidecar]=12 [exposition]=10 [config_watch]=8 [dns_propagation]=8
        [mixin]=8 [db_tls]=6 [dns_follow_cluster]=5 [reload]=5 [mariadb_lab]=5 [postgres_lab]=5
        [adversarial_dns]=4 [alerts_rules]=4 [postgres_setup]=4 [health]=3 [logging]=3
        [adversarial_fuzz]=2 [dns_failures]=2 [deploy]=1 [layers]=1 [listen]=1 [proxy]=1
        [patroni_lab]=25 [patroni_follow]=24 [drill_patroni]=22 [residency]=12 [drill_mariadb]=10
        [package]=7 [postgres_exposure]=14 [collectors]=6 [lag_precision]=26
    )
    lanes=${RPO_TEST_LANES:-3}
    # Tests that time the exporter under attack (Prometheus's scrape must stay under
    # 1 s through a scrape flood) run after the lanes, beside the long tests only:
    # three lanes of databases starting and failing over would starve the very loop
    # they time.
    solo_tests=(adversarial_http)
    targets=()
    for f in tests/*.rs lab/tests/*.rs; do
        name=$(basename "$f" .rs)
        case " ${long_tests[*]} ${solo_tests[*]} " in *" $name "*) continue ;; esac
        pkg=rpo-exporter
        [ "${f#lab/}" != "$f" ] && pkg=rpo-lab
        targets+=("${secs[$name]:-30} $pkg $name")
    done
    declare -a load lane_args
    for ((i = 0; i < lanes; i++)); do
        load[i]=0
        lane_args[i]=""
    done
    lane_args[0]="--lib --bins --doc"
    load[0]=5
    while read -r s pkg name; do
        best=0
        for ((i = 1; i < lanes; i++)); do
            [ "${load[i]}" -lt "${load[best]}" ] && best=$i
        done
        load[best]=$((load[best] + s))
        lane_args[best]+=" $pkg:$name"
    done < <(printf '%s\n' "${targets[@]}" | sort -rn)
    declare -a lane_log
    for ((i = 0; i < lanes; i++)); do
        args=()
        for a in ${lane_args[i]}; do
            case "$a" in
            --*) args+=("$a") ;;
            *) args+=(-p "${a%%:*}" --test "${a#*:}") ;;
            esac
        done
        # --doc cannot be mixed with other target kinds in one run: lane 1 runs
        # the unit tests, then the doc tests, then its share.
        lane_log[i]=$(mktemp "${TMPDIR:-/tmp}/rpo-lane$i.XXXXXX")
        (
            set +e
            st=0
            if [ "$i" -eq 0 ]; then
                cargo test --workspace --locked --no-fail-fast --lib --bins || st=1
                cargo test --workspace --locked --no-fail-fast --doc || st=1
                args=("${args[@]:3}")
            fi
            if [ "${#args[@]}" -gt 0 ]; then
                cargo test --locked --no-fail-fast "${args[@]}" || st=1
            fi
            exit "$st"
        ) >"${lane_log[i]}" 2>&1 &
        lane_pid[i]=$!
        echo "test.sh: lane $((i + 1)) (~${load[i]} s): ${lane_args[i]}"
    done
    for ((i = 0; i < lanes; i++)); do
        status=0
        wait "${lane_pid[i]}" || status=$?
        echo "--- lane $((i + 1)) ---"
        cat "${lane_log[i]}"
        grep '^test result:' "${lane_log[i]}" >>"$results" || true
        rm -f "${lane_log[i]}"
        if [ "$status" -ne 0 ]; then
            echo "test.sh: lane $((i + 1)) failed" >&2
            failed=1
        fi
    done
    for t in "${solo_tests[@]}"; do
        echo "--- $t (alone, after the lanes) ---"
        solo_log=$(mktemp "${TMPDIR:-/tmp}/rpo-$t.XXXXXX")
        status=0
        cargo test --locked --no-fail-fast -p rpo-exporter --test "$t" >"$solo_log" 2>&1 || status=$?
        cat "$solo_log"
        grep '^test result:' "$solo_log" >>"$results" || true
        rm -f "$solo_log"
        if [ "$status" -ne 0 ]; then
            echo "test.sh: $t failed" >&2
            failed=1
        fi
    done
fi
for t in "${long_tests[@]}"; do
    status=0
    wait "${long_pid[$t]}" || status=$?
    echo "--- $t (cargo test --test $t -- --ignored) ---"
    cat "${long_log[$t]}"
    grep '^test result:' "${long_log[$t]}" >>"$results" || true
    rm -f "${long_log[$t]}"
    if [ "$status" -ne 0 ]; then
        echo "test.sh: $t failed (exit $status)" >&2
        failed=1
    fi
done
awk '{ for (i = 1; i < NF; i++) if ($(i + 1) ~ /^(passed|failed|ignored)/) n[$(i + 1)] += $i }
     END { printf "test.sh: in all (lanes and long tests): %d passed, %d failed, %d ignored\n",
           n["passed;"], n["failed;"], n["ignored;"] }' "$results"
rm -f "$results"
trap - EXIT
exit "$failed"
