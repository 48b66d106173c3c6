//! PostgreSQL: every SQL statement the exporter sends to PostgreSQL lives here.
//!
//! A [`PgSession`] is one tokio-postgres connection with its prepared statements.
//! Roles come from `pg_is_in_recovery()` and `transaction_read_only`; the identity
//! is the system identifier from `pg_control_system()`, shared by a primary and
//! its physical replicas. Times travel as integer microseconds since the epoch,
//! computed by the server from its own clock, so no timezone or client clock
//! enters. Native signals come from `pg_stat_replication` (on any node with
//! standbys, cascading ones included) and from `pg_stat_wal_receiver` and the
//! recovery functions on replicas.

use super::{EngineError, ErrorKind, HeartbeatRead, HeartbeatRow, NodeLabels, Probe, Written};
use crate::config::{Heartbeat, Node, TableName, Tls, TlsMode};
use crate::metrics::{desc, MetricDesc, Sample, NODE};
use std::str::FromStr;
use tokio::task::JoinHandle;
use tokio_postgres::config::SslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres::{Client, NoTls, Statement};

const STANDBY_STATE: &[&str] = &["db_cluster", "node", "node_region", "standby", "state"];
const STANDBY_STAGE: &[&str] = &["db_cluster", "node", "node_region", "standby", "stage"];
const RECEIVER_STATUS: &[&str] = &["db_cluster", "node", "node_region", "status"];

desc!(STANDBY_STATE_DESC, "rpo_pg_standby_state", Gauge, STANDBY_STATE, "Per standby connected to this node (pg_stat_replication): 1 for its current state (startup, catchup, streaming, backup, stopping), 0 for the others.");
desc!(STANDBY_LAG_DESC, "rpo_pg_standby_lag_seconds", Gauge, STANDBY_STAGE, "pg_stat_replication write_lag, flush_lag and replay_lag by stage; absent while PostgreSQL reports NULL (no recent WAL activity to time).");
desc!(STANDBY_BYTES_DESC, "rpo_pg_standby_lag_bytes", Gauge, STANDBY_STAGE, "Bytes of WAL between this node's current position and the standby's sent, write, flush and replay positions.");
desc!(STANDBY_COUNT_DESC, "rpo_pg_standbys", Gauge, NODE, "Standbys (WAL senders) connected to this node.");
desc!(RECEIVER_DESC, "rpo_pg_wal_receiver_status", Gauge, RECEIVER_STATUS, "On a replica, 1 for the WAL receiver's current status (starting, streaming, waiting, restarting, stopping, stopped; stopped also when no receiver runs), 0 for the others.");
desc!(
    REPLAY_PAUSED_DESC,
    "rpo_pg_replay_paused",
    Gauge,
    NODE,
    "On a replica, 1 if WAL replay is paused (pg_wal_replay_pause()), else 0."
);
desc!(LAST_REPLAY_DESC, "rpo_pg_last_replay_timestamp_seconds", Gauge, NODE, "On a replica, commit time of the last replayed transaction (pg_last_xact_replay_timestamp()); does not move while the primary is idle, so it is no lag measure by itself.");
desc!(
    UNREPLAYED_DESC,
    "rpo_pg_unreplayed_bytes",
    Gauge,
    NODE,
    "On a replica, bytes of WAL received but not yet replayed."
);

/// PostgreSQL's own metric families.
pub static METRICS: &[&MetricDesc] = &[
    &STANDBY_COUNT_DESC,
    &STANDBY_STATE_DESC,
    &STANDBY_LAG_DESC,
    &STANDBY_BYTES_DESC,
    &RECEIVER_DESC,
    &REPLAY_PAUSED_DESC,
    &LAST_REPLAY_DESC,
    &UNREPLAYED_DESC,
];

const STANDBY_STATES: &[&str] = &["startup", "catchup", "streaming", "backup", "stopping"];
const RECEIVER_STATUSES: &[&str] = &["starting", "streaming", "waiting", "restarting", "stopping", "stopped"];

/// Microseconds since the epoch of a timestamptz expression, on the server's clock.
fn epoch_us(expr: &str) -> String {
    format!("(extract(epoch from {expr}) * 1000000)::bigint")
}

pub fn check_dsn(dsn: &str) -> Result<(), String> {
    // tokio-postgres' own message may quote the DSN; describe it without that.
    let config = tokio_postgres::Config::from_str(dsn).map_err(|e| {
        let reason = e.to_string();
        let reason = if reason.contains(dsn) { "invalid connection string".to_owned() } else { reason };
        format!("not a valid PostgreSQL connection string (key=value or postgres:// URL): {reason}")
    })?;
    if config.get_password().is_some() {
        return Err(
            "the connection string contains a password; move it to password_file or password_env".into()
        );
    }
    if config.get_user().is_none() {
        return Err("the connection string names no user (add user=...)".into());
    }
    Ok(())
}

