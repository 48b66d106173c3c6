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

use super::{
    BoxFuture, CheckError, Connection, DrillSession, DrillWrite, Engine, EngineError, ErrorKind, Field,
    HeartbeatRead, HeartbeatRow, Holding, NodeField, NodeLabels, PositionOutcome, Probe, Reason, SchemaError,
    Session, Step, TickOutcome, TickPlan, Positions, WriteOutcome, Written,
};
use crate::endpoint::{Endpoint, HeartbeatFormat, Replication, Settings, TableMatch, TableName, Tables, Tls, TlsMode};
use crate::heartbeat::{mono_now, CommitPosition};
use crate::metrics::{desc, MetricDesc, Sample, NODE};
use mysql_async::prelude::{FromValue, Queryable};
use mysql_async::{ClientIdentity, Conn, Opts, OptsBuilder, Row, SslOpts};
use std::collections::HashSet;
use std::time::{Duration, Instant};

const CHANNEL: &[&str] = &["db_cluster", "node", "node_region", "channel"];
const CHANNEL_STATE: &[&str] = &["db_cluster", "node", "node_region", "channel", "state"];
const CHANNEL_THREAD: &[&str] = &["db_cluster", "node", "node_region", "channel", "thread"];
const CHANNEL_GTID: &[&str] = &["db_cluster", "node", "node_region", "channel", "stage", "gtid_domain"];
const NODE_GTID: &[&str] = &["db_cluster", "node", "node_region", "gtid_domain"];

desc!(CHANNELS, "rpo_mysql_replica_channels", Gauge, NODE, "Replication channels (MariaDB connections) configured on this node; 0 on a server that replicates from nobody.", Replication);
desc!(IO_STATE, "rpo_mysql_replica_io_state", Gauge, CHANNEL_STATE, "Per channel: 1 for the IO (receiver) thread's current state (yes, no, connecting, preparing), 0 for the others.", Replication);
desc!(
    SQL_RUNNING,
    "rpo_mysql_replica_sql_running",
    Gauge,
    CHANNEL,
    "Per channel: 1 if the SQL (applier) thread runs, else 0.",
    Replication
);
desc!(SBM, "rpo_mysql_seconds_behind_source", Gauge, CHANNEL, "Per channel: Seconds_Behind_Master (Seconds_Behind_Source) as the server reports it; NaN while the server reports NULL (see rpo_mysql_seconds_behind_source_null). Reads 0 on a silently broken network: trust rpo_replication_lag_seconds.", Replication);
desc!(SBM_NULL, "rpo_mysql_seconds_behind_source_null", Gauge, CHANNEL, "Per channel: 1 while Seconds_Behind_Master is NULL (a replication thread stopped, or never connected), else 0.", Replication);
desc!(
    SQL_DELAY,
    "rpo_mysql_sql_delay_seconds",
    Gauge,
    CHANNEL,
    "Per channel: the configured delayed-replication SQL_Delay (MASTER_DELAY).",
    Replication
);
desc!(
    LAST_ERRNO,
    "rpo_mysql_replica_last_errno",
    Gauge,
    CHANNEL_THREAD,
    "Per channel: Last_IO_Errno (thread=io) and Last_SQL_Errno (thread=sql); 0 when there is none.",
    Replication
);
desc!(GTID_POS, "rpo_mysql_replica_gtid_position", Gauge, CHANNEL_GTID, "Per channel: the highest GTID sequence number received (stage=received: Gtid_IO_Pos / Retrieved_Gtid_Set) and executed (stage=executed: Gtid_Slave_Pos / Executed_Gtid_Set) per GTID domain (MariaDB) or source server UUID (MySQL).", Gtid);
desc!(BINLOG_POS, "rpo_mysql_gtid_binlog_position", Gauge, NODE_GTID, "The highest GTID sequence number in this server's own binary log, per GTID domain (@@gtid_binlog_pos) or source server UUID (@@gtid_executed).", Gtid);

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
    pub fn parse(s: &str) -> Result<Server, SchemaError> {
        let (flavour, version) = s.split_once('-').ok_or_else(|| SchemaError::ServerForm(s.to_owned()))?;
        let mariadb = match flavour {
            "mariadb" => true,
            "mysql" => false,
            other => return Err(SchemaError::ServerFlavour(other.to_owned())),
        };
        let version = parse_version(version).ok_or_else(|| SchemaError::ServerVersion {
            server: s.to_owned(),
            version: version.to_owned(),
        })?;
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

/// MySQL 8.x and MariaDB 10.x/11.x; the flavour is discovered at connect.
pub struct Mysql;

impl Engine for Mysql {
    fn name(&self) -> &'static str {
        "mysql"
    }

    fn describe(&self) -> &'static str {
        "mysql (which covers MariaDB)"
    }

    fn reads(&self, _format: HeartbeatFormat) -> bool {
        true
    }

    fn check(&self, endpoint: &Endpoint) -> Result<(), CheckError> {
        check_dsn(&endpoint.dsn)?;
        if endpoint.tls.as_ref().is_some_and(|tls| tls.mode == TlsMode::Prefer) {
            return Err(CheckError::new(
                NodeField::TlsMode,
                "prefer is not available for mysql: use disable, require, verify-ca or verify-full",
            ));
        }
        // mysql_async builds its own TLS configuration from the PEM.
        super::check_tls_block(endpoint, dsn_sets_tls, false)
    }

    fn connect<'a>(
        &'a self,
        endpoint: &'a Endpoint,
        settings: &'a Settings,
    ) -> BoxFuture<'a, Result<Session, EngineError>> {
        Box::pin(async move { Ok(Session::new(MySession::connect(endpoint, settings).await?)) })
    }

    fn schema_sql(
        &self,
        table: &TableName,
        role: &str,
        server: Option<&str>,
        host: Option<&str>,
    ) -> Result<String, SchemaError> {
        let server = Server::parse(server.unwrap_or("mariadb-10.11"))?;
        let host = host.unwrap_or("%");
        if host.is_empty() || host.contains(['\'', '\\', '`', ' ']) {
            return Err(SchemaError::Host(host.to_owned()));
        }
        Ok(schema_sql(table, role, host, &server))
    }

    fn metrics(&self) -> &'static [&'static MetricDesc] {
        METRICS
    }

    fn replication(&self, mode: Replication) -> Result<(), String> {
        match mode {
            Replication::Logical => Err("mysql has no logical replication in this sense: a replica that copies only some tables is filtered by its replicate_* options (replication: filtered); expected physical, filtered or none".into()),
            _ => Ok(()),
        }
    }

    fn copies_everything(&self, mode: Replication) -> Option<&'static str> {
        (mode == Replication::Physical).then_some(
            "MySQL/MariaDB replication without replicate_* filters copies every table of its source, and a primary holds them all",
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

    fn residency_grants(&self, targets: &[TableMatch], modes: &[Replication], role: &str, host: &str) -> String {
        residency_grants(targets, modes, role, host)
    }

    fn connect_drill<'a>(
        &'a self,
        endpoint: &'a Endpoint,
        settings: &'a Settings,
    ) -> BoxFuture<'a, Result<DrillSession, EngineError>> {
        Box::pin(async move { Ok(DrillSession::new(MyDrill::connect(endpoint, settings).await?)) })
    }

    fn drill_schema_sql(&self, table: &TableName, role: &str, host: Option<&str>) -> Result<String, SchemaError> {
        let host = host.unwrap_or("%");
        if host.is_empty() || host.contains(['\'', '\\', '`', ' ']) {
            return Err(SchemaError::Host(host.to_owned()));
        }
        Ok(drill_schema_sql(table, role, host))
    }
}

