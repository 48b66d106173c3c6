//! MySQL and MariaDB: every SQL statement the exporter sends to the MySQL family
//! lives here.
//!
//! A [`MySession`] is one mysql_async connection plus what was learnt about the
//! server when it connected (flavour and version, which decide the replica-status
//! statement, its column names and the grants to ask for). Roles come from
//! `@@read_only` (and `@@super_read_only` on MySQL); identities are `@@server_uuid`
//! where it exists, else `@@server_id`. Heartbeat times are written with
//! `UTC_TIMESTAMP(6)` and travel as integer microseconds computed by the server
//! in a session pinned to UTC, so neither the server's nor the client's time zone
//! enters — except when reading a pt-heartbeat table written in local time, which
//! is read in the server's own time zone as pt-heartbeat itself does.

use super::{EngineError, ErrorKind, HeartbeatRead, HeartbeatRow, NodeLabels, Probe, Written};
use crate::config::{Heartbeat, HeartbeatFormat, Node, TableName, Tls, TlsMode};
use crate::metrics::{desc, MetricDesc, Sample, NODE};
use mysql_async::prelude::{FromValue, Queryable};
use mysql_async::{ClientIdentity, Conn, Opts, OptsBuilder, Row, SslOpts};
use std::collections::HashSet;

const CHANNEL: &[&str] = &["db_cluster", "node", "node_region", "channel"];
const CHANNEL_STATE: &[&str] = &["db_cluster", "node", "node_region", "channel", "state"];
const CHANNEL_THREAD: &[&str] = &["db_cluster", "node", "node_region", "channel", "thread"];
const CHANNEL_GTID: &[&str] = &["db_cluster", "node", "node_region", "channel", "stage", "gtid_domain"];
const NODE_GTID: &[&str] = &["db_cluster", "node", "node_region", "gtid_domain"];

desc!(CHANNELS, "rpo_mysql_replica_channels", Gauge, NODE, "Replication channels (MariaDB connections) configured on this node; 0 on a server that replicates from nobody.");
desc!(IO_STATE, "rpo_mysql_replica_io_state", Gauge, CHANNEL_STATE, "Per channel: 1 for the IO (receiver) thread's current state (yes, no, connecting, preparing), 0 for the others.");
desc!(
    SQL_RUNNING,
    "rpo_mysql_replica_sql_running",
    Gauge,
    CHANNEL,
    "Per channel: 1 if the SQL (applier) thread runs, else 0."
);
desc!(SBM, "rpo_mysql_seconds_behind_source", Gauge, CHANNEL, "Per channel: Seconds_Behind_Master (Seconds_Behind_Source) as the server reports it; NaN while the server reports NULL (see rpo_mysql_seconds_behind_source_null). Reads 0 on a silently broken network: trust rpo_replication_lag_seconds.");
desc!(SBM_NULL, "rpo_mysql_seconds_behind_source_null", Gauge, CHANNEL, "Per channel: 1 while Seconds_Behind_Master is NULL (a replication thread stopped, or never connected), else 0.");
desc!(
    SQL_DELAY,
    "rpo_mysql_sql_delay_seconds",
    Gauge,
    CHANNEL,
    "Per channel: the configured delayed-replication SQL_Delay (MASTER_DELAY)."
);
desc!(
    LAST_ERRNO,
    "rpo_mysql_replica_last_errno",
    Gauge,
    CHANNEL_THREAD,
    "Per channel: Last_IO_Errno (thread=io) and Last_SQL_Errno (thread=sql); 0 when there is none."
);
desc!(GTID_POS, "rpo_mysql_replica_gtid_position", Gauge, CHANNEL_GTID, "Per channel: the highest GTID sequence number received (stage=received: Gtid_IO_Pos / Retrieved_Gtid_Set) and executed (stage=executed: Gtid_Slave_Pos / Executed_Gtid_Set) per GTID domain (MariaDB) or source server UUID (MySQL).");
desc!(BINLOG_POS, "rpo_mysql_gtid_binlog_position", Gauge, NODE_GTID, "The highest GTID sequence number in this server's own binary log, per GTID domain (@@gtid_binlog_pos) or source server UUID (@@gtid_executed).");

/// The MySQL family's own metric families.
pub static METRICS: &[&MetricDesc] =
    &[&CHANNELS, &IO_STATE, &SQL_RUNNING, &SBM, &SBM_NULL, &SQL_DELAY, &LAST_ERRNO, &GTID_POS, &BINLOG_POS];

