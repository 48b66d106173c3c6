//! One MariaDB server of a lab: its `mariadbd` process (our own child, so it is reaped when
//! it dies), its directories, socket and port, and the operations tests perform on it —
//! stop, kill, start, freeze, thaw, SQL as root, reading replication status.
//!
//! `mariadbd --defaults-file=FILE` is spawned directly (output appended to the node's log
//! file): PID 1 on these machines does not reap orphans, so a daemonized server would
//! linger as a zombie. Readiness is read from the log: `mariadbd` writes "ready for
//! connections" once it accepts them. (Probing the socket would work too, but every probe
//! leaves an "Aborted connection" warning in the log.)

use std::collections::BTreeMap;
use std::fs::OpenOptions;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use mysql_async::prelude::Queryable;
use nix::sys::signal::Signal;
use std::os::unix::process::CommandExt;

use super::Ctx;
use crate::process::{running, tail, ServerChild};

/// How long a start may take before it is declared failed.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long a root connection may take to open.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// One MariaDB server of a [`MariaLab`](super::MariaLab).
pub struct MariaNode {
    pub(super) name: String,
    pub(super) upstreams: Vec<String>,
    pub(super) server_id: u32,
    pub(super) domain_id: u32,
    pub(super) port: u16,
    pub(super) node_dir: PathBuf,
    pub(super) data_dir: PathBuf,
    pub(super) socket: PathBuf,
    pub(super) pid_file: PathBuf,
    pub(super) config_file: PathBuf,
    pub(super) log_file: PathBuf,
    pub(super) ctx: Arc<Ctx>,
    pub(super) server: ServerChild,
}

impl std::fmt::Debug for MariaNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("MariaNode")
            .field("name", &self.name)
            .field("port", &self.port)
            .field("upstreams", &self.upstreams)
            .field("server_id", &self.server_id)
            .field("node_dir", &self.node_dir)
            .finish()
    }
}

impl MariaNode {
    /// The node's name in the lab spec.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its Unix socket (root logs in there without a password).
    pub fn socket(&self) -> &Path {
        &self.socket
    }

    /// Its data directory (`datadir`: InnoDB files, binary and relay logs).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The node's directory: `data/`, `tmp/`, `my.cnf`, `mariadbd.log`, socket, pid file.
    pub fn node_dir(&self) -> &Path {
        &self.node_dir
    }

    /// The options file the server runs with (`mariadbd --defaults-file=…`).
    pub fn config_file(&self) -> &Path {
        &self.config_file
    }

    /// The server log (everything `mariadbd` writes to stderr).
    pub fn log_file(&self) -> &Path {
        &self.log_file
    }

