//! What the config hands the engines, as plain values: how to reach a database
//! node ([`Endpoint`]: engine name, DSN, password source, TLS files) and what a
//! session does there ([`Settings`]: heartbeat table and format, deadlines, the
//! node's name and region).
//!
//! The config builds these from the file, the engines connect with them, and
//! neither imports the other: the engine-specific checks of an endpoint (does
//! the DSN parse, does the key fit the certificate, does the engine offer TLS
//! `prefer`) belong to the engine and run when the config is loaded
//! (the `load` module). Values only; imports nothing of the crate.

use std::fmt;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

/// How to reach one database node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Endpoint {
    /// The engine's name in the registry (`postgres`, `mysql`).
    pub engine: String,
    /// Connection string without a password (validation refuses one inline).
    pub dsn: String,
    pub password: PasswordSource,
    /// TLS to the database; `None` leaves it to the DSN's defaults.
    pub tls: Option<Tls>,
}

/// What a session does on its node.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Settings {
    /// The node's name and region, written into its heartbeat row.
    pub node: String,
    pub region: String,
    pub table: TableName,
    pub format: HeartbeatFormat,
    /// Create the heartbeat table when it is missing.
    pub create_table: bool,
    /// How often a session ticks.
    pub interval: Duration,
    /// Deadline for one query.
    pub timeout: Duration,
    /// Deadline for opening a session: TCP, TLS, authentication, first statements.
    pub connect_timeout: Duration,
}

/// A value of the file that is not what its field takes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ValueError {
    #[error("{0:?} is not of the form schema.table")]
    NotSchemaTable(String),
    #[error("{name:?}: {part:?} must be a lower-case identifier ([a-z_][a-z0-9_]*, at most 63 characters)")]
    NotIdentifier { name: String, part: String },
    #[error("unknown TLS mode {0:?}: expected disable, prefer, require, verify-ca or verify-full")]
    TlsMode(String),
}

/// A `schema.table` (PostgreSQL) or `database.table` (MySQL) name, both parts plain
/// lower-case identifiers so they never need quoting.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    pub schema: String,
    pub table: String,
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}", self.schema, self.table)
    }
}

impl std::str::FromStr for TableName {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        let Some((schema, table)) = s.split_once('.') else {
            return Err(ValueError::NotSchemaTable(s.to_owned()));
        };
        for part in [schema, table] {
            if !is_identifier(part) {
                return Err(ValueError::NotIdentifier { name: s.to_owned(), part: part.to_owned() });
            }
        }
        Ok(TableName { schema: schema.to_owned(), table: table.to_owned() })
    }
}

/// Whether `s` is an SQL identifier that needs no quoting in either engine.
pub fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    matches!(chars.next(), Some('a'..='z' | '_'))
        && chars.all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_'))
        && s.len() <= 63
}

/// How a node gets the cluster's data: what decides whether a table restricted to
/// some regions (a residency rule) may be on it at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Replication {
    /// A full copy: the primary, or a replica that copies everything it does
    /// (PostgreSQL streaming replication, MySQL/MariaDB replication without
    /// filters). The default for a node of a cluster.
    #[default]
    Physical,
    /// A PostgreSQL logical subscriber: it holds what its subscriptions receive.
    Logical,
    /// A MySQL/MariaDB replica whose `replicate_*` filters decide what it copies.
    Filtered,
    /// An independent server that replicates nothing of the cluster's tables.
    None,
}

impl Replication {
    pub const ALL: [Replication; 4] =
        [Replication::Physical, Replication::Logical, Replication::Filtered, Replication::None];

    pub fn as_str(self) -> &'static str {
        match self {
            Replication::Physical => "physical",
            Replication::Logical => "logical",
            Replication::Filtered => "filtered",
            Replication::None => "none",
        }
    }
}

/// The tables a residency rule covers, in one schema (PostgreSQL) or database
/// (MySQL): one table, every table, or the tables whose name matches a pattern
/// where `%` stands for any run of characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableMatch {
    pub schema: String,
    pub tables: Tables,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tables {
    One(String),
    All,
    /// A name pattern: `%` matches any run of characters, everything else itself.
    Like(String),
}

