//! A MariaDB lab: writable primaries and GTID replicas of them (chained and multi-source
//! allowed), real servers on 127.0.0.1, all inside one temporary directory the lab owns.
//!
//! Owns the lab's shape ([`MariaLabSpec`]), its creation (every server's data directory is
//! a copy of a template made once per process by `mariadb-install-db`; the servers start in
//! parallel; then `CHANGE MASTER … MASTER_USE_GTID=slave_pos` on each replica), its
//! teardown (clean shutdown of every server on drop, then the directory is removed; a
//! watchdog does the same if the process dies without unwinding) and the helpers that act
//! on the whole lab. A single server lives in [`node`]; the option files in [`config`].
//!
//! As root, the servers and `mariadb-install-db` run as the unprivileged `mysql` account
//! (Debian's package creates it); the lab directory is chowned to it. Each server gets its
//! own `tmpdir` inside the lab: InnoDB fails with errno 13 if `$TMPDIR` is not writable by
//! the server's account.

mod config;
mod node;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, Context, Result};

pub use node::{MariaNode, Mariadb};

use crate::cluster::{self, Lab};
use crate::process::{scratch_tempdir, sh_quote, Watchdog};
use crate::programs::find_program;
use crate::server::Account;

/// The account replicas log in to their upstream with (it exists on every node).
const REPL_USER: &str = "rpo_lab_repl";
/// How long `start` waits for the replication threads and `run_on_primaries` for replicas.
const REPLICATION_TIMEOUT: Duration = Duration::from_secs(30);
/// Longest Unix socket path (`sun_path` is 108 bytes with the NUL).
const MAX_SOCKET_PATH: usize = 107;

/// The shape of a lab: primaries and replicas, each replica naming its upstreams.
///
/// ```
/// let spec = rpo_lab::MariaLabSpec::new()
///     .primary("a")
///     .primary("a2")
///     .replica("b", &["a"]) // replica of a
///     .replica("c", &["b"]) // chained: c replicates from b
///     .replica("m", &["a", "a2"]); // multi-source: connections named "a" and "a2"
/// ```
#[derive(Clone, Debug, Default)]
pub struct MariaLabSpec {
    /// (name, upstreams): a primary has none.
    nodes: Vec<(String, Vec<String>)>,
}

impl MariaLabSpec {
    pub fn new() -> MariaLabSpec {
        MariaLabSpec::default()
    }

    /// A writable server (`read_only=OFF`) with a GTID domain of its own. Several are
    /// allowed (multi-writer labs); they do not replicate from each other.
    pub fn primary(mut self, name: &str) -> MariaLabSpec {
        self.nodes.push((name.to_string(), Vec::new()));
        self
    }

    /// A `read_only=ON` replica of `upstreams` (earlier nodes: primaries or replicas). One
    /// upstream: the default (unnamed) replication connection. Several: multi-source, one
    /// connection per upstream, named after it.
    pub fn replica(mut self, name: &str, upstreams: &[&str]) -> MariaLabSpec {
        self.nodes.push((name.to_string(), upstreams.iter().map(|u| u.to_string()).collect()));
        self
    }

    fn validate(&self) -> Result<()> {
        if !self.nodes.iter().any(|(_, ups)| ups.is_empty()) {
            bail!("lab spec has no primary: MariaLabSpec::new().primary(\"a\")…");
        }
        let mut seen: Vec<&str> = Vec::new();
        for (name, upstreams) in &self.nodes {
            cluster::check_node_name(name)?;
            // Replication connection names are case-insensitive.
            if seen.iter().any(|s| s.eq_ignore_ascii_case(name)) {
                bail!("node name {name:?} is used twice (names are compared case-insensitively)");
            }
            for (i, up) in upstreams.iter().enumerate() {
                if !seen.contains(&up.as_str()) {
                    bail!("replica {name:?}: upstream {up:?} must be declared before it");
                }
                if upstreams[..i].contains(up) {
                    bail!("replica {name:?}: upstream {up:?} is listed twice");
                }
            }
            seen.push(name);
        }
        Ok(())
    }

    /// The primaries `name` ultimately replicates from (itself for a primary).
    fn primaries_of(&self, name: &str) -> Vec<String> {
        let mut out = Vec::new();
        let mut todo = vec![name.to_string()];
        while let Some(n) = todo.pop() {
            let Some((_, ups)) = self.nodes.iter().find(|(m, _)| *m == n) else { continue };
            if ups.is_empty() {
                if !out.contains(&n) {
                    out.push(n);
                }
            } else {
                todo.extend(ups.iter().cloned());
            }
        }
        out
    }
}

