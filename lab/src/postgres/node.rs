//! One PostgreSQL server of a lab: its postmaster process (our own child, so it is reaped
//! when it dies), its directories and port, and the operations tests perform on it —
//! stop, kill, start, freeze, thaw, promote, SQL as superuser, waiting for replication.
//!
//! The postmaster is spawned directly (`postgres -D DATA`, output appended to the node's
//! log file) rather than through `pg_ctl start`: PID 1 on these machines does not reap
//! orphans, so a daemonized postmaster would linger as a zombie after a kill and block the
//! next start through its lock file. Readiness is read from `postmaster.pid`, as `pg_ctl -w`
//! does.

use std::fs::OpenOptions;
use std::path::{Path, PathBuf};
use std::process::Child;
use std::sync::{Arc, MutexGuard};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use nix::sys::signal::Signal;
use std::os::unix::process::CommandExt;

use super::Ctx;
use crate::process::{children_of, is_alive, running, tail, ServerChild};

/// How long a start may take before it is declared failed.
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// How long `wait_replicating` waits for `pg_stat_wal_receiver.status = 'streaming'`.
const REPLICATING_TIMEOUT: Duration = Duration::from_secs(30);

/// One PostgreSQL server of a [`PgLab`](super::PgLab).
pub struct PgNode {
    pub(super) name: String,
    pub(super) upstream: Option<String>,
    pub(super) port: u16,
    pub(super) node_dir: PathBuf,
    pub(super) data_dir: PathBuf,
    pub(super) log_file: PathBuf,
    pub(super) ctx: Arc<Ctx>,
    pub(super) postmaster: ServerChild,
}

impl std::fmt::Debug for PgNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgNode")
            .field("name", &self.name)
            .field("port", &self.port)
            .field("upstream", &self.upstream)
            .field("data_dir", &self.data_dir)
            .finish()
    }
}

impl PgNode {
    /// The node's name in the lab spec.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The name of the node this one replicates from (`None` for the primary).
    pub fn upstream(&self) -> Option<&str> {
        self.upstream.as_deref()
    }

    /// Its TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its data directory (`PGDATA`).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The node's directory: `data/`, `postgres.log` and the Unix socket (`-h` for psql).
    pub fn node_dir(&self) -> &Path {
        &self.node_dir
    }

    /// The server log (everything the postmaster writes to stderr).
    pub fn log_file(&self) -> &Path {
        &self.log_file
    }