const IO_STATES: &[&str] = &["yes", "no", "connecting", "preparing"];
/// Most GTID domains (or source UUIDs) reported per node and channel.
const MAX_GTID_DOMAINS: usize = 32;

/// A server flavour and version: they decide statements, columns and grants.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Server {
    pub mariadb: bool,
    pub version: (u32, u32, u32),
}

impl Server {
    /// Parses `mariadb-10.11`, `mysql-8.0.36` (for `schema --server`).
    pub fn parse(s: &str) -> Result<Server, String> {
        let (flavour, version) = s
            .split_once('-')
            .ok_or_else(|| format!("{s:?}: expected FLAVOUR-VERSION, e.g. mariadb-10.11"))?;
        let mariadb = match flavour {
            "mariadb" => true,
            "mysql" => false,
            other => return Err(format!("unknown server flavour {other:?}: expected mariadb or mysql")),
        };
        let version = parse_version(version)
            .ok_or_else(|| format!("{s:?}: {version:?} is not a version like 10.11"))?;
        Ok(Server { mariadb, version })
    }

    /// From `SELECT VERSION()`, e.g. `10.11.19-MariaDB-0+deb12u1` or `8.0.36`.
    fn from_version_string(v: &str) -> Server {
        Server { mariadb: v.contains("MariaDB"), version: parse_version(v).unwrap_or((0, 0, 0)) }
    }

    fn at_least(&self, major: u32, minor: u32, patch: u32) -> bool {
        self.version >= (major, minor, patch)
    }

    /// The privilege that lets an account read replica status.
    fn monitor_privilege(&self) -> &'static str {
        if self.mariadb && self.at_least(10, 5, 9) {
            "SLAVE MONITOR"
        } else {
            "REPLICATION CLIENT"
        }
    }

    fn replica_status_sql(&self) -> &'static str {
        if self.mariadb {
            "SHOW ALL SLAVES STATUS"
        } else if self.at_least(8, 0, 22) {
            "SHOW REPLICA STATUS"
        } else {
            "SHOW SLAVE STATUS"
        }
    }

    fn name(&self) -> String {
        let (a, b, c) = self.version;
        format!("{} {a}.{b}.{c}", if self.mariadb { "MariaDB" } else { "MySQL" })
    }
}

fn parse_version(s: &str) -> Option<(u32, u32, u32)> {
    let mut parts = s.split(|c: char| !c.is_ascii_digit()).take(3).map(|p| p.parse::<u32>().ok());
    let major = parts.next()??;
    let minor = parts.next().flatten().unwrap_or(0);
    let patch = parts.next().flatten().unwrap_or(0);
    Some((major, minor, patch))
}

pub fn check_dsn(dsn: &str) -> Result<(), String> {
    // mysql_async's message may quote the URL; describe the problem without it.
    let opts = Opts::from_url(dsn).map_err(|e| {
        let reason = e.to_string();
        let reason = if reason.contains(dsn) { "invalid URL".to_owned() } else { reason };
        format!("not a valid MySQL connection URL (mysql://USER@HOST:PORT/DATABASE): {reason}")
    })?;
    if opts.pass().is_some() {
        return Err("the connection URL contains a password; move it to password_file or password_env".into());
    }
    if opts.user().is_none_or(str::is_empty) {
        return Err("the connection URL names no user (mysql://USER@HOST:PORT/)".into());
    }
    Ok(())
}

pub fn dsn_sets_tls(dsn: &str) -> bool {
    Opts::from_url(dsn).is_ok_and(|o| o.ssl_opts().is_some())
}

/// mysql_async's TLS options for a node's `tls:` block (`None` for disable).
fn ssl_opts(tls: &Tls) -> Option<SslOpts> {
    let mut opts = SslOpts::default();
    if let Some(ca) = &tls.ca_file {
        opts = opts.with_root_certs(vec![ca.clone().into()]);
    }
    if let Some((cert, key)) = &tls.client {
        opts = opts.with_client_identity(Some(ClientIdentity::new(cert.clone().into(), key.clone().into())));
    }
    match tls.mode {
        TlsMode::Disable => None,
        // Config validation refuses prefer for MySQL; treat it as require here.
        TlsMode::Prefer | TlsMode::Require => Some(opts.with_danger_accept_invalid_certs(true)),
        TlsMode::VerifyCa => Some(opts.with_danger_skip_domain_validation(true)),
        TlsMode::VerifyFull => Some(opts),
    }
}