impl TableMatch {
    /// Whether the table `schema.table` is covered.
    pub fn covers(&self, schema: &str, table: &str) -> bool {
        schema == self.schema
            && match &self.tables {
                Tables::One(t) => t == table,
                Tables::All => true,
                Tables::Like(p) => like(p, table),
            }
    }
}

impl fmt::Display for TableMatch {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.tables {
            Tables::One(t) | Tables::Like(t) => write!(f, "{}.{t}", self.schema),
            Tables::All => write!(f, "{}.%", self.schema),
        }
    }
}

/// `%`-wildcard matching (any run of characters; nothing else is special).
pub fn like(pattern: &str, name: &str) -> bool {
    match pattern.split_once('%') {
        None => pattern == name,
        Some((head, rest)) => {
            let Some(tail) = name.strip_prefix(head) else { return false };
            (0..=tail.len()).filter(|&i| tail.is_char_boundary(i)).any(|i| like(rest, &tail[i..]))
        }
    }
}

/// The heartbeat table's layout.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeartbeatFormat {
    /// rpo-exporter's own table, written by this exporter.
    Rpo,
    /// An existing pt-heartbeat table (MySQL family), read only: pt-heartbeat keeps
    /// writing it. `utc` says whether it runs with `--utc` (timestamps in UTC) or
    /// without (timestamps in local time, read in the replica server's time zone).
    PtHeartbeat { utc: bool },
}

impl HeartbeatFormat {
    /// Whether this exporter writes the heartbeats itself.
    pub fn writes(self) -> bool {
        self == HeartbeatFormat::Rpo
    }

    /// Its name in `heartbeat.format`.
    pub fn as_str(self) -> &'static str {
        match self {
            HeartbeatFormat::Rpo => "rpo",
            HeartbeatFormat::PtHeartbeat { .. } => "pt-heartbeat",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsMode {
    /// Never TLS.
    Disable,
    /// TLS when the server offers it, unverified (where the engine offers it).
    Prefer,
    /// TLS always, the certificate not verified: encryption without
    /// authentication.
    Require,
    /// TLS always, the chain verified against the CA, the host name not.
    VerifyCa,
    /// TLS always, chain and host name verified.
    VerifyFull,
}

impl TlsMode {
    pub fn as_str(self) -> &'static str {
        match self {
            TlsMode::Disable => "disable",
            TlsMode::Prefer => "prefer",
            TlsMode::Require => "require",
            TlsMode::VerifyCa => "verify-ca",
            TlsMode::VerifyFull => "verify-full",
        }
    }
}

impl std::str::FromStr for TlsMode {
    type Err = ValueError;
    fn from_str(s: &str) -> Result<Self, ValueError> {
        Ok(match s {
            "disable" => TlsMode::Disable,
            "prefer" => TlsMode::Prefer,
            "require" => TlsMode::Require,
            "verify-ca" => TlsMode::VerifyCa,
            "verify-full" => TlsMode::VerifyFull,
            other => return Err(ValueError::TlsMode(other.to_owned())),
        })
    }
}

/// A file's contents as read, PEM text.
pub type Pem = Arc<[u8]>;

/// TLS to a database, with libpq's modes, and what its files held when the config
/// was loaded (read and checked as PEM then, so a connect does no file I/O; a
/// rotated certificate takes effect at the next reload). Two are equal when the
/// files held the same bytes, so a reload after a rotation is a change.
#[derive(Clone, PartialEq, Eq)]
pub struct Tls {
    pub mode: TlsMode,
    /// Trust anchors; without them the system's (PostgreSQL) or Mozilla's (MySQL)
    /// roots are used.
    pub ca_file: Option<PathBuf>,
    /// A client certificate and its key, both or neither.
    pub client: Option<(PathBuf, PathBuf)>,
    /// `ca_file`'s contents.
    pub ca_pem: Option<Pem>,
    /// `cert_file`'s and `key_file`'s contents. The key is never printed.
    pub client_pem: Option<(Pem, Pem)>,
}

impl fmt::Debug for Tls {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Tls")
            .field("mode", &self.mode)
            .field("ca_file", &self.ca_file)
            .field("client", &self.client)
            .field("ca_pem_bytes", &self.ca_pem.as_ref().map(|b| b.len()))
            .field("client_cert_pem_bytes", &self.client_pem.as_ref().map(|(c, _)| c.len()))
            .field("client_key", &self.client_pem.as_ref().map(|_| "(redacted)"))
            .finish()
    }
}