/// The grants of the residency checks: SELECT on the rule's tables (on the whole
/// database for a schema or pattern rule: MySQL hides the tables an account may
/// not read, so only a database-wide grant tells "absent" from "hidden").
pub fn residency_grants(targets: &[TableMatch], modes: &[Replication], role: &str, host: &str) -> String {
    let account = format!("'{role}'@'{host}'");
    let mut out = String::from(
        "\n-- Residency checks, on every node outside a rule's allowed regions.
-- Whether a table holds a row (SELECT EXISTS, never a count): SELECT on the table; for a
-- schema or pattern rule on the whole database (MySQL hides tables an account cannot read).
",
    );
    let mut lines: Vec<String> = targets
        .iter()
        .map(|t| match &t.tables {
            Tables::One(table) => format!("GRANT SELECT ON `{}`.`{table}` TO {account};\n", t.schema),
            Tables::All | Tables::Like(_) => format!("GRANT SELECT ON `{}`.* TO {account};\n", t.schema),
        })
        .collect();
    lines.sort();
    lines.dedup();
    out.extend(lines);
    if modes.contains(&Replication::Filtered) {
        out.push_str(
            "-- Replication filters are read from the replica status: the monitor privilege above is enough.\n",
        );
    }
    out
}

/// `'user'@'host'` of the session's account, as information_schema writes a grantee.
const GRANTEE_SQL: &str = "CONCAT('''', SUBSTRING_INDEX(CURRENT_USER(), '@', 1), '''@''', \
     SUBSTRING_INDEX(CURRENT_USER(), '@', -1), '''')";

fn quote_ident(name: &str) -> String {
    format!("`{}`", name.replace('`', "``"))
}

/// Whether any of `results` found rows: a found row wins over a failed check; a
/// failed one over "none".
fn any_rows(acc: Result<bool, EngineError>, next: Result<bool, EngineError>) -> Result<bool, EngineError> {
    match (acc, next) {
        (Ok(true), _) | (_, Ok(true)) => Ok(true),
        (Err(e), _) | (_, Err(e)) => Err(e),
        _ => Ok(false),
    }
}

async fn residency(
    endpoint: &Endpoint,
    settings: &Settings,
    mode: Replication,
    targets: &[TableMatch],
) -> Result<Vec<Holding>, EngineError> {
    let (opts, user) = opts(endpoint, settings)?;
    let mut conn = Conn::new(opts).await.map_err(|e| classify(&e, None, ""))?;
    let version: Option<String> =
        conn.query_first("SELECT VERSION()").await.map_err(|e| classify(&e, None, ""))?;
    let server = Server::from_version_string(&version.unwrap_or_default());
    let err = |e: mysql_async::Error| classify(&e, Some(&server), &user);
    // Reads only, every statement bounded by the server too.
    let limit = settings.timeout;
    let bound = if server.mariadb {
        format!("SET SESSION max_statement_time = {:.3}", limit.as_secs_f64())
    } else {
        format!("SET SESSION max_execution_time = {}", limit.as_millis().max(1))
    };
    conn.query_drop(bound).await.map_err(err)?;
    conn.query_drop("SET SESSION TRANSACTION READ ONLY").await.map_err(err)?;
    let filters = if mode == Replication::Filtered {
        Some(
            conn.query::<Row, _>(server.replica_status_sql())
                .await
                .map_err(err)
                .map(|rows| rows.iter().map(Filters::from_row).collect::<Vec<_>>()),
        )
    } else {
        None
    };
    let mut out = Vec::with_capacity(targets.len());
    for target in targets {
        let mut holding = Holding::default();
        let rows = match &target.tables {
            Tables::One(table) => {
                holding.tables.push(format!("{}.{table}", target.schema));
                exists(&mut conn, &target.schema, table).await.map_err(err)
            }
            Tables::All | Tables::Like(_) => match list_tables(&mut conn, &target.schema).await.map_err(err) {
                Err(e) => Err(e),
                Ok(None) => Err(EngineError::new(
                    ErrorKind::Permission,
                    format!(
                        "no SELECT privilege on the database {} as a whole, so some of its tables may be hidden; \
                         run the grants printed by `rpo-exporter schema mysql --config.file FILE` as an administrator",
                        target.schema
                    ),
                )),
                Ok(Some(tables)) => {
                    let mut rows = Ok(false);
                    for table in tables.iter().filter(|t| target.covers(&target.schema, t)) {
                        holding.tables.push(format!("{}.{table}", target.schema));
                        rows = any_rows(rows, exists(&mut conn, &target.schema, table).await.map_err(err));
                    }
                    rows
                }
            },
        };
        holding.findings.push((Reason::RowsPresent, rows));
        if let Some(filters) = &filters {
            let through = filters.clone().map(|channels| channels.iter().any(|f| f.lets_through(target)));
            holding.findings.push((Reason::ReplicationFilter, through));
        }
        out.push(holding);
    }
    drop(conn.disconnect().await);
    Ok(out)
}

/// Whether `schema.table` holds a row; a table that does not exist holds none.
async fn exists(conn: &mut Conn, schema: &str, table: &str) -> Result<bool, mysql_async::Error> {
    let sql = format!("SELECT EXISTS (SELECT 1 FROM {}.{})", quote_ident(schema), quote_ident(table));
    match conn.query_first::<i64, _>(sql).await {
        Ok(v) => Ok(v.unwrap_or(0) != 0),
        // ER_NO_SUCH_TABLE, ER_BAD_DB_ERROR: answered only to an account that may
        // read the table (to any other the server says ER_TABLEACCESS_DENIED).
        Err(mysql_async::Error::Server(e)) if e.code == 1146 || e.code == 1049 => Ok(false),
        Err(e) => Err(e),
    }
}

