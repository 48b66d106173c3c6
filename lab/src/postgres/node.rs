//! PostgreSQL's part of a lab node ([`PgNode`] = [`Node`]`<`[`Postgres`]`>`): its upstream,
//! how its postmaster starts (`postgres -D DATA`) and says it is ready, and the operations
//! only PostgreSQL has — SQL as superuser, promotion, waiting for replication. The process,
//! directories, port and log are the shared [`Node`]'s (`server.rs`).
//!
//! Readiness is read from `postmaster.pid`, as `pg_ctl -w` does; a `postmaster.pid` left by
//! a killed postmaster is removed before the next start, or the new one would refuse to run.

use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use nix::sys::signal::Signal;

use super::Ctx;
use crate::process::is_alive;
use crate::server::{poll, short, Account, Behaviour, Engine, Node};

/// How long `wait_replicating` waits for `pg_stat_wal_receiver.status = 'streaming'`.
const REPLICATING_TIMEOUT: Duration = Duration::from_secs(30);

/// One PostgreSQL server of a [`PgLab`](super::PgLab).
pub type PgNode = Node<Postgres>;

/// What a PostgreSQL node has of its own: the node it replicates from, and the programs.
#[derive(Debug)]
pub struct Postgres {
    pub(super) upstream: Option<String>,
    pub(super) ctx: Arc<Ctx>,
}

impl Engine for Postgres {
    const BEHAVIOUR: Behaviour = Behaviour {
        label: "node",
        program: "postgres",
        // Fast shutdown, then immediate shutdown (a primary waits for its walsenders).
        stop: (Signal::SIGINT, Duration::from_secs(30)),
        stop_fallback: Some(Signal::SIGQUIT),
        teardown: Signal::SIGQUIT,
        port_conflict: &["Address already in use", "could not create any TCP/IP sockets"],
    };

    /// What every node needs to run programs, kept for [`PgLab::bindir`](super::PgLab::bindir).
    type LabState = Arc<Ctx>;

    fn account(node: &PgNode) -> &Account {
        &node.engine.ctx.account
    }

    fn command(node: &PgNode) -> Result<Command> {
        node.clear_stale_pid_file()?;
        let mut command = node.engine.ctx.account.command(&node.engine.ctx.bindir.join("postgres"));
        command.arg("-D").arg(node.data_dir());
        Ok(command)
    }

    /// `postmaster.pid` is ours and its line 8 (the status: starting, stopping, ready or
    /// standby) says `ready` or `standby`.
    fn is_ready(node: &PgNode, pid: u32, _log_start: u64) -> bool {
        let Ok(text) = std::fs::read_to_string(node.data_dir().join("postmaster.pid")) else {
            return false;
        };
        let lines: Vec<&str> = text.lines().map(str::trim).collect();
        lines.first() == Some(&pid.to_string().as_str())
            && matches!(lines.get(7), Some(&("ready" | "standby")))
    }
}

impl PgNode {
    /// The name of the node this one replicates from (`None` for the primary).
    pub fn upstream(&self) -> Option<&str> {
        self.engine.upstream.as_deref()
    }

    /// libpq key=value DSN of the superuser: `host=127.0.0.1 port=N user=postgres dbname=postgres`.
    pub fn superuser_dsn(&self) -> String {
        self.dsn("postgres")
    }

    /// libpq key=value DSN for `user` (no password: pass it separately).
    pub fn dsn(&self, user: &str) -> String {
        format!("host=127.0.0.1 port={} user={user} dbname=postgres", self.port())
    }

    /// A shell command line that opens `psql` on this node as the superuser.
    pub fn psql_command(&self) -> String {
        let psql = self.engine.ctx.bindir.join("psql");
        format!("{} -h 127.0.0.1 -p {} -U postgres -d postgres", psql.display(), self.port())
    }

    /// A superuser client (the connection task is spawned on the current tokio runtime).
    pub async fn client(&self) -> Result<tokio_postgres::Client> {
        superuser_client(self.port(), Duration::from_secs(10), &self.describe()).await
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
        self.poll_value(sql, expected, timeout, || self.query_one_string(sql)).await
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
        let Some(upstream) = self.upstream() else {
            bail!("{} is the primary: it has no upstream to replicate from", self.describe());
        };
        let status = || self.query_one_string("SELECT status FROM pg_stat_wal_receiver");
        let streaming = |status: Option<String>| match status {
            Some(s) if s == "streaming" => Ok(()),
            Some(s) => Err(format!("status {s:?}")),
            None => Err("no WAL receiver running".into()),
        };
        poll(REPLICATING_TIMEOUT, "query", status, streaming).await.map_err(|last| {
            anyhow!(
                "replica {} is not streaming from {upstream} after {REPLICATING_TIMEOUT:?}; last: {last}\n\
                 --- log tail ---\n{}",
                self.describe(),
                self.log_tail(20)
            )
        })
    }

    /// Removes `postmaster.pid` left by a postmaster that is gone (after a kill), which
    /// would otherwise make the next postmaster refuse to start.
    fn clear_stale_pid_file(&self) -> Result<()> {
        let pid_file = self.data_dir().join("postmaster.pid");
        let Ok(text) = std::fs::read_to_string(&pid_file) else {
            return Ok(());
        };
        if let Some(pid) = text.lines().next().and_then(|l| l.trim().parse::<i32>().ok()) {
            let comm = std::fs::read_to_string(format!("/proc/{pid}/comm")).unwrap_or_default();
            if is_alive(pid) && comm.trim() == "postgres" {
                bail!(
                    "{}: another postmaster (pid {pid}) is running on {}",
                    self.describe(),
                    self.data_dir().display()
                );
            }
        }
        std::fs::remove_file(&pid_file).with_context(|| format!("removing stale {}", pid_file.display()))
    }
}

/// A superuser client of the PostgreSQL on `port` (loopback, no TLS), named
/// `describe` in errors; the connection task is spawned on the current tokio runtime.
pub(crate) async fn superuser_client(
    port: u16,
    connect_timeout: Duration,
    describe: &str,
) -> Result<tokio_postgres::Client> {
    let mut config = tokio_postgres::Config::new();
    config
        .host("127.0.0.1")
        .port(port)
        .user("postgres")
        .dbname("postgres")
        .application_name("rpo-lab")
        .connect_timeout(connect_timeout);
    let (client, connection) = config
        .connect(tokio_postgres::NoTls)
        .await
        .with_context(|| format!("connecting to {describe} as postgres"))?;
    tokio::spawn(async move {
        let _ = connection.await;
    });
    Ok(client)
}