pub fn dsn_sets_tls(dsn: &str) -> bool {
    tokio_postgres::Config::from_str(dsn).is_ok_and(|c| c.get_ssl_mode() != SslMode::Prefer)
}

pub fn schema_sql(table: &TableName, role: &str) -> String {
    let TableName { schema, table: name } = table;
    format!(
        "-- rpo-exporter heartbeat table for PostgreSQL: one row per writing node.
-- Run once on the primary as an administrator; it replicates to every standby.
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {schema}.{name} (
    node       text        PRIMARY KEY,  -- the writer's configured node name
    region     text        NOT NULL,     -- the writer's configured region
    seq        bigint      NOT NULL,     -- +1 on every heartbeat
    written_at timestamptz NOT NULL,     -- the writer's database clock, UTC, microseconds
    identity   text        NOT NULL      -- system identifier of the writing server
) WITH (fillfactor = 50);                -- room for HOT updates: a heartbeat touches no index

-- Least privilege for the exporter's login role. Create the role first, e.g.
--   CREATE ROLE {role} LOGIN PASSWORD '...';
GRANT USAGE ON SCHEMA {schema} TO {role};
GRANT SELECT, INSERT, UPDATE ON {schema}.{name} TO {role};
-- Full rows of pg_stat_replication and pg_stat_wal_receiver:
GRANT pg_monitor TO {role};
"
    )
}

/// Reduces a driver error to a bounded kind and a message without credentials.
fn classify(e: &tokio_postgres::Error, table: &TableName) -> EngineError {
    if let Some(db) = e.as_db_error() {
        let code = db.code();
        let kind = if *code == SqlState::INSUFFICIENT_PRIVILEGE {
            ErrorKind::Permission
        } else if *code == SqlState::UNDEFINED_TABLE || *code == SqlState::INVALID_SCHEMA_NAME {
            ErrorKind::MissingTable
        } else if *code == SqlState::READ_ONLY_SQL_TRANSACTION {
            ErrorKind::ReadOnly
        } else if *code == SqlState::INVALID_PASSWORD
            || *code == SqlState::INVALID_AUTHORIZATION_SPECIFICATION
        {
            ErrorKind::Auth
        } else if *code == SqlState::QUERY_CANCELED {
            ErrorKind::Timeout
        } else if matches!(code.code(), c if c.starts_with("57") || c.starts_with("08")) {
            ErrorKind::Connect
        } else {
            ErrorKind::Query
        };
        let hint = match kind {
            ErrorKind::Permission | ErrorKind::MissingTable => format!(
                "; run the statements printed by `rpo-exporter schema postgres --table {table}` as an administrator"
            ),
            _ => String::new(),
        };
        return EngineError::new(kind, format!("{} {}: {}{hint}", db.severity(), code.code(), db.message()));
    }
    // Not a server error: the connection failed or broke. Spell out the causes.
    let kind =
        if super::tls::is_tls_error(e) || e.to_string().contains("TLS") || e.to_string().contains("SSL") {
            ErrorKind::Tls
        } else {
            ErrorKind::Connect
        };
    EngineError::new(kind, crate::error_chain(e))
}

pub struct PgSession {
    client: Client,
    connection: JoinHandle<()>,
    table: TableName,
    /// The server's system identifier: fixed for the life of a session.
    identity: String,
    probe: Statement,
    read: Option<Statement>,
    update: Option<Statement>,
    /// The two native-signal queries, prepared on first use: planned once per
    /// session instead of parsed and planned on every interval.
    standbys: Option<Statement>,
    receiver: Option<Statement>,
}

