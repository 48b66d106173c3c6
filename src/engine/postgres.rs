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

use super::{
    BoxFuture, CheckError, Connection, DrillConnection, DrillSession, DrillWrite, Engine, EngineError, ErrorKind,
    Field, HeartbeatRead, HeartbeatRow, Holding, NodeField, NodeLabels, PositionOutcome, Probe, Reason,
    SchemaError, Session, Step, TickOutcome, TickPlan, Positions, WriteOutcome, Written,
};
use crate::endpoint::{Endpoint, Replication, Settings, TableMatch, TableName, Tables, TlsMode};
use crate::heartbeat::{mono_now, CommitPosition};
use crate::metrics::{desc, MetricDesc, Sample, NODE};
use std::future::Future;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::task::JoinHandle;
use tokio_postgres::config::SslMode;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{FromSql, Type};
use tokio_postgres::{Client, NoTls, Row, Statement};

const STANDBY_STATE: &[&str] = &["db_cluster", "node", "node_region", "standby", "state"];
const STANDBY_STAGE: &[&str] = &["db_cluster", "node", "node_region", "standby", "stage"];
const RECEIVER_STATUS: &[&str] = &["db_cluster", "node", "node_region", "status"];

desc!(STANDBY_STATE_DESC, "rpo_pg_standby_state", Gauge, STANDBY_STATE, "Per standby connected to this node (pg_stat_replication): 1 for its current state (startup, catchup, streaming, backup, stopping), 0 for the others.", Replication);
desc!(STANDBY_LAG_DESC, "rpo_pg_standby_lag_seconds", Gauge, STANDBY_STAGE, "pg_stat_replication write_lag, flush_lag and replay_lag by stage; absent while PostgreSQL reports NULL (no recent WAL activity to time).", Replication);
desc!(STANDBY_BYTES_DESC, "rpo_pg_standby_lag_bytes", Gauge, STANDBY_STAGE, "Bytes of WAL between this node's current position and the standby's sent, write, flush and replay positions.", Replication);
desc!(STANDBY_COUNT_DESC, "rpo_pg_standbys", Gauge, NODE, "Standbys (WAL senders) connected to this node.", Replication);
desc!(RECEIVER_DESC, "rpo_pg_wal_receiver_status", Gauge, RECEIVER_STATUS, "On a replica, 1 for the WAL receiver's current status (starting, streaming, waiting, restarting, stopping, stopped; stopped also when no receiver runs), 0 for the others.", Replication);
desc!(
    REPLAY_PAUSED_DESC,
    "rpo_pg_replay_paused",
    Gauge,
    NODE,
    "On a replica, 1 if WAL replay is paused (pg_wal_replay_pause()), else 0.",
    Replication
);
desc!(LAST_REPLAY_DESC, "rpo_pg_last_replay_timestamp_seconds", Gauge, NODE, "On a replica, commit time of the last replayed transaction (pg_last_xact_replay_timestamp()); does not move while the primary is idle, so it is no lag measure by itself.", Replication);
desc!(
    UNREPLAYED_DESC,
    "rpo_pg_unreplayed_bytes",
    Gauge,
    NODE,
    "On a replica, bytes of WAL received but not yet replayed.",
    Replication
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

/// The commit time (µs since the epoch, on the clock of the primary that
/// committed it) of the last transaction a replica replayed, from the samples of
/// its native step ([`LAST_REPLAY_DESC`]): what the worker tightens exposure with.
pub fn replayed_commit_us(native: &[Sample]) -> Option<i64> {
    let s = native.iter().find(|s| std::ptr::eq(s.desc, &LAST_REPLAY_DESC))?;
    Some((s.value * 1e6).round() as i64)
}

/// PostgreSQL, from 12 on.
pub struct Postgres;

impl Engine for Postgres {
    fn name(&self) -> &'static str {
        "postgres"
    }

    fn check(&self, endpoint: &Endpoint) -> Result<(), CheckError> {
        check_dsn(&endpoint.dsn)?;
        super::check_tls_block(endpoint, dsn_sets_tls, true)
    }

    fn connect<'a>(
        &'a self,
        endpoint: &'a Endpoint,
        settings: &'a Settings,
    ) -> BoxFuture<'a, Result<Session, EngineError>> {
        Box::pin(async move { Ok(Session::new(PgSession::connect(endpoint, settings).await?)) })
    }

    fn schema_sql(
        &self,
        table: &TableName,
        role: &str,
        server: Option<&str>,
        host: Option<&str>,
    ) -> Result<String, SchemaError> {
        let option = match (server, host) {
            (None, None) => return Ok(schema_sql(table, role)),
            (Some(_), _) => "server",
            (None, Some(_)) => "host",
        };
        Err(SchemaError::NotApplicable { option, engines: "mysql" })
    }

    fn metrics(&self) -> &'static [&'static MetricDesc] {
        METRICS
    }

    fn replication(&self, mode: Replication) -> Result<(), String> {
        match mode {
            Replication::Filtered => Err("postgres has no filtered replication: a node that copies only some tables is a logical subscriber (replication: logical); expected physical, logical or none".into()),
            _ => Ok(()),
        }
    }

    fn copies_everything(&self, mode: Replication) -> Option<&'static str> {
        (mode == Replication::Physical).then_some(
            "PostgreSQL streaming (physical) replication copies every table of the primary, and a primary holds them all",
        )
    }

    fn residency<'a>(
        &'a self,
        endpoint: &'a Endpoint,
        settings: &'a Settings,
        mode: Replication,
        targets: &'a [TableMatch],
    ) -> BoxFuture<'a, Result<Vec<Holding>, EngineError>> {
        Box::pin(residency(endpoint, settings, mode, targets))
    }

    fn publications<'a>(
        &'a self,
        endpoint: &'a Endpoint,
        settings: &'a Settings,
        targets: &'a [TableMatch],
    ) -> BoxFuture<'a, Result<Vec<Vec<String>>, EngineError>> {
        Box::pin(publications(endpoint, settings, targets))
    }

    fn residency_grants(&self, targets: &[TableMatch], modes: &[Replication], role: &str, _host: &str) -> String {
        residency_grants(targets, modes, role)
    }

    fn connect_drill<'a>(
        &'a self,
        endpoint: &'a Endpoint,
        settings: &'a Settings,
    ) -> BoxFuture<'a, Result<DrillSession, EngineError>> {
        Box::pin(async move { Ok(DrillSession::new(PgDrill::connect(endpoint, settings).await?)) })
    }

    fn drill_schema_sql(&self, table: &TableName, role: &str, host: Option<&str>) -> Result<String, SchemaError> {
        match host {
            None => Ok(drill_schema_sql(table, role)),
            Some(_) => Err(SchemaError::NotApplicable { option: "host", engines: "mysql" }),
        }
    }
}

