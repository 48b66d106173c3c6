//! MariaDB's part of a lab node ([`MariaNode`] = [`Node`]`<`[`Mariadb`]`>`): its upstreams,
//! server and GTID domain ids, socket and option file, how `mariadbd --defaults-file=FILE`
//! starts and says it is ready, and the operations only MariaDB has — SQL as root, reading
//! replication status. The process, directories, port and log are the shared [`Node`]'s
//! (`server.rs`).
//!
//! Readiness is read from the log: `mariadbd` writes "ready for connections" once it
//! accepts them. (Probing the socket would work too, but every probe leaves an "Aborted
//! connection" warning in the log.)

use std::collections::BTreeMap;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use mysql_async::prelude::Queryable;
use nix::sys::signal::Signal;

use super::Ctx;
use crate::server::{poll, short, Account, Behaviour, Engine, Node};

/// How long a root connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// One MariaDB server of a [`MariaLab`](super::MariaLab).
pub type MariaNode = Node<Mariadb>;

/// What a MariaDB node has of its own: its place in replication, socket, files and program.
#[derive(Debug)]
pub struct Mariadb {
    pub(super) upstreams: Vec<String>,
    pub(super) server_id: u32,
    pub(super) domain_id: u32,
    pub(super) socket: PathBuf,
    pub(super) pid_file: PathBuf,
    pub(super) config_file: PathBuf,
    pub(super) ctx: Arc<Ctx>,
}

impl Engine for Mariadb {
    const BEHAVIOUR: Behaviour = Behaviour {
        label: "MariaDB node",
        program: "mariadbd",
        stop: (Signal::SIGTERM, Duration::from_secs(30)),
        stop_fallback: None,
        teardown: Signal::SIGTERM,
        port_conflict: &["Address already in use", "Bind on TCP/IP port"],
    };

    /// The lab's shape, for [`MariaLab::wait_replicated`](super::MariaLab::wait_replicated).
    type LabState = super::MariaLabSpec;

    fn account(node: &MariaNode) -> &Account {
        &node.engine.ctx.account
    }

    fn command(node: &MariaNode) -> Result<Command> {
        let mut command = node.engine.ctx.account.command(&node.engine.ctx.mariadbd);
        command
            .arg(format!("--defaults-file={}", node.engine.config_file.display()))
            .env("TMPDIR", node.node_dir().join("tmp"));
        Ok(command)
    }

    fn is_ready(node: &MariaNode, _pid: u32, log_start: u64) -> bool {
        logged_since(node.log_file(), log_start, "ready for connections")
    }
}

impl MariaNode {
    /// Its Unix socket (root logs in there without a password).
    pub fn socket(&self) -> &Path {
        &self.engine.socket
    }

    /// The options file the server runs with (`mariadbd --defaults-file=…`).
    pub fn config_file(&self) -> &Path {
        &self.engine.config_file
    }

    /// Its `server_id` (1, 2, … in spec order).
    pub fn server_id(&self) -> u32 {
        self.engine.server_id
    }

    /// Its `gtid_domain_id` (equal to its `server_id`: every node has a domain of its own).
    pub fn gtid_domain_id(&self) -> u32 {
        self.engine.domain_id
    }

    /// Whether it is a writable primary (`read_only=OFF`, replicates from nobody).
    pub fn is_primary(&self) -> bool {
        self.engine.upstreams.is_empty()
    }

    /// The nodes it replicates from, in spec order (empty for a primary).
    pub fn upstreams(&self) -> &[String] {
        &self.engine.upstreams
    }

    /// The replication connection that reads from `upstream`: `""` (the default connection,
    /// the one `SHOW SLAVE STATUS` and `STOP SLAVE` address) for a single-source replica,
    /// the upstream's name for a multi-source one. `None` if it does not replicate from it.
    pub fn connection_name(&self, upstream: &str) -> Option<&str> {
        match self.engine.upstreams.len() {
            1 if self.engine.upstreams[0] == upstream => Some(""),
            _ => self.engine.upstreams.iter().find(|u| *u == upstream).map(String::as_str),
        }
    }