pub fn schema_sql(table: &TableName, role: &str, host: &str, server: &Server) -> String {
    let TableName { schema, table: name } = table;
    let account = format!("'{role}'@'{host}'");
    let monitor = server.monitor_privilege();
    format!(
        "-- rpo-exporter heartbeat table for {server}: one row per writing node.
-- Run once on every primary as an administrator; it replicates to the replicas.
CREATE DATABASE IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {schema}.{name} (
    node       VARCHAR(64) NOT NULL PRIMARY KEY, -- the writer's configured node name
    region     VARCHAR(64) NOT NULL,             -- the writer's configured region
    seq        BIGINT      NOT NULL,             -- +1 on every heartbeat
    written_at DATETIME(6) NOT NULL,             -- UTC_TIMESTAMP(6) of the writing server
    identity   VARCHAR(64) NOT NULL              -- @@server_uuid (MySQL) or @@server_id (MariaDB)
) ENGINE=InnoDB;

-- Least privilege for the exporter's account (`--host` narrows it to the exporter's hosts).
-- Create the account first, e.g.
--   CREATE USER {account} IDENTIFIED BY '...';
GRANT SELECT, INSERT, UPDATE ON {schema}.{name} TO {account};
-- Replica status (SHOW {status}) on {server}:
GRANT {monitor} ON *.* TO {account};
",
        server = server.name(),
        status = server.replica_status_sql().trim_start_matches("SHOW "),
    )
}

/// Reads a column by index or name without panicking on a surprising type:
/// a damaged table or a new server version yields `None`, not a crash.
fn col<T: FromValue, I: mysql_async::prelude::ColumnIndex>(row: &Row, index: I) -> Option<T> {
    row.get_opt::<Option<T>, I>(index).and_then(Result::ok).flatten()
}

/// The first of several column names that the row has (column names differ
/// between MySQL 8.0.22+ and older servers or MariaDB).
fn col_any<T: FromValue>(row: &Row, names: &[&str]) -> Option<T> {
    names.iter().find_map(|n| {
        let idx = row.columns_ref().iter().position(|c| c.name_str() == *n)?;
        col::<T, usize>(row, idx)
    })
}

fn has_col(row: &Row, names: &[&str]) -> bool {
    row.columns_ref().iter().any(|c| names.contains(&c.name_str().as_ref()))
}

pub struct MySession {
    conn: Conn,
    server: Server,
    user: String,
    table: TableName,
    format: HeartbeatFormat,
    /// Whether our heartbeat row is known to exist (the UPDATE then suffices).
    row_ready: bool,
}

impl MySession {
    pub async fn connect(node: &Node, heartbeat: &Heartbeat) -> Result<MySession, EngineError> {
        let opts =
            Opts::from_url(&node.dsn).map_err(|e| EngineError::new(ErrorKind::Connect, e.to_string()))?;
        let user = opts.user().unwrap_or_default().to_owned();
        let password = node.password.read().map_err(|e| EngineError::new(ErrorKind::Auth, e))?;
        let opts = OptsBuilder::from_opts(opts)
            .pass(password)
            .prefer_socket(false)
            .stmt_cache_size(16)
            .ssl_opts(node.tls.as_ref().and_then(ssl_opts));
        let mut conn = Conn::new(opts).await.map_err(|e| classify(&e, None, ""))?;
        let version: String = conn
            .query_first("SELECT VERSION()")
            .await
            .map_err(|e| classify(&e, None, ""))?
            .unwrap_or_default();
        let server = Server::from_version_string(&version);
        // Times are exchanged in UTC; a pt-heartbeat table written in local time
        // is read in the server's own zone, as pt-heartbeat reads it.
        let mut setup = Vec::new();
        if heartbeat.format != (HeartbeatFormat::PtHeartbeat { utc: false }) {
            setup.push("SET time_zone = '+00:00'".to_owned());
        }
        let secs = heartbeat.timeout.as_secs_f64();
        setup.push(format!("SET SESSION innodb_lock_wait_timeout = {}", secs.ceil().max(1.0)));
        // The server gives up on a statement when we do.
        setup.push(if server.mariadb {
            format!("SET SESSION max_statement_time = {secs:.3}")
        } else {
            format!("SET SESSION max_execution_time = {}", heartbeat.timeout.as_millis())
        });
        for sql in setup {
            conn.query_drop(sql).await.map_err(|e| classify(&e, Some(&server), &user))?;
        }
        Ok(MySession {
            conn,
            server,
            user,
            table: heartbeat.table.clone(),
            format: heartbeat.format,
            row_ready: false,
        })
    }