/// What every node needs to run programs: the server program and the account that runs it.
#[derive(Debug)]
pub(crate) struct Ctx {
    mariadbd: PathBuf,
    account: Account,
}

impl Ctx {
    /// `mariadbd` and the `mysql` account (created by Debian's package) when we are root,
    /// with `home` as `$HOME`.
    fn new(home: &Path) -> Result<Ctx> {
        let account = Account::new("mysql", "created by Debian's mariadb-server package", home)?;
        Ok(Ctx { mariadbd: find_program("mariadbd")?, account })
    }

    /// Copies the directory tree `from` to `to` (which must not exist), owned by the account.
    fn copy_tree(&self, from: &Path, to: &Path) -> Result<()> {
        self.account.mkdir(to)?;
        for entry in std::fs::read_dir(from).with_context(|| format!("reading {}", from.display()))? {
            let entry = entry?;
            let (src, dst) = (entry.path(), to.join(entry.file_name()));
            if entry.file_type()?.is_dir() {
                self.copy_tree(&src, &dst)?;
            } else {
                std::fs::copy(&src, &dst)
                    .with_context(|| format!("copying {} to {}", src.display(), dst.display()))?;
                self.account.chown(&dst)?;
            }
        }
        Ok(())
    }
}

/// A freshly initialised data directory (`mariadb-install-db`, no binary log, root without
/// a password, the replication account), copied for every server. Made once per process:
/// it takes about 0.6 s. A watchdog removes it when the process exits.
struct Template {
    data_dir: PathBuf,
    repl_password: String,
    _watchdog: Watchdog,
}

static TEMPLATE: Mutex<Option<Arc<Template>>> = Mutex::new(None);

fn template() -> Result<Arc<Template>> {
    let mut guard = TEMPLATE.lock().unwrap_or_else(|e| e.into_inner());
    if let Some(t) = guard.as_ref() {
        return Ok(t.clone());
    }
    let dir = scratch_tempdir("rpo-lab-maria-template.", "the MariaDB template directory")?;
    // Kept for the life of the process, removed by the watchdog when it exits.
    let watchdog = Watchdog::spawn(&format!("rm -rf {}", sh_quote(&dir.path().display().to_string())))?;
    let t =
        make_template(dir.path(), watchdog).context("initialising the MariaDB template data directory")?;
    let _ = dir.keep();
    let t = Arc::new(t);
    *guard = Some(t.clone());
    Ok(t)
}