/// Every base table of `schema`, or `None` when the account has no database-wide
/// (or global) SELECT, which alone makes information_schema list them all.
async fn list_tables(conn: &mut Conn, schema: &str) -> Result<Option<Vec<String>>, mysql_async::Error> {
    let db = literal(schema);
    let granted: Option<i64> = conn
        .query_first(format!(
            "SELECT (SELECT COUNT(*) FROM information_schema.USER_PRIVILEGES
                     WHERE GRANTEE = {GRANTEE_SQL} AND PRIVILEGE_TYPE = 'SELECT')
                  + (SELECT COUNT(*) FROM information_schema.SCHEMA_PRIVILEGES
                     WHERE GRANTEE = {GRANTEE_SQL} AND PRIVILEGE_TYPE = 'SELECT' AND TABLE_SCHEMA = {db})"
        ))
        .await?;
    if granted.unwrap_or(0) == 0 {
        return Ok(None);
    }
    let tables: Vec<String> = conn
        .query(format!(
            "SELECT TABLE_NAME FROM information_schema.TABLES
             WHERE TABLE_SCHEMA = {db} AND TABLE_TYPE = 'BASE TABLE'"
        ))
        .await?;
    Ok(Some(tables))
}

/// One replication channel's `replicate_*` filters, as the replica status shows them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filters {
    pub do_db: Vec<String>,
    pub ignore_db: Vec<String>,
    pub do_table: Vec<String>,
    pub ignore_table: Vec<String>,
    pub wild_do_table: Vec<String>,
    pub wild_ignore_table: Vec<String>,
}

impl Filters {
    fn from_row(row: &Row) -> Filters {
        let list = |name: &str| -> Vec<String> {
            col_any::<String>(row, &[name])
                .unwrap_or_default()
                .split(',')
                .map(|s| s.trim().to_owned())
                .filter(|s| !s.is_empty())
                .collect()
        };
        Filters {
            do_db: list("Replicate_Do_DB"),
            ignore_db: list("Replicate_Ignore_DB"),
            do_table: list("Replicate_Do_Table"),
            ignore_table: list("Replicate_Ignore_Table"),
            wild_do_table: list("Replicate_Wild_Do_Table"),
            wild_ignore_table: list("Replicate_Wild_Ignore_Table"),
        }
    }

    /// Whether row events for some table of `target` pass these filters, as a
    /// replica evaluates them for row-based replication: database options first,
    /// then table options (do, ignore, wild do, wild ignore; with any do option
    /// set, a table none of them names is ignored). For a schema or pattern rule
    /// the answer is "passes" unless the filters provably stop every table it
    /// covers: what cannot be proven blocked counts as let through.
    pub fn lets_through(&self, target: &TableMatch) -> bool {
        let db = target.schema.as_str();
        if !self.do_db.is_empty() && !self.do_db.iter().any(|d| d == db) {
            return false;
        }
        if self.ignore_db.iter().any(|d| d == db) {
            return false;
        }
        let split = |entry: &String| entry.split_once('.').map(|(d, t)| (d.to_owned(), t.to_owned()));
        let any_do = !self.do_table.is_empty() || !self.wild_do_table.is_empty();
        match &target.tables {
            Tables::One(table) => {
                let name = format!("{db}.{table}");
                let wild_match =
                    |list: &[String]| list.iter().filter_map(split).any(|(d, t)| wild(&d, db) && wild(&t, table));
                if self.do_table.contains(&name) {
                    return true;
                }
                if self.ignore_table.contains(&name) {
                    return false;
                }
                if wild_match(&self.wild_do_table) {
                    return true;
                }
                if wild_match(&self.wild_ignore_table) {
                    return false;
                }
                !any_do
            }
            Tables::All | Tables::Like(_) => {
                let pattern = match &target.tables {
                    Tables::Like(p) => p.as_str(),
                    _ => "%",
                };
                // An ignore entry stops every covered table when its database part
                // matches and its table part matches any name (or is the rule's own).
                let stops_all = self
                    .wild_ignore_table
                    .iter()
                    .filter_map(split)
                    .any(|(d, t)| wild(&d, db) && (t == "%" || t == pattern));
                if stops_all {
                    return false;
                }
                // With do options set, only a do entry that may name a covered
                // table lets something through.
                if any_do {
                    return self.do_table.iter().filter_map(split).any(|(d, _)| d == db)
                        || self.wild_do_table.iter().filter_map(split).any(|(d, _)| wild(&d, db));
                }
                true
            }
        }
    }
}

/// `replicate_wild_*` matching: `%` any run of characters, `_` any one, `\` escapes.
fn wild(pattern: &str, name: &str) -> bool {
    fn go(p: &[char], n: &[char]) -> bool {
        match p.first() {
            None => n.is_empty(),
            Some('%') => (0..=n.len()).any(|i| go(&p[1..], &n[i..])),
            Some('_') => !n.is_empty() && go(&p[1..], &n[1..]),
            Some('\\') if p.len() > 1 => n.first() == Some(&p[1]) && go(&p[2..], &n[1..]),
            Some(c) => n.first() == Some(c) && go(&p[1..], &n[1..]),
        }
    }
    let (p, n): (Vec<char>, Vec<char>) = (pattern.chars().collect(), name.chars().collect());
    go(&p, &n)
}


/// The drill table (`rpo-exporter drill`): one row per drill write.
pub fn drill_schema_sql(table: &TableName, role: &str, host: &str) -> String {
    let TableName { schema, table: name } = table;
    format!(
        "-- rpo-exporter drill table for MySQL/MariaDB: one row per drill write (a game day).
-- Run once on every primary as an administrator; it replicates to the replicas.
-- Delete old runs when you like: DELETE FROM {schema}.{name} WHERE run = '...';
CREATE DATABASE IF NOT EXISTS {schema};
CREATE TABLE IF NOT EXISTS {schema}.{name} (
    run       VARCHAR(64) NOT NULL,  -- the drill run
    seq       BIGINT      NOT NULL,  -- the write's number within the run
    client_us BIGINT      NOT NULL,  -- when the drill sent it: microseconds since the epoch, the drill's clock
    node      VARCHAR(64) NOT NULL,  -- the node it was sent to
    PRIMARY KEY (run, seq)
) ENGINE=InnoDB;
-- The drill's account must not hold SUPER (or ALL), which ignores read_only.
GRANT SELECT, INSERT ON {schema}.{name} TO '{role}'@'{host}';
"
    )
}

/// A drill connection: the role (`read_only`), one INSERT per drill write, the
/// newest row of a run; prepared statements on one connection.
struct MyDrill {
    conn: Conn,
    table: TableName,
    mariadb: bool,
}

impl MyDrill {
    async fn connect(endpoint: &Endpoint, settings: &Settings) -> Result<MyDrill, EngineError> {
        let opts =
            Opts::from_url(&endpoint.dsn).map_err(|e| EngineError::new(ErrorKind::Connect, e.to_string()))?;
        let password = endpoint.password.read().map_err(|e| EngineError::new(ErrorKind::Auth, e.to_string()))?;
        let opts = OptsBuilder::from_opts(opts).pass(password).prefer_socket(false);
        let opts = match &endpoint.tls {
            Some(tls) => opts.ssl_opts(ssl_opts(tls)),
            None => opts,
        };
        let mut conn = Conn::new(opts).await.map_err(|e| classify(&e, None, ""))?;
        let version: Option<String> =
            conn.query_first("SELECT VERSION()").await.map_err(|e| classify(&e, None, ""))?;
        let mariadb = version.unwrap_or_default().to_lowercase().contains("mariadb");
        Ok(MyDrill { conn, table: settings.table.clone(), mariadb })
    }

