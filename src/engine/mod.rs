//! Database engines behind one small interface.
//!
//! Everything an engine must do for the exporter is a method of [`Session`]:
//! connect, probe the node's role and clock, make sure the heartbeat table exists,
//! write a heartbeat, read every heartbeat row, and read the engine's own
//! replication signals. Each engine lives in its own module and is the only place
//! that knows its SQL; adding an engine adds a module and a variant here. Errors
//! are reduced to a bounded [`ErrorKind`] (a label value) plus a message that never
//! carries a credential.

pub mod mysql;
pub mod postgres;
pub(crate) mod tls;

use crate::config::{Heartbeat, Node, TableName};
pub use crate::heartbeat::Field;
use crate::metrics::{MetricDesc, Sample};
use std::fmt;
use std::time::Duration;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum EngineKind {
    Postgres,
    /// MySQL 8.x and MariaDB 10.x/11.x; the flavour is discovered at connect.
    Mysql,
}

impl EngineKind {
    pub const ALL: &'static [EngineKind] = &[EngineKind::Postgres, EngineKind::Mysql];

    pub fn as_str(self) -> &'static str {
        match self {
            EngineKind::Postgres => "postgres",
            EngineKind::Mysql => "mysql",
        }
    }

    /// Checks a DSN without connecting: it must parse and must not hold a password.
    pub fn check_dsn(self, dsn: &str) -> Result<(), String> {
        match self {
            EngineKind::Postgres => postgres::check_dsn(dsn),
            EngineKind::Mysql => mysql::check_dsn(dsn),
        }
    }

    /// The heartbeat table's DDL and the least-privilege grants for `role`.
    /// For MySQL, `server` names the flavour and version where grants differ
    /// (`mariadb-10.11`, `mysql-8.0`; default `mariadb-10.11`) and `host` the
    /// account's host part (default `%`).
    pub fn schema_sql(
        self,
        table: &TableName,
        role: &str,
        server: Option<&str>,
        host: Option<&str>,
    ) -> Result<String, String> {
        match self {
            EngineKind::Postgres => match (server, host) {
                (None, None) => Ok(postgres::schema_sql(table, role)),
                _ => Err("--server and --host apply to mysql only".into()),
            },
            EngineKind::Mysql => {
                let server = mysql::Server::parse(server.unwrap_or("mariadb-10.11"))?;
                let host = host.unwrap_or("%");
                if host.is_empty() || host.contains(['\'', '\\', '`', ' ']) {
                    return Err(format!("--host {host:?} is not an account host"));
                }
                Ok(mysql::schema_sql(table, role, host, &server))
            }
        }
    }

    /// Whether the DSN itself chooses TLS settings (which would then clash
    /// with a node's `tls:` block).
    pub fn dsn_sets_tls(self, dsn: &str) -> bool {
        match self {
            EngineKind::Postgres => postgres::dsn_sets_tls(dsn),
            EngineKind::Mysql => mysql::dsn_sets_tls(dsn),
        }
    }

    /// Whether the engine can read a pt-heartbeat table.
    pub fn reads_pt_heartbeat(self) -> bool {
        self == EngineKind::Mysql
    }

    /// The engine's own metric families.
    pub fn metrics(self) -> &'static [&'static MetricDesc] {
        match self {
            EngineKind::Postgres => postgres::METRICS,
            EngineKind::Mysql => mysql::METRICS,
        }
    }
}

impl std::str::FromStr for EngineKind {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, String> {
        match s {
            "postgres" => Ok(EngineKind::Postgres),
            "mysql" => Ok(EngineKind::Mysql),
            other => {
                Err(format!("unknown engine {other:?}: expected postgres or mysql (which covers MariaDB)"))
            }
        }
    }
}

