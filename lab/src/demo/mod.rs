//! What both layouts of `rpo-lab demo` share (part of the `rpo-lab` binary, not of the
//! library): the demo's databases — a three-region PostgreSQL cluster (primary, replica,
//! cascading replica) and a two-region MariaDB one, with the exporter's account and
//! heartbeat schema set up as `rpo-exporter schema` prints them — the exporter configs
//! written for them, the exporter processes, and waiting for Ctrl-C.
//!
//! [`plain`] runs one exporter watching every node; [`regions`] runs the global layout
//! (a sidecar exporter beside each database, a Prometheus per region, a global one, two
//! clustered Alertmanagers).

pub(crate) mod plain;
pub(crate) mod regions;
mod webhook;

use std::io::Read;
use std::net::SocketAddr;
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};
use std::process::{ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use rpo_lab::{MariaLab, MariaLabSpec, PgLab, PgLabSpec, Watchdog};
use tokio::signal::unix::{signal, SignalKind};

/// The database engines of the demo.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Db {
    Postgres,
    Mariadb,
}

impl Db {
    /// The demo's cluster of this engine, as the exporter config names it.
    fn cluster(self) -> &'static str {
        match self {
            Db::Postgres => "demo",
            Db::Mariadb => "demo-maria",
        }
    }

    /// The exporter config's `engine`.
    fn config_engine(self) -> &'static str {
        match self {
            Db::Postgres => "postgres",
            Db::Mariadb => "mysql",
        }
    }

    /// Its name in the banner.
    pub(crate) fn label(self) -> &'static str {
        match self {
            Db::Postgres => "PostgreSQL",
            Db::Mariadb => "MariaDB",
        }
    }
}

/// A database node of the demo.
#[derive(Debug)]
pub(crate) struct DemoNode {
    pub(crate) name: &'static str,
    pub(crate) region: &'static str,
    /// The node it replicates from; `None` for a primary.
    pub(crate) upstream: Option<&'static str>,
    pub(crate) db: Db,
}

impl DemoNode {
    const fn new(name: &'static str, region: &'static str, upstream: Option<&'static str>, db: Db) -> Self {
        DemoNode { name, region, upstream, db }
    }

    /// `primary` or `replica of UPSTREAM`.
    pub(crate) fn role(&self) -> String {
        self.upstream.map_or("primary".to_owned(), |up| format!("replica of {up}"))
    }
}

/// Every node, PostgreSQL first; each engine's primary before its replicas.
pub(crate) const NODES: [DemoNode; 5] = [
    DemoNode::new("pg-use1", "us-east-1", None, Db::Postgres),
    DemoNode::new("pg-euw1", "eu-west-1", Some("pg-use1"), Db::Postgres),
    DemoNode::new("pg-apse1", "ap-southeast-1", Some("pg-euw1"), Db::Postgres),
    DemoNode::new("my-use1", "us-east-1", None, Db::Mariadb),
    DemoNode::new("my-euw1", "eu-west-1", Some("my-use1"), Db::Mariadb),
];

/// The regions, in the order the banner lists them.
pub(crate) const REGIONS: [&str; 3] = ["us-east-1", "eu-west-1", "ap-southeast-1"];

const ROLE: &str = "rpo_exporter";
const TABLE: &str = "rpo.heartbeat";

/// Where a database node listens, and how the exporter's account connects to it.
#[derive(Debug, Clone)]
pub(crate) struct Endpoint {
    pub(crate) port: u16,
    pub(crate) dsn: String,
}

/// An exporter config for the demo's databases: the clusters of the nodes `watch` picks,
/// each listing only those nodes (one node: the sidecar layout, `sources: any` by
/// default), and with `probes` the region health section (TCP probes of every node's
/// port, grouped by region). `endpoint` says where each node is.
pub(crate) fn exporter_config(
    watch: impl Fn(&DemoNode) -> bool,
    probes: bool,
    endpoint: impl Fn(&DemoNode) -> Endpoint,
    password_file: &Path,
) -> String {
    let mut yaml = "clusters:\n".to_owned();
    for db in [Db::Postgres, Db::Mariadb] {
        let nodes: Vec<&DemoNode> = NODES.iter().filter(|n| n.db == db && watch(n)).collect();
        if nodes.is_empty() {
            continue;
        }
        yaml += &format!(
            "  - name: {}\n    rpo: 30s\n    rto: 5m\n    write_mode: single-writer\n    heartbeat:\n      \
             interval: 1s\n      table: {TABLE}\n      create_table: false\n    nodes:\n",
            db.cluster()
        );
        for node in nodes {
            yaml += &format!(
                "      - name: {}\n        region: {}\n        engine: {}\n        dsn: \"{}\"\n        \
                 password_file: \"{}\"\n",
                node.name,
                node.region,
                node.db.config_engine(),
                endpoint(node).dsn,
                password_file.display()
            );
        }
    }
    if probes {
        // Region health: each region's database ports must accept connections.
        yaml += "health:\n  interval: 5s\n  regions:\n";
        for region in REGIONS {
            yaml += &format!("    {region}:\n      probes:\n");
            for node in NODES.iter().filter(|n| n.region == region) {
                yaml += &format!(
                    "        - {{ name: {}, tcp: \"127.0.0.1:{}\", timeout: 1s }}\n",
                    node.name,
                    endpoint(node).port
                );
            }
        }
    }
    yaml
}