    fn error(&self, e: &mysql_async::Error) -> EngineError {
        let mut err = classify(e, None, "");
        if matches!(err.kind, ErrorKind::MissingTable | ErrorKind::Permission) {
            if let Some(i) = err.message.find("; run the statements") {
                err.message.truncate(i);
            }
            err.message.push_str(&format!(
                "; run the statements printed by `rpo-exporter schema mysql --drill-table {}` as an administrator",
                self.table
            ));
        }
        err
    }
}

impl super::DrillConnection for MyDrill {
    fn writable(&mut self) -> BoxFuture<'_, Result<bool, EngineError>> {
        Box::pin(async move {
            let sql = if self.mariadb {
                "SELECT @@global.read_only = 0"
            } else {
                "SELECT @@global.read_only = 0 AND @@global.super_read_only = 0"
            };
            let row: Option<i64> = self.conn.query_first(sql).await.map_err(|e| self.error(&e))?;
            Ok(row == Some(1))
        })
    }

    fn write<'a>(&'a mut self, write: &'a DrillWrite) -> BoxFuture<'a, Result<(), EngineError>> {
        Box::pin(async move {
            let sql = format!("INSERT INTO {} (run, seq, client_us, node) VALUES (?, ?, ?, ?)", self.table);
            let params = (write.run.as_str(), write.seq, write.client_us, write.node.as_str());
            self.conn.exec_drop(sql, params).await.map_err(|e| self.error(&e))
        })
    }

    fn newest<'a>(
        &'a mut self,
        run: &'a str,
        up_to: i64,
    ) -> BoxFuture<'a, Result<Option<(i64, i64)>, EngineError>> {
        Box::pin(async move {
            let sql = format!(
                "SELECT seq, client_us FROM {} WHERE run = ? AND seq <= ? ORDER BY seq DESC LIMIT 1",
                self.table
            );
            self.conn.exec_first(sql, (run, up_to)).await.map_err(|e| self.error(&e))
        })
    }
}

fn check_dsn(dsn: &str) -> Result<(), CheckError> {
    let problem = |p: String| CheckError::new(NodeField::Dsn, p);
    // mysql_async's message may quote the URL; describe the problem without it.
    let opts = Opts::from_url(dsn).map_err(|e| {
        let reason = e.to_string();
        let reason = if reason.contains(dsn) { "invalid URL".to_owned() } else { reason };
        problem(format!("not a valid MySQL connection URL (mysql://USER@HOST:PORT/DATABASE): {reason}"))
    })?;
    if opts.pass().is_some() {
        return Err(problem(
            "the connection URL contains a password; move it to password_file or password_env".into(),
        ));
    }
    if opts.user().is_none_or(str::is_empty) {
        return Err(problem("the connection URL names no user (mysql://USER@HOST:PORT/)".into()));
    }
    check_url_tls(dsn, &opts)
}

/// The TLS parameters of mysql_async's connection URL.
const URL_TLS_PARAMS: [&str; 4] = ["require_ssl", "verify_ca", "verify_identity", "built_in_roots"];

/// The URL's query parameters, `(key, value)`.
fn url_params(dsn: &str) -> impl Iterator<Item = (&str, &str)> {
    let query = dsn.split_once('?').map_or("", |(_, q)| q);
    query.split('&').filter(|p| !p.is_empty()).map(|p| p.split_once('=').unwrap_or((p, "")))
}

/// Whether the URL sets any TLS parameter (which would clash with a `tls:` block).
fn dsn_sets_tls(dsn: &str) -> bool {
    url_params(dsn).any(|(k, _)| URL_TLS_PARAMS.contains(&k))
}

/// A URL that asks for verification but not for TLS would connect in plaintext
/// (mysql_async only encrypts with `require_ssl=true`): refused, never silently
/// unencrypted.
fn check_url_tls(dsn: &str, opts: &Opts) -> Result<(), CheckError> {
    if opts.ssl_opts().is_some() {
        return Ok(());
    }
    match url_params(dsn).find(|(k, v)| matches!(*k, "verify_ca" | "verify_identity") && *v == "true") {
        Some((k, _)) => Err(CheckError::new(
            NodeField::Dsn,
            format!(
                "{k}=true asks for TLS, but without require_ssl=true the driver would connect unencrypted: add require_ssl=true (or use a tls: block)"
            ),
        )),
        None => Ok(()),
    }
}

