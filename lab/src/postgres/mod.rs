//! A PostgreSQL lab: one primary and any number of streaming replicas (cascading allowed),
//! real servers on 127.0.0.1, all inside one temporary directory that the lab owns.
//!
//! Owns the lab's shape ([`PgLabSpec`]), its creation (`initdb` for the primary,
//! `pg_basebackup -R -C -S` for each replica from its upstream), its teardown (immediate
//! shutdown of every server on drop, then the directory is removed; a watchdog does the
//! same if the process dies without unwinding) and the helpers that act on the whole lab.
//! A single server lives in [`node`]; the configuration text in [`config`].
//!
//! As root, every server-side program runs as the unprivileged `postgres` account (the
//! server refuses root); the lab directory is chowned to it.

mod config;
pub(crate) mod node;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};

pub use node::{PgNode, Postgres};

use crate::cluster::{self, Lab};
use crate::process::append;
use crate::programs::find_program;
use crate::server::Account;

/// Where the PostgreSQL server programs are: `$RPO_LAB_PG_BINDIR`, else
/// `pg_config --bindir`, else the newest `/usr/lib/postgresql/*/bin`.
pub fn pg_bindir() -> Result<PathBuf> {
    let complete = |dir: &Path| ["postgres", "initdb", "pg_basebackup"].iter().all(|p| dir.join(p).is_file());
    if let Some(dir) = std::env::var_os("RPO_LAB_PG_BINDIR") {
        let dir = PathBuf::from(dir);
        if complete(&dir) {
            return Ok(dir);
        }
        bail!("RPO_LAB_PG_BINDIR={} has no postgres/initdb/pg_basebackup", dir.display());
    }
    if let Ok(out) = find_program("pg_config").and_then(|p| Ok(Command::new(p).arg("--bindir").output()?)) {
        let dir = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
        if out.status.success() && complete(&dir) {
            return Ok(dir);
        }
    }
    let mut candidates: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .filter_map(|e| {
            let e = e.ok()?;
            let version = e.file_name().to_str()?.parse::<u32>().ok()?;
            Some((version, e.path().join("bin")))
        })
        .filter(|(_, dir)| complete(dir))
        .collect();
    candidates.sort();
    candidates.pop().map(|(_, dir)| dir).ok_or_else(|| {
        anyhow!(
            "PostgreSQL server programs (postgres, initdb, pg_basebackup) not found: not in \
             `pg_config --bindir` nor /usr/lib/postgresql/*/bin; run scripts/install-deps.sh"
        )
    })
}

/// The shape of a lab: a primary and its replicas, each replica naming its upstream.
///
/// ```
/// let spec = rpo_lab::PgLabSpec::new().primary("p").replica("r1", "p").replica("r2", "r1");
/// ```
#[derive(Clone, Debug, Default)]
pub struct PgLabSpec {
    nodes: Vec<(String, Option<String>)>,
}

impl PgLabSpec {
    pub fn new() -> PgLabSpec {
        PgLabSpec::default()
    }

    /// The primary (exactly one, declared first).
    pub fn primary(mut self, name: &str) -> PgLabSpec {
        self.nodes.push((name.to_string(), None));
        self
    }

    /// A streaming replica of `upstream` (the primary or an earlier replica).
    pub fn replica(mut self, name: &str, upstream: &str) -> PgLabSpec {
        self.nodes.push((name.to_string(), Some(upstream.to_string())));
        self
    }

    fn validate(&self) -> Result<()> {
        let Some((_, None)) = self.nodes.first() else {
            bail!("lab spec must start with a primary: PgLabSpec::new().primary(\"p\")…");
        };
        let mut seen: Vec<&str> = Vec::new();
        for (name, upstream) in &self.nodes {
            cluster::check_node_name(name)?;
            if seen.iter().any(|s| slot_name(s) == slot_name(name)) {
                bail!("node name {name:?} is used twice (names are compared case-insensitively, '-' = '_')");
            }
            match upstream {
                None if !seen.is_empty() => bail!("second primary {name:?}: a lab has one"),
                Some(up) if !seen.contains(&up.as_str()) => {
                    bail!("replica {name:?}: upstream {up:?} must be declared before it")
                }
                _ => {}
            }
            seen.push(name);
        }
        Ok(())
    }
}

/// The physical replication slot a replica uses on its upstream.
fn slot_name(node: &str) -> String {
    node.to_ascii_lowercase().replace('-', "_")
}

/// What every node needs to run programs: where they are and which account runs them.
#[doc(hidden)]
#[derive(Debug)]
pub struct Ctx {
    bindir: PathBuf,
    account: Account,
}

impl Ctx {
    /// Runs one of the PostgreSQL programs to completion; on failure the error carries its
    /// output.
    fn run(&self, program: &str, args: &[&str]) -> Result<()> {
        self.account.run(self.account.command(&self.bindir.join(program)).args(args))
    }
}

/// A running PostgreSQL lab. Dropping it stops every server (immediate shutdown) and
/// removes its directory.
pub type PgLab = Lab<Postgres>;