/// Where a node's password comes from. It is read anew on every connection attempt
/// so a rotated secret is picked up without a restart.
#[derive(Clone, PartialEq, Eq)]
pub enum PasswordSource {
    None,
    File(PathBuf),
    Env(String),
}

impl fmt::Debug for PasswordSource {
    // Says where the password lives, never what it is.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PasswordSource::None => write!(f, "None"),
            PasswordSource::File(p) => write!(f, "File({})", p.display()),
            PasswordSource::Env(v) => write!(f, "Env({v})"),
        }
    }
}

/// Why a password could not be read; never the password.
#[derive(Debug, thiserror::Error)]
pub enum PasswordError {
    #[error("cannot read password_file {}: {source}", .path.display())]
    File { path: PathBuf, source: std::io::Error },
    #[error("environment variable {0} (password_env) is empty")]
    EnvEmpty(String),
    #[error("environment variable {0} (password_env) is not set")]
    EnvUnset(String),
}

impl PasswordSource {
    /// Reads the password; a trailing newline in a file is not part of it.
    pub fn read(&self) -> Result<Option<String>, PasswordError> {
        match self {
            PasswordSource::None => Ok(None),
            PasswordSource::File(path) => std::fs::read_to_string(path)
                .map(|s| Some(s.trim_end_matches(['\n', '\r']).to_owned()))
                .map_err(|source| PasswordError::File { path: path.clone(), source }),
            PasswordSource::Env(var) => match std::env::var(var) {
                Ok(v) if !v.is_empty() => Ok(Some(v)),
                Ok(_) => Err(PasswordError::EnvEmpty(var.clone())),
                Err(_) => Err(PasswordError::EnvUnset(var.clone())),
            },
        }
    }

    /// The field of a node that names this source, for errors.
    pub fn field(&self) -> &'static str {
        match self {
            PasswordSource::File(_) => "password_file",
            _ => "password_env",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn identifiers() {
        assert!(is_identifier("rpo_heartbeat1"));
        assert!(!is_identifier("Rpo"));
        assert!(!is_identifier("1a"));
        assert!(!is_identifier("a;drop"));
        assert!(!is_identifier(""));
    }

    #[test]
    fn residency_patterns() {
        let m = TableMatch { schema: "pii".into(), tables: Tables::Like("cust%_eu".into()) };
        assert!(m.covers("pii", "customers_eu") && m.covers("pii", "cust_eu"));
        assert!(!m.covers("pii", "customers_us") && !m.covers("pub", "customers_eu"));
        assert!(like("%", "") && like("a%b%c", "aXbYc") && !like("a%b", "ab_"));
        let all = TableMatch { schema: "pii".into(), tables: Tables::All };
        assert!(all.covers("pii", "x") && all.to_string() == "pii.%");
    }

    #[test]
    fn table_names() {
        assert_eq!("rpo.hb".parse::<TableName>().unwrap().to_string(), "rpo.hb");
        assert_eq!(
            "hb".parse::<TableName>().unwrap_err().to_string(),
            "\"hb\" is not of the form schema.table"
        );
        assert_eq!(
            "rpo.Hb".parse::<TableName>().unwrap_err().to_string(),
            "\"rpo.Hb\": \"Hb\" must be a lower-case identifier ([a-z_][a-z0-9_]*, at most 63 characters)"
        );
    }
}