/// A name read from a database (a standby, a replication channel) made fit to
/// be a label value: at most 48 characters, unsafe ones replaced, and unique
/// within `seen` by a `-N` suffix so two series never collide.
pub(crate) fn unique_label(name: &str, seen: &mut std::collections::HashSet<String>) -> String {
    let base: String = name
        .chars()
        .take(48)
        .map(|c| if c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.') { c } else { '_' })
        .collect();
    let mut label = base.clone();
    let mut n = 2;
    while !seen.insert(label.clone()) {
        label = format!("{base}-{n}");
        n += 1;
    }
    label
}

/// A heartbeat sequence as the server wrote it in text: an integer in 64 bits, or
/// a decimal with only zeros after the point (a `numeric`/`DECIMAL` column); NaN,
/// a fraction, or a value beyond 64 bits is [`Field::Invalid`].
pub(crate) fn parse_seq(text: Option<&str>) -> Field {
    let Some(text) = text.map(str::trim) else {
        return Field::Null;
    };
    let whole = match text.split_once('.') {
        Some((whole, fraction)) if fraction.bytes().all(|b| b == b'0') => whole,
        Some(_) => return Field::Invalid,
        None => text,
    };
    whole.parse().map_or(Field::Invalid, Field::Int)
}

/// Bounded reasons a database operation fails; used as the `reason` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorKind {
    /// The server could not be reached or the connection broke.
    Connect,
    /// The server refused our credentials.
    Auth,
    /// No answer within the configured timeout.
    Timeout,
    /// The account lacks a privilege.
    Permission,
    /// The heartbeat table does not exist.
    MissingTable,
    /// A write was refused because the node is read-only (a role change under us).
    ReadOnly,
    /// The TLS handshake failed (untrusted or mismatched certificate, no TLS).
    Tls,
    /// Anything else the server or the driver reported.
    Query,
}

impl ErrorKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorKind::Connect => "connect",
            ErrorKind::Auth => "auth",
            ErrorKind::Timeout => "timeout",
            ErrorKind::Permission => "permission",
            ErrorKind::MissingTable => "missing_table",
            ErrorKind::ReadOnly => "read_only",
            ErrorKind::Tls => "tls",
            ErrorKind::Query => "query",
        }
    }

    /// Whether the connection itself failed (as opposed to one statement).
    pub fn is_connection(self) -> bool {
        matches!(self, ErrorKind::Connect | ErrorKind::Auth | ErrorKind::Tls)
    }
}

/// A failed database operation: a bounded kind and a message for the log.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EngineError {
    pub kind: ErrorKind,
    pub message: String,
}

impl EngineError {
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        EngineError { kind, message: message.into() }
    }

    pub fn timeout(what: &str, after: Duration) -> Self {
        EngineError::new(
            ErrorKind::Timeout,
            format!("{what} timed out after {}", humantime::format_duration(after)),
        )
    }
}

impl fmt::Display for EngineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for EngineError {}

/// A node's role and identity, with its clock read during the same round trip.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Probe {
    pub writable: bool,
    /// The server's identity (PostgreSQL system identifier).
    pub identity: String,
    /// The identity heartbeat rows replicated to this node must carry, when the
    /// engine's replication preserves it (PostgreSQL physical replication does).
    pub expected_row_identity: Option<String>,
    /// Every identity under which this server's heartbeat rows may appear
    /// (MySQL: its server_uuid and its server_id, which pt-heartbeat uses).
    pub aliases: Vec<String>,
    pub db_now_us: i64,
}

/// One heartbeat row as stored; any field may be missing in a damaged table, and
/// the integer ones may hold what no `i64` is (see [`Field`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatRow {
    pub node: Option<String>,
    pub region: Option<String>,
    pub seq: Field,
    /// µs since the epoch on the writer's clock, computed by the server.
    pub written_us: Field,
    pub identity: Option<String>,
}

/// Every heartbeat row visible on a node, and the node's clock at the read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeartbeatRead {
    pub rows: Vec<HeartbeatRow>,
    pub db_now_us: i64,
}

/// A heartbeat that was committed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Written {
    pub seq: i64,
    pub written_us: i64,
}

/// The labels every native sample starts with.
#[derive(Debug, Clone)]
pub struct NodeLabels {
    pub cluster: String,
    pub node: String,
    pub region: String,
}

impl NodeLabels {
    /// The node labels followed by `extra`, for a family whose labels extend [`crate::metrics::NODE`].
    pub fn with(&self, extra: &[&str]) -> Vec<String> {
        let mut v = vec![self.cluster.clone(), self.node.clone(), self.region.clone()];
        v.extend(extra.iter().map(|s| (*s).to_owned()));
        v
    }
}

