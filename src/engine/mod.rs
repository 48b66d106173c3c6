//! Database engines behind one small interface, and their registry.
//!
//! An engine is a module with a unit type implementing [`Engine`]: the checks of
//! an [`Endpoint`] it can make without connecting (run when the config is loaded),
//! connecting, the heartbeat table's DDL and grants, and its own metric families.
//! An open connection is a [`Session`] whose method `tick` probes the node's
//! role and clock, reads and writes heartbeats and reads the engine's own
//! replication signals in one round trip; `position` reads the node's commit
//! position between ticks. Each engine is the only place that knows
//! its SQL. Adding an engine adds a module and one line to [`ENGINES`] (the recipe
//! is in ARCHITECTURE.md). Errors are reduced to a bounded [`ErrorKind`] (a label
//! value) plus a message that never carries a credential.

pub(crate) mod tls;

use crate::endpoint::{Endpoint, HeartbeatFormat, Replication, Settings, TableMatch, TableName};
use crate::heartbeat::CommitPosition;
pub use crate::heartbeat::Field;
use crate::metrics::{MetricDesc, Sample};
use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::time::Duration;

/// Declares each engine's module and lists its unit type in [`ENGINES`].
macro_rules! registry {
    ($($module:ident => $engine:ident,)*) => {
        $(pub mod $module;)*
        /// Every engine the exporter knows: a node's `engine:` names one of them.
        pub static ENGINES: &[&dyn Engine] = &[$(&$module::$engine),*];
    };
}

// The registry: one line per engine, its module (`src/engine/NAME.rs`) and the
// type in it that implements [`Engine`].
registry! {
    postgres => Postgres,
    mysql => Mysql,
}

/// A future an engine returns from a trait method.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// What an engine does for the exporter.
pub trait Engine: Sync {
    /// Its name in `engine:` and in `rpo-exporter schema`.
    fn name(&self) -> &'static str;

    /// How the error for an unknown engine lists it.
    fn describe(&self) -> &'static str {
        self.name()
    }

    /// Whether it can read heartbeat tables of this format.
    fn reads(&self, format: HeartbeatFormat) -> bool {
        format == HeartbeatFormat::Rpo
    }

    /// Checks an endpoint without connecting: the DSN parses and holds no
    /// password, TLS is set in one place, the `tls:` material fits.
    fn check(&self, endpoint: &Endpoint) -> Result<(), CheckError>;

    /// Connects; the caller bounds the time it may take. Everything a tick needs
    /// once per session (settings, identity, prepared statements) is done here,
    /// in as few round trips as the engine allows.
    fn connect<'a>(
        &'a self,
        endpoint: &'a Endpoint,
        settings: &'a Settings,
    ) -> BoxFuture<'a, Result<Session, EngineError>>;

    /// The heartbeat table's DDL and the least-privilege grants for `role`.
    /// `server` and `host` are engine-specific (MySQL: the flavour and version
    /// where grants differ, e.g. `mariadb-10.11`; the account's host part).
    fn schema_sql(
        &self,
        table: &TableName,
        role: &str,
        server: Option<&str>,
        host: Option<&str>,
    ) -> Result<String, SchemaError>;

    /// Its own metric families.
    fn metrics(&self) -> &'static [&'static MetricDesc];

    /// Connects for `rpo-exporter drill` ([`DrillSession`]): its writes are
    /// acknowledged as the application's would be (no `synchronous_commit = local`),
    /// `settings.table` is the drill table. The caller bounds the time it may take.
    fn connect_drill<'a>(
        &'a self,
        endpoint: &'a Endpoint,
        settings: &'a Settings,
    ) -> BoxFuture<'a, Result<DrillSession, EngineError>>;

    /// The drill table's DDL and grants (`rpo-exporter schema ENGINE --drill-table`).
    fn drill_schema_sql(
        &self,
        table: &TableName,
        role: &str,
        host: Option<&str>,
    ) -> Result<String, SchemaError>;

    /// Whether a node of this engine can get the cluster's data this way
    /// (`replication:`); the error says which ways it can.
    fn replication(&self, mode: Replication) -> Result<(), String> {
        match mode {
            Replication::Physical | Replication::None => Ok(()),
            other => {
                Err(format!("{} has no {} replication: use physical or none", self.name(), other.as_str()))
            }
        }
    }

    /// Why a node replicating this way holds every table of the cluster (so a
    /// residency rule's table would reach its region), or `None` when what it
    /// holds is decided table by table.
    fn copies_everything(&self, mode: Replication) -> Option<&'static str>;

    /// The residency checks of one node outside some rules' regions: for each of
    /// `targets`, what the node holds of it ([`Holding`]). One short session,
    /// reads only; `Err` when the node could not be asked at all.
    fn residency<'a>(
        &'a self,
        endpoint: &'a Endpoint,
        settings: &'a Settings,
        mode: Replication,
        targets: &'a [TableMatch],
    ) -> BoxFuture<'a, Result<Vec<Holding>, EngineError>>;

    /// On a node inside the rules' regions (a possible publisher): for each of
    /// `targets`, the publications that hold one of its tables. Engines without
    /// publications answer none.
    fn publications<'a>(
        &'a self,
        _endpoint: &'a Endpoint,
        _settings: &'a Settings,
        targets: &'a [TableMatch],
    ) -> BoxFuture<'a, Result<Vec<Vec<String>>, EngineError>> {
        Box::pin(async move { Ok(vec![Vec::new(); targets.len()]) })
    }

    /// The grants the residency checks need beyond `schema_sql`'s, for `role`
    /// (and the MySQL account's `host`), given the rules' tables checked on
    /// nodes of this engine and how those nodes replicate.
    fn residency_grants(
        &self,
        targets: &[TableMatch],
        modes: &[Replication],
        role: &str,
        host: &str,
    ) -> String;
}

