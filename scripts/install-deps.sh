#!/usr/bin/env bash
# Installs the real servers that rpo-lab starts for the tests and the demo, from Debian
# packages: PostgreSQL (server, client, pg_basebackup), MariaDB (server and client),
# Prometheus (with promtool), Alertmanager (with amtool), and the DNS servers Knot
# (authoritative) and Unbound (caching resolver); systemd-analyze checks the unit file;
# jsonnet renders the monitoring mixin (mixin/, scripts/gen-mixin.sh); Patroni with etcd
# (its etcd3 DCS; patroni pulls python3-etcd and python3-psycopg2) for the HA-manager lab.
# With --bench, also postgres_exporter, mysqld_exporter and percona-toolkit (pt-heartbeat)
# for scripts/bench.sh.
#
# Idempotent and fast when everything is present: apt is only touched (and `apt-get
# update` only run) when something is missing. Package scripts are not allowed to start
# services while installing (a temporary policy-rc.d), so nothing grabs a port; the lab
# runs its own servers on its own loopback ports. Running services are left alone.
set -euo pipefail

log() { printf 'install-deps: %s\n' "$*"; }

# package → a check that passes once it is usable
present() {
    case "$1" in
    postgresql)
        compgen -G '/usr/lib/postgresql/*/bin/initdb' >/dev/null &&
            compgen -G '/usr/lib/postgresql/*/bin/pg_basebackup' >/dev/null &&
            compgen -G '/usr/lib/postgresql/*/bin/psql' >/dev/null &&
            id -u postgres >/dev/null 2>&1
        ;;
    mariadb-server) command -v mariadbd >/dev/null 2>&1 && command -v mariadb-install-db >/dev/null 2>&1 ;;
    mariadb-client) command -v mariadb >/dev/null 2>&1 ;;
    prometheus) command -v prometheus >/dev/null 2>&1 && command -v promtool >/dev/null 2>&1 ;;
    prometheus-alertmanager) command -v prometheus-alertmanager >/dev/null 2>&1 && command -v amtool >/dev/null 2>&1 ;;
    knot) command -v knotd >/dev/null 2>&1 && command -v knotc >/dev/null 2>&1 ;;
    unbound) [ -x /usr/sbin/unbound ] ;;
    systemd) command -v systemd-analyze >/dev/null 2>&1 ;;
    jsonnet) command -v jsonnet >/dev/null 2>&1 ;;
    patroni) command -v patroni >/dev/null 2>&1 && command -v patronictl >/dev/null 2>&1 &&
        /usr/bin/python3 -c 'import etcd, psycopg2' >/dev/null 2>&1 ;;
    etcd-server) command -v etcd >/dev/null 2>&1 ;;
    prometheus-postgres-exporter) command -v prometheus-postgres-exporter >/dev/null 2>&1 ;;
    prometheus-mysqld-exporter) command -v prometheus-mysqld-exporter >/dev/null 2>&1 ;;
    percona-toolkit) command -v pt-heartbeat >/dev/null 2>&1 ;;
    *) return 1 ;;
    esac
}

packages=(postgresql mariadb-server mariadb-client prometheus prometheus-alertmanager knot unbound systemd jsonnet
    patroni etcd-server)
# `--bench`: also the peers the benchmark compares rpo-exporter with (bench/).
if [ "${1:-}" = "--bench" ]; then
    packages+=(prometheus-postgres-exporter prometheus-mysqld-exporter percona-toolkit)
fi
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

for p in "${missing[@]}"; do
    present "$p" || {
        log "$p still unusable after install" >&2
        exit 1
    }
done
log "installed: ${missing[*]}"

# Report (never stop) services that hold the packages' default ports.
for port in 53 2379 3306 5432 8008 9090 9093; do
    if command -v ss >/dev/null 2>&1 && ss -Hltn "sport = :$port" | grep -q .; then
        log "note: something already listens on port $port (left alone; the lab uses its own ports)"
    fi
done