    /// The last `lines` lines of the server log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log_file, lines)
    }

    /// Its `server_id` (1, 2, … in spec order).
    pub fn server_id(&self) -> u32 {
        self.server_id
    }

    /// Its `gtid_domain_id` (equal to its `server_id`: every node has a domain of its own).
    pub fn gtid_domain_id(&self) -> u32 {
        self.domain_id
    }

    /// Whether it is a writable primary (`read_only=OFF`, replicates from nobody).
    pub fn is_primary(&self) -> bool {
        self.upstreams.is_empty()
    }

    /// The nodes it replicates from, in spec order (empty for a primary).
    pub fn upstreams(&self) -> &[String] {
        &self.upstreams
    }

    /// The replication connection that reads from `upstream`: `""` (the default connection,
    /// the one `SHOW SLAVE STATUS` and `STOP SLAVE` address) for a single-source replica,
    /// the upstream's name for a multi-source one. `None` if it does not replicate from it.
    pub fn connection_name(&self, upstream: &str) -> Option<&str> {
        match self.upstreams.len() {
            1 if self.upstreams[0] == upstream => Some(""),
            _ => self.upstreams.iter().find(|u| *u == upstream).map(String::as_str),
        }
    }

    /// URL for `user` over TCP: `mysql://USER@127.0.0.1:PORT/` (no password: add it to the
    /// `Opts` separately). Note that mysql_async's `prefer_socket` (on by default) makes a
    /// client switch to the server's Unix socket after logging in when it can: add
    /// `?prefer_socket=false` when the TCP path matters (proxies, network faults).
    pub fn dsn(&self, user: &str) -> String {
        format!("mysql://{}@127.0.0.1:{}/", url_encode(user), self.port)
    }

    /// A shell command line that opens the `mariadb` client on this node as root.
    pub fn mariadb_command(&self) -> String {
        format!("mariadb --no-defaults -S {} -u root", self.socket.display())
    }

    /// The server's pid, if it is running.
    pub fn pid(&self) -> Option<u32> {
        self.server.pid()
    }

    /// Connection options for root over the Unix socket.
    pub fn root_opts(&self) -> mysql_async::Opts {
        mysql_async::OptsBuilder::default()
            .socket(Some(self.socket.to_string_lossy()))
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
        let deadline = Instant::now() + timeout;
        let mut last = String::from("(no answer yet)");
        while Instant::now() < deadline {
            match tokio::time::timeout(Duration::from_secs(2), self.query_one_string(sql)).await {
                Ok(Ok(Some(v))) if v == expected => return Ok(()),
                Ok(Ok(v)) => last = format!("{v:?}"),
                Ok(Err(e)) => last = format!("error: {e:#}"),
                Err(_) => last = "query timed out after 2s".into(),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!(
            "{}: `{}` did not return {expected:?} within {timeout:?}; last: {last}",
            self.describe(),
            short(sql)
        )
    }

    /// Waits until every replication connection of this replica has its IO and SQL threads
    /// running (`Slave_IO_Running` and `Slave_SQL_Running` both `Yes`).
    pub async fn wait_replication_running(&self, timeout: Duration) -> Result<()> {
        if self.is_primary() {
            bail!("{} is a primary: it replicates from nobody", self.describe());
        }
        let deadline = Instant::now() + timeout;
        let mut last = String::from("(no answer yet)");
        while Instant::now() < deadline {
            match tokio::time::timeout(Duration::from_secs(2), self.replication_status()).await {
                Ok(Ok(rows)) => {
                    let yes = |row: &BTreeMap<String, Option<String>>, col: &str| {
                        row.get(col).and_then(|v| v.as_deref()) == Some("Yes")
                    };
                    if rows.len() == self.upstreams.len()
                        && rows.iter().all(|r| yes(r, "Slave_IO_Running") && yes(r, "Slave_SQL_Running"))
                    {
                        return Ok(());
                    }
                    last = summarize_status(&rows);
                }
                Ok(Err(e)) => last = format!("error: {e:#}"),
                Err(_) => last = "SHOW ALL SLAVES STATUS timed out after 2s".into(),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!(
            "replica {} is not replicating from {:?} after {timeout:?}; last: {last}\n--- log tail ---\n{}",
            self.describe(),
            self.upstreams,
            self.log_tail(20)
        )
    }

    /// A one-line summary of the replication connections, for error messages.
    pub(super) async fn status_summary(&self) -> String {
        match tokio::time::timeout(Duration::from_secs(2), self.replication_status()).await {
            Ok(Ok(rows)) => summarize_status(&rows),
            Ok(Err(e)) => format!("SHOW ALL SLAVES STATUS failed: {e:#}"),
            Err(_) => "SHOW ALL SLAVES STATUS timed out after 2s".into(),
        }
    }

    /// Starts the server and waits until it accepts connections. Works after
    /// [`stop`](Self::stop) and after [`kill`](Self::kill); a replica resumes replicating
    /// from where it was (GTID `slave_pos`).
    pub fn start(&self) -> Result<()> {
        let mut guard = self.lock();
        if let Some(child) = running(&mut guard) {
            bail!("{} is already running (pid {})", self.describe(), child.id());
        }
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_file)
            .with_context(|| format!("opening {}", self.log_file.display()))?;
        self.ctx.chown(&self.log_file)?;
        let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
        let child = self
            .ctx
            .command(&self.ctx.mariadbd)
            .arg(format!("--defaults-file={}", self.config_file.display()))
            .env("TMPDIR", self.node_dir.join("tmp"))
            .stdout(log.try_clone()?)
            .stderr(log)
            // Own process group: a Ctrl-C in the terminal must not reach the servers.
            .process_group(0)
            .spawn()
            .with_context(|| format!("spawning mariadbd for {}", self.describe()))?;
        let pid = child.id();
        *guard = Some(child);
        self.wait_ready(&mut guard, pid, log_start)
    }

    /// Stops the server cleanly (SIGTERM: connections closed, InnoDB shut down) and waits
    /// for it; SIGKILL after 30 s. No-op if it is not running.
    pub fn stop(&self) -> Result<()> {
        self.server.stop(Signal::SIGTERM, Duration::from_secs(30), None);
        Ok(())
    }

    /// SIGKILLs the server (a crash: the next [`start`](Self::start) runs InnoDB crash
    /// recovery). No-op if it is not running.
    pub fn kill(&self) -> Result<()> {
        self.server
            .kill()
            .map_err(|pid| anyhow!("{}: mariadbd {pid} survived SIGKILL for 10s", self.describe()))
    }

    /// SIGSTOPs the server: its port and socket still accept connections but nothing
    /// answers, so clients hang (and its replication threads stop). Undo with
    /// [`thaw`](Self::thaw).
    pub fn freeze(&self) -> Result<()> {
        self.signal(Signal::SIGSTOP)
    }

    /// SIGCONTs the server.
    pub fn thaw(&self) -> Result<()> {
        self.signal(Signal::SIGCONT)
    }

    fn signal(&self, sig: Signal) -> Result<()> {
        if self.server.signal(sig) {
            Ok(())
        } else {
            bail!("{} is not running", self.describe())
        }
    }

    /// First half of the lab's teardown: thaw, then request a clean shutdown.
    pub(super) fn begin_shutdown(&self) {
        self.server.begin_shutdown(Signal::SIGTERM);
    }

    /// Second half: wait for the server, SIGKILL it if it takes over 10 s.
    pub(super) fn finish_shutdown(&self) {
        self.server.finish_shutdown();
    }

    /// Description for messages: `MariaDB node "b" (127.0.0.1:23456)`.
    pub(super) fn describe(&self) -> String {
        format!("MariaDB node {:?} (127.0.0.1:{})", self.name, self.port)
    }

    fn lock(&self) -> MutexGuard<'_, Option<Child>> {
        self.server.lock()
    }

    /// Waits until the server (`pid`) logs "ready for connections" after `log_start`.
    fn wait_ready(&self, guard: &mut MutexGuard<'_, Option<Child>>, pid: u32, log_start: u64) -> Result<()> {
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if logged_since(&self.log_file, log_start, "ready for connections") {
                return Ok(());
            }
            let child = guard.as_mut().expect("mariadbd just spawned");
            if let Ok(Some(status)) = child.try_wait() {
                **guard = None;
                bail!(
                    "{}: mariadbd exited during startup ({status})\n--- log tail ---\n{}",
                    self.describe(),
                    self.log_tail(20)
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "{}: not ready after {START_TIMEOUT:?} (still running, pid {pid})\n--- log tail ---\n{}",
                    self.describe(),
                    self.log_tail(20)
                );
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Whether the last startup failure was a port conflict.
    pub(super) fn port_conflict_in_log(&self) -> bool {
        let t = self.log_tail(10);
        t.contains("Address already in use") || t.contains("Bind on TCP/IP port")
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

/// First line of `sql`, shortened, for error messages.
pub(super) fn short(sql: &str) -> String {
    let line = sql.trim().lines().next().unwrap_or("");
    if line.len() > 80 || sql.trim().lines().count() > 1 {
        format!("{}…", line.chars().take(80).collect::<String>())
    } else {
        line.to_string()
    }
}

impl Drop for MariaNode {
    fn drop(&mut self) {
        self.begin_shutdown();
        self.finish_shutdown();
    }
}