/// Why a residency rule is broken on a node: the `reason` label values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Reason {
    /// A table of the rule holds at least one row on the node.
    RowsPresent,
    /// A table of the rule is in a publication that a subscription on the node
    /// subscribes to (PostgreSQL logical replication).
    Publication,
    /// A subscription on the node receives a table of the rule.
    Subscription,
    /// The node's replication filters let a table of the rule through (MySQL/MariaDB).
    ReplicationFilter,
}

impl Reason {
    pub const ALL: [Reason; 4] =
        [Reason::RowsPresent, Reason::Publication, Reason::Subscription, Reason::ReplicationFilter];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::RowsPresent => "rows_present",
            Reason::Publication => "publication",
            Reason::Subscription => "subscription",
            Reason::ReplicationFilter => "replication_filter",
        }
    }
}

/// What one node holds of one rule's tables, each finding on its own: a check
/// that could not run (a missing privilege) is an `Err`, never a `false`.
#[derive(Debug, Default)]
pub struct Holding {
    /// Node-local findings: [`Reason::RowsPresent`], [`Reason::Subscription`],
    /// [`Reason::ReplicationFilter`], as the engine and the node's mode have them.
    pub findings: Vec<(Reason, Result<bool, EngineError>)>,
    /// The publications the node's subscriptions subscribe to, for engines with
    /// subscriptions (PostgreSQL: every node, whatever its `replication:`), matched
    /// against what the publishers publish for [`Reason::Publication`].
    pub subscribed: Option<Result<Vec<String>, EngineError>>,
    /// The rule's tables found on the node (for the log).
    pub tables: Vec<String>,
}

/// What the engines say of a node's `replication:` at load: the mode fits the
/// engine, and, when the node sits outside a residency rule's regions, the
/// mode does not copy every table there (the explanation when it does).
pub fn check_replication(endpoint: &Endpoint, mode: Replication) -> Result<(), CheckError> {
    let engine = find(&endpoint.engine)?;
    engine.replication(mode).map_err(|p| CheckError::new(NodeField::Replication, p))
}

/// Why a node of engine `engine` replicating as `mode` holds every table.
pub fn copies_everything(engine: &str, mode: Replication) -> Option<&'static str> {
    find(engine).ok()?.copies_everything(mode)
}

/// The residency grants for the engine named `engine` (see [`Engine::residency_grants`]).
pub fn residency_grants(
    engine: &str,
    targets: &[TableMatch],
    modes: &[Replication],
    role: &str,
    host: Option<&str>,
) -> Result<String, SchemaError> {
    let engine = find(engine).map_err(|_| SchemaError::UnknownEngine(engine.to_owned()))?;
    Ok(engine.residency_grants(targets, modes, role, host.unwrap_or("%")))
}