/// The grants of the residency checks: reading whether a table holds a row
/// needs USAGE on its schema and SELECT on the table (on one of its columns is
/// enough); the logical replication catalogs are readable by PUBLIC.
pub fn residency_grants(targets: &[TableMatch], _modes: &[Replication], role: &str) -> String {
    let mut out = String::from(
        "\n-- Residency checks, on every node outside a rule's allowed regions.
-- Whether a table holds a row (SELECT EXISTS, never a count): USAGE on its schema and
-- SELECT on the table. SELECT on any one column is enough, e.g. a non-sensitive key:
--   GRANT SELECT (id) ON schema.table TO role;
",
    );
    let mut schemas: Vec<&str> = targets.iter().map(|t| t.schema.as_str()).collect();
    schemas.sort_unstable();
    schemas.dedup();
    for schema in schemas {
        out.push_str(&format!("GRANT USAGE ON SCHEMA {schema} TO {role};\n"));
    }
    for t in targets {
        match &t.tables {
            Tables::One(table) => out.push_str(&format!("GRANT SELECT ON {}.{table} TO {role};\n", t.schema)),
            Tables::All | Tables::Like(_) => out.push_str(&format!(
                "GRANT SELECT ON ALL TABLES IN SCHEMA {schema} TO {role};
-- and for tables created later (run as the role that creates them):
ALTER DEFAULT PRIVILEGES IN SCHEMA {schema} GRANT SELECT ON TABLES TO {role};
",
                schema = t.schema
            )),
        }
    }
    // Subscriptions are looked for on every node (see `residency`), whatever its mode.
    out.push_str(
        "-- Logical replication (pg_publication_tables, pg_subscription_rel, and pg_subscription
-- without subconninfo) is readable by PUBLIC: no grant.
",
    );
    out
}

/// The session of a residency check: reads only, every statement bounded.
async fn residency_session(
    endpoint: &Endpoint,
    settings: &Settings,
) -> Result<(Client, JoinHandle<()>), EngineError> {
    let (client, connection) = open(endpoint, settings).await?;
    let limit = settings.timeout.as_millis().max(1);
    client
        .batch_execute(&format!(
            "SET statement_timeout = {limit}; SET lock_timeout = {limit}; SET default_transaction_read_only = on"
        ))
        .await
        .map_err(|e| classify(&e, &settings.table))?;
    Ok((client, connection))
}

/// Tables (plain and partitioned) of a schema, read from the catalog (which
/// every role reads: no table privilege is needed to see that a table exists).
const PG_TABLES_SQL: &str = "SELECT c.relname::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
     WHERE n.nspname = $1 AND c.relkind IN ('r', 'p') AND NOT c.relispartition ORDER BY 1";
/// Tables of a schema that a subscription on this server receives.
const PG_SUBSCRIBED_TABLES_SQL: &str = "SELECT c.relname::text FROM pg_subscription_rel r
     JOIN pg_class c ON c.oid = r.srrelid JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1";
/// The publications this server's subscriptions subscribe to (subconninfo, which may
/// hold a password, is neither read nor readable without privilege).
const PG_SUBSCRIBED_PUBLICATIONS_SQL: &str =
    "SELECT DISTINCT p::text FROM pg_subscription s CROSS JOIN unnest(s.subpublications) AS p ORDER BY 1";
/// Publications holding tables of a schema.
const PG_PUBLISHED_SQL: &str =
    "SELECT pubname::text, tablename::text FROM pg_publication_tables WHERE schemaname = $1";

fn quote_ident(name: &str) -> String {
    format!("\"{}\"", name.replace('"', "\"\""))
}