/// mysql_async's TLS options for a node's `tls:` block (`None` for disable),
/// from the files' contents read at load.
fn ssl_opts(tls: &Tls) -> Option<SslOpts> {
    let mut opts = SslOpts::default();
    if let Some(ca) = &tls.ca_pem {
        opts = opts.with_root_certs(vec![ca.to_vec().into()]);
    }
    if let Some((cert, key)) = &tls.client_pem {
        opts =
            opts.with_client_identity(Some(ClientIdentity::new(cert.to_vec().into(), key.to_vec().into())));
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

/// The driver's options for a node (TLS and password included), and the account's user.
fn opts(endpoint: &Endpoint, settings: &Settings) -> Result<(OptsBuilder, String), EngineError> {
    let opts = Opts::from_url(&endpoint.dsn).map_err(|e| EngineError::new(ErrorKind::Connect, e.to_string()))?;
    let user = opts.user().unwrap_or_default().to_owned();
    let password = endpoint.password.read().map_err(|e| EngineError::new(ErrorKind::Auth, e.to_string()))?;
    // Given here, the driver does not ask the server for them: one round trip
    // less per session. Our packets are tiny; no session is ever pooled.
    let opts = OptsBuilder::from_opts(opts)
        .pass(password)
        .prefer_socket(false)
        .max_allowed_packet(Some(16 << 20))
        // A session whose exporter vanished must not keep the node's write
        // lease: the server drops it after this long without a statement.
        .wait_timeout(Some(super::lease_idle_timeout(settings.interval).as_secs() as usize));
    // A tls: block decides; without one the URL's own TLS options stay
    // (require_ssl=true, verify_ca, verify_identity, built_in_roots).
    let opts = match &endpoint.tls {
        Some(tls) => opts.ssl_opts(ssl_opts(tls)),
        None => opts,
    };
    Ok((opts, user))
}

pub struct MySession {
    conn: Conn,
    server: Server,
    user: String,
    table: TableName,
    format: HeartbeatFormat,
    create_table: bool,
    node: String,
    region: String,
    /// Whether our heartbeat row is known to exist (the UPDATE then suffices).
    row_ready: bool,
    /// Whether this session wrote the row's region and identity already.
    row_current: bool,
    /// Whether this session holds the node's write lease ([`super::lease_name`]).
    leased: bool,
}

/// Microseconds since the epoch of a DATETIME or TIMESTAMP expression read in a
/// session pinned to UTC. Unlike `UNIX_TIMESTAMP()`, which MariaDB 10.11 answers
/// with NULL for a DATETIME past 2038 (and with 0 for a TIMESTAMP's zero date),
/// it reads every date a column can hold, and NULL only for what is no date.
fn epoch_us(expr: &str) -> String {
    format!("TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', {expr})")
}

/// The server's clock, microseconds since the epoch, whatever the session's zone.
const NOW_US: &str = "TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', UTC_TIMESTAMP(6))";

/// A string as an SQL literal. Tick statements travel as one multi-statement text
/// query (one round trip), so values are inlined, escaped by the driver's rules.
fn literal(s: &str) -> String {
    mysql_async::Value::from(s).as_sql(false)
}

/// The parts of a tick. The server runs them in the order of [`MySession::tick`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Part {
    Probe,
    Read,
    /// Take the node's write lease (before this session's first write).
    Lease,
    Write,
    Native,
}

/// One statement's answer within a multi-statement query.
struct Answer {
    rows: Vec<Row>,
    affected: u64,
    /// When it arrived.
    at: Instant,
}

/// Runs `statements` as one multi-statement query: one round trip. Each answer is
/// pushed to `out` as it arrives, so a caller that gives up at a deadline keeps
/// what came. The server runs nothing after a failed statement: the error
/// returned belongs to statement `out.len()`.
async fn run_batch(
    conn: &mut Conn,
    statements: &[String],
    out: &mut Vec<Answer>,
) -> Result<(), mysql_async::Error> {
    let mut result = conn.query_iter(statements.join(";\n")).await?;
    for _ in statements {
        // This statement's header has been read: an UPDATE's count is here. A
        // statement that failed left its error pending, and reading its result
        // set returns it.
        let affected = result.affected_rows();
        // `reduce`, not `for_each` or `collect`: they skip a set whose error is pending.
        let rows = result
            .reduce(Vec::new(), |mut rows: Vec<Row>, row: Row| {
                rows.push(row);
                rows
            })
            .await?;
        out.push(Answer { rows, affected, at: Instant::now() });
    }
    Ok(())
}

impl Connection for MySession {
    fn tick<'a>(
        &'a mut self,
        plan: TickPlan,
        deadline: Duration,
        labels: &'a NodeLabels,
    ) -> BoxFuture<'a, TickOutcome> {
        Box::pin(MySession::tick(self, plan, deadline, labels))
    }

    fn position(&mut self, deadline: Duration) -> BoxFuture<'_, PositionOutcome> {
        Box::pin(MySession::position(self, deadline))
    }
}

impl MySession {
    pub async fn connect(endpoint: &Endpoint, settings: &Settings) -> Result<MySession, EngineError> {
        let (opts, user) = opts(endpoint, settings)?;
        let mut conn = Conn::new(opts).await.map_err(|e| classify(&e, None, ""))?;
        // Times are exchanged in UTC; a pt-heartbeat table written in local time is
        // read in the server's own zone, as pt-heartbeat reads it.
        // A statement waiting on a row lock or a metadata lock (a heartbeat under
        // FLUSH TABLES WITH READ LOCK, or an ALTER) gives up within a second of the
        // deadline (whole seconds are the finest these settings take), so an
        // abandoned write never holds a server thread for the default day or year.
        // MariaDB's max_statement_time, set below, ends it sooner; MySQL's
        // max_execution_time covers only SELECT, so there these are the bound.
        let lock_wait = settings.timeout.as_secs_f64().ceil().max(1.0);
        let zone = if settings.format != (HeartbeatFormat::PtHeartbeat { utc: false }) {
            "time_zone = '+00:00', "
        } else {
            ""
        };
        let mut answers = Vec::new();
        let sent = Instant::now();
        run_batch(
            &mut conn,
            &[
                "SELECT VERSION()".to_owned(),
                format!(
                    "SET {zone}SESSION innodb_lock_wait_timeout = {lock_wait}, SESSION lock_wait_timeout = {lock_wait}"
                ),
            ],
            &mut answers,
        )
        .await
        .map_err(|e| classify(&e, None, ""))?;
        let version: String =
            answers.first().and_then(|a| a.rows.first()).and_then(|r| col(r, 0)).unwrap_or_default();
        let server = Server::from_version_string(&version);
        // The server gives up on a statement before we do, so its answer, an error,
        // still arrives in time and the session stays usable.
        let limit = super::server_timeout(settings.timeout, sent.elapsed());
        let statement_timeout = if server.mariadb {
            format!("SET SESSION max_statement_time = {:.3}", limit.as_secs_f64())
        } else {
            format!("SET SESSION max_execution_time = {}", limit.as_millis().max(1))
        };
        conn.query_drop(statement_timeout).await.map_err(|e| classify(&e, Some(&server), &user))?;
        Ok(MySession {
            conn,
            server,
            user,
            table: settings.table.clone(),
            format: settings.format,
            create_table: settings.create_table,
            node: settings.node.clone(),
            region: settings.region.clone(),
            row_ready: false,
            row_current: false,
            leased: false,
        })
    }

    fn classify(&self, e: &mysql_async::Error) -> EngineError {
        classify(e, Some(&self.server), &self.user)
    }