    fn classify(&self, e: &mysql_async::Error) -> EngineError {
        classify(e, Some(&self.server), &self.user)
    }

    pub async fn probe(&mut self) -> Result<Probe, EngineError> {
        let sql = if self.server.mariadb {
            "SELECT @@global.read_only, 0, CAST(@@server_id AS CHAR), CAST(@@server_id AS CHAR),
                    CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED)"
        } else {
            "SELECT @@global.read_only, @@global.super_read_only, @@server_uuid, CAST(@@server_id AS CHAR),
                    CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED)"
        };
        let row: Row = self
            .conn
            .query_first(sql)
            .await
            .map_err(|e| self.classify(&e))?
            .ok_or_else(|| EngineError::new(ErrorKind::Query, "role probe returned no row"))?;
        let read_only =
            col::<i64, usize>(&row, 0).unwrap_or(1) != 0 || col::<i64, usize>(&row, 1).unwrap_or(0) != 0;
        let identity: String = col(&row, 2).unwrap_or_default();
        let server_id: String = col(&row, 3).unwrap_or_default();
        let mut aliases = vec![identity.clone()];
        if server_id != identity {
            aliases.push(server_id);
        }
        Ok(Probe {
            writable: !read_only,
            identity,
            // Each MySQL server has its own identity; a replica's rows carry their
            // writers', so there is nothing to match them against here.
            expected_row_identity: None,
            aliases,
            db_now_us: col(&row, 4).unwrap_or_default(),
        })
    }

    pub async fn ensure_table(&mut self, table: &TableName, create: bool) -> Result<(), EngineError> {
        let exists: Option<i64> = self
            .conn
            .exec_first(
                "SELECT 1 FROM information_schema.tables WHERE table_schema = ? AND table_name = ?",
                (&table.schema, &table.table),
            )
            .await
            .map_err(|e| self.classify(&e))?;
        if exists.is_some() {
            return Ok(());
        }
        let hint = format!(
            "run the statements printed by `rpo-exporter schema mysql --table {table} --server {}` as an administrator",
            if self.server.mariadb { "mariadb-X.Y" } else { "mysql-X.Y" }
        );
        if !create {
            return Err(EngineError::new(
                ErrorKind::MissingTable,
                format!("heartbeat table {table} does not exist and heartbeat.create_table is false; {hint}"),
            ));
        }
        let ddl = schema_sql(table, "unused", "%", &self.server);
        let ddl = ddl.split("-- Least privilege").next().unwrap_or_default().to_owned();
        self.conn.query_drop(ddl).await.map_err(|e| {
            let err = self.classify(&e);
            let kind = if err.kind == ErrorKind::Permission { ErrorKind::MissingTable } else { err.kind };
            EngineError::new(kind, format!("cannot create heartbeat table {table}: {}; {hint}", err.message))
        })?;
        tracing::info!(table = %table, "Created heartbeat table");
        Ok(())
    }

    pub async fn write_heartbeat(&mut self, node: &Node, identity: &str) -> Result<Written, EngineError> {
        let table = self.table.clone();
        if !self.row_ready {
            // Creates our row once; a no-op (and nothing in the binlog) when it exists.
            self.conn
                .exec_drop(
                    format!(
                        "INSERT IGNORE INTO {table} (node, region, seq, written_at, identity)
                         VALUES (?, ?, 0, UTC_TIMESTAMP(6), ?)"
                    ),
                    (&node.name, &node.region, identity),
                )
                .await
                .map_err(|e| self.classify(&e))?;
            self.row_ready = true;
        }
        // One small UPDATE per heartbeat, read back in the same transaction so the
        // sequence and time are exactly the ones committed.
        let mut tx = self
            .conn
            .start_transaction(mysql_async::TxOpts::default())
            .await
            .map_err(|e| classify(&e, Some(&self.server), &self.user))?;
        tx.exec_drop(
            format!(
                "UPDATE {table} SET region = ?, seq = seq + 1, written_at = UTC_TIMESTAMP(6), identity = ?
                 WHERE node = ?"
            ),
            (&node.region, identity, &node.name),
        )
        .await
        .map_err(|e| classify(&e, Some(&self.server), &self.user))?;
        let updated = tx.affected_rows();
        if updated == 0 {
            drop(tx);
            self.row_ready = false;
            return Err(EngineError::new(
                ErrorKind::Query,
                format!(
                    "heartbeat row for {} in {table} vanished; it is recreated on the next write",
                    node.name
                ),
            ));
        }
        let row: Option<Row> = tx
            .exec_first(
                format!(
                    "SELECT seq, CAST(UNIX_TIMESTAMP(written_at) * 1000000 AS SIGNED) FROM {table} WHERE node = ?"
                ),
                (&node.name,),
            )
            .await
            .map_err(|e| classify(&e, Some(&self.server), &self.user))?;
        tx.commit().await.map_err(|e| classify(&e, Some(&self.server), &self.user))?;
        let row =
            row.ok_or_else(|| EngineError::new(ErrorKind::Query, "heartbeat row not readable after update"))?;
        Ok(Written { seq: col(&row, 0).unwrap_or_default(), written_us: col(&row, 1).unwrap_or_default() })
    }

    pub async fn read_heartbeats(&mut self) -> Result<HeartbeatRead, EngineError> {
        let table = &self.table;
        let now = "CAST(UNIX_TIMESTAMP(NOW(6)) * 1000000 AS SIGNED)";
        // The left join returns the clock even from an empty table; the limit
        // bounds what a flooded table can cost.
        let sql = match self.format {
            HeartbeatFormat::Rpo => format!(
                "SELECT {now}, h.node, h.region, h.seq,
                        CAST(UNIX_TIMESTAMP(h.written_at) * 1000000 AS SIGNED), h.identity
                 FROM (SELECT 1) AS one LEFT JOIN {table} AS h ON TRUE
                 ORDER BY h.node LIMIT 1000"
            ),
            // pt-heartbeat rows: a `ts` string and the writer's server_id. An
            // unparsable ts gives NULL, not the epoch.
            HeartbeatFormat::PtHeartbeat { .. } => format!(
                "SELECT {now}, NULL, NULL, NULL,
                        CAST(NULLIF(UNIX_TIMESTAMP(h.ts), 0) * 1000000 AS SIGNED), CAST(h.server_id AS CHAR)
                 FROM (SELECT 1) AS one LEFT JOIN {table} AS h ON TRUE
                 ORDER BY h.server_id LIMIT 1000"
            ),
        };
        let rows: Vec<Row> = self.conn.query(sql).await.map_err(|e| self.classify(&e))?;
        let db_now_us = rows.first().and_then(|r| col::<i64, usize>(r, 0)).unwrap_or_default();
        let rows = rows
            .iter()
            .filter(|r| col::<String, usize>(r, 1).is_some() || col::<String, usize>(r, 5).is_some())
            .map(|r| HeartbeatRow {
                node: col(r, 1),
                region: col(r, 2),
                seq: col(r, 3),
                written_us: col(r, 4),
                identity: col(r, 5),
            })
            .collect();
        Ok(HeartbeatRead { rows, db_now_us })
    }

    pub async fn replication(&mut self, labels: &NodeLabels) -> Result<Vec<Sample>, EngineError> {
        let mut out = Vec::new();
        let status: Vec<Row> =
            self.conn.query(self.server.replica_status_sql()).await.map_err(|e| self.classify(&e))?;
        let mut seen = HashSet::new();
        for row in &status {
            let name: String =
                col_any(row, &["Connection_name", "Channel_Name", "Channel_name"]).unwrap_or_default();
            let channel = super::unique_label(if name.is_empty() { "default" } else { &name }, &mut seen);
            let ch = |extra: &[&str]| {
                let mut v = labels.with(&[&channel]);
                v.extend(extra.iter().map(|s| (*s).to_owned()));
                v
            };
            let io: String = col_any(row, &["Slave_IO_Running", "Replica_IO_Running"]).unwrap_or_default();
            let io = io.to_ascii_lowercase();
            for state in IO_STATES {
                out.push(sample(&IO_STATE, ch(&[state]), f64::from(u8::from(io == *state))));
            }
            let sql: String = col_any(row, &["Slave_SQL_Running", "Replica_SQL_Running"]).unwrap_or_default();
            out.push(sample(&SQL_RUNNING, ch(&[]), f64::from(u8::from(sql.eq_ignore_ascii_case("yes")))));
            // NULL is a reading of its own ("unknown"), never a vanished series or a 0.
            let sbm: Option<f64> = col_any(row, &["Seconds_Behind_Master", "Seconds_Behind_Source"]);
            out.push(sample(&SBM, ch(&[]), sbm.unwrap_or(f64::NAN)));
            out.push(sample(&SBM_NULL, ch(&[]), f64::from(u8::from(sbm.is_none()))));
            if let Some(delay) = col_any::<f64>(row, &["SQL_Delay"]) {
                out.push(sample(&SQL_DELAY, ch(&[]), delay));
            }
            for (thread, names) in [("io", ["Last_IO_Errno"]), ("sql", ["Last_SQL_Errno"])] {
                out.push(sample(&LAST_ERRNO, ch(&[thread]), col_any::<f64>(row, &names).unwrap_or(0.0)));
            }
            for (stage, names) in [
                ("received", ["Gtid_IO_Pos", "Retrieved_Gtid_Set"]),
                ("executed", ["Gtid_Slave_Pos", "Executed_Gtid_Set"]),
            ] {
                if !has_col(row, &names) {
                    continue;
                }
                let set: String = col_any(row, &names).unwrap_or_default();
                for (domain, seq) in gtid_positions(&set) {
                    out.push(sample(&GTID_POS, ch(&[stage, &domain]), seq as f64));
                }
            }
        }
        out.push(sample(&CHANNELS, labels.with(&[]), status.len() as f64));

        let binlog_sql = if self.server.mariadb {
            "SELECT @@global.gtid_binlog_pos"
        } else {
            "SELECT @@global.gtid_executed"
        };
        let binlog: Option<String> =
            self.conn.query_first(binlog_sql).await.map_err(|e| self.classify(&e))?;
        for (domain, seq) in gtid_positions(binlog.as_deref().unwrap_or_default()) {
            out.push(sample(&BINLOG_POS, labels.with(&[&domain]), seq as f64));
        }
        Ok(out)
    }
}

