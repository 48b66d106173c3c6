//! What a PostgreSQL and a MariaDB server of a lab have in common: the unprivileged
//! [`Account`] their programs run as (clean environment, owned directories), and the
//! generic [`Node`]: its name, port, directories and log, and its server process — start
//! (spawn, wait until ready, report a crash during startup with the log's tail), another
//! port when the first was taken, stop, kill, freeze, thaw, teardown. What differs per
//! engine is an [`Engine`]: its signals and messages, the command that starts it and how
//! it says it is ready, plus its own fields and SQL methods, kept in its folder
//! (`postgres/node.rs`, `mariadb/node.rs`).
//!
//! The server is spawned directly (output appended to the node's log file) rather than
//! daemonized: PID 1 on these machines does not reap orphans, so a daemonized server would
//! linger as a zombie after a kill and block the next start.

use std::fs::OpenOptions;
use std::future::Future;
use std::os::unix::fs::PermissionsExt;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};
use nix::sys::signal::Signal;
use nix::unistd::{Gid, Uid, User};

use crate::ports::free_port;
use crate::process::{children_of, running, tail, ServerChild};

/// How long a start may take before it is declared failed.
const START_TIMEOUT: Duration = Duration::from_secs(60);

/// The account a lab's server programs run as: the engine's unprivileged account (the
/// servers refuse root, or should not run as it) when we are root, else ourselves.
#[doc(hidden)]
#[derive(Debug)]
pub struct Account {
    name: &'static str,
    owner: Option<(Uid, Gid)>,
    home: PathBuf,
}

impl Account {
    /// `name` (e.g. `postgres`) when we are root, with `home` as `$HOME`; `missing` says
    /// which package creates the account when it does not exist.
    pub(crate) fn new(name: &'static str, missing: &str, home: &Path) -> Result<Account> {
        let owner = if Uid::effective().is_root() {
            let user = User::from_name(name).with_context(|| format!("looking up the {name} account"))?;
            let user = user.with_context(|| {
                format!(
                    "running as root, the servers need the unprivileged `{name}` account ({missing}), \
                     which does not exist: run scripts/install-deps.sh"
                )
            })?;
            Some((user.uid, user.gid))
        } else {
            None
        };
        Ok(Account { name, owner, home: home.to_path_buf() })
    }

    /// A command with a clean environment (no stray `PG*` or `MYSQL_*` variables), run as
    /// the account.
    pub(crate) fn command(&self, program: &Path) -> Command {
        let mut cmd = Command::new(program);
        cmd.env_clear()
            .env("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            .env("HOME", &self.home)
            .env("LC_ALL", "C")
            .stdin(Stdio::null());
        if let Some((uid, gid)) = self.owner {
            cmd.uid(uid.as_raw()).gid(gid.as_raw());
        }
        cmd
    }

    /// Runs `program` to completion; on failure the error carries its output.
    pub(crate) fn run(&self, command: &mut Command) -> Result<()> {
        let program = command.get_program().to_string_lossy().into_owned();
        let out = command.output().with_context(|| format!("running {program}"))?;
        if !out.status.success() {
            let args: Vec<_> = command.get_args().map(|a| a.to_string_lossy()).collect();
            bail!(
                "{program} {} failed ({}):\n{}{}",
                args.join(" "),
                out.status,
                String::from_utf8_lossy(&out.stderr),
                String::from_utf8_lossy(&out.stdout)
            );
        }
        Ok(())
    }

    /// Creates a directory (mode 0700) owned by the account.
    pub(crate) fn mkdir(&self, dir: &Path) -> Result<()> {
        std::fs::create_dir(dir).with_context(|| format!("creating {}", dir.display()))?;
        std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700))?;
        self.chown(dir)
    }

    /// Gives `path` to the account (nothing to do when we are not root).
    pub(crate) fn chown(&self, path: &Path) -> Result<()> {
        if let Some((uid, gid)) = self.owner {
            nix::unistd::chown(path, Some(uid), Some(gid))
                .with_context(|| format!("chown {} {}", self.name, path.display()))?;
        }
        Ok(())
    }
}

/// How one engine's servers behave, for the shared [`Node`].
#[doc(hidden)]
pub struct Behaviour {
    /// Begins a node's description in messages: `node`, `MariaDB node`.
    pub label: &'static str,
    /// The server program, in messages: `postgres`, `mariadbd`.
    pub program: &'static str,
    /// The signal that asks for a clean stop, and how long it may take.
    pub stop: (Signal, Duration),
    /// Sent when the clean stop took too long, with 10 s more before SIGKILL.
    pub stop_fallback: Option<Signal>,
    /// The signal of the lab's teardown (fast, as nothing is kept).
    pub teardown: Signal,
    /// Log lines that say a start failed because the port was taken.
    pub port_conflict: &'static [&'static str],
}