/// The demo's databases, running, with the exporter's account (its password in a file
/// of the PostgreSQL lab's directory, where the demo also writes its configs and logs).
pub(crate) struct Databases {
    pg: PgLab,
    maria: MariaLab,
    password_file: PathBuf,
}

impl Databases {
    /// Starts both clusters and sets up the exporter's account and heartbeat schema with
    /// the SQL `exporter schema` prints.
    pub(crate) async fn start(exporter: &Path) -> Result<Databases> {
        let of = |db| NODES.iter().filter(move |n: &&DemoNode| n.db == db);
        let mut spec = PgLabSpec::new();
        for node in of(Db::Postgres) {
            spec = match node.upstream {
                None => spec.primary(node.name),
                Some(up) => spec.replica(node.name, up),
            };
        }
        eprintln!("rpo-lab: starting PostgreSQL primary, replica and cascading replica…");
        let pg = PgLab::start(spec).await?;

        let password = random_password()?;
        let password_file = pg.dir().join("password");
        std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&password_file)
            .and_then(|mut f| std::io::Write::write_all(&mut f, password.as_bytes()))
            .with_context(|| format!("writing {}", password_file.display()))?;
        pg.create_role(ROLE, &password, "").await?;
        let sql = schema_sql(exporter, &["postgres"])?;
        let primary = of(Db::Postgres).next().expect("a PostgreSQL primary").name;
        pg.run_sql_script(primary, &sql).await.context("running the exporter's schema SQL on the primary")?;
        pg.wait_replayed(Duration::from_secs(30)).await?;

        eprintln!("rpo-lab: starting MariaDB primary and replica…");
        let mut maria_spec = MariaLabSpec::new();
        for node in of(Db::Mariadb) {
            maria_spec = match node.upstream {
                None => maria_spec.primary(node.name),
                Some(up) => maria_spec.replica(node.name, &[up]),
            };
        }
        let maria = MariaLab::start(maria_spec).await?;
        let maria_sql = schema_sql(exporter, &["mysql", "--server", "mariadb-10.11", "--host", "127.0.0.1"])?;
        maria
            .create_user(ROLE, &password, &maria_sql)
            .await
            .context("setting up the MariaDB account and schema")?;
        Ok(Databases { pg, maria, password_file })
    }

    /// Where the demo writes its configs and logs (the PostgreSQL lab's directory).
    pub(crate) fn dir(&self) -> &Path {
        self.pg.dir()
    }

    /// Both labs' directories, for the banner.
    pub(crate) fn dirs(&self) -> String {
        format!("{} and {}", self.pg.dir().display(), self.maria.dir().display())
    }

    pub(crate) fn endpoint(&self, node: &DemoNode) -> Endpoint {
        match node.db {
            Db::Postgres => {
                let n = self.pg.node(node.name);
                Endpoint { port: n.port(), dsn: n.dsn(ROLE) }
            }
            Db::Mariadb => {
                let n = self.maria.node(node.name);
                Endpoint { port: n.port(), dsn: n.dsn(ROLE) }
            }
        }
    }

    /// [`exporter_config`] for these databases, written to `file_name` in [`dir`](Self::dir).
    pub(crate) fn write_config(
        &self,
        file_name: &str,
        watch: impl Fn(&DemoNode) -> bool,
        probes: bool,
    ) -> Result<PathBuf> {
        let file = self.dir().join(file_name);
        let yaml = exporter_config(watch, probes, |n| self.endpoint(n), &self.password_file);
        std::fs::write(&file, yaml).with_context(|| format!("writing {}", file.display()))?;
        Ok(file)
    }

    /// A shell command line opening the database client on `name` as its superuser.
    pub(crate) fn client_command(&self, name: &str) -> String {
        match NODES.iter().find(|n| n.name == name).map(|n| n.db) {
            Some(Db::Postgres) => self.pg.node(name).psql_command(),
            Some(Db::Mariadb) => self.maria.node(name).mariadb_command(),
            None => panic!("no demo node {name}"),
        }
    }

    /// The banner's table of nodes: name, region, address, engine and role, then what
    /// `extra` adds for the node.
    pub(crate) fn node_lines(&self, extra: impl Fn(usize, &DemoNode) -> String) -> String {
        let mut lines = String::new();
        for (i, node) in NODES.iter().enumerate() {
            let what = format!("{} {}", node.db.label(), node.role());
            let port = self.endpoint(node).port;
            let line = format!(
                "    {:<9} {:<15} 127.0.0.1:{port:<6} {what:<29} {}",
                node.name,
                node.region,
                extra(i, node)
            );
            lines += line.trim_end();
            lines.push('\n');
        }
        lines
    }

    /// Keeps the lab directories when `keep`, then stops every database.
    pub(crate) async fn stop(mut self, keep: bool) {
        if keep {
            match self.pg.keep_dir().and_then(|()| self.maria.keep_dir()) {
                Ok(()) => eprintln!("rpo-lab: kept {}", self.dirs()),
                Err(e) => eprintln!("rpo-lab: cannot keep the lab directories: {e:#}"),
            }
        }
        self.pg.shutdown().await;
        self.maria.shutdown().await;
    }
}