fn sample(desc: &'static MetricDesc, values: Vec<String>, value: f64) -> Sample {
    Sample { desc, values, value }
}

/// The highest sequence number per domain of a GTID position or set:
/// MariaDB `0-1-100,1-2-7` (domain-server-seq) or MySQL
/// `3E11FA47-...:1-5:7-9` (uuid:intervals). At most [`MAX_GTID_DOMAINS`].
fn gtid_positions(set: &str) -> Vec<(String, u64)> {
    let mut out: Vec<(String, u64)> = Vec::new();
    for item in set.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        let parsed = if let Some((uuid, intervals)) = item.split_once(':') {
            let max = intervals.split(':').filter_map(|iv| iv.rsplit('-').next()?.parse::<u64>().ok()).max();
            max.map(|m| (uuid.to_ascii_lowercase(), m))
        } else {
            let mut parts = item.split('-');
            match (parts.next(), parts.next(), parts.next().and_then(|s| s.parse::<u64>().ok())) {
                (Some(domain), Some(_server), Some(seq)) if domain.chars().all(|c| c.is_ascii_digit()) => {
                    Some((domain.to_owned(), seq))
                }
                _ => None,
            }
        };
        let Some((domain, seq)) = parsed else { continue };
        if let Some(entry) = out.iter_mut().find(|(d, _)| *d == domain) {
            entry.1 = entry.1.max(seq);
        } else if out.len() < MAX_GTID_DOMAINS {
            out.push((domain, seq));
        }
    }
    out
}