/// The engine-specific part of a [`Node`]: its own fields, and the hooks the shared start
/// calls. Implemented by `postgres::Postgres` and `mariadb::Mariadb`.
pub trait Engine: Sized + Send + Sync + std::fmt::Debug + 'static {
    #[doc(hidden)]
    const BEHAVIOUR: Behaviour;

    /// What a whole lab of this engine keeps besides its nodes and directory.
    type LabState: Send + Sync;

    #[doc(hidden)]
    /// The account the server runs as.
    fn account(node: &Node<Self>) -> &Account;

    #[doc(hidden)]
    /// Gets the node ready for a start (e.g. removes a stale lock file) and returns the
    /// command that starts the server; the shared start adds the log and process group.
    fn command(node: &Node<Self>) -> Result<Command>;

    #[doc(hidden)]
    /// Whether the server spawned as `pid` accepts connections; `log_start` is the log's
    /// length before it was spawned.
    fn is_ready(node: &Node<Self>, pid: u32, log_start: u64) -> bool;
}

/// One server of a lab: [`PgNode`](crate::PgNode) or [`MariaNode`](crate::MariaNode).
/// Its process is our own child, so it is reaped when it dies. Dropping it stops the
/// server.
pub struct Node<E: Engine> {
    name: String,
    port: u16,
    node_dir: PathBuf,
    data_dir: PathBuf,
    log_file: PathBuf,
    process: ServerChild,
    pub(crate) engine: E,
}

impl<E: Engine> std::fmt::Debug for Node<E> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Node")
            .field("name", &self.name)
            .field("port", &self.port)
            .field("node_dir", &self.node_dir)
            .field("engine", &self.engine)
            .finish()
    }
}

impl<E: Engine> Node<E> {
    /// A node that is not started yet.
    pub(crate) fn new(
        name: &str,
        node_dir: PathBuf,
        data_dir: PathBuf,
        log_file: PathBuf,
        engine: E,
    ) -> Self {
        let (name, port, process) = (name.to_string(), free_port(), ServerChild::default());
        Node { name, port, node_dir, data_dir, log_file, process, engine }
    }

    /// The node's name in the lab spec.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// Its TCP port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its data directory (PostgreSQL's `PGDATA`, MariaDB's `datadir`).
    pub fn data_dir(&self) -> &Path {
        &self.data_dir
    }

    /// The node's directory: `data/`, the log, the Unix socket and the engine's other files.
    pub fn node_dir(&self) -> &Path {
        &self.node_dir
    }

    /// The server log (everything the server writes to stdout and stderr).
    pub fn log_file(&self) -> &Path {
        &self.log_file
    }