/// 32 random letters and digits.
fn random_password() -> Result<String> {
    const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
    let mut bytes = [0u8; 32];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .context("reading /dev/urandom")?;
    Ok(bytes.iter().map(|b| ALPHABET[*b as usize % ALPHABET.len()] as char).collect())
}

/// Runs `EXPORTER schema ARGS… --table TABLE --role ROLE` and returns the SQL it prints.
fn schema_sql(exporter: &Path, args: &[&str]) -> Result<String> {
    let out = std::process::Command::new(exporter)
        .arg("schema")
        .args(args)
        .args(["--table", TABLE, "--role", ROLE])
        .output()
        .with_context(|| format!("running {} schema {}", exporter.display(), args.join(" ")))?;
    if !out.status.success() {
        eprint!("{}", String::from_utf8_lossy(&out.stderr));
        bail!(
            "`{} schema {} --table {TABLE} --role {ROLE}` failed ({})",
            exporter.display(),
            args.join(" "),
            out.status
        );
    }
    String::from_utf8(out.stdout).context("schema SQL is not UTF-8")
}

/// How long an exporter may take to serve after it starts, and to stop after SIGTERM.
const EXPORTER_START: Duration = Duration::from_secs(30);
const EXPORTER_STOP: Duration = Duration::from_secs(5);

/// An rpo-exporter the demo runs, in a process group of its own (a Ctrl-C in the
/// terminal reaches only `rpo-lab`, which stops it with SIGTERM); killed on drop, and by
/// a watchdog if `rpo-lab` dies first.
pub(crate) struct Exporter {
    /// What it watches, in messages.
    what: String,
    listen: SocketAddr,
    child: tokio::process::Child,
    /// Its exit status once seen.
    exited: Option<ExitStatus>,
    _watchdog: Watchdog,
}

impl Exporter {
    /// Starts `bin --config.file CONFIG --web.listen-address LISTEN`, its output appended
    /// to `log` (or to this terminal), and waits until it serves `/-/ready`.
    pub(crate) async fn start(
        bin: &Path,
        config: &Path,
        listen: SocketAddr,
        log: Option<&Path>,
        what: &str,
    ) -> Result<Exporter> {
        if !listen.ip().is_loopback() {
            bail!("{listen}: only loopback addresses are allowed");
        }
        let mut command = tokio::process::Command::new(bin);
        command
            .arg("--config.file")
            .arg(config)
            .arg("--web.listen-address")
            .arg(listen.to_string())
            .process_group(0)
            .kill_on_drop(true);
        if let Some(log) = log {
            let file = std::fs::File::create(log).with_context(|| format!("creating {}", log.display()))?;
            command.stdout(file.try_clone()?).stderr(file).stdin(Stdio::null());
        }
        let child = command.spawn().with_context(|| format!("starting {}", bin.display()))?;
        // kill_on_drop covers errors and panics; the watchdog covers `rpo-lab` being killed.
        let pid = child.id().context("the exporter exited at once")?;
        let mut exporter = Exporter {
            what: what.to_owned(),
            listen,
            child,
            exited: None,
            _watchdog: Watchdog::kill_on_exit(pid)?,
        };
        exporter.wait_ready(log).await?;
        Ok(exporter)
    }