impl PgLab {
    /// Creates and starts every node of `spec`, in order, and waits until every replica
    /// is streaming. Takes a couple of seconds.
    pub async fn start(spec: PgLabSpec) -> Result<PgLab> {
        spec.validate()?;
        let lab = PgLab::build(move || PgLab::create(&spec)).await?;
        for node in lab.nodes.iter().filter(|n| n.upstream().is_some()) {
            node.wait_replicating().await?;
        }
        Ok(lab)
    }

    fn create(spec: &PgLabSpec) -> Result<PgLab> {
        let bindir = pg_bindir()?;
        let state = |dir: &Path| {
            let account = Account::new("postgres", "created by Debian's postgresql package", dir)?;
            account.chown(dir)?;
            Ok(Arc::new(Ctx { bindir, account }))
        };
        let mut lab = PgLab::create_in("rpo-lab-pg.", state, |dir| watchdog_script(dir, spec))?;
        for (name, upstream) in &spec.nodes {
            lab.add_node(name, upstream.as_deref()).with_context(|| format!("creating node {name:?}"))?;
        }
        Ok(lab)
    }

    fn add_node(&mut self, name: &str, upstream: Option<&str>) -> Result<()> {
        let ctx = self.state.clone();
        let node_dir = self.dir().join(name);
        ctx.account.mkdir(&node_dir)?;
        let data_dir = node_dir.join("data");
        let data = data_dir.to_str().context("non-UTF-8 lab path")?;
        match upstream {
            None => {
                ctx.run(
                    "initdb",
                    &[
                        "-D",
                        data,
                        "-U",
                        "postgres",
                        "-A",
                        "trust",
                        "-E",
                        "UTF8",
                        "--locale=C",
                        "--no-sync",
                        "--no-instructions",
                    ],
                )?;
                append(&data_dir.join("postgresql.conf"), config::SHARED_SETTINGS)?;
                std::fs::write(data_dir.join("pg_hba.conf"), config::PG_HBA)?;
            }
            Some(up) => {
                let up_port = self.node(up).port().to_string();
                ctx.run(
                    "pg_basebackup",
                    &[
                        "-h",
                        "127.0.0.1",
                        "-p",
                        &up_port,
                        "-U",
                        "postgres",
                        "-D",
                        data,
                        "-R",
                        "-X",
                        "stream",
                        "-C",
                        "-S",
                        &slot_name(name),
                        "-c",
                        "fast",
                        "--no-sync",
                    ],
                )?;
            }
        }
        let log_file = node_dir.join("postgres.log");
        let settings = data_dir.join("postgresql.conf");
        let engine = Postgres { upstream: upstream.map(str::to_string), ctx };
        let mut node = PgNode::new(name, node_dir.clone(), data_dir, log_file, engine);
        append(&settings, &config::node_settings(name, node.port(), &node_dir))?;
        node.start_new(|node| append(&settings, &config::port_override(node.port())))?;
        self.nodes.push(node);
        Ok(())
    }

    /// The primary (the first node of the spec).
    pub fn primary(&self) -> &PgNode {
        &self.nodes[0]
    }

    /// The PostgreSQL programs directory in use (`psql` is there too).
    pub fn bindir(&self) -> &Path {
        &self.state.bindir
    }

    /// Runs a multi-statement SQL script as superuser on node `node`.
    pub async fn run_sql_script(&self, node: &str, sql: &str) -> Result<()> {
        self.node(node).execute(sql).await
    }

    /// Creates the login role `role` on the primary, then runs `extra_sql` (e.g. GRANTs),
    /// then waits until every replica has replayed it. Only the SCRAM verifier, computed
    /// here, is sent to the server: the password itself never reaches it or its logs.
    pub async fn create_role(&self, role: &str, password: &str, extra_sql: &str) -> Result<()> {
        let verifier = postgres_protocol::password::scram_sha_256(password.as_bytes());
        let ident = format!("\"{}\"", role.replace('"', "\"\""));
        self.primary()
            .execute(&format!("CREATE ROLE {ident} LOGIN PASSWORD '{verifier}'"))
            .await
            .with_context(|| format!("creating role {role:?}"))?;
        if !extra_sql.trim().is_empty() {
            self.primary().execute(extra_sql).await?;
        }
        self.wait_replayed(Duration::from_secs(30)).await
    }

    /// Waits until every replica has replayed the primary's current WAL position.
    pub async fn wait_replayed(&self, timeout: Duration) -> Result<()> {
        let lsn = self
            .primary()
            .query_one_string("SELECT pg_current_wal_lsn()")
            .await?
            .context("pg_current_wal_lsn() returned NULL")?;
        let sql = format!("SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn");
        for node in self.nodes.iter().filter(|n| n.upstream().is_some()) {
            node.wait_for_value(&sql, "t", timeout)
                .await
                .with_context(|| format!("waiting for {} to replay {lsn}", node.describe()))?;
        }
        Ok(())
    }
}

/// The script the watchdog runs if this process dies without dropping the lab: immediate
/// shutdown of every postmaster (SIGCONT first), SIGKILL after 10 s, remove the directory
/// unless `.keep` exists.
fn watchdog_script(dir: &Path, spec: &PgLabSpec) -> String {
    let nodes = spec.nodes.iter().map(|(name, _)| name.as_str());
    cluster::watchdog_script(
        dir,
        nodes,
        "data/postmaster.pid",
        r#"tree CONT "$p"; kill -QUIT "$p" 2>/dev/null"#,
    )
}