/// How long the server may run one statement before it gives up, for a client
/// `deadline` and a measured round trip: the server's answer (an error) must still
/// arrive within the deadline, so a lock wait fails its own step and the session
/// stays usable. Never less than half the deadline, which holds any round trip up to
/// a quarter of it (300 ms under the default 750 ms timeout, 600 ms under the
/// smallest timeout `check-config` accepts without a warning for a cluster spanning
/// regions); with less distance the server gets the rest, less a margin.
pub fn server_timeout(deadline: Duration, rtt: Duration) -> Duration {
    let spare = deadline.saturating_sub(rtt * 2 + Duration::from_millis(100));
    spare.max(deadline / 2).max(Duration::from_millis(1))
}

/// What one tick asks of a node. The engine sends every step at once where it
/// can (PostgreSQL pipelines them on its one connection, MySQL sends them as one
/// multi-statement query), so a tick costs one round trip however far the node is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct TickPlan {
    /// Role, identity and clock.
    pub probe: bool,
    /// Every heartbeat row the node shows, and its clock.
    pub read: bool,
    /// Write this node's heartbeat (it was writable when last probed).
    pub write: bool,
    /// The engine's native replication signals.
    pub native: bool,
}

/// One step's answer, and when: its request was sent at `sent`
/// ([`crate::heartbeat::mono_now`] seconds) and answered `took` seconds later, so
/// the server ran it within `[sent, sent + took]`.
#[derive(Debug)]
pub struct Step<T> {
    pub result: Result<T, EngineError>,
    pub sent: f64,
    pub took: f64,
}

impl<T> Step<T> {
    pub fn new(result: Result<T, EngineError>, sent: f64, took: f64) -> Self {
        Step { result, sent, took }
    }
}

/// What one tick brought back: one answer per planned step, each independent of
/// the others, so a step that fails or times out hides only its own readings.
#[derive(Debug, Default)]
pub struct TickOutcome {
    pub probe: Option<Step<Probe>>,
    pub read: Option<Step<HeartbeatRead>>,
    pub write: Option<Step<Written>>,
    pub native: Option<Step<Vec<Sample>>>,
    /// The session cannot serve another tick: the connection broke, or the driver
    /// was left in the middle of a reply at the deadline.
    pub broken: bool,
}

/// An open connection to one node.
pub enum Session {
    Postgres(postgres::PgSession),
    Mysql(mysql::MySession),
}

impl Session {
    /// Connects to `node`; the caller bounds the time it may take. Everything a
    /// tick needs once per session (settings, identity, prepared statements) is
    /// done here, in as few round trips as the engine allows.
    pub async fn connect(node: &Node, heartbeat: &Heartbeat) -> Result<Session, EngineError> {
        match node.engine {
            EngineKind::Postgres => {
                Ok(Session::Postgres(postgres::PgSession::connect(node, heartbeat).await?))
            }
            EngineKind::Mysql => Ok(Session::Mysql(mysql::MySession::connect(node, heartbeat).await?)),
        }
    }

    /// Runs the planned steps, each bounded by `deadline`. A step that misses it
    /// answers [`ErrorKind::Timeout`]; the others keep their answers.
    pub async fn tick(&mut self, plan: TickPlan, deadline: Duration, labels: &NodeLabels) -> TickOutcome {
        match self {
            Session::Postgres(s) => s.tick(plan, deadline, labels).await,
            Session::Mysql(s) => s.tick(plan, deadline, labels).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_read_from_text() {
        let cases = [
            (None, Field::Null),
            (Some("42"), Field::Int(42)),
            (Some("-3"), Field::Int(-3)),
            (Some("42.000"), Field::Int(42)),
            (Some("9223372036854775807"), Field::Int(i64::MAX)),
            (Some("9223372036854775808"), Field::Invalid),
            (Some("18446744073709551615"), Field::Invalid),
            (Some("1e30"), Field::Invalid),
            (Some("42.5"), Field::Invalid),
            (Some("NaN"), Field::Invalid),
            (Some("Infinity"), Field::Invalid),
            (Some(""), Field::Invalid),
        ];
        for (text, want) in cases {
            assert_eq!(parse_seq(text), want, "{text:?}");
        }
    }

    #[test]
    fn the_server_gives_up_in_time_for_its_answer_to_arrive() {
        let ms = Duration::from_millis;
        assert_eq!(server_timeout(ms(750), ms(1)), ms(648));
        assert_eq!(server_timeout(ms(750), ms(150)), ms(375));
        assert_eq!(server_timeout(ms(750), ms(300)), ms(375));
        assert_eq!(server_timeout(ms(5000), ms(300)), ms(4300));
        assert_eq!(server_timeout(ms(1), ms(0)), ms(1));
    }
}