    /// The identity this server's rows carry, as an SQL expression.
    fn identity_sql(&self) -> &'static str {
        if self.server.mariadb {
            "CAST(@@server_id AS CHAR)"
        } else {
            "@@server_uuid"
        }
    }

    fn statements(&self, part: Part) -> Vec<String> {
        let table = &self.table;
        match part {
            Part::Probe => vec![if self.server.mariadb {
                format!("SELECT @@global.read_only, 0, CAST(@@server_id AS CHAR), CAST(@@server_id AS CHAR), {NOW_US}, @@global.gtid_slave_pos")
            } else {
                format!(
                    "SELECT @@global.read_only, @@global.super_read_only, @@server_uuid, CAST(@@server_id AS CHAR), {NOW_US}"
                )
            }],
            Part::Read => {
                // The left join returns the clock even from an empty table; the limit
                // bounds what a flooded table can cost. The sequence travels as text
                // (an unsigned or decimal column may hold more than 64 bits); a time
                // that is no date reads NULL, told from a NULL column by the last one.
                vec![match self.format {
                    HeartbeatFormat::Rpo => format!(
                        "SELECT {NOW_US}, h.node, h.region, CAST(h.seq AS CHAR), {written}, h.identity,
                                h.written_at IS NULL
                         FROM (SELECT 1) AS one LEFT JOIN {table} AS h ON TRUE
                         ORDER BY h.node LIMIT 1000",
                        written = epoch_us("h.written_at"),
                    ),
                    // pt-heartbeat rows: a `ts` string and the writer's server_id.
                    HeartbeatFormat::PtHeartbeat { utc: true } => format!(
                        "SELECT {NOW_US}, NULL, NULL, NULL, {written}, CAST(h.server_id AS CHAR), h.ts IS NULL
                         FROM (SELECT 1) AS one LEFT JOIN {table} AS h ON TRUE
                         ORDER BY h.server_id LIMIT 1000",
                        written = epoch_us("h.ts"),
                    ),
                    // In local time, only the server's zone rules turn ts into an
                    // instant; what they cannot (unparsable, outside 1970–2038 on
                    // MariaDB 10.11) reads 0 or NULL, never the epoch.
                    HeartbeatFormat::PtHeartbeat { utc: false } => format!(
                        "SELECT {NOW_US}, NULL, NULL, NULL,
                                CAST(NULLIF(UNIX_TIMESTAMP(h.ts), 0) * 1000000 AS SIGNED), CAST(h.server_id AS CHAR),
                                h.ts IS NULL
                         FROM (SELECT 1) AS one LEFT JOIN {table} AS h ON TRUE
                         ORDER BY h.server_id LIMIT 1000"
                    ),
                }]
            }
            // A session lock, named within MySQL's 64 characters.
            Part::Lease => vec![format!(
                "SELECT GET_LOCK(CONCAT('rpo-exporter:', MD5({})), 0)",
                literal(&super::lease_name(&self.table, &self.node))
            )],
            Part::Write => {
                let (node, region, identity) =
                    (literal(&self.node), literal(&self.region), self.identity_sql());
                let mut out = Vec::new();
                if !self.row_ready {
                    // Creates our row once per session; a no-op (and nothing in the
                    // binlog) when it exists.
                    out.push(format!(
                        "INSERT IGNORE INTO {table} (node, region, seq, written_at, identity)
                         VALUES ({node}, {region}, 0, UTC_TIMESTAMP(6), {identity})"
                    ));
                }
                // One small UPDATE per heartbeat, never on a read-only server (an
                // account with SUPER would pass read_only and break replication).
                // LAST_INSERT_ID(expr) remembers the sequence it wrote in this
                // session, so the SELECT returns exactly this write, in the same
                // round trip, without a transaction. The statement's text goes
                // into the binlog with every heartbeat (MariaDB annotates row
                // events with it), so it is kept short: region and identity are
                // set once per session, as neither changes within one.
                let set = if self.row_current {
                    String::new()
                } else {
                    format!("region={region},identity={identity},")
                };
                out.push(format!(
                    "UPDATE {table} SET {set}seq=LAST_INSERT_ID(seq+1),written_at=UTC_TIMESTAMP(6) WHERE node={node} AND @@global.read_only=0"
                ));
                // The time read back exactly as the read computes it, so a replica's
                // row matches this write to the microsecond.
                out.push(format!(
                    "SELECT seq, {} FROM {table} WHERE node = {node} AND seq = LAST_INSERT_ID()",
                    epoch_us("written_at")
                ));
                out
            }
            Part::Native => vec![
                self.server.replica_status_sql().to_owned(),
                if self.server.mariadb {
                    "SELECT @@global.gtid_binlog_pos"
                } else {
                    "SELECT @@global.gtid_executed"
                }
                .to_owned(),
            ],
        }
    }

    pub async fn tick(&mut self, plan: TickPlan, deadline: Duration, labels: &NodeLabels) -> TickOutcome {
        let start = Instant::now();
        let mut outcome = TickOutcome::default();
        let mut parts: Vec<Part> = [
            (plan.probe, Part::Probe),
            (plan.read, Part::Read),
            (plan.native, Part::Native),
            (plan.write && self.format.writes(), if self.leased { Part::Write } else { Part::Lease }),
        ]
        .into_iter()
        .filter_map(|(wanted, part)| wanted.then_some(part))
        .collect();
        let mut created = false;
        // Normally one batch. A statement that fails stops the server's batch; the
        // parts after it go again in a batch of their own, so one failing step
        // costs the others a round trip, never their readings. The write goes
        // last: waiting on a lock, it holds back nobody.
        while !parts.is_empty() {
            let planned: Vec<(Part, Vec<String>)> = parts.iter().map(|&p| (p, self.statements(p))).collect();
            let statements: Vec<String> = planned.iter().flat_map(|(_, s)| s.iter().cloned()).collect();
            let mut answers = Vec::new();
            let left = deadline.saturating_sub(start.elapsed());
            let (sent, batch_start) = (mono_now(), Instant::now());
            let ran = tokio::time::timeout(left, run_batch(&mut self.conn, &statements, &mut answers)).await;
            let ended = batch_start.elapsed().as_secs_f64();
            let failure = match &ran {
                Ok(Ok(())) => None,
                Ok(Err(e)) => Some(self.classify(e)),
                Err(_) => Some(EngineError::timeout("the query", deadline)),
            };
            // The deadline passed, or the connection failed: the driver is left in
            // the middle of a reply, or has no connection at all.
            let broken = ran.is_err() || failure.as_ref().is_some_and(|e| e.kind.is_connection());
            let mut answers = answers.into_iter();
            let mut next_parts = Vec::new();
            for (i, (part, stmts)) in planned.iter().enumerate() {
                let n = stmts.len();
                let got: Vec<Answer> = answers.by_ref().take(n).collect();
                if *part == Part::Write && n == 3 && !got.is_empty() {
                    // The INSERT IGNORE answered: the row exists now.
                    self.row_ready = true;
                }
                if got.len() == n {
                    let took = got.last().map_or(ended, |a| a.at.duration_since(batch_start).as_secs_f64());
                    self.store(&mut outcome, *part, got, sent, took, labels);
                    continue;
                }
                // This part holds the statement that failed, or missed the deadline.
                let e = failure.clone().unwrap_or_else(|| {
                    EngineError::new(ErrorKind::Query, "the server sent fewer answers than statements")
                });
                if !broken {
                    // The server ran nothing after this statement.
                    next_parts = planned[i + 1..].iter().map(|(p, _)| *p).collect();
                }
                if *part == Part::Write && e.kind == ErrorKind::MissingTable && self.create_table && !created
                {
                    created = true;
                    match self.create(deadline.saturating_sub(start.elapsed())).await {
                        Ok(()) => next_parts.insert(0, Part::Write),
                        Err(e) => set(&mut outcome, *part, e, sent, ended),
                    }
                } else {
                    set(&mut outcome, *part, e.clone(), sent, ended);
                }
                if broken {
                    // Every later part missed the deadline too, or lost the connection.
                    for (p, _) in &planned[i + 1..] {
                        set(&mut outcome, *p, e.clone(), sent, ended);
                    }
                }
                break;
            }
            // The lease just taken: this tick's write follows at once.
            if self.leased && outcome.write.is_none() && planned.iter().any(|(p, _)| *p == Part::Lease) {
                next_parts.push(Part::Write);
            }
            if broken || start.elapsed() >= deadline {
                outcome.broken |= broken;
                for p in next_parts {
                    set(&mut outcome, p, EngineError::timeout("the query", deadline), sent, ended);
                }
                break;
            }
            parts = next_parts;
        }
        outcome
    }

    /// Turns a part's answers (one per statement of [`Self::statements`]) into its
    /// step.
    fn store(
        &mut self,
        outcome: &mut TickOutcome,
        part: Part,
        got: Vec<Answer>,
        sent: f64,
        took: f64,
        labels: &NodeLabels,
    ) {
        let short = || EngineError::new(ErrorKind::Query, "the server sent fewer answers than statements");
        match (part, &got[..]) {
            (Part::Probe, [probe]) => outcome.probe = Some(Step::new(self.parse_probe(probe), sent, took)),
            (Part::Read, [read]) => outcome.read = Some(Step::new(Ok(parse_read(read)), sent, took)),
            (Part::Lease, [lease]) => {
                self.leased = lease.rows.first().and_then(|r| col::<i64, _>(r, 0)) == Some(1);
                if !self.leased {
                    outcome.write = Some(Step::new(Ok(WriteOutcome::HeldElsewhere), sent, took));
                }
            }
            (Part::Write, [.., update, select]) => {
                let result = self.parse_write(outcome, update, select).map(WriteOutcome::Written);
                outcome.write = Some(Step::new(result, sent, took));
            }
            (Part::Native, [status, binlog]) => {
                let samples = self.parse_native(&status.rows, &binlog.rows, labels);
                outcome.native = Some(Step::new(Ok(samples), sent, took));
            }
            (part, _) => set(outcome, part, short(), sent, took),
        }
    }

    /// The heartbeat the UPDATE wrote, as its SELECT read it back. No row updated
    /// is a read-only server (this tick's probe says so) or a vanished row.
    fn parse_write(
        &mut self,
        outcome: &TickOutcome,
        update: &Answer,
        select: &Answer,
    ) -> Result<Written, EngineError> {
        if update.affected == 0 {
            let read_only =
                outcome.probe.as_ref().and_then(|p| p.result.as_ref().ok()).is_some_and(|p| !p.writable);
            if read_only {
                return Err(EngineError::new(
                    ErrorKind::ReadOnly,
                    "the node is read-only; no heartbeat written",
                ));
            }
            self.row_ready = false;
            self.row_current = false;
            return Err(EngineError::new(
                ErrorKind::Query,
                format!(
                    "heartbeat row for {} in {} vanished, or the server turned read-only; it is recreated on the next write",
                    self.node, self.table
                ),
            ));
        }
        self.row_current = true;
        select
            .rows
            .first()
            .map(|row| Written {
                seq: col(row, 0).unwrap_or_default(),
                written_us: col(row, 1).unwrap_or_default(),
            })
            .ok_or_else(|| EngineError::new(ErrorKind::Query, "heartbeat row not readable after its update"))
    }

    fn parse_probe(&self, answer: &Answer) -> Result<Probe, EngineError> {
        let row = answer
            .rows
            .first()
            .ok_or_else(|| EngineError::new(ErrorKind::Query, "role probe returned no row"))?;
        let read_only =
            col::<i64, usize>(row, 0).unwrap_or(1) != 0 || col::<i64, usize>(row, 1).unwrap_or(0) != 0;
        let identity: String = col(row, 2).unwrap_or_default();
        let server_id: String = col(row, 3).unwrap_or_default();
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
            db_now_us: col(row, 4).unwrap_or_default(),
            applied: self
                .server
                .mariadb
                .then(|| col::<String, usize>(row, 5))
                .flatten()
                .map(|p| gtid_position(&p))
                .filter(|p| *p != CommitPosition::Gtid(Vec::new())),
        })
    }

    /// Creates the missing heartbeat table (`heartbeat.create_table`).
    async fn create(&mut self, left: Duration) -> Result<(), EngineError> {
        let table = self.table.clone();
        let hint = format!(
            "run the statements printed by `rpo-exporter schema mysql --table {table} --server {}` as an administrator",
            if self.server.mariadb { "mariadb-X.Y" } else { "mysql-X.Y" }
        );
        let ddl = schema_sql(&table, "unused", "%", &self.server);
        let ddl = ddl.split("-- Least privilege").next().unwrap_or_default().to_owned();
        let done = match tokio::time::timeout(left, self.conn.query_drop(ddl)).await {
            Ok(done) => done,
            Err(_) => return Err(EngineError::timeout("creating the heartbeat table", left)),
        };
        done.map_err(|e| {
            let err = self.classify(&e);
            let kind = if err.kind == ErrorKind::Permission { ErrorKind::MissingTable } else { err.kind };
            EngineError::new(kind, format!("cannot create heartbeat table {table}: {}; {hint}", err.message))
        })?;
        tracing::info!(table = %table, "Created heartbeat table");
        Ok(())
    }

    /// MariaDB's `@@gtid_binlog_pos` and `@@gtid_slave_pos` as
    /// [`CommitPosition`]s. MySQL's GTID sets (server UUIDs with intervals, which
    /// a replica may fill out of order) are no position: none, without a query.
    async fn position(&mut self, deadline: Duration) -> PositionOutcome {
        let (sent, start) = (mono_now(), Instant::now());
        let done = |result, broken| PositionOutcome {
            step: Step::new(result, sent, start.elapsed().as_secs_f64()),
            broken,
        };
        if !self.server.mariadb {
            return done(Ok(Positions::default()), false);
        }
        let read = self.conn.query_first::<(Option<String>, Option<String>), _>(
            "SELECT @@global.gtid_binlog_pos, @@global.gtid_slave_pos",
        );
        match tokio::time::timeout(deadline, read).await {
            Ok(Ok(pos)) => {
                let (binlog, slave) = pos.unwrap_or_default();
                let applied = gtid_position(slave.as_deref().unwrap_or_default());
                done(
                    Ok(Positions {
                        committed: Some(gtid_position(binlog.as_deref().unwrap_or_default())),
                        applied: Some(applied).filter(|p| *p != CommitPosition::Gtid(Vec::new())),
                        supported: true,
                    }),
                    false,
                )
            }
            Ok(Err(e)) => {
                let e = self.classify(&e);
                let broken = e.kind.is_connection();
                done(Err(e), broken)
            }
            // The driver is left in the middle of a reply.
            Err(_) => done(Err(EngineError::timeout("reading the GTID position", deadline)), true),
        }
    }

    fn parse_native(&self, status: &[Row], binlog: &[Row], labels: &NodeLabels) -> Vec<Sample> {
        let mut out = Vec::new();
        let mut seen = HashSet::new();
        for row in status {
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
        let binlog: Option<String> = binlog.first().and_then(|r| col(r, 0));
        for (domain, seq) in gtid_positions(binlog.as_deref().unwrap_or_default()) {
            out.push(sample(&BINLOG_POS, labels.with(&[&domain]), seq as f64));
        }
        out
    }
}