/// The residency checks of a node (see [`Engine::residency`]).
pub async fn residency(
    endpoint: &Endpoint,
    settings: &Settings,
    mode: Replication,
    targets: &[TableMatch],
) -> Result<Vec<Holding>, EngineError> {
    let engine = find(&endpoint.engine).map_err(|e| EngineError::new(ErrorKind::Connect, e.problem))?;
    engine.residency(endpoint, settings, mode, targets).await
}

/// The publications of a possible publisher (see [`Engine::publications`]).
pub async fn publications(
    endpoint: &Endpoint,
    settings: &Settings,
    targets: &[TableMatch],
) -> Result<Vec<Vec<String>>, EngineError> {
    let engine = find(&endpoint.engine).map_err(|e| EngineError::new(ErrorKind::Connect, e.problem))?;
    engine.publications(endpoint, settings, targets).await
}

/// The engine named `name`.
pub fn find(name: &str) -> Result<&'static dyn Engine, CheckError> {
    ENGINES.iter().copied().find(|e| e.name() == name).ok_or_else(|| {
        let known: Vec<&str> = ENGINES.iter().map(|e| e.describe()).collect();
        CheckError::new(
            NodeField::Engine,
            format!("unknown engine {name:?}: expected {}", known.join(" or ")),
        )
    })
}

/// Everything the engines check of a node when the config is loaded: the engine
/// exists, reads the heartbeat format, and accepts the endpoint.
pub fn check(endpoint: &Endpoint, format: HeartbeatFormat) -> Result<(), CheckError> {
    let engine = find(&endpoint.engine)?;
    if !engine.reads(format) {
        let readers: Vec<&str> = ENGINES.iter().filter(|e| e.reads(format)).map(|e| e.name()).collect();
        return Err(CheckError::new(
            NodeField::Engine,
            format!(
                "heartbeat.format {} needs engine {}, not {}",
                format.as_str(),
                readers.join(" or "),
                engine.name()
            ),
        ));
    }
    engine.check(endpoint)
}

/// Connects to a node through its engine.
pub async fn connect(endpoint: &Endpoint, settings: &Settings) -> Result<Session, EngineError> {
    let engine = find(&endpoint.engine).map_err(|e| EngineError::new(ErrorKind::Connect, e.problem))?;
    engine.connect(endpoint, settings).await
}

/// The node's field an endpoint check faults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NodeField {
    Engine,
    Dsn,
    Tls,
    TlsMode,
    TlsCaFile,
    TlsKeyFile,
    Replication,
}

impl NodeField {
    /// The field's path below the node, as in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            NodeField::Engine => "engine",
            NodeField::Dsn => "dsn",
            NodeField::Tls => "tls",
            NodeField::TlsMode => "tls.mode",
            NodeField::TlsCaFile => "tls.ca_file",
            NodeField::TlsKeyFile => "tls.key_file",
            NodeField::Replication => "replication",
        }
    }
}

/// An endpoint an engine refuses: the node's field at fault and the problem.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}: {problem}", field.as_str())]
pub struct CheckError {
    pub field: NodeField,
    pub problem: String,
}

impl CheckError {
    pub fn new(field: NodeField, problem: impl Into<String>) -> Self {
        CheckError { field, problem: problem.into() }
    }

    /// A `tls:` block's material that does not build, blamed on its file.
    fn tls(tls: &crate::endpoint::Tls, e: tls::TlsError) -> Self {
        match e {
            tls::TlsError::Roots(p) => match &tls.ca_file {
                Some(ca) => CheckError::new(NodeField::TlsCaFile, format!("{}: {p}", ca.display())),
                None => CheckError::new(
                    NodeField::TlsMode,
                    format!("{} needs trust anchors: {p}", tls.mode.as_str()),
                ),
            },
            tls::TlsError::Identity(p) => match &tls.client {
                Some((cert, key)) => CheckError::new(
                    NodeField::TlsKeyFile,
                    format!("{} (cert_file {}): {p}", key.display(), cert.display()),
                ),
                None => CheckError::new(NodeField::Tls, p),
            },
            tls::TlsError::Setup(p) => CheckError::new(NodeField::Tls, p),
        }
    }
}