    async fn wait_ready(&mut self, log: Option<&Path>) -> Result<()> {
        let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(2)).build()?;
        let url = format!("http://{}/-/ready", self.listen);
        let deadline = Instant::now() + EXPORTER_START;
        loop {
            if http.get(&url).send().await.is_ok_and(|r| r.status().is_success()) {
                return Ok(());
            }
            let log_note = log.map_or(String::new(), |l| format!("; its log: {}", l.display()));
            if let Some(status) = self.child.try_wait()? {
                bail!("the exporter {} exited during startup ({status}){log_note}", self.what);
            }
            if Instant::now() >= deadline {
                bail!("the exporter {} did not serve {url} within {EXPORTER_START:?}{log_note}", self.what);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// What it watches.
    pub(crate) fn what(&self) -> &str {
        &self.what
    }

    /// `127.0.0.1:PORT`.
    pub(crate) fn host_port(&self) -> String {
        self.listen.to_string()
    }

    pub(crate) fn metrics_url(&self) -> String {
        format!("http://{}/metrics", self.listen)
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    /// Its exit status if it has exited since the last call (`None` while it runs, and
    /// after the first report).
    fn newly_exited(&mut self) -> Option<ExitStatus> {
        if self.exited.is_some() {
            return None;
        }
        self.exited = self.child.try_wait().ok().flatten();
        self.exited
    }
}

/// Waits for Ctrl-C or SIGTERM (`None`), or for one of `exporters` to exit by itself:
/// `Some((its index, its status))`; each exit is reported once.
pub(crate) async fn wait_for_stop(exporters: &mut [Exporter]) -> Result<Option<(usize, ExitStatus)>> {
    let mut sigterm = signal(SignalKind::terminate())?;
    let ctrl_c = tokio::signal::ctrl_c();
    tokio::pin!(ctrl_c);
    let mut tick = tokio::time::interval(Duration::from_millis(250));
    loop {
        tokio::select! {
            _ = &mut ctrl_c => return Ok(None),
            _ = sigterm.recv() => return Ok(None),
            _ = tick.tick() => {}
        }
        if let Some(found) = exporters.iter_mut().enumerate().find_map(|(i, e)| Some((i, e.newly_exited()?)))
        {
            return Ok(Some(found));
        }
    }
}

/// Stops `exporters`: SIGTERM to all, then each gets what is left of
/// [`EXPORTER_STOP`] before SIGKILL.
pub(crate) async fn stop_all(exporters: &mut [Exporter]) {
    for e in exporters.iter() {
        if let Some(pid) = e.pid() {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(pid as i32),
                nix::sys::signal::Signal::SIGTERM,
            );
        }
    }
    let deadline = tokio::time::Instant::now() + EXPORTER_STOP;
    for e in exporters.iter_mut() {
        if tokio::time::timeout_at(deadline, e.child.wait()).await.is_err() {
            eprintln!("rpo-lab: the exporter {} did not stop within {EXPORTER_STOP:?}: killing it", e.what);
            let _ = e.child.kill().await;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Node `i` of [`NODES`] listens on port 1000 + i.
    pub(crate) fn fake_endpoint(node: &DemoNode) -> Endpoint {
        let i = NODES.iter().position(|n| n.name == node.name).unwrap();
        Endpoint { port: 1000 + i as u16, dsn: format!("dsn-of-{}", node.name) }
    }

    #[test]
    fn one_config_watches_every_node_and_probes_every_region() {
        let c = exporter_config(|_| true, true, fake_endpoint, Path::new("/lab/password"));
        for node in &NODES {
            assert!(
                c.contains(&format!("      - name: {}\n        region: {}\n", node.name, node.region)),
                "{c}"
            );
            assert!(c.contains(&format!("dsn: \"dsn-of-{}\"", node.name)), "{c}");
        }
        assert!(c.contains("  - name: demo\n") && c.contains("  - name: demo-maria\n"), "{c}");
        assert!(c.contains("    eu-west-1:\n      probes:\n        - { name: pg-euw1, tcp: \"127.0.0.1:1001\", timeout: 1s }\n        - { name: my-euw1, tcp: \"127.0.0.1:1004\", timeout: 1s }\n"), "{c}");
        assert_eq!(c.matches("password_file: \"/lab/password\"").count(), NODES.len());
    }

    #[test]
    fn a_sidecar_config_lists_only_its_node() {
        let c = exporter_config(|n| n.name == "my-euw1", false, fake_endpoint, Path::new("/p"));
        assert!(!c.contains("  - name: demo\n"), "{c}");
        assert_eq!(c.matches("      - name: ").count(), 1, "{c}");
        assert!(c.contains("  - name: demo-maria\n") && c.contains("engine: mysql"), "{c}");
        assert!(!c.contains("health:"), "{c}");
        // Without `sources`: one node means `any`, so the replica's sidecar reads the
        // writer it does not list.
        assert!(!c.contains("sources"), "{c}");
    }
}