fn parse_read(answer: &Answer) -> HeartbeatRead {
    let db_now_us = answer.rows.first().and_then(|r| col::<i64, usize>(r, 0)).unwrap_or_default();
    let rows = answer
        .rows
        .iter()
        .filter(|r| col::<String, usize>(r, 1).is_some() || col::<String, usize>(r, 5).is_some())
        .map(|r| HeartbeatRow {
            node: col(r, 1),
            region: col(r, 2),
            seq: super::parse_seq(col::<String, usize>(r, 3).as_deref()),
            written_us: match (col::<i64, usize>(r, 4), col::<i64, usize>(r, 6)) {
                (_, Some(1)) => Field::Null,
                (Some(us), _) => Field::Int(us),
                (None, _) => Field::Invalid,
            },
            identity: col(r, 5),
        })
        .collect();
    HeartbeatRead { rows, db_now_us }
}

/// Records a failed step.
fn set(outcome: &mut TickOutcome, part: Part, e: EngineError, sent: f64, took: f64) {
    match part {
        Part::Probe => outcome.probe = Some(Step::new(Err(e), sent, took)),
        Part::Read => outcome.read = Some(Step::new(Err(e), sent, took)),
        Part::Lease | Part::Write => outcome.write = Some(Step::new(Err(e), sent, took)),
        Part::Native => outcome.native = Some(Step::new(Err(e), sent, took)),
    }
}