async fn residency(
    endpoint: &Endpoint,
    settings: &Settings,
    _mode: Replication,
    targets: &[TableMatch],
) -> Result<Vec<Holding>, EngineError> {
    let (client, connection) = residency_session(endpoint, settings).await?;
    let err = |e: tokio_postgres::Error| classify(&e, &settings.table);
    let mut out = Vec::with_capacity(targets.len());
    // Subscriptions are looked for on every node, whatever its `replication:` says:
    // the catalogs are PUBLIC, and a node said to replicate nothing may subscribe.
    let subscribed = Some(client.query(PG_SUBSCRIBED_PUBLICATIONS_SQL, &[]).await.map_err(err).and_then(|rows| {
        rows.iter().map(|r| get::<String>(r, 0)).collect::<Result<Vec<_>, _>>()
    }));
    for target in targets {
        let mut holding = Holding { subscribed: subscribed.clone(), ..Holding::default() };
        let tables = client.query(PG_TABLES_SQL, &[&target.schema]).await.map_err(err)?;
        let mut rows = Ok(false);
        for row in &tables {
            let table: String = get(row, 0)?;
            if !target.covers(&target.schema, &table) {
                continue;
            }
            let sql =
                format!("SELECT EXISTS (SELECT 1 FROM {}.{})", quote_ident(&target.schema), quote_ident(&table));
            let found = client.query_one(&sql, &[]).await.map_err(err).and_then(|r| get::<bool>(&r, 0));
            holding.tables.push(format!("{}.{table}", target.schema));
            rows = match (rows, found) {
                (Ok(true), _) | (_, Ok(true)) => Ok(true),
                (Err(e), _) | (_, Err(e)) => Err(e),
                _ => Ok(false),
            };
        }
        holding.findings.push((Reason::RowsPresent, rows));
        let received = client.query(PG_SUBSCRIBED_TABLES_SQL, &[&target.schema]).await.map_err(err).and_then(
            |rows| {
                let names = rows.iter().map(|r| get::<String>(r, 0)).collect::<Result<Vec<_>, _>>()?;
                Ok(names.iter().any(|t| target.covers(&target.schema, t)))
            },
        );
        holding.findings.push((Reason::Subscription, received));
        out.push(holding);
    }
    drop(client);
    connection.abort();
    Ok(out)
}

async fn publications(
    endpoint: &Endpoint,
    settings: &Settings,
    targets: &[TableMatch],
) -> Result<Vec<Vec<String>>, EngineError> {
    let (client, connection) = residency_session(endpoint, settings).await?;
    let mut out = Vec::with_capacity(targets.len());
    for target in targets {
        let rows =
            client.query(PG_PUBLISHED_SQL, &[&target.schema]).await.map_err(|e| classify(&e, &settings.table))?;
        let mut names = Vec::new();
        for row in &rows {
            let (publication, table): (String, String) = (get(row, 0)?, get(row, 1)?);
            if target.covers(&target.schema, &table) && !names.contains(&publication) {
                names.push(publication);
            }
        }
        out.push(names);
    }
    drop(client);
    connection.abort();
    Ok(out)
}

/// The drill table (`rpo-exporter drill`): one row per drill write.
pub fn drill_schema_sql(table: &TableName, role: &str) -> String {
    let TableName { schema, table: name } = table;
    format!(
        "-- rpo-exporter drill table for PostgreSQL: one row per drill write (a game day).
-- Run once on the primary as an administrator; it replicates to every standby.
-- Delete old runs when you like: DELETE FROM {schema}.{name} WHERE run = '...';
CREATE SCHEMA IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {schema}.{name} (
    run       text   NOT NULL,  -- the drill run
    seq       bigint NOT NULL,  -- the write's number within the run
    client_us bigint NOT NULL,  -- when the drill sent it: microseconds since the epoch, the drill's clock
    node      text   NOT NULL,  -- the node it was sent to
    PRIMARY KEY (run, seq)
);
GRANT USAGE ON SCHEMA {schema} TO {role};
GRANT SELECT, INSERT ON {schema}.{name} TO {role};
"
    )
}

/// A drill connection: the role, one INSERT per drill write, the newest row of a
/// run. Writes commit as the server's `synchronous_commit` says, as the
/// application's do: with synchronous replication an acknowledged write is on a
/// standby. No server-side statement timeout: a write cancelled while it waits for
/// a synchronous standby is committed locally and still answered with success, so
/// only the drill's own deadline (which abandons the connection) ends a write.
struct PgDrill {
    client: Client,
    connection: JoinHandle<()>,
    table: TableName,
    role: Statement,
    insert: Option<Statement>,
    newest: Option<Statement>,
}

impl Drop for PgDrill {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl PgDrill {
    async fn connect(endpoint: &Endpoint, settings: &Settings) -> Result<PgDrill, EngineError> {
        let (client, connection) = open(endpoint, settings).await?;
        let table = settings.table.clone();
        let role_sql = PROBE_SQL.trim_end().trim_end_matches(',');
        let role = client.prepare(role_sql).await.map_err(|e| classify(&e, &table));
        let role = match role {
            Ok(r) => r,
            Err(e) => {
                connection.abort();
                return Err(e);
            }
        };
        Ok(PgDrill { client, connection, table, role, insert: None, newest: None })
    }

    async fn statement(&mut self, insert: bool) -> Result<Statement, EngineError> {
        let slot = if insert { &mut self.insert } else { &mut self.newest };
        if let Some(s) = slot {
            return Ok(s.clone());
        }
        let table = &self.table;
        let sql = if insert {
            format!("INSERT INTO {table} (run, seq, client_us, node) VALUES ($1, $2, $3, $4)")
        } else {
            format!("SELECT seq, client_us FROM {table} WHERE run = $1 AND seq <= $2 ORDER BY seq DESC LIMIT 1")
        };
        let prepared = self.client.prepare(&sql).await.map_err(|e| drill_error(&e, table))?;
        *slot = Some(prepared.clone());
        Ok(prepared)
    }
}

/// A drill statement's error, naming the statements that create the drill table.
fn drill_error(e: &tokio_postgres::Error, table: &TableName) -> EngineError {
    let mut err = classify(e, table);
    if matches!(err.kind, ErrorKind::MissingTable | ErrorKind::Permission) {
        if let Some(i) = err.message.find("; run the statements") {
            err.message.truncate(i);
        }
        err.message.push_str(&format!(
            "; run the statements printed by `rpo-exporter schema postgres --drill-table {table}` as an administrator"
        ));
    }
    err
}

impl DrillConnection for PgDrill {
    fn writable(&mut self) -> BoxFuture<'_, Result<bool, EngineError>> {
        Box::pin(async move {
            let row = self.client.query_one(&self.role, &[]).await.map_err(|e| classify(&e, &self.table))?;
            get(&row, 0)
        })
    }