    /// The last `lines` lines of the server log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log_file, lines)
    }

    /// The server's pid, if it is running.
    pub fn pid(&self) -> Option<u32> {
        self.process.pid()
    }

    /// The server's current child processes (diagnostics; MariaDB has none).
    pub fn child_pids(&self) -> Vec<i32> {
        self.pid().map(|p| children_of(p as i32)).unwrap_or_default()
    }

    /// Starts the server and waits until it accepts connections (PostgreSQL: as a primary
    /// or hot standby). Works after [`stop`](Self::stop) and after [`kill`](Self::kill)
    /// (crash recovery runs); a replica resumes replicating from where it was.
    pub fn start(&self) -> Result<()> {
        let mut guard = self.process.lock();
        if let Some(child) = running(&mut guard) {
            bail!("{} is already running (pid {})", self.describe(), child.id());
        }
        let mut command = E::command(self)?;
        let log = OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log_file)
            .with_context(|| format!("opening {}", self.log_file.display()))?;
        E::account(self).chown(&self.log_file)?;
        let log_start = log.metadata().map(|m| m.len()).unwrap_or(0);
        let child = command
            .stdout(log.try_clone()?)
            .stderr(log)
            // Own process group: a Ctrl-C in the terminal must not reach the servers.
            .process_group(0)
            .spawn()
            .with_context(|| format!("spawning {} for {}", E::BEHAVIOUR.program, self.describe()))?;
        let pid = child.id();
        *guard = Some(child);
        let deadline = Instant::now() + START_TIMEOUT;
        loop {
            if E::is_ready(self, pid, log_start) {
                return Ok(());
            }
            let child = guard.as_mut().expect("server just spawned");
            if let Ok(Some(status)) = child.try_wait() {
                *guard = None;
                bail!(
                    "{}: {} exited during startup ({status})\n--- log tail ---\n{}",
                    self.describe(),
                    E::BEHAVIOUR.program,
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

    /// Starts a new node; when another program took its port between [`free_port`] and the
    /// bind, moves it to another port (`configure` writes that port into its configuration)
    /// and tries again, three times at most.
    pub(crate) fn start_new(&mut self, mut configure: impl FnMut(&Self) -> Result<()>) -> Result<()> {
        for attempt in 1.. {
            match self.start() {
                Err(_) if attempt < 3 && self.port_conflict_in_log() => {
                    self.port = free_port();
                    configure(self)?;
                }
                result => return result,
            }
        }
        unreachable!("the loop returns")
    }

    /// Stops the server cleanly and waits for it (PostgreSQL: fast shutdown, sessions
    /// disconnected and a shutdown checkpoint written, an immediate one after 30 s, as a
    /// primary waits for its walsenders, which can hang on a frozen replica; MariaDB:
    /// SIGTERM, connections closed and InnoDB shut down). SIGKILL when that fails. No-op
    /// if it is not running.
    pub fn stop(&self) -> Result<()> {
        let (signal, grace) = E::BEHAVIOUR.stop;
        self.process.stop(signal, grace, E::BEHAVIOUR.stop_fallback);
        Ok(())
    }

    /// SIGKILLs the server and its child processes (a crash: the next
    /// [`start`](Self::start) runs crash recovery). No-op if it is not running.
    pub fn kill(&self) -> Result<()> {
        self.process.kill().map_err(|pid| {
            anyhow!("{}: {} {pid} survived SIGKILL for 10s", self.describe(), E::BEHAVIOUR.program)
        })
    }

    /// SIGSTOPs the server and its children: its port still accepts TCP connections but
    /// nothing answers, so queries hang (and its replication stops). Undo with
    /// [`thaw`](Self::thaw).
    pub fn freeze(&self) -> Result<()> {
        self.signal_all(Signal::SIGSTOP)
    }

    /// SIGCONTs the server and its children.
    pub fn thaw(&self) -> Result<()> {
        self.signal_all(Signal::SIGCONT)
    }

    fn signal_all(&self, sig: Signal) -> Result<()> {
        if self.process.signal(sig) {
            Ok(())
        } else {
            bail!("{} is not running", self.describe())
        }
    }

    /// First half of the lab's teardown (all servers at once): thaw, then request the
    /// engine's fast shutdown.
    pub(crate) fn begin_shutdown(&self) {
        self.process.begin_shutdown(E::BEHAVIOUR.teardown);
    }

    /// Second half: wait for the server, SIGKILL everything if it takes over 10 s.
    pub(crate) fn finish_shutdown(&self) {
        self.process.finish_shutdown();
    }

    /// Description for messages: `MariaDB node "b" (127.0.0.1:23456)`.
    pub(crate) fn describe(&self) -> String {
        format!("{} {:?} (127.0.0.1:{})", E::BEHAVIOUR.label, self.name, self.port)
    }

    /// Whether the last startup failure was a port conflict.
    fn port_conflict_in_log(&self) -> bool {
        let t = self.log_tail(10);
        E::BEHAVIOUR.port_conflict.iter().any(|needle| t.contains(needle))
    }

    /// Polls `query` (the first column of the first row of `sql`, as text) until it returns
    /// `expected`, for up to `timeout`. Query errors count as "not yet".
    pub(crate) async fn poll_value<F, Fut>(
        &self,
        sql: &str,
        expected: &str,
        timeout: Duration,
        query: F,
    ) -> Result<()>
    where
        F: Fn() -> Fut,
        Fut: Future<Output = Result<Option<String>>>,
    {
        let answered =
            |v: Option<String>| if v.as_deref() == Some(expected) { Ok(()) } else { Err(format!("{v:?}")) };
        poll(timeout, "query", query, answered).await.map_err(|last| {
            anyhow!(
                "{}: `{}` did not return {expected:?} within {timeout:?}; last: {last}",
                self.describe(),
                short(sql)
            )
        })
    }
}

/// Runs `query` (2 s at most each time) every 50 ms until `check` accepts its answer, for
/// up to `timeout`; `check` describes an answer it refuses. On timeout, `Err` with what the
/// last attempt saw: that description, `error: …` for a failed query, `WHAT timed out
/// after 2s`, or `(no answer yet)`.
pub(crate) async fn poll<T, F, Fut>(
    timeout: Duration,
    what: &str,
    query: F,
    check: impl Fn(T) -> Result<(), String>,
) -> Result<(), String>
where
    F: Fn() -> Fut,
    Fut: Future<Output = Result<T>>,
{
    let deadline = Instant::now() + timeout;
    let mut last = String::from("(no answer yet)");
    while Instant::now() < deadline {
        match tokio::time::timeout(Duration::from_secs(2), query()).await {
            Ok(Ok(answer)) => match check(answer) {
                Ok(()) => return Ok(()),
                Err(seen) => last = seen,
            },
            Ok(Err(e)) => last = format!("error: {e:#}"),
            Err(_) => last = format!("{what} timed out after 2s"),
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    Err(last)
}

impl<E: Engine> Drop for Node<E> {
    fn drop(&mut self) {
        self.begin_shutdown();
        self.finish_shutdown();
    }
}

/// First line of `sql`, shortened, for error messages.
pub(crate) fn short(sql: &str) -> String {
    let line = sql.trim().lines().next().unwrap_or("");
    if line.len() > 80 || sql.trim().lines().count() > 1 {
        format!("{}…", line.chars().take(80).collect::<String>())
    } else {
        line.to_string()
    }
}