fn sample(desc: &'static MetricDesc, values: Vec<String>, value: f64) -> Sample {
    Sample { desc, values, value }
}

/// A MariaDB GTID position (`0-1-100,1-2-7`) as a [`CommitPosition`]: the
/// highest sequence per numeric domain, sorted by domain.
fn gtid_position(pos: &str) -> CommitPosition {
    let mut domains: Vec<(u32, u64)> =
        gtid_positions(pos).into_iter().filter_map(|(d, seq)| Some((d.parse().ok()?, seq))).collect();
    domains.sort_unstable();
    CommitPosition::Gtid(domains)
}

/// A MariaDB replica's executed position (`Gtid_Slave_Pos`, the same on every
/// channel) from the samples of its native step; `None` on MySQL (its sets are
/// keyed by server UUID) or where the replica reports none.
pub fn replica_position(native: &[Sample]) -> Option<CommitPosition> {
    let mut domains: Vec<(u32, u64)> = Vec::new();
    for s in native.iter().filter(|s| std::ptr::eq(s.desc, &GTID_POS)) {
        let (Some("executed"), Some(domain)) = (s.values.get(4).map(String::as_str), s.values.get(5)) else {
            continue;
        };
        let Ok(domain) = domain.parse::<u32>() else { return None };
        let seq = s.value as u64;
        match domains.iter_mut().find(|(d, _)| *d == domain) {
            Some(entry) => entry.1 = entry.1.max(seq),
            None => domains.push((domain, seq)),
        }
    }
    if domains.is_empty() {
        return None;
    }
    domains.sort_unstable();
    Some(CommitPosition::Gtid(domains))
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
        E::Driver(mysql_async::DriverError::NoClientSslFlagFromServer) => EngineError::new(
            ErrorKind::Tls,
            "the server does not offer TLS, which this node's settings require (tls: or require_ssl=true)",
        ),
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
    fn gtid_positions_compare_as_commit_positions() {
        let p = gtid_position("1-2-7,0-1-100,0-3-90");
        assert_eq!(p, CommitPosition::Gtid(vec![(0, 100), (1, 7)]));
        assert_eq!(gtid_position(""), CommitPosition::Gtid(vec![]));
        let labels = NodeLabels { cluster: "c".into(), node: "r".into(), region: "x".into() };
        let pos = |stage: &str, domain: &str, seq: f64| Sample {
            desc: &GTID_POS,
            values: labels.with(&["default", stage, domain]),
            value: seq,
        };
        let native = [pos("received", "0", 120.0), pos("executed", "0", 99.0), pos("executed", "1", 7.0)];
        let replica = replica_position(&native).unwrap();
        assert_eq!(replica, CommitPosition::Gtid(vec![(0, 99), (1, 7)]));
        assert!(p.ahead_of(&replica));
        assert_eq!(replica_position(&[pos("executed", "3e11fa47-71ca-11e1-9e33-c80aa9429562", 5.0)]), None);
        assert_eq!(replica_position(&[pos("received", "0", 5.0)]), None);
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
    fn replication_filters() {
        let one = |t: &str| TableMatch { schema: "pii".into(), tables: Tables::One(t.into()) };
        let all = TableMatch { schema: "pii".into(), tables: Tables::All };
        let f = |wild_ignore: &[&str]| Filters {
            wild_ignore_table: wild_ignore.iter().map(|s| (*s).to_owned()).collect(),
            ..Filters::default()
        };
        assert!(Filters::default().lets_through(&one("customers")));
        assert!(Filters::default().lets_through(&all));
        assert!(!f(&["pii.%"]).lets_through(&one("customers")));
        assert!(!f(&["pii.%"]).lets_through(&all));
        assert!(!f(&["p_i.cust%"]).lets_through(&one("customers")));
        assert!(f(&["pii.cust%"]).lets_through(&all), "not every table of pii is ignored");
        assert!(f(&["other.%"]).lets_through(&one("customers")));
        let ignore_db = Filters { ignore_db: vec!["pii".into()], ..Filters::default() };
        assert!(!ignore_db.lets_through(&all));
        let do_db = Filters { do_db: vec!["shop".into()], ..Filters::default() };
        assert!(!do_db.lets_through(&one("customers")));
        let do_table = Filters { do_table: vec!["shop.orders".into()], ..Filters::default() };
        assert!(!do_table.lets_through(&one("customers")) && !do_table.lets_through(&all));
        let both = Filters {
            wild_do_table: vec!["pii.%".into()],
            wild_ignore_table: vec!["pii.customers".into()],
            ..Filters::default()
        };
        assert!(both.lets_through(&one("customers")), "wild do is evaluated before wild ignore");
    }

    #[test]
    fn dsn_checks() {
        assert!(check_dsn("mysql://rpo@127.0.0.1:3306/").is_ok());
        let e = check_dsn("mysql://rpo:hunter2@127.0.0.1:3306/").unwrap_err().problem;
        assert!(e.contains("contains a password") && !e.contains("hunter2"), "{e}");
        assert!(check_dsn("mysql://127.0.0.1:3306/").unwrap_err().problem.contains("no user"));
        assert!(check_dsn("host=127.0.0.1 user=x").unwrap_err().problem.contains("not a valid MySQL connection URL"));
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