    fn write<'a>(&'a mut self, write: &'a DrillWrite) -> BoxFuture<'a, Result<(), EngineError>> {
        Box::pin(async move {
            let insert = self.statement(true).await?;
            self.client
                .execute(&insert, &[&write.run, &write.seq, &write.client_us, &write.node])
                .await
                .map_err(|e| drill_error(&e, &self.table))?;
            Ok(())
        })
    }

    fn newest<'a>(
        &'a mut self,
        run: &'a str,
        up_to: i64,
    ) -> BoxFuture<'a, Result<Option<(i64, i64)>, EngineError>> {
        Box::pin(async move {
            let newest = self.statement(false).await?;
            let rows =
                self.client.query(&newest, &[&run, &up_to]).await.map_err(|e| drill_error(&e, &self.table))?;
            match rows.first() {
                Some(row) => Ok(Some((get(row, 0)?, get(row, 1)?))),
                None => Ok(None),
            }
        })
    }
}

fn check_dsn(dsn: &str) -> Result<(), CheckError> {
    let problem = |p: String| CheckError::new(NodeField::Dsn, p);
    // tokio-postgres' own message may quote the DSN; describe it without that.
    let config = tokio_postgres::Config::from_str(dsn).map_err(|e| {
        let reason = e.to_string();
        let reason = if reason.contains(dsn) { "invalid connection string".to_owned() } else { reason };
        problem(format!("not a valid PostgreSQL connection string (key=value or postgres:// URL): {reason}"))
    })?;
    if config.get_password().is_some() {
        return Err(problem(
            "the connection string contains a password; move it to password_file or password_env".into(),
        ));
    }
    if config.get_user().is_none() {
        return Err(problem("the connection string names no user (add user=...)".into()));
    }
    Ok(())
}