/// The checks every engine makes of a node's `tls:` block: TLS is set there only,
/// not in the DSN too, and its material builds. An engine whose driver builds its
/// own TLS configuration (`verify == false`) has its trust anchors and its key
/// checked still.
fn check_tls_block(
    endpoint: &Endpoint,
    dsn_sets_tls: fn(&str) -> bool,
    verify: bool,
) -> Result<(), CheckError> {
    let Some(block) = &endpoint.tls else { return Ok(()) };
    if dsn_sets_tls(&endpoint.dsn) {
        return Err(CheckError::new(NodeField::Dsn, "sets TLS options too; configure TLS in tls: only"));
    }
    tls::check(block, verify).map_err(|e| CheckError::tls(block, e))
}

/// Why `rpo-exporter schema` cannot print the statements.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SchemaError {
    #[error("unknown engine {0:?}: expected {list}", list = ENGINES.iter().map(|e| e.name()).collect::<Vec<_>>().join(" or "))]
    UnknownEngine(String),
    #[error("--{option} applies to {engines} only")]
    NotApplicable { option: &'static str, engines: &'static str },
    #[error("{0:?}: expected FLAVOUR-VERSION, e.g. mariadb-10.11")]
    ServerForm(String),
    #[error("unknown server flavour {0:?}: expected mariadb or mysql")]
    ServerFlavour(String),
    #[error("{server:?}: {version:?} is not a version like 10.11")]
    ServerVersion { server: String, version: String },
    #[error("--host {0:?} is not an account host")]
    Host(String),
}

/// The heartbeat table's DDL and grants for the engine named `engine`.
pub fn schema_sql(
    engine: &str,
    table: &TableName,
    role: &str,
    server: Option<&str>,
    host: Option<&str>,
) -> Result<String, SchemaError> {
    let engine = find(engine).map_err(|_| SchemaError::UnknownEngine(engine.to_owned()))?;
    engine.schema_sql(table, role, server, host)
}

/// The drill table's DDL and grants for the engine named `engine`.
pub fn drill_schema_sql(
    engine: &str,
    table: &TableName,
    role: &str,
    host: Option<&str>,
) -> Result<String, SchemaError> {
    let engine = find(engine).map_err(|_| SchemaError::UnknownEngine(engine.to_owned()))?;
    engine.drill_schema_sql(table, role, host)
}

/// Connects to a node for the drill through its engine.
pub async fn connect_drill(endpoint: &Endpoint, settings: &Settings) -> Result<DrillSession, EngineError> {
    let engine = find(&endpoint.engine).map_err(|e| EngineError::new(ErrorKind::Connect, e.problem))?;
    engine.connect_drill(endpoint, settings).await
}

/// One drill write: the run it belongs to, its number within the run (each write
/// has its own), when the drill sent it (µs since the epoch on the drill's clock)
/// and the node it was sent to.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DrillWrite {
    pub run: String,
    pub seq: i64,
    pub client_us: i64,
    pub node: String,
}

/// What the drill asks of one node, one statement at a time; the caller bounds each.
pub trait DrillConnection: Send {
    /// Whether the node accepts writes now.
    fn writable(&mut self) -> BoxFuture<'_, Result<bool, EngineError>>;
    /// Inserts one row into the drill table; `Ok` once the server acknowledged it.
    fn write<'a>(&'a mut self, write: &'a DrillWrite) -> BoxFuture<'a, Result<(), EngineError>>;
    /// The newest row of `run` with a sequence at most `up_to` this node holds:
    /// (seq, client_us), or `None` when it holds none.
    fn newest<'a>(
        &'a mut self,
        run: &'a str,
        up_to: i64,
    ) -> BoxFuture<'a, Result<Option<(i64, i64)>, EngineError>>;
}

/// An open drill connection to one node.
pub struct DrillSession(pub Box<dyn DrillConnection>);

impl DrillSession {
    pub fn new(connection: impl DrillConnection + 'static) -> Self {
        DrillSession(Box::new(connection))
    }
}

/// Every engine's own metric families.
pub fn metrics() -> impl Iterator<Item = &'static MetricDesc> {
    ENGINES.iter().flat_map(|e| e.metrics().iter().copied())
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
    /// What the node had applied as a replica when probed, before the tick's
    /// read ([`Positions::applied`]): if a later position read finds it
    /// unchanged, nothing was applied since the read.
    pub applied: Option<CommitPosition>,
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