    /// The last `lines` lines of the server log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log_file, lines)
    }

    /// libpq key=value DSN of the superuser: `host=127.0.0.1 port=N user=postgres dbname=postgres`.
    pub fn superuser_dsn(&self) -> String {
        self.dsn("postgres")
    }

    /// libpq key=value DSN for `user` (no password: pass it separately).
    pub fn dsn(&self, user: &str) -> String {
        format!("host=127.0.0.1 port={} user={user} dbname=postgres", self.port)
    }

    /// A shell command line that opens `psql` on this node as the superuser.
    pub fn psql_command(&self) -> String {
        format!(
            "{} -h 127.0.0.1 -p {} -U postgres -d postgres",
            self.ctx.bindir.join("psql").display(),
            self.port
        )
    }

    /// The postmaster's pid, if it is running.
    pub fn pid(&self) -> Option<u32> {
        self.postmaster.pid()
    }

    /// A superuser client (the connection task is spawned on the current tokio runtime).
    pub async fn client(&self) -> Result<tokio_postgres::Client> {
        let mut config = tokio_postgres::Config::new();
        config
            .host("127.0.0.1")
            .port(self.port)
            .user("postgres")
            .dbname("postgres")
            .application_name("rpo-lab")
            .connect_timeout(Duration::from_secs(10));
        let (client, connection) = config
            .connect(tokio_postgres::NoTls)
            .await
            .with_context(|| format!("connecting to {} as postgres", self.describe()))?;
        tokio::spawn(async move {
            let _ = connection.await;
        });
        Ok(client)
    }

    /// Runs `sql` (one or more statements) as superuser.
    pub async fn execute(&self, sql: &str) -> Result<()> {
        self.client()
            .await?
            .batch_execute(sql)
            .await
            .with_context(|| format!("running SQL on {}: {}", self.describe(), short(sql)))
    }

    /// Runs `sql` as superuser and returns the first column of the first row as text
    /// (`None` if there is no row or the value is NULL). Works for any column type.
    pub async fn query_one_string(&self, sql: &str) -> Result<Option<String>> {
        let messages = self
            .client()
            .await?
            .simple_query(sql)
            .await
            .with_context(|| format!("querying {}: {}", self.describe(), short(sql)))?;
        Ok(messages
            .iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => Some(row.get(0).map(str::to_owned)),
                _ => None,
            })
            .flatten())
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

    /// Promotes this replica to a primary (`SELECT pg_promote()`, waiting up to 60 s).
    pub async fn promote(&self) -> Result<()> {
        let done = self
            .query_one_string("SELECT pg_promote(true, 60)")
            .await
            .with_context(|| format!("promoting {}", self.describe()))?;
        if done.as_deref() != Some("t") {
            bail!(
                "promoting {}: pg_promote() returned {done:?}\n--- log tail ---\n{}",
                self.describe(),
                self.log_tail(20)
            );
        }
        Ok(())
    }

    /// Waits (up to 30 s) until this replica's `pg_stat_wal_receiver.status` is `streaming`.
    pub async fn wait_replicating(&self) -> Result<()> {
        let Some(upstream) = &self.upstream else {
            bail!("{} is the primary: it has no upstream to replicate from", self.describe());
        };
        let deadline = Instant::now() + REPLICATING_TIMEOUT;
        let mut last = String::from("(no answer yet)");
        while Instant::now() < deadline {
            let status = tokio::time::timeout(
                Duration::from_secs(2),
                self.query_one_string("SELECT status FROM pg_stat_wal_receiver"),
            )
            .await;
            match status {
                Ok(Ok(Some(s))) if s == "streaming" => return Ok(()),
                Ok(Ok(Some(s))) => last = format!("status {s:?}"),
                Ok(Ok(None)) => last = "no WAL receiver running".into(),
                Ok(Err(e)) => last = format!("error: {e:#}"),
                Err(_) => last = "query timed out after 2s".into(),
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        bail!(
            "replica {} is not streaming from {upstream} after {REPLICATING_TIMEOUT:?}; last: {last}\n\
             --- log tail ---\n{}",
            self.describe(),
            self.log_tail(20)
        )
    }

    /// Starts the server and waits until it accepts connections (as a primary or hot
    /// standby). Works after [`stop`](Self::stop) and after [`kill`](Self::kill).
    pub fn start(&self) -> Result<()> {
        let mut guard = self.lock();
        if let Some(child) = running(&mut guard) {
            bail!("{} is already running (pid {})", self.describe(), child.id());
        }
        self.clear_stale_pid_file()?;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_file)
            .with_context(|| format!("opening {}", self.log_file.display()))?;
        let child = self
            .ctx
            .command(&self.ctx.bindir.join("postgres"))
            .arg("-D")
            .arg(&self.data_dir)
            .stdout(log.try_clone()?)
            .stderr(log)
            // Own process group: a Ctrl-C in the terminal must not reach the servers.
            .process_group(0)
            .spawn()
            .with_context(|| format!("spawning postgres for {}", self.describe()))?;
        let pid = child.id();
        *guard = Some(child);
        self.wait_ready(&mut guard, pid)
    }

    /// Stops the server (fast shutdown: sessions are disconnected, a shutdown checkpoint is
    /// written) and waits for it. Falls back to an immediate shutdown after 30 s (a primary
    /// waits for its walsenders, which can hang on a frozen replica). No-op if stopped.
    pub fn stop(&self) -> Result<()> {
        self.postmaster.stop(Signal::SIGINT, Duration::from_secs(30), Some(Signal::SIGQUIT));
        Ok(())
    }

    /// SIGKILLs the postmaster and all its child processes (a crash: no shutdown
    /// checkpoint; the next [`start`](Self::start) runs crash recovery). No-op if stopped.
    pub fn kill(&self) -> Result<()> {
        self.postmaster
            .kill()
            .map_err(|pid| anyhow!("{}: postmaster {pid} survived SIGKILL for 10s", self.describe()))
    }

    /// SIGSTOPs the postmaster and all its children: the port still accepts TCP
    /// connections but nothing answers, so queries hang. Undo with [`thaw`](Self::thaw).
    pub fn freeze(&self) -> Result<()> {
        self.signal_all(Signal::SIGSTOP)
    }

    /// SIGCONTs the postmaster and all its children.
    pub fn thaw(&self) -> Result<()> {
        self.signal_all(Signal::SIGCONT)
    }

    fn signal_all(&self, sig: Signal) -> Result<()> {
        if self.postmaster.signal(sig) {
            Ok(())
        } else {
            bail!("{} is not running", self.describe())
        }
    }

    /// First half of the lab's teardown: thaw, then request an immediate shutdown.
    pub(super) fn begin_immediate_shutdown(&self) {
        self.postmaster.begin_shutdown(Signal::SIGQUIT);
    }

    /// Second half: wait for the postmaster, SIGKILL everything if it takes over 10 s.
    pub(super) fn finish_shutdown(&self) {
        self.postmaster.finish_shutdown();
    }

    /// `(host, port)` description for messages: `node "r1" (127.0.0.1:23456)`.
    pub(super) fn describe(&self) -> String {
        format!("node {:?} (127.0.0.1:{})", self.name, self.port)
    }

    fn lock(&self) -> MutexGuard<'_, Option<Child>> {
        self.postmaster.lock()
    }

    /// Removes `postmaster.pid` left by a postmaster that is gone (after a kill), which
    /// would otherwise make the next postmaster refuse to start.
    fn clear_stale_pid_file(&self) -> Result<()> {
        let pid_file = self.data_dir.join("postmaster.pid");
        let Ok(text) = std::fs::read_to_string(&pid_file) else {
            return Ok(());
        };
        if let Some(pid) = text.lines().next().and_then(|l| l.trim().parse::<i32>().ok()) {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if is_alive(pid) && comm.trim() == "postgres" {
                bail!(
                    "{}: another postmaster (pid {pid}) is running on {}",
                    self.describe(),
                    self.data_dir.display()
                );
            }
        }
        std::fs::remove_file(&pid_file).with_context(|| format!("removing stale {}", pid_file.display()))
    }

    /// Waits until `postmaster.pid` (written by `pid`) says `ready` or `standby`.
    fn wait_ready(&self, guard: &mut MutexGuard<'_, Option<Child>>, pid: u32) -> Result<()> {
        let pid_file = self.data_dir.join("postmaster.pid");
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if let Ok(text) = std::fs::read_to_string(&pid_file) {
                let lines: Vec<&str> = text.lines().collect();
                let ours = lines.first().map(|l| l.trim()) == Some(pid.to_string().as_str());
                // Line 8 is the postmaster status: starting, stopping, ready or standby.
                if ours && matches!(lines.get(7).map(|l| l.trim()), Some("ready" | "standby")) {
                    return Ok(());
                }
            }
            let child = guard.as_mut().expect("postmaster just spawned");
            if let Ok(Some(status)) = child.try_wait() {
                **guard = None;
                bail!(
                    "{}: postgres exited during startup ({status})\n--- log tail ---\n{}",
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

    /// The postmaster's current child processes (diagnostics).
    pub fn child_pids(&self) -> Vec<i32> {
        self.pid().map(|p| children_of(p as i32)).unwrap_or_default()
    }

    /// Moves the node to another port (at creation, when its first port was taken).
    pub(super) fn set_port(&mut self, port: u16) {
        self.port = port;
    }

    /// Whether the last startup failure was a port conflict.
    pub(super) fn port_conflict_in_log(&self) -> bool {
        let t = self.log_tail(10);
        t.contains("Address already in use") || t.contains("could not create any TCP/IP sockets")
    }
}

/// First line of `sql`, shortened, for error messages.
fn short(sql: &str) -> String {
    let line = sql.trim().lines().next().unwrap_or("");
    if line.len() > 80 || sql.trim().lines().count() > 1 {
        format!("{}…", line.chars().take(80).collect::<String>())
    } else {
        line.to_string()
    }
}

impl Drop for PgNode {
    fn drop(&mut self) {
        self.begin_immediate_shutdown();
        self.finish_shutdown();
    }
}