impl Drop for PgSession {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl PgSession {
    pub async fn connect(node: &Node, heartbeat: &Heartbeat) -> Result<PgSession, EngineError> {
        let mut config = tokio_postgres::Config::from_str(&node.dsn)
            .map_err(|e| EngineError::new(ErrorKind::Connect, e.to_string()))?;
        match node.password.read() {
            Ok(Some(password)) => {
                config.password(password);
            }
            Ok(None) => {}
            Err(e) => return Err(EngineError::new(ErrorKind::Auth, e)),
        }
        if config.get_application_name().is_none() {
            config.application_name("rpo-exporter");
        }
        config.connect_timeout(heartbeat.connect_timeout);
        let table = heartbeat.table.clone();
        // The error, if any, surfaces on the client's next query.
        // sslmode=require in the DSN alone means what libpq means: encrypt, verify nothing.
        let tls = node.tls.clone().or_else(|| {
            (config.get_ssl_mode() == SslMode::Require).then_some(Tls {
                mode: TlsMode::Require,
                ca_file: None,
                client: None,
            })
        });
        let (client, connection) = match &tls {
            None => {
                let (client, conn) = config.connect(NoTls).await.map_err(|e| classify(&e, &table))?;
                (client, tokio::spawn(async move { drop(conn.await) }))
            }
            Some(tls) if tls.mode == TlsMode::Disable => {
                config.ssl_mode(SslMode::Disable);
                let (client, conn) = config.connect(NoTls).await.map_err(|e| classify(&e, &table))?;
                (client, tokio::spawn(async move { drop(conn.await) }))
            }
            Some(tls) => {
                config.ssl_mode(if tls.mode == TlsMode::Prefer { SslMode::Prefer } else { SslMode::Require });
                let rustls =
                    super::tls::client_config(tls).map_err(|e| EngineError::new(ErrorKind::Tls, e))?;
                let connector = tokio_postgres_rustls::MakeRustlsConnect::new(rustls);
                let (client, conn) = config.connect(connector).await.map_err(|e| classify(&e, &table))?;
                (client, tokio::spawn(async move { drop(conn.await) }))
            }
        };
        // The server gives up on a statement when we do, and a heartbeat never
        // waits for a synchronous standby: a blocked heartbeat would hide the
        // very lag it exists to show.
        let setup = format!(
            "SET statement_timeout = {}; SET synchronous_commit = local; SET lock_timeout = {}",
            heartbeat.timeout.as_millis(),
            heartbeat.timeout.as_millis()
        );
        client.batch_execute(&setup).await.map_err(|e| classify(&e, &table))?;
        let identity: String = client
            .query_one("SELECT system_identifier::text FROM pg_control_system()", &[])
            .await
            .map_err(|e| classify(&e, &table))?
            .get(0);
        let probe = client
            .prepare(&format!(
                "SELECT NOT pg_is_in_recovery() AND current_setting('transaction_read_only') = 'off', {}",
                epoch_us("clock_timestamp()")
            ))
            .await
            .map_err(|e| classify(&e, &table))?;
        Ok(PgSession {
            client,
            connection,
            table,
            identity,
            probe,
            read: None,
            update: None,
            standbys: None,
            receiver: None,
        })
    }

    pub async fn probe(&mut self) -> Result<Probe, EngineError> {
        let row = self.client.query_one(&self.probe, &[]).await.map_err(|e| classify(&e, &self.table))?;
        let identity = self.identity.clone();
        Ok(Probe {
            writable: row.get(0),
            expected_row_identity: Some(identity.clone()),
            aliases: vec![identity.clone()],
            identity,
            db_now_us: row.get(1),
        })
    }

    pub async fn ensure_table(&mut self, table: &TableName, create: bool) -> Result<(), EngineError> {
        let exists: bool = self
            .client
            .query_one("SELECT to_regclass($1) IS NOT NULL", &[&table.to_string()])
            .await
            .map_err(|e| classify(&e, table))?
            .get(0);
        if exists {
            return Ok(());
        }
        if !create {
            return Err(EngineError::new(
                ErrorKind::MissingTable,
                format!(
                    "heartbeat table {table} does not exist and heartbeat.create_table is false; run the statements printed by `rpo-exporter schema postgres --table {table}` as an administrator"
                ),
            ));
        }
        // The same DDL an administrator would run; the grants are theirs to give.
        let ddl: String =
            schema_sql(table, "unused").split("-- Least privilege").next().unwrap_or_default().to_owned();
        self.client.batch_execute(&ddl).await.map_err(|e| {
            let mut err = classify(&e, table);
            err.message = format!("cannot create heartbeat table {table}: {}", err.message);
            if err.kind == ErrorKind::Permission {
                // Creating needs CREATE on the database; say what to do instead.
                err.kind = ErrorKind::MissingTable;
            }
            err
        })?;
        tracing::info!(table = %table, "Created heartbeat table");
        Ok(())
    }