/// What a heartbeat write did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteOutcome {
    /// This session wrote the heartbeat.
    Written(Written),
    /// Another exporter holds the node's write lease: it writes the node's
    /// heartbeats, and this one only reads them. See [`lease_name`].
    HeldElsewhere,
}

/// The name of a node's write lease: a session lock on the node's own server
/// (PostgreSQL's advisory lock, MySQL's `GET_LOCK`) that a session takes before its
/// first heartbeat write and keeps until it ends. Two exporters watching one
/// cluster (an HA pair) therefore never write the same row: one writes, the
/// other reads. A lease whose exporter died ends with its session: when the
/// connection closes, or when the server drops it after [`lease_idle_timeout`]
/// without a statement (a host gone without closing it).
pub fn lease_name(table: &TableName, node: &str) -> String {
    format!("rpo-exporter:{table}:{node}")
}

/// How long a server keeps an idle session of ours: three heartbeat intervals,
/// never under 10 s. A session that ticks every interval is never idle that long;
/// one whose exporter vanished frees its lease within this time.
pub fn lease_idle_timeout(interval: Duration) -> Duration {
    (interval * 3).max(Duration::from_secs(10))
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
    pub write: Option<Step<WriteOutcome>>,
    pub native: Option<Step<Vec<Sample>>>,
    /// The session cannot serve another tick: the connection broke, or the driver
    /// was left in the middle of a reply at the deadline.
    pub broken: bool,
}

/// How far a node's history reached, as one position read saw it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Positions {
    /// What the node committed itself, where it accepts writes: PostgreSQL's
    /// last commit time (with `track_commit_timestamp`), MariaDB's
    /// `@@gtid_binlog_pos`. `None` where the engine or the server's settings
    /// offer none (PostgreSQL without `track_commit_timestamp`, MySQL).
    pub committed: Option<CommitPosition>,
    /// What the node applied as a replica: PostgreSQL's last replayed commit
    /// time, MariaDB's `@@gtid_slave_pos`. `None` on a primary, or before the
    /// first replayed transaction.
    pub applied: Option<CommitPosition>,
    /// Whether the engine offers positions at all (not MySQL).
    pub supported: bool,
}

/// What one read of a node's positions brought back.
#[derive(Debug)]
pub struct PositionOutcome {
    pub step: Step<Positions>,
    /// As [`TickOutcome::broken`].
    pub broken: bool,
}

/// What an engine's open connection does: one tick at a time.
pub trait Connection: Send {
    /// Runs the planned steps, each bounded by `deadline`. A step that misses it
    /// answers [`ErrorKind::Timeout`]; the others keep their answers.
    fn tick<'a>(
        &'a mut self,
        plan: TickPlan,
        deadline: Duration,
        labels: &'a NodeLabels,
    ) -> BoxFuture<'a, TickOutcome>;

    /// Reads how far the node's history reached ([`Positions`]), bounded by
    /// `deadline`: one read-only statement, sampled between heartbeats so a
    /// replica's lag can be placed below one interval, and kept fresh between
    /// its reads.
    fn position(&mut self, deadline: Duration) -> BoxFuture<'_, PositionOutcome>;
}

/// An open connection to one node.
pub struct Session(Box<dyn Connection>);

impl Session {
    pub fn new(connection: impl Connection + 'static) -> Self {
        Session(Box::new(connection))
    }

    /// Runs the planned steps, each bounded by `deadline`. A step that misses it
    /// answers [`ErrorKind::Timeout`]; the others keep their answers.
    pub async fn tick(&mut self, plan: TickPlan, deadline: Duration, labels: &NodeLabels) -> TickOutcome {
        self.0.tick(plan, deadline, labels).await
    }

    /// The node's positions ([`Connection::position`]).
    pub async fn position(&mut self, deadline: Duration) -> PositionOutcome {
        self.0.position(deadline).await
    }
}

/// A replica's applied position, from the samples of its native step (read
/// after its heartbeat rows, so at least what it had applied at that read):
/// PostgreSQL's last replayed commit time, MariaDB's executed GTID position.
pub fn replica_position(native: &[Sample]) -> Option<CommitPosition> {
    postgres::replayed_commit_us(native)
        .map(CommitPosition::CommitTime)
        .or_else(|| mysql::replica_position(native))
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