/// Whether the DSN itself chooses TLS settings (which would then clash with a
/// node's `tls:` block).
fn dsn_sets_tls(dsn: &str) -> bool {
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
        } else if *code == SqlState::QUERY_CANCELED || *code == SqlState::LOCK_NOT_AVAILABLE {
            // statement_timeout or lock_timeout: the server gave up waiting.
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

/// The statements a tick sends, prepared once per session.
const PROBE_SQL: &str =
    "SELECT NOT pg_is_in_recovery() AND current_setting('transaction_read_only') = 'off', ";

const STANDBYS_SQL: &str = "WITH pos AS (
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

fn receiver_sql() -> String {
    format!(
        "SELECT pg_is_in_recovery(),
                (SELECT status FROM pg_stat_wal_receiver),
                CASE WHEN pg_is_in_recovery() THEN pg_is_wal_replay_paused() END,
                {},
                pg_wal_lsn_diff(pg_last_wal_receive_lsn(), pg_last_wal_replay_lsn())::float8",
        epoch_us("pg_last_xact_replay_timestamp()")
    )
}

/// The commit times (µs) of the last transaction the server committed, NULL on
/// a replica or unless `track_commit_timestamp` is on (without it
/// `pg_last_committed_xact()` raises an error; CASE never calls it then), 0
/// before its first commit (ahead of no replica), and of the last one it
/// replayed (NULL on a primary).
fn position_sql() -> String {
    format!(
        "SELECT CASE WHEN NOT pg_is_in_recovery() AND current_setting('track_commit_timestamp')::bool THEN COALESCE({}, 0) END, {}",
        epoch_us("(pg_last_committed_xact()).timestamp"),
        epoch_us("pg_last_xact_replay_timestamp()")
    )
}

fn read_sql(table: &TableName) -> String {
    // The left join returns the clock even from an empty table; the limit bounds
    // what a flooded table can cost us. No value of one row may fail the read of
    // the others: the sequence travels as text (a numeric column may hold NaN or
    // more than 64 bits), and the time in µs only when it fits 64 bits (not
    // ±infinity, nor PostgreSQL's farthest dates); the last column tells a NULL
    // time from one that is no number.
    format!(
        "SELECT {now}, h.node::text, h.region::text, h.seq::text,
                CASE WHEN extract(epoch from h.written_at) BETWEEN -9e12 AND 9e12 THEN {written} END,
                h.identity::text, h.written_at IS NULL
         FROM (SELECT 1) AS one LEFT JOIN {table} AS h ON true
         ORDER BY h.node LIMIT 1000",
        now = epoch_us("clock_timestamp()"),
        written = epoch_us("h.written_at"),
    )
}

/// The table's own column types, learnt by preparing (never running) this.
fn shape_sql(table: &TableName) -> String {
    format!("SELECT h.seq, h.written_at FROM {table} AS h")
}

/// Refuses a hand-made table whose `seq` or `written_at` the exporter cannot read
/// as a sequence and an instant, naming the columns, instead of misreading it.
fn check_shape(shape: &Statement, table: &TableName) -> Result<(), EngineError> {
    let [seq, written] = shape.columns() else {
        return Err(EngineError::new(ErrorKind::Query, format!("heartbeat table {table}: unexpected shape")));
    };
    let mut wrong = Vec::new();
    if ![Type::INT8, Type::INT4, Type::INT2, Type::NUMERIC].contains(seq.type_()) {
        wrong.push(format!(
            "column seq is {}, not an integer type (bigint, integer, smallint, numeric)",
            seq.type_()
        ));
    }
    if ![Type::TIMESTAMPTZ, Type::TIMESTAMP].contains(written.type_()) {
        wrong.push(format!(
            "column written_at is {}, not timestamptz (or timestamp, read as UTC)",
            written.type_()
        ));
    }
    if wrong.is_empty() {
        return Ok(());
    }
    Err(EngineError::new(
        ErrorKind::Query,
        format!(
            "heartbeat table {table} cannot be read: {}; recreate it as `rpo-exporter schema postgres --table {table}` prints",
            wrong.join("; ")
        ),
    ))
}

/// Prepares the heartbeat read after checking the table's column types; both
/// prepares travel together, one round trip.
async fn prepare_read(client: &Client, table: &TableName) -> Result<Statement, EngineError> {
    let (read_sql, shape_sql) = (read_sql(table), shape_sql(table));
    let (read, shape) = tokio::join!(client.prepare(&read_sql), client.prepare(&shape_sql));
    check_shape(&shape.map_err(|e| classify(&e, table))?, table)?;
    read.map_err(|e| classify(&e, table))
}

/// A column of a row the exporter's own statements return, or the driver's
/// complaint about it as an error: never a panic.
fn get<'a, T: FromSql<'a>>(row: &'a Row, idx: usize) -> Result<T, EngineError> {
    row.try_get(idx).map_err(|e| {
        EngineError::new(ErrorKind::Query, format!("unexpected value in result column {idx}: {e}"))
    })
}

/// One small UPDATE per heartbeat: no indexed column changes, so it is a HOT
/// update and the WAL it adds stays tiny. It returns what it wrote, so a
/// heartbeat is one round trip.
fn update_sql(table: &TableName) -> String {
    format!(
        "UPDATE {table} SET region = $2, seq = seq + 1, written_at = clock_timestamp(), identity = $3
         WHERE node = $1 RETURNING seq::bigint, {}",
        epoch_us("written_at")
    )
}

/// The row's first heartbeat, once in the row's life.
/// Takes the node's write lease if no other session holds it; true while this
/// session does (a session lock: it stays until the session ends).
const LEASE_SQL: &str = "SELECT pg_try_advisory_lock(hashtextextended($1, 0))";

fn insert_sql(table: &TableName) -> String {
    format!(
        "INSERT INTO {table} (node, region, seq, written_at, identity)
         VALUES ($1, $2, 1, clock_timestamp(), $3) ON CONFLICT (node) DO NOTHING
         RETURNING seq::bigint, {}",
        epoch_us("written_at")
    )
}

/// Opens a connection (TLS as the node's settings say); the caller bounds the time.
async fn open(endpoint: &Endpoint, settings: &Settings) -> Result<(Client, JoinHandle<()>), EngineError> {
    let mut config = tokio_postgres::Config::from_str(&endpoint.dsn)
        .map_err(|e| EngineError::new(ErrorKind::Connect, e.to_string()))?;
    match endpoint.password.read() {
        Ok(Some(password)) => {
            config.password(password);
        }
        Ok(None) => {}
        Err(e) => return Err(EngineError::new(ErrorKind::Auth, e.to_string())),
    }
    if config.get_application_name().is_none() {
        config.application_name("rpo-exporter");
    }
    config.connect_timeout(settings.connect_timeout);
    let table = &settings.table;
    // Without a tls: block the DSN decides, as in libpq: sslmode=prefer (the
    // default) asks for TLS first and stays in plaintext only when the server
    // refuses it (given a connector, tokio-postgres falls back by itself when
    // the server answers 'N' to its SSLRequest); sslmode=require encrypts and
    // verifies nothing. A tls: block brings the configuration built from its
    // files at load.
    let rustls = match &endpoint.tls {
        Some(tls) if tls.mode == TlsMode::Disable => None,
        Some(tls) => {
            config.ssl_mode(if tls.mode == TlsMode::Prefer { SslMode::Prefer } else { SslMode::Require });
            // Checked when the config was loaded; never plaintext for want of it.
            let built = super::tls::client_config(tls)
                .map_err(|e| EngineError::new(ErrorKind::Tls, format!("TLS client setup failed: {e}")))?;
            Some(Arc::new(built))
        }
        None if config.get_ssl_mode() == SslMode::Disable => None,
        None => {
            Some(super::tls::unverified().map_err(|e| {
                EngineError::new(ErrorKind::Tls, format!("TLS client setup failed: {e:?}"))
            })?)
        }
    };
    let (client, connection) = match rustls {
        None => {
            config.ssl_mode(SslMode::Disable);
            let (client, conn) = config.connect(NoTls).await.map_err(|e| classify(&e, table))?;
            (client, tokio::spawn(async move { drop(conn.await) }))
        }
        Some(rustls) => {
            // The server's name for the handshake: a DSN giving only hostaddr
            // names the server by its address, as libpq does.
            if config.get_hosts().is_empty() {
                for addr in config.get_hostaddrs().to_vec() {
                    config.host(addr.to_string());
                }
            }
            let connector = tokio_postgres_rustls::MakeRustlsConnect::new((*rustls).clone());
            let (client, conn) = config.connect(connector).await.map_err(|e| classify(&e, table))?;
            (client, tokio::spawn(async move { drop(conn.await) }))
        }
    };
    Ok((client, connection))
}

pub struct PgSession {
    client: Client,
    connection: JoinHandle<()>,
    table: TableName,
    create_table: bool,
    node: String,
    region: String,
    /// The server's system identifier: fixed for the life of a session.
    identity: String,
    probe: Statement,
    standbys: Statement,
    receiver: Statement,
    /// The commit times of the last transaction committed (NULL on a replica
    /// or without `track_commit_timestamp`) and replayed (NULL on a primary).
    position: Statement,
    /// Prepared at connect when the table exists, else on the first tick that
    /// needs them.
    read: Option<Statement>,
    update: Option<Statement>,
    insert: Option<Statement>,
    /// `pg_try_advisory_lock` of the node's write lease ([`super::lease_name`]),
    /// and whether this session holds it.
    lease: Statement,
    lease_name: String,
    leased: AtomicBool,
}

impl Drop for PgSession {
    fn drop(&mut self) {
        self.connection.abort();
    }
}

impl Connection for PgSession {
    fn tick<'a>(
        &'a mut self,
        plan: TickPlan,
        deadline: Duration,
        labels: &'a NodeLabels,
    ) -> BoxFuture<'a, TickOutcome> {
        Box::pin(PgSession::tick(self, plan, deadline, labels))
    }

    fn position(&mut self, deadline: Duration) -> BoxFuture<'_, PositionOutcome> {
        Box::pin(async move {
            let (sent, start) = (mono_now(), Instant::now());
            let step = timed(sent, start, deadline, async {
                let row =
                    self.client.query_one(&self.position, &[]).await.map_err(|e| classify(&e, &self.table))?;
                Ok(Positions {
                    committed: get::<Option<i64>>(&row, 0)?.map(CommitPosition::CommitTime),
                    applied: get::<Option<i64>>(&row, 1)?.map(CommitPosition::CommitTime),
                    supported: true,
                })
            })
            .await;
            PositionOutcome { step, broken: self.client.is_closed() }
        })
    }
}

