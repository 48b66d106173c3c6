#!/bin/bash
# Runs once, on the primary's first start (the postgres image runs
# /docker-entrypoint-initdb.d/*.sh after initdb): the replication role and its
# pg_hba.conf line for pg-replica, then the exporter's login role, the heartbeat table
# and the least-privilege grants exactly as `rpo-exporter schema postgres` prints them
# (tests/deploy.rs checks that they stay equal).
set -euo pipefail
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
    -v replication_password="$(cat /run/secrets/replication-password)" \
    -v exporter_password="$(cat /run/secrets/rpo-exporter-password)" <<'SQL'
CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD :'replication_password';
CREATE ROLE rpo_exporter LOGIN PASSWORD :'exporter_password';
CREATE SCHEMA IF NOT EXISTS rpo;
CREATE TABLE IF NOT EXISTS rpo.heartbeat (
    node       text        PRIMARY KEY,  -- the writer's configured node name
    region     text        NOT NULL,     -- the writer's configured region
    seq        bigint      NOT NULL,     -- +1 on every heartbeat
    written_at timestamptz NOT NULL,     -- the writer's database clock, UTC, microseconds
    identity   text        NOT NULL      -- system identifier of the writing server
) WITH (fillfactor = 50);                -- room for HOT updates: a heartbeat touches no index
GRANT USAGE ON SCHEMA rpo TO rpo_exporter;
GRANT SELECT, INSERT, UPDATE ON rpo.heartbeat TO rpo_exporter;
GRANT pg_monitor TO rpo_exporter;
SQL
echo "host replication replicator all scram-sha-256" >>"$PGDATA/pg_hba.conf"