    pub async fn write_heartbeat(&mut self, node: &Node, identity: &str) -> Result<Written, EngineError> {
        let table = self.table.clone();
        if self.update.is_none() {
            // One small UPDATE per heartbeat: no index column changes, so it is a
            // HOT update and the WAL it adds stays tiny.
            let sql = format!(
                "UPDATE {table} SET region = $2, seq = seq + 1, written_at = clock_timestamp(), identity = $3
                 WHERE node = $1 RETURNING seq, {}",
                epoch_us("written_at")
            );
            self.update = Some(self.client.prepare(&sql).await.map_err(|e| classify(&e, &table))?);
        }
        let update = self.update.clone().expect("prepared above");
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] = [&node.name, &node.region, &identity];
        for _ in 0..2 {
            let rows = self.client.query(&update, &params).await.map_err(|e| classify(&e, &table))?;
            if let Some(row) = rows.first() {
                return Ok(Written { seq: row.get(0), written_us: row.get(1) });
            }
            // First heartbeat of this node: create its row, then update it.
            let insert = format!(
                "INSERT INTO {table} (node, region, seq, written_at, identity)
                 VALUES ($1, $2, 0, clock_timestamp(), $3) ON CONFLICT (node) DO NOTHING"
            );
            self.client.execute(&insert, &params).await.map_err(|e| classify(&e, &table))?;
        }
        Err(EngineError::new(
            ErrorKind::Query,
            format!("heartbeat row for {} in {table} vanished while writing", node.name),
        ))
    }

    pub async fn read_heartbeats(&mut self) -> Result<HeartbeatRead, EngineError> {
        let table = self.table.clone();
        if self.read.is_none() {
            // The left join returns the clock even from an empty table. The limit
            // bounds what a flooded table can cost us.
            let sql = format!(
                // Casts make a hand-made table with other column types read the
                // same (or fail as a query error), never surprise the decoder.
                "SELECT {now}, h.node::text, h.region::text, h.seq::bigint, {written}, h.identity::text
                 FROM (SELECT 1) AS one LEFT JOIN {table} AS h ON true
                 ORDER BY h.node LIMIT 1000",
                now = epoch_us("clock_timestamp()"),
                written = epoch_us("h.written_at"),
            );
            self.read = Some(self.client.prepare(&sql).await.map_err(|e| classify(&e, &table))?);
        }
        let read = self.read.clone().expect("prepared above");
        let rows = self.client.query(&read, &[]).await.map_err(|e| classify(&e, &table))?;
        let db_now_us = rows.first().map(|r| r.get::<_, i64>(0)).unwrap_or_default();
        let rows = rows
            .iter()
            .filter(|r| r.get::<_, Option<String>>(1).is_some())
            .map(|r| HeartbeatRow {
                node: r.get(1),
                region: r.get(2),
                seq: r.get(3),
                written_us: r.get(4),
                identity: r.get(5),
            })
            .collect();
        Ok(HeartbeatRead { rows, db_now_us })
    }

    pub async fn replication(&mut self, labels: &NodeLabels) -> Result<Vec<Sample>, EngineError> {
        let mut out = Vec::new();
        if self.standbys.is_none() {
            let sql = "WITH pos AS (
                   SELECT CASE WHEN pg_is_in_recovery() THEN pg_last_wal_receive_lsn() ELSE pg_current_wal_lsn() END AS lsn)
                 SELECT r.application_name, s.slot_name, r.state,
                        extract(epoch from r.write_lag)::float8,
                        extract(epoch from r.flush_lag)::float8,
                        extract(epoch from r.replay_lag)::float8,
                        pg_wal_lsn_diff(pos.lsn, r.sent_lsn)::float8,
                        pg_wal_lsn_diff(pos.lsn, r.write_lsn)::float8,
                        pg_wal_lsn_diff(pos.lsn, r.flush_lsn)::float8,
                        pg_wal_lsn_diff(pos.lsn, r.replay_lsn)::float8
                 FROM pg_stat_replication r
                 CROSS JOIN pos
                 LEFT JOIN pg_replication_slots s ON s.active_pid = r.pid
                 ORDER BY r.pid";
            self.standbys = Some(self.client.prepare(sql).await.map_err(|e| classify(&e, &self.table))?);
        }
        if self.receiver.is_none() {
            let sql = format!(
                "SELECT pg_is_in_recovery(),
                        (SELECT status FROM pg_stat_wal_receiver),
                        CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() END,
                        {},
                        pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::float8",
                epoch_us("pg_last_xact_replay_timestamp()")
            );
            self.receiver = Some(self.client.prepare(&sql).await.map_err(|e| classify(&e, &self.table))?);
        }
        let (standbys_sql, receiver_sql) = (self.standbys.clone(), self.receiver.clone());
        let standbys = self
            .client
            .query(standbys_sql.as_ref().expect("prepared above"), &[])
            .await
            .map_err(|e| classify(&e, &self.table))?;
        let mut seen = std::collections::HashSet::new();
        for row in &standbys {
            let app: Option<String> = row.get(0);
            let slot: Option<String> = row.get(1);
            let standby = standby_label(app.as_deref(), slot.as_deref(), &mut seen);
            let state: Option<String> = row.get(2);
            for s in STANDBY_STATES {
                let v = f64::from(u8::from(state.as_deref() == Some(*s)));
                out.push(sample(&STANDBY_STATE_DESC, labels.with(&[&standby, s]), v));
            }
            for (i, stage) in ["write", "flush", "replay"].iter().enumerate() {
                if let Some(v) = row.get::<_, Option<f64>>(3 + i) {
                    out.push(sample(&STANDBY_LAG_DESC, labels.with(&[&standby, stage]), v));
                }
            }
            for (i, stage) in ["sent", "write", "flush", "replay"].iter().enumerate() {
                if let Some(v) = row.get::<_, Option<f64>>(6 + i) {
                    out.push(sample(&STANDBY_BYTES_DESC, labels.with(&[&standby, stage]), v.max(0.0)));
                }
            }
        }
        out.push(sample(&STANDBY_COUNT_DESC, labels.with(&[]), standbys.len() as f64));