impl PgSession {
    pub async fn connect(endpoint: &Endpoint, settings: &Settings) -> Result<PgSession, EngineError> {
        let table = settings.table.clone();
        let (client, connection) = open(endpoint, settings).await?;
        // Settings, identity and every statement in one round trip: tokio-postgres
        // pipelines requests sent together, and the server runs them in order.
        // The server gives up on a statement before we do, and a heartbeat never
        // waits for a synchronous standby: a blocked heartbeat would hide the very
        // lag it exists to show.
        // Half the deadline first (right for any distance the settings allow); once
        // this round trip is measured, more where the node is near.
        let limit = (settings.timeout / 2).as_millis().max(1);
        // A session whose exporter vanished must not keep the node's write lease:
        // the server drops it when its host stops answering keepalives, or (from
        // PostgreSQL 14) after this long without a statement.
        let idle = super::lease_idle_timeout(settings.interval).as_millis();
        let setup = format!(
            "SET statement_timeout = {limit}; SET lock_timeout = {limit}; SET synchronous_commit = local;
             SET TimeZone = 'UTC'; SET tcp_keepalives_idle = 5; SET tcp_keepalives_interval = 2;
             SET tcp_keepalives_count = 3; SELECT system_identifier::text FROM pg_control_system();
             SELECT set_config('idle_session_timeout', '{idle}', false)
               WHERE current_setting('server_version_num')::int >= 140000"
        );
        let probe_sql = format!(
            "{PROBE_SQL}{}, {}",
            epoch_us("clock_timestamp()"),
            epoch_us("pg_last_xact_replay_timestamp()")
        );
        let (update_sql, insert_sql) = (update_sql(&table), insert_sql(&table));
        let receiver_sql = receiver_sql();
        let writes = settings.format.writes();
        let sent = Instant::now();
        let position_sql = position_sql();
        let (setup, lease, probe, standbys, receiver, position, read, (update, insert)) = tokio::join!(
            client.simple_query(&setup),
            client.prepare(LEASE_SQL),
            client.prepare(&probe_sql),
            client.prepare(STANDBYS_SQL),
            client.prepare(&receiver_sql),
            client.prepare(&position_sql),
            prepare_read(&client, &table),
            async {
                if writes {
                    let (u, i) = tokio::join!(client.prepare(&update_sql), client.prepare(&insert_sql));
                    (u.ok(), i.ok())
                } else {
                    (None, None)
                }
            },
        );
        let setup = setup.map_err(|e| classify(&e, &table))?;
        let near = super::server_timeout(settings.timeout, sent.elapsed()).as_millis();
        if near != limit {
            client
                .batch_execute(&format!("SET statement_timeout = {near}; SET lock_timeout = {near}"))
                .await
                .map_err(|e| classify(&e, &table))?;
        }
        // The first row: the system identifier's (set_config's comes after it).
        let identity = setup
            .iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => {
                    row.try_get(0).ok().flatten().map(str::to_owned)
                }
                _ => None,
            })
            .ok_or_else(|| EngineError::new(ErrorKind::Query, "pg_control_system() returned no row"))?;
        let prepared = |r: Result<Statement, tokio_postgres::Error>| r.map_err(|e| classify(&e, &table));
        Ok(PgSession {
            lease: prepared(lease)?,
            lease_name: super::lease_name(&table, &settings.node),
            leased: AtomicBool::new(false),
            probe: prepared(probe)?,
            standbys: prepared(standbys)?,
            receiver: prepared(receiver)?,
            position: prepared(position)?,
            // A missing table is the tick's business: it reports it, or creates it.
            read: read.ok(),
            // Both or neither: the write needs both.
            update: update.filter(|_| insert.is_some()),
            insert,
            client,
            connection,
            table,
            create_table: settings.create_table,
            node: settings.node.clone(),
            region: settings.region.clone(),
            identity,
        })
    }

    pub async fn tick(&mut self, plan: TickPlan, deadline: Duration, labels: &NodeLabels) -> TickOutcome {
        // Statements the table's absence kept from being prepared: one more round
        // trip, only until the table exists, bounded like any step.
        let (need_read, need_update) =
            (plan.read && self.read.is_none(), plan.write && self.update.is_none());
        let prepared = tokio::time::timeout(deadline, async {
            tokio::join!(
                async {
                    if need_read {
                        Some(self.prepare_read().await)
                    } else {
                        None
                    }
                },
                async {
                    if need_update {
                        Some(self.prepare_update().await)
                    } else {
                        None
                    }
                },
            )
        })
        .await;
        let (read_ready, update_ready) = prepared.unwrap_or_else(|_| {
            let late = || EngineError::timeout("preparing the heartbeat statements", deadline);
            (need_read.then(|| Err(late())), need_update.then(|| Err(late())))
        });
        if let Some(Ok(s)) = &read_ready {
            self.read = Some(s.clone());
        }
        if let Some(Ok((update, insert))) = &update_ready {
            self.update = Some(update.clone());
            self.insert = Some(insert.clone());
        }
        let this = &*self;
        let (sent, start) = (mono_now(), Instant::now());
        // Sent together, in this order: the server runs them one after another, so
        // a write waiting on a lock cannot hold back the read, and a slow native
        // query holds back nothing.
        let (probe, read, write, native) = tokio::join!(
            opt(plan.probe, || timed(sent, start, deadline, this.probe())),
            opt(plan.read, || timed(sent, start, deadline, async move {
                match read_ready {
                    Some(Err(e)) => Err(e),
                    _ => this.read().await,
                }
            })),
            opt(plan.write, || timed(sent, start, deadline, async move {
                match update_ready {
                    Some(Err(e)) => Err(e),
                    _ => this.write().await,
                }
            })),
            opt(plan.native, || timed(sent, start, deadline, this.replication(labels))),
        );
        // A table dropped under a running session fails its prepared statements
        // on every tick: forget them, so the next tick prepares them again (and
        // creates the table when `heartbeat.create_table` allows, or says how to).
        let missing = |e: Option<&EngineError>| e.is_some_and(|e| e.kind == ErrorKind::MissingTable);
        if missing(read.as_ref().and_then(|s| s.result.as_ref().err())) {
            self.read = None;
        }
        if missing(write.as_ref().and_then(|s| s.result.as_ref().err())) {
            (self.update, self.insert) = (None, None);
        }
        let broken = self.client.is_closed();
        TickOutcome { probe, read, write, native, broken }
    }

    async fn prepare_read(&self) -> Result<Statement, EngineError> {
        prepare_read(&self.client, &self.table).await
    }

    /// Prepares the heartbeat UPDATE and the row's first INSERT; a missing table
    /// is created first when `heartbeat.create_table` allows it.
    async fn prepare_update(&self) -> Result<(Statement, Statement), EngineError> {
        let table = &self.table;
        let (update_sql, insert_sql) = (update_sql(table), insert_sql(table));
        let shape_sql = shape_sql(table);
        let prepare = || async {
            let (update, insert, shape) = tokio::join!(
                self.client.prepare(&update_sql),
                self.client.prepare(&insert_sql),
                self.client.prepare(&shape_sql)
            );
            check_shape(&shape.map_err(|e| classify(&e, table))?, table)?;
            Ok::<_, EngineError>((
                update.map_err(|e| classify(&e, table))?,
                insert.map_err(|e| classify(&e, table))?,
            ))
        };
        match prepare().await {
            Err(e) if e.kind == ErrorKind::MissingTable => self.create_table(e).await?,
            other => return other,
        }
        prepare().await
    }

    async fn create_table(&self, missing: EngineError) -> Result<(), EngineError> {
        let table = &self.table;
        if !self.create_table {
            return Err(EngineError::new(
                ErrorKind::MissingTable,
                format!(
                    "heartbeat table {table} does not exist and heartbeat.create_table is false; run the statements printed by `rpo-exporter schema postgres --table {table}` as an administrator ({missing})"
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

    async fn probe(&self) -> Result<Probe, EngineError> {
        let row = self.client.query_one(&self.probe, &[]).await.map_err(|e| classify(&e, &self.table))?;
        let identity = self.identity.clone();
        Ok(Probe {
            writable: get(&row, 0)?,
            expected_row_identity: Some(identity.clone()),
            aliases: vec![identity.clone()],
            identity,
            db_now_us: get(&row, 1)?,
            applied: get::<Option<i64>>(&row, 2)?.map(CommitPosition::CommitTime),
        })
    }

    async fn write(&self) -> Result<WriteOutcome, EngineError> {
        let table = &self.table;
        let (Some(update), Some(insert)) = (&self.update, &self.insert) else {
            return Err(EngineError::new(ErrorKind::Query, "heartbeat write not prepared"));
        };
        if !self.leased.load(Ordering::Relaxed) {
            let row =
                self.client.query_one(&self.lease, &[&self.lease_name]).await.map_err(|e| classify(&e, table))?;
            if !row.try_get::<_, bool>(0).unwrap_or(false) {
                return Ok(WriteOutcome::HeldElsewhere);
            }
            self.leased.store(true, Ordering::Relaxed);
        }
        let params: [&(dyn tokio_postgres::types::ToSql + Sync); 3] =
            [&self.node, &self.region, &self.identity];
        let written =
            |row: &Row| Ok(WriteOutcome::Written(Written { seq: get(row, 0)?, written_us: get(row, 1)? }));
        for _ in 0..2 {
            let rows = self.client.query(update, &params).await.map_err(|e| classify(&e, table))?;
            if let Some(row) = rows.first() {
                return written(row);
            }
            // First heartbeat of this node: create its row (once in its life).
            let rows = self.client.query(insert, &params).await.map_err(|e| classify(&e, table))?;
            if let Some(row) = rows.first() {
                return written(row);
            }
        }
        Err(EngineError::new(
            ErrorKind::Query,
            format!("heartbeat row for {} in {table} vanished while writing", self.node),
        ))
    }

    async fn read(&self) -> Result<HeartbeatRead, EngineError> {
        let Some(read) = &self.read else {
            return Err(EngineError::new(ErrorKind::Query, "heartbeat read not prepared"));
        };
        let rows = self.client.query(read, &[]).await.map_err(|e| classify(&e, &self.table))?;
        let db_now_us = match rows.first() {
            Some(row) => get(row, 0)?,
            None => return Err(EngineError::new(ErrorKind::Query, "heartbeat read returned no row")),
        };
        // Each row on its own: what cannot be decoded marks that row, not the read.
        let text = |r: &Row, i| r.try_get::<_, Option<String>>(i).ok().flatten();
        let rows = rows
            .iter()
            .filter(|r| text(r, 1).is_some())
            .map(|r| HeartbeatRow {
                node: text(r, 1),
                region: text(r, 2),
                seq: super::parse_seq(text(r, 3).as_deref()),
                written_us: match (r.try_get::<_, Option<i64>>(4), r.try_get::<_, bool>(6)) {
                    (_, Ok(true)) => Field::Null,
                    (Ok(Some(us)), Ok(false)) => Field::Int(us),
                    _ => Field::Invalid,
                },
                identity: text(r, 5),
            })
            .collect();
        Ok(HeartbeatRead { rows, db_now_us })
    }

    async fn replication(&self, labels: &NodeLabels) -> Result<Vec<Sample>, EngineError> {
        let mut out = Vec::new();
        // Both sent at once: one round trip.
        let (standbys, receiver) =
            tokio::join!(self.client.query(&self.standbys, &[]), self.client.query_one(&self.receiver, &[]));
        let standbys = standbys.map_err(|e| classify(&e, &self.table))?;
        let row = receiver.map_err(|e| classify(&e, &self.table))?;
        let mut seen = std::collections::HashSet::new();
        for row in &standbys {
            let app: Option<String> = get(row, 0)?;
            let slot: Option<String> = get(row, 1)?;
            let standby = standby_label(app.as_deref(), slot.as_deref(), &mut seen);
            let state: Option<String> = get(row, 2)?;
            for s in STANDBY_STATES {
                let v = f64::from(u8::from(state.as_deref() == Some(*s)));
                out.push(sample(&STANDBY_STATE_DESC, labels.with(&[&standby, s]), v));
            }
            for (i, stage) in ["write", "flush", "replay"].iter().enumerate() {
                if let Some(v) = get::<Option<f64>>(row, 3 + i)? {
                    out.push(sample(&STANDBY_LAG_DESC, labels.with(&[&standby, stage]), v));
                }
            }
            for (i, stage) in ["sent", "write", "flush", "replay"].iter().enumerate() {
                if let Some(v) = get::<Option<f64>>(row, 6 + i)? {
                    out.push(sample(&STANDBY_BYTES_DESC, labels.with(&[&standby, stage]), v.max(0.0)));
                }
            }
        }
        out.push(sample(&STANDBY_COUNT_DESC, labels.with(&[]), standbys.len() as f64));
        if get::<bool>(&row, 0)? {
            let status: Option<String> = get(&row, 1)?;
            let status = status.as_deref().unwrap_or("stopped");
            for s in RECEIVER_STATUSES {
                out.push(sample(&RECEIVER_DESC, labels.with(&[s]), f64::from(u8::from(status == *s))));
            }
            if let Some(paused) = get::<Option<bool>>(&row, 2)? {
                out.push(sample(&REPLAY_PAUSED_DESC, labels.with(&[]), f64::from(u8::from(paused))));
            }
            if let Some(us) = get::<Option<i64>>(&row, 3)? {
                out.push(sample(&LAST_REPLAY_DESC, labels.with(&[]), us as f64 / 1e6));
            }
            if let Some(bytes) = get::<Option<f64>>(&row, 4)? {
                out.push(sample(&UNREPLAYED_DESC, labels.with(&[]), bytes.max(0.0)));
            }
        }
        Ok(out)
    }
}

/// Runs `fut` when the plan asks for it.
async fn opt<F: Future>(wanted: bool, fut: impl FnOnce() -> F) -> Option<F::Output> {
    if wanted {
        Some(fut().await)
    } else {
        None
    }
}

/// One step of a tick, bounded by the tick's deadline and timed from its start.
async fn timed<T>(
    sent: f64,
    start: Instant,
    deadline: Duration,
    fut: impl Future<Output = Result<T, EngineError>>,
) -> Step<T> {
    let result = match tokio::time::timeout(deadline.saturating_sub(start.elapsed()), fut).await {
        Ok(r) => r,
        Err(_) => Err(EngineError::timeout("the query", deadline)),
    };
    Step::new(result, sent, start.elapsed().as_secs_f64())
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
        let e = check_dsn("postgres://rpo:hunter2@127.0.0.1/x").unwrap_err().problem;
        assert!(e.contains("contains a password"), "{e}");
        assert!(!e.contains("hunter2"));
        assert!(check_dsn("host=127.0.0.1 dbname=x").unwrap_err().problem.contains("no user"));
        let e = check_dsn("host=127.0.0.1 user=u password='secret' bogus=1").unwrap_err().problem;
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