    /// URL for `user` over TCP: `mysql://USER@127.0.0.1:PORT/` (no password: add it to the
    /// `Opts` separately). Note that mysql_async's `prefer_socket` (on by default) makes a
    /// client switch to the server's Unix socket after logging in when it can: add
    /// `?prefer_socket=false` when the TCP path matters (proxies, network faults).
    pub fn dsn(&self, user: &str) -> String {
        format!("mysql://{}@127.0.0.1:{}/", url_encode(user), self.port())
    }

    /// A shell command line that opens the `mariadb` client on this node as root.
    pub fn mariadb_command(&self) -> String {
        format!("mariadb --no-defaults -S {} -u root", self.engine.socket.display())
    }

    /// Connection options for root over the Unix socket.
    pub fn root_opts(&self) -> mysql_async::Opts {
        mysql_async::OptsBuilder::default()
            .socket(Some(self.engine.socket.to_string_lossy()))
            .user(Some("root"))
            .prefer_socket(false)
            .into()
    }

    /// A root connection (no password, over the Unix socket); fails after 10 s.
    pub async fn conn(&self) -> Result<mysql_async::Conn> {
        match tokio::time::timeout(CONNECT_TIMEOUT, mysql_async::Conn::new(self.root_opts())).await {
            Ok(conn) => conn.with_context(|| format!("connecting to {} as root", self.describe())),
            Err(_) => bail!("connecting to {} as root: no answer in {CONNECT_TIMEOUT:?}", self.describe()),
        }
    }

    /// Runs `sql` (one or more statements) as root. Never write on a replica: under
    /// `gtid_strict_mode` a local write breaks its replication.
    pub async fn exec(&self, sql: &str) -> Result<()> {
        let mut conn = self.conn().await?;
        conn.query_drop(sql)
            .await
            .with_context(|| format!("running SQL on {}: {}", self.describe(), short(sql)))?;
        let _ = conn.disconnect().await;
        Ok(())
    }

    /// Runs `sql` as root; the first column of the first row as text (`None` if there is
    /// no row or the value is NULL).
    pub async fn query_one_string(&self, sql: &str) -> Result<Option<String>> {
        let rows = self.query_rows(sql).await?;
        Ok(rows.into_iter().next().and_then(|row| row.into_iter().next()).and_then(|(_, v)| v))
    }

    /// Runs `sql` as root; the rows of its first result set, each as (column name, value as
    /// text or `None` for NULL) in column order. Good for `SHOW …` statements.
    pub async fn query_rows(&self, sql: &str) -> Result<Vec<Vec<(String, Option<String>)>>> {
        let mut conn = self.conn().await?;
        let rows = async {
            let mut result = conn.query_iter(sql).await?;
            let rows: Vec<mysql_async::Row> = result.collect().await?;
            result.drop_result().await?;
            Ok::<_, mysql_async::Error>(rows)
        }
        .await
        .with_context(|| format!("querying {}: {}", self.describe(), short(sql)))?;
        let _ = conn.disconnect().await;
        Ok(rows
            .iter()
            .map(|row| {
                row.columns_ref()
                    .iter()
                    .enumerate()
                    .map(|(i, col)| (col.name_str().into_owned(), row.as_ref(i).and_then(value_text)))
                    .collect()
            })
            .collect())
    }

    /// `SHOW ALL SLAVES STATUS`: one map (column → value) per replication connection.
    pub async fn replication_status(&self) -> Result<Vec<BTreeMap<String, Option<String>>>> {
        Ok(self
            .query_rows("SHOW ALL SLAVES STATUS")
            .await?
            .into_iter()
            .map(|r| r.into_iter().collect())
            .collect())
    }

