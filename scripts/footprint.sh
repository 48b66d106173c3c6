#!/bin/sh
# Resident memory of one rpo-exporter after N sequential scrapes, split as the kernel
# counts it (docs/benchmarks.md, "Memory: where it goes"; issue #19, item 2).
#
#   scripts/footprint.sh BINARY CONFIG [SCRAPES] [WARMUP_SECS]
#
# Starts BINARY with --config.file CONFIG on a free loopback port, waits WARMUP_SECS
# (default 5: the workers connect and tick), scrapes /metrics SCRAPES times (default
# 1000) one after another over one keep-alive connection as the bench's client does,
# then prints one line:
#
#   rss_kib file_kib anon_kib threads p50_ms p99_ms cpu_ms series load1
#
# rss from /proc/PID/status VmRSS; file and anon from /proc/PID/smaps_rollup
# (Rss minus Anonymous, and Anonymous: heap and stacks); p50/p99 of the scrapes' total
# time as curl measured it; cpu_ms the exporter's CPU time (user + system) per scrape
# over the scrapes, its background work included; load1 is the host's one-minute load average at the end.
# The databases CONFIG points at are the caller's to start (real servers: see
# /work/shared/LAB-NOTES.md or the lab crate).
set -eu

bin=$1
config=$2
scrapes=${3:-1000}
warmup=${4:-5}

work=$(mktemp -d)
trap 'kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"' EXIT INT TERM

port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
"$bin" --config.file "$config" --web.listen-address "127.0.0.1:$port" >"$work/log" 2>&1 &
pid=$!
sleep "$warmup"
if ! kill -0 "$pid" 2>/dev/null; then
    echo "footprint: $bin exited early:" >&2
    cat "$work/log" >&2
    exit 1
fi

url="http://127.0.0.1:$port/metrics"
i=0
while [ "$i" -lt "$scrapes" ]; do
    printf 'url = "%s"\noutput = "/dev/null"\n' "$url"
    i=$((i + 1))
done >"$work/curl.cfg"
# utime + stime, fields 14 and 15 of /proc/PID/stat, in clock ticks.
ticks() { sed 's/.*) //' "/proc/$pid/stat" | awk '{ print $12 + $13 }'; }
t0=$(ticks)
curl -sS --fail -K "$work/curl.cfg" -w '%{time_total}\n' >"$work/times"
t1=$(ticks)
curl -sS --fail "$url" >"$work/last"

rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
threads=$(awk '/^Threads:/ { print $2 }' "/proc/$pid/status")
anon=$(awk '/^Anonymous:/ { print $2 }' "/proc/$pid/smaps_rollup")
total=$(awk '/^Rss:/ { print $2 }' "/proc/$pid/smaps_rollup")
series=$(grep -vc '^#' "$work/last" || true)
lat=$(sort -g "$work/times" | awk '{ v[NR] = $1 * 1000 } END {
    p50 = v[int((NR - 1) * 0.50) + 1]; p99 = v[int((NR - 1) * 0.99) + 1];
    printf "%.3f %.3f", p50, p99 }')
cpu=$(awk -v a="$t0" -v b="$t1" -v n="$scrapes" -v hz="$(getconf CLK_TCK)" \
    'BEGIN { printf "%.3f", (b - a) * 1000 / hz / n }')
load=$(cut -d' ' -f1 /proc/loadavg)
echo "$rss $((total - anon)) $anon $threads $lat $cpu $series $load"
