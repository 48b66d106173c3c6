#!/usr/bin/env bash
# Installs the real servers that rpo-lab starts for the tests and the demo, from Debian
# packages: PostgreSQL (server, client, pg_basebackup) and Prometheus.
#
# Idempotent and fast when everything is present: apt is only touched (and `apt-get
# update` only run) when something is missing. Package scripts are not allowed to start
# services while installing (a temporary policy-rc.d), so nothing grabs a port; the lab
# runs its own servers on its own loopback ports. An already-running PostgreSQL or
# Prometheus service is left alone.
set -euo pipefail

log() { printf 'install-deps: %s\n' "$*"; }

pg_server_present() {
    compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null &&
        compgen -G '/usr/lib/postgresql/*/bin/pg_basebackup' >/dev/null &&
        compgen -G '/usr/lib/postgresql/*/bin/psql' >/dev/null &&
        id -u postgres >/dev/null 2>&1
}

missing=()
if ! pg_server_present; then
    missing+=(postgresql)
fi
if ! command -v prometheus >/dev/null 2>&1; then
    missing+=(prometheus)
fi

if [ "${#missing[@]}" -eq 0 ]; then
    log "already installed: PostgreSQL ($(ls -d /usr/lib/postgresql/*/bin | tr '\n' ' ')), prometheus ($(command -v prometheus))"
    exit 0
fi

if [ "$(id -u)" -ne 0 ]; then
    log "missing: ${missing[*]}; run this script as root (it uses apt-get)" >&2
    exit 1
fi

# Keep package maintainer scripts from starting services (exit 101 = "action forbidden"),
# unless the machine already has its own policy.
policy=/usr/sbin/policy-rc.d
if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\n# temporary, from rpo-exporter scripts/install-deps.sh\nexit 101\n' >"$policy"
    chmod 0755 "$policy"
    trap 'rm -f "$policy"' EXIT
fi

log "installing: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -q
apt-get install -y -q --no-install-recommends "${missing[@]}"

if ! pg_server_present; then
    log "PostgreSQL server programs still missing after install" >&2
    exit 1
fi
command -v prometheus >/dev/null 2>&1 || {
    log "prometheus still missing after install" >&2
    exit 1
}
log "installed: ${missing[*]}"
log "PostgreSQL: $(ls -d /usr/lib/postgresql/*/bin | tr '\n' ' ')"
log "Prometheus: $(prometheus --version 2>&1 | head -n1)"

# Report (never stop) services that hold the packages' default ports.
for port in 5432 9090; do
    if command -v ss >/dev/null 2>&1 && ss -Hltn "sport = :$port" | grep -q .; then
        log "note: something already listens on port $port (left alone; the lab uses its own ports)"
    fi
done