/// Reduces a driver error to a bounded kind and a message without credentials;
/// a missing privilege names the GRANT that fixes it.
fn classify(e: &mysql_async::Error, server: Option<&Server>, user: &str) -> EngineError {
    use mysql_async::Error as E;
    match e {
        E::Server(s) => {
            let kind = match s.code {
                // ER_DBACCESS_DENIED, ER_TABLEACCESS_DENIED, ER_SPECIFIC_ACCESS_DENIED, ER_COLUMNACCESS_DENIED
                1044 | 1142 | 1143 | 1227 => ErrorKind::Permission,
                // ER_ACCESS_DENIED_ERROR
                1045 => ErrorKind::Auth,
                // ER_NO_SUCH_TABLE, ER_BAD_DB_ERROR
                1146 | 1049 => ErrorKind::MissingTable,
                // ER_OPTION_PREVENTS_STATEMENT (read_only)
                1290 => ErrorKind::ReadOnly,
                // ER_STATEMENT_TIMEOUT (MariaDB), ER_QUERY_TIMEOUT (MySQL), lock wait timeout
                1969 | 3024 | 1205 => ErrorKind::Timeout,
                // server shutting down, connection killed
                1053 | 1927 => ErrorKind::Connect,
                _ => ErrorKind::Query,
            };
            let hint = match (kind, server) {
                (ErrorKind::Permission, Some(server)) if s.code == 1227 => {
                    format!("; grant it with: GRANT {} ON *.* TO '{user}'@'%'", server.monitor_privilege())
                }
                (ErrorKind::Permission | ErrorKind::MissingTable, _) => {
                    "; run the statements printed by `rpo-exporter schema mysql` as an administrator"
                        .to_owned()
                }
                _ => String::new(),
            };
            EngineError::new(kind, format!("ERROR {} ({}): {}{hint}", s.code, s.state, s.message))
        }
        other => {
            let kind =
                if matches!(other, E::Io(mysql_async::IoError::Tls(_))) || super::tls::is_tls_error(other) {
                    ErrorKind::Tls
                } else {
                    ErrorKind::Connect
                };
            EngineError::new(kind, crate::error_chain(other))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_and_privileges() {
        let m = Server::from_version_string("10.11.19-MariaDB-0+deb12u1");
        assert!(m.mariadb);
        assert_eq!(m.version, (10, 11, 19));
        assert_eq!(m.monitor_privilege(), "SLAVE MONITOR");
        assert_eq!(m.replica_status_sql(), "SHOW ALL SLAVES STATUS");
        assert_eq!(Server::parse("mariadb-10.5.8").unwrap().monitor_privilege(), "REPLICATION CLIENT");
        assert_eq!(Server::parse("mariadb-10.5.9").unwrap().monitor_privilege(), "SLAVE MONITOR");
        let my = Server::parse("mysql-8.0").unwrap();
        assert_eq!(my.monitor_privilege(), "REPLICATION CLIENT");
        assert_eq!(my.replica_status_sql(), "SHOW SLAVE STATUS");
        assert_eq!(Server::parse("mysql-8.0.36").unwrap().replica_status_sql(), "SHOW REPLICA STATUS");
        assert!(Server::parse("oracle-19").is_err());
        assert!(Server::parse("mysql").is_err());
    }

    #[test]
    fn gtid_sets() {
        assert_eq!(gtid_positions("0-1-100,1-2-7"), vec![("0".into(), 100), ("1".into(), 7)]);
        assert_eq!(gtid_positions(""), vec![]);
        assert_eq!(
            gtid_positions("3E11FA47-71CA-11E1-9E33-C80AA9429562:1-5:7-9,\n4a:1-3"),
            vec![("3e11fa47-71ca-11e1-9e33-c80aa9429562".into(), 9), ("4a".into(), 3)]
        );
        assert_eq!(gtid_positions("garbage,0-1-x,0-1-5"), vec![("0".into(), 5)]);
    }

    #[test]
    fn dsn_checks() {
        assert!(check_dsn("mysql://rpo@127.0.0.1:3306/").is_ok());
        let e = check_dsn("mysql://rpo:hunter2@127.0.0.1:3306/").unwrap_err();
        assert!(e.contains("contains a password") && !e.contains("hunter2"), "{e}");
        assert!(check_dsn("mysql://127.0.0.1:3306/").unwrap_err().contains("no user"));
        assert!(check_dsn("host=127.0.0.1 user=x").unwrap_err().contains("not a valid MySQL connection URL"));
    }

    #[test]
    fn schema_grants_follow_the_server() {
        let t: TableName = "rpo.heartbeat".parse().unwrap();
        let maria = schema_sql(&t, "mon", "%", &Server::parse("mariadb-10.11").unwrap());
        assert!(maria.contains("GRANT SLAVE MONITOR ON *.* TO 'mon'@'%';"), "{maria}");
        assert!(maria.contains("GRANT SELECT, INSERT, UPDATE ON rpo.heartbeat TO 'mon'@'%';"));
        let mysql = schema_sql(&t, "mon", "10.0.%", &Server::parse("mysql-8.0").unwrap());
        assert!(mysql.contains("GRANT REPLICATION CLIENT ON *.* TO 'mon'@'10.0.%';"), "{mysql}");
    }
}