    /// Polls `sql` (see [`query_one_string`](Self::query_one_string)) until it returns
    /// `expected`, for up to `timeout`. Query errors count as "not yet".
    pub async fn wait_for_value(&self, sql: &str, expected: &str, timeout: Duration) -> Result<()> {
        self.poll_value(sql, expected, timeout, || self.query_one_string(sql)).await
    }

    /// Waits until every replication connection of this replica has its IO and SQL threads
    /// running (`Slave_IO_Running` and `Slave_SQL_Running` both `Yes`).
    pub async fn wait_replication_running(&self, timeout: Duration) -> Result<()> {
        if self.is_primary() {
            bail!("{} is a primary: it replicates from nobody", self.describe());
        }
        let yes = |row: &BTreeMap<String, Option<String>>, col: &str| {
            row.get(col).and_then(|v| v.as_deref()) == Some("Yes")
        };
        let running = |rows: Vec<BTreeMap<String, Option<String>>>| {
            if rows.len() == self.engine.upstreams.len()
                && rows.iter().all(|r| yes(r, "Slave_IO_Running") && yes(r, "Slave_SQL_Running"))
            {
                Ok(())
            } else {
                Err(summarize_status(&rows))
            }
        };
        let status = || self.replication_status();
        poll(timeout, "SHOW ALL SLAVES STATUS", status, running).await.map_err(|last| {
            anyhow!(
                "replica {} is not replicating from {:?} after {timeout:?}; last: {last}\n--- log tail ---\n{}",
                self.describe(),
                self.engine.upstreams,
                self.log_tail(20)
            )
        })
    }

    /// A one-line summary of the replication connections, for error messages.
    pub(super) async fn status_summary(&self) -> String {
        match tokio::time::timeout(Duration::from_secs(2), self.replication_status()).await {
            Ok(Ok(rows)) => summarize_status(&rows),
            Ok(Err(e)) => format!("SHOW ALL SLAVES STATUS failed: {e:#}"),
            Err(_) => "SHOW ALL SLAVES STATUS timed out after 2s".into(),
        }
    }
}

/// Whether `needle` appears in the file at `path` after byte `offset`.
fn logged_since(path: &Path, offset: u64, needle: &str) -> bool {
    let Ok(mut file) = std::fs::File::open(path) else {
        return false;
    };
    let mut text = Vec::new();
    if file.seek(SeekFrom::Start(offset)).is_err() || file.read_to_end(&mut text).is_err() {
        return false;
    }
    String::from_utf8_lossy(&text).contains(needle)
}

/// A value of the text protocol as a string (`None` for NULL).
fn value_text(v: &mysql_async::Value) -> Option<String> {
    use mysql_async::Value;
    match v {
        Value::NULL => None,
        Value::Bytes(b) => Some(String::from_utf8_lossy(b).into_owned()),
        Value::Int(i) => Some(i.to_string()),
        Value::UInt(u) => Some(u.to_string()),
        Value::Float(f) => Some(f.to_string()),
        Value::Double(d) => Some(d.to_string()),
        other => Some(other.as_sql(true).trim_matches('\'').to_string()),
    }
}

/// `conn: IO/SQL running, errors` for each replication connection.
fn summarize_status(rows: &[BTreeMap<String, Option<String>>]) -> String {
    if rows.is_empty() {
        return "no replication connection".into();
    }
    let get = |row: &BTreeMap<String, Option<String>>, col: &str| {
        row.get(col).cloned().flatten().unwrap_or_else(|| "NULL".into())
    };
    rows.iter()
        .map(|r| {
            format!(
                "connection {:?}: IO {} SQL {} gtid_io_pos {:?} last IO error {:?} last SQL error {:?}",
                get(r, "Connection_name"),
                get(r, "Slave_IO_Running"),
                get(r, "Slave_SQL_Running"),
                get(r, "Gtid_IO_Pos"),
                get(r, "Last_IO_Error"),
                get(r, "Last_SQL_Error"),
            )
        })
        .collect::<Vec<_>>()
        .join("; ")
}

/// Percent-encodes a URL user name (everything but unreserved characters).
fn url_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}