fn make_template(dir: &Path, watchdog: Watchdog) -> Result<Template> {
    let ctx = Ctx::new(dir)?;
    ctx.account.chown(dir)?;
    let (data_dir, tmp_dir) = (dir.join("data"), dir.join("tmp"));
    ctx.account.mkdir(&tmp_dir)?;
    let config_file = dir.join("my.cnf");
    std::fs::write(&config_file, config::template_config(&data_dir, &tmp_dir))?;
    let repl_password = random_password();
    let extra_sql = dir.join("setup.sql");
    std::fs::write(
        &extra_sql,
        format!(
            "-- Bootstrap runs with --skip-grant-tables; FLUSH PRIVILEGES enables account statements.\n\
             FLUSH PRIVILEGES;\n\
             -- Accounts for the machine's host name are useless under skip-name-resolve.\n\
             DELETE FROM mysql.global_priv WHERE Host NOT IN ('localhost', '127.0.0.1', '::1');\n\
             DELETE FROM mysql.proxies_priv WHERE Host NOT IN ('localhost', '127.0.0.1', '::1');\n\
             FLUSH PRIVILEGES;\n\
             CREATE USER '{REPL_USER}'@'127.0.0.1' IDENTIFIED BY PASSWORD '{}';\n\
             GRANT REPLICATION SLAVE, SLAVE MONITOR ON *.* TO '{REPL_USER}'@'127.0.0.1';\n",
            native_password_hash(&repl_password)
        ),
    )?;
    ctx.account.chown(&extra_sql)?;
    let out = ctx
        .account
        .command(&find_program("mariadb-install-db")?)
        .arg(format!("--defaults-file={}", config_file.display()))
        .args(["--auth-root-authentication-method=normal", "--skip-test-db", "--skip-name-resolve"])
        .arg(format!("--extra-file={}", extra_sql.display()))
        .env("TMPDIR", &tmp_dir)
        .output()
        .context("running mariadb-install-db")?;
    if !out.status.success() {
        bail!(
            "mariadb-install-db failed ({}):\n{}{}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(Template { data_dir, repl_password, _watchdog: watchdog })
}

/// A running MariaDB lab. Dropping it stops every server and removes its directory.
pub type MariaLab = Lab<Mariadb>;

impl MariaLab {
    /// Creates and starts every node of `spec` (in parallel), connects the replicas, and
    /// returns once every replica's IO and SQL threads run.
    pub async fn start(spec: MariaLabSpec) -> Result<MariaLab> {
        spec.validate()?;
        let lab = MariaLab::build(move || MariaLab::create(spec)).await?;
        lab.connect_replicas().await?;
        Ok(lab)
    }

    fn create(spec: MariaLabSpec) -> Result<MariaLab> {
        let template = template()?;
        let watchdog = |dir: &Path| watchdog_script(dir, &spec);
        let mut lab = MariaLab::create_in("rpo-lab-maria.", |_| Ok(spec.clone()), watchdog)?;
        let ctx = Arc::new(Ctx::new(lab.dir())?);
        ctx.account.chown(lab.dir())?;
        let results: Vec<Result<MariaNode>> = std::thread::scope(|s| {
            let handles: Vec<_> = spec
                .nodes
                .iter()
                .enumerate()
                .map(|(i, (name, upstreams))| {
                    let (ctx, template, dir) = (ctx.clone(), &template, lab.dir());
                    s.spawn(move || {
                        create_node(ctx, template, dir, name, upstreams, i as u32 + 1)
                            .with_context(|| format!("creating MariaDB node {name:?}"))
                    })
                })
                .collect();
            handles
                .into_iter()
                .map(|h| h.join().unwrap_or_else(|_| Err(anyhow!("node creation panicked"))))
                .collect()
        });
        let mut first_error = None;
        for r in results {
            match r {
                Ok(node) => lab.nodes.push(node),
                Err(e) => {
                    first_error.get_or_insert(e);
                }
            }
        }
        match first_error {
            Some(e) => Err(e), // dropping `lab` stops the nodes that did start
            None => Ok(lab),
        }
    }

    /// `RESET MASTER` on every primary that wrote anything, then `CHANGE MASTER` + `START ALL SLAVES` on every
    /// replica, then waits for the replication threads.
    async fn connect_replicas(&self) -> Result<()> {
        for p in self.primaries() {
            // The template has no binary log, so a new server's is empty and RESET MASTER
            // (which takes about 1 s here) is only needed if something was written already.
            if p.query_one_string("SELECT @@GLOBAL.gtid_binlog_state").await?.is_some_and(|s| !s.is_empty()) {
                p.exec("RESET MASTER").await?;
            }
        }
        let password = template()?.repl_password.clone();
        for r in self.replicas() {
            let mut sql = String::new();
            for up in r.upstreams() {
                let conn = r.connection_name(up).unwrap_or_default();
                sql.push_str(&format!(
                    "CHANGE MASTER '{conn}' TO MASTER_HOST='127.0.0.1', MASTER_PORT={}, \
                     MASTER_USER='{REPL_USER}', MASTER_PASSWORD='{password}', \
                     MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1;\n",
                    self.node(up).port()
                ));
            }
            sql.push_str("START ALL SLAVES;\n");
            r.exec(&sql)
                .await
                .with_context(|| format!("connecting replica {:?} to {:?}", r.name(), r.upstreams()))?;
        }
        for r in self.replicas() {
            r.wait_replication_running(REPLICATION_TIMEOUT).await?;
        }
        Ok(())
    }

    /// The primaries, in spec order.
    pub fn primaries(&self) -> impl Iterator<Item = &MariaNode> {
        self.nodes.iter().filter(|n| n.is_primary())
    }

    /// The replicas, in spec order.
    pub fn replicas(&self) -> impl Iterator<Item = &MariaNode> {
        self.nodes.iter().filter(|n| !n.is_primary())
    }

    /// Runs `sql_script` (several statements allowed) as root on every primary, in spec
    /// order, then waits (30 s at most) until every replica has applied it. The script runs
    /// once per primary: make it idempotent (`IF NOT EXISTS`) when a multi-source replica
    /// receives it from several primaries.
    pub async fn run_on_primaries(&self, sql_script: &str) -> Result<()> {
        for p in self.primaries() {
            p.exec(sql_script).await?;
        }
        self.wait_replicated(REPLICATION_TIMEOUT).await
    }

    /// Creates the account `'user'@'127.0.0.1'` (TCP logins from 127.0.0.1; with
    /// `skip-name-resolve`, `@localhost` is the Unix socket only) on every primary with
    /// `password`, sets that password if it existed, runs `grants_sql` (e.g. `GRANT SELECT
    /// ON rpo.* TO 'user'@'127.0.0.1'`), and waits until every replica has it. Only the
    /// password's hash reaches the servers and their binary logs.
    pub async fn create_user(&self, user: &str, password: &str, grants_sql: &str) -> Result<()> {
        let account = format!("'{}'@'127.0.0.1'", sql_escape(user));
        let hash = native_password_hash(password);
        let mut script = format!(
            "CREATE USER IF NOT EXISTS {account} IDENTIFIED BY PASSWORD '{hash}';\n\
             ALTER USER {account} IDENTIFIED BY PASSWORD '{hash}';\n"
        );
        if !grants_sql.trim().is_empty() {
            script.push_str(grants_sql.trim_end().trim_end_matches(';'));
            script.push_str(";\n");
        }
        self.run_on_primaries(&script).await.with_context(|| format!("creating MariaDB user {user:?}"))
    }

    /// Waits until every replica has applied everything its primaries have written so far
    /// (`MASTER_GTID_WAIT` with the primaries' `gtid_binlog_pos`).
    pub async fn wait_replicated(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let mut positions: BTreeMap<&str, String> = BTreeMap::new();
        for p in self.primaries() {
            let pos = p.query_one_string("SELECT @@GLOBAL.gtid_binlog_pos").await?.unwrap_or_default();
            positions.insert(p.name(), pos);
        }
        for r in self.replicas() {
            let sources = self.state.primaries_of(r.name());
            let pos = merge_gtid_positions(sources.iter().filter_map(|s| positions.get(s.as_str())));
            if pos.is_empty() {
                continue;
            }
            let left = deadline.saturating_duration_since(Instant::now());
            let sql = format!("SELECT MASTER_GTID_WAIT('{pos}', {:.3})", left.as_secs_f64());
            let answer = tokio::time::timeout(left + Duration::from_secs(5), r.query_one_string(&sql)).await;
            match answer {
                Ok(Ok(Some(v))) if v == "0" => {}
                Ok(Ok(v)) => bail!(
                    "replica {} has not applied {pos} within {timeout:?} (MASTER_GTID_WAIT returned {v:?}); \
                     replication: {}",
                    r.describe(),
                    r.status_summary().await
                ),
                Ok(Err(e)) => return Err(e.context(format!("waiting for {} to apply {pos}", r.describe()))),
                Err(_) => {
                    bail!("replica {} did not answer MASTER_GTID_WAIT within {timeout:?}", r.describe())
                }
            }
        }
        Ok(())
    }
}

/// Creates node `name` (data directory copied from the template, options file) and starts
/// it, moving to another port if its first one was taken meanwhile.
fn create_node(
    ctx: Arc<Ctx>,
    template: &Template,
    lab_dir: &Path,
    name: &str,
    upstreams: &[String],
    server_id: u32,
) -> Result<MariaNode> {
    let node_dir = lab_dir.join(name);
    ctx.account.mkdir(&node_dir)?;
    ctx.account.mkdir(&node_dir.join("tmp"))?;
    let data_dir = node_dir.join("data");
    ctx.copy_tree(&template.data_dir, &data_dir)?;
    let socket = node_dir.join("mariadbd.sock");
    if socket.as_os_str().len() > MAX_SOCKET_PATH {
        bail!(
            "Unix socket path {} is longer than {MAX_SOCKET_PATH} bytes: set RPO_LAB_TMPDIR to a shorter directory",
            socket.display()
        );
    }
    let engine = Mariadb {
        upstreams: upstreams.to_vec(),
        server_id,
        domain_id: server_id,
        pid_file: node_dir.join("mariadbd.pid"),
        config_file: node_dir.join("my.cnf"),
        socket,
        ctx,
    };
    let log_file = node_dir.join("mariadbd.log");
    let mut node = MariaNode::new(name, node_dir, data_dir, log_file, engine);
    write_config(&node)?;
    node.start_new(write_config)?;
    Ok(node)
}

fn write_config(node: &MariaNode) -> Result<()> {
    let engine = &node.engine;
    let text = config::node_config(&config::NodeSettings {
        name: node.name(),
        data_dir: node.data_dir(),
        socket: &engine.socket,
        pid_file: &engine.pid_file,
        tmp_dir: &node.node_dir().join("tmp"),
        port: node.port(),
        server_id: engine.server_id,
        domain_id: engine.domain_id,
        read_only: !node.is_primary(),
    });
    std::fs::write(&engine.config_file, text)
        .with_context(|| format!("writing {}", engine.config_file.display()))
}

/// Merges `gtid_binlog_pos` values ("D-S-N,…"): one GTID per domain, the highest sequence.
fn merge_gtid_positions<'a>(positions: impl Iterator<Item = &'a String>) -> String {
    let mut by_domain: BTreeMap<u32, (u32, u64)> = BTreeMap::new();
    for gtid in positions.flat_map(|p| p.split(',')).map(str::trim).filter(|g| !g.is_empty()) {
        let parts: Vec<&str> = gtid.split('-').collect();
        let [Ok(d), Ok(s), Ok(n)] = [parts.first(), parts.get(1), parts.get(2)]
            .map(|p| p.ok_or(()).and_then(|p| p.parse::<u64>().map_err(|_| ())))
        else {
            continue;
        };
        let e = by_domain.entry(d as u32).or_insert((s as u32, n));
        if n > e.1 {
            *e = (s as u32, n);
        }
    }
    by_domain.iter().map(|(d, (s, n))| format!("{d}-{s}-{n}")).collect::<Vec<_>>().join(",")
}

/// The `mysql_native_password` hash of `password`: `*` + hex(SHA1(SHA1(password))).
fn native_password_hash(password: &str) -> String {
    use sha1::{Digest, Sha1};
    let inner = Sha1::digest(password.as_bytes());
    let outer = Sha1::digest(inner);
    let hex: String = outer.iter().map(|b| format!("{b:02X}")).collect();
    format!("*{hex}")
}

/// Escapes `s` for a single-quoted SQL string literal.
fn sql_escape(s: &str) -> String {
    s.replace('\\', "\\\\").replace('\'', "''")
}

/// 24 random alphanumeric characters.
fn random_password() -> String {
    use std::collections::hash_map::RandomState;
    use std::hash::{BuildHasher, Hasher};
    const ALPHABET: &[u8] = b"ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789";
    (0..24)
        .map(|i| {
            let mut h = RandomState::new().build_hasher();
            h.write_usize(i);
            ALPHABET[(h.finish() % ALPHABET.len() as u64) as usize] as char
        })
        .collect()
}

/// The script the watchdog runs if this process dies without dropping the lab: SIGCONT and
/// SIGTERM to every server, SIGKILL after 10 s, remove the directory unless `.keep` exists.
fn watchdog_script(dir: &Path, spec: &MariaLabSpec) -> String {
    let nodes = spec.nodes.iter().map(|(name, _)| name.as_str());
    let stop = r#"c=; read -r c < /proc/$p/comm 2>/dev/null; [ "$c" = mariadbd ] || continue
  kill -CONT "$p" 2>/dev/null; kill -TERM "$p" 2>/dev/null"#;
    cluster::watchdog_script(dir, nodes, "mariadbd.pid", stop)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lab_can_be_shared_across_tasks() {
        fn send_sync<T: Send + Sync>() {}
        send_sync::<MariaLab>();
        send_sync::<MariaNode>();
    }

    #[test]
    fn gtid_positions_merge_per_domain() {
        let a = "1-1-5".to_string();
        let b = "2-2-3,1-1-4".to_string();
        let empty = String::new();
        assert_eq!(merge_gtid_positions([&a, &b, &empty].into_iter()), "1-1-5,2-2-3");
        assert_eq!(merge_gtid_positions([&empty].into_iter()), "");
    }

    #[test]
    fn native_password_hash_matches_mariadb() {
        // SELECT PASSWORD('secret') on MariaDB.
        assert_eq!(native_password_hash("secret"), "*14E65567ABDB5135D0CFD9A70B3032C179A49EE7");
    }

    #[test]
    fn spec_validation() {
        assert!(MariaLabSpec::new().replica("b", &["a"]).validate().is_err());
        assert!(MariaLabSpec::new().primary("a").replica("b", &["x"]).validate().is_err());
        assert!(MariaLabSpec::new().primary("a").primary("A").validate().is_err());
        assert!(MariaLabSpec::new().primary("a").replica("m", &["a", "a"]).validate().is_err());
        let spec =
            MariaLabSpec::new().primary("a").primary("a2").replica("b", &["a"]).replica("m", &["b", "a2"]);
        spec.validate().unwrap();
        let mut p = spec.primaries_of("m");
        p.sort();
        assert_eq!(p, ["a", "a2"]);
        assert_eq!(spec.primaries_of("a"), ["a"]);
    }
}
