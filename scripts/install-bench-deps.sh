#!/usr/bin/env bash
# Installs the peers the benchmark (bench/, scripts/bench.sh) compares rpo-exporter with,
# from Debian packages: postgres_exporter, mysqld_exporter and percona-toolkit
# (pt-heartbeat). Also runs scripts/install-deps.sh for the lab's own servers.
#
# Idempotent: apt is only touched when something is missing. Package scripts may not
# start services while installing (a temporary policy-rc.d), so no peer grabs its default
# port; the bench starts each peer itself on its own loopback port.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"

log() { printf 'install-bench-deps: %s\n' "$*"; }

"$here/install-deps.sh"

present() {
    case "$1" in
    prometheus-postgres-exporter) command -v prometheus-postgres-exporter >/dev/null 2>&1 ;;
    prometheus-mysqld-exporter) command -v prometheus-mysqld-exporter >/dev/null 2>&1 ;;
    percona-toolkit) command -v pt-heartbeat >/dev/null 2>&1 ;;
    *) return 1 ;;
    esac
}

packages=(prometheus-postgres-exporter prometheus-mysqld-exporter percona-toolkit)
missing=()
for p in "${packages[@]}"; do
    present "$p" || missing+=("$p")
done
if [ "${#missing[@]}" -eq 0 ]; then
    log "already installed: ${packages[*]}"
    exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
    log "missing: ${missing[*]}; run this script as root (it uses apt-get)" >&2
    exit 1
fi

policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# temporary, from rpo-exporter scripts/install-bench-deps.sh\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    trap 'rm -f "$policy"' EXIT
fi

log "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"
for p in "${missing[@]}"; do
    present "$p" || {
        log "$p still unusable after install" >&2
        exit 1
    }
done
log "installed: ${missing[*]}"