        let row = self
            .client
            .query_one(receiver_sql.as_ref().expect("prepared above"), &[])
            .await
            .map_err(|e| classify(&e, &self.table))?;
        if row.get::<_, bool>(0) {
            let status: Option<String> = row.get(1);
            let status = status.as_deref().unwrap_or("stopped");
            for s in RECEIVER_STATUSES {
                out.push(sample(&RECEIVER_DESC, labels.with(&[s]), f64::from(u8::from(status == *s))));
            }
            if let Some(paused) = row.get::<_, Option<bool>>(2) {
                out.push(sample(&REPLAY_PAUSED_DESC, labels.with(&[]), f64::from(u8::from(paused))));
            }
            if let Some(us) = row.get::<_, Option<i64>>(3) {
                out.push(sample(&LAST_REPLAY_DESC, labels.with(&[]), us as f64 / 1e6));
            }
            if let Some(bytes) = row.get::<_, Option<f64>>(4) {
                out.push(sample(&UNREPLAYED_DESC, labels.with(&[]), bytes.max(0.0)));
            }
        }
        Ok(out)
    }
}

fn sample(desc: &'static MetricDesc, values: Vec<String>, value: f64) -> Sample {
    Sample { desc, values, value }
}

/// A bounded, unique label for a standby: its application_name unless that is the
/// default `walreceiver`, else its slot name; characters unfit for a label are
/// replaced, and a repeated name gets a `-N` suffix so series never collide.
fn standby_label(
    app: Option<&str>,
    slot: Option<&str>,
    seen: &mut std::collections::HashSet<String>,
) -> String {
    let base = match (app, slot) {
        (Some(a), _) if !a.is_empty() && a != "walreceiver" => a,
        (_, Some(s)) if !s.is_empty() => s,
        (Some(a), _) if !a.is_empty() => a,
        _ => "unnamed",
    };
    super::unique_label(base, seen)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dsn_checks() {
        assert!(check_dsn("host=127.0.0.1 port=5432 user=rpo dbname=x").is_ok());
        assert!(check_dsn("postgres://rpo@127.0.0.1:5432/x").is_ok());
        let e = check_dsn("postgres://rpo:hunter2@127.0.0.1/x").unwrap_err();
        assert!(e.contains("contains a password"), "{e}");
        assert!(!e.contains("hunter2"));
        assert!(check_dsn("host=127.0.0.1 dbname=x").unwrap_err().contains("no user"));
        let e = check_dsn("host=127.0.0.1 user=u password='secret' bogus=1").unwrap_err();
        assert!(!e.contains("secret"), "{e}");
    }

    #[test]
    fn standby_labels_are_unique_and_bounded() {
        let mut seen = Default::default();
        assert_eq!(standby_label(Some("walreceiver"), Some("r1"), &mut seen), "r1");
        assert_eq!(standby_label(Some("walreceiver"), None, &mut seen), "walreceiver");
        assert_eq!(standby_label(Some("walreceiver"), None, &mut seen), "walreceiver-2");
        assert_eq!(standby_label(Some("eu west\"1"), None, &mut seen), "eu_west_1");
    }

    #[test]
    fn schema_names_table_and_role() {
        let sql = schema_sql(&"rpo.hb".parse().unwrap(), "mon");
        assert!(sql.contains("CREATE TABLE IF NOT EXISTS rpo.hb ("));
        assert!(sql.contains("GRANT SELECT, INSERT, UPDATE ON rpo.hb TO mon;"));
        assert!(sql.contains("GRANT pg_monitor TO mon;"));
    }
}
