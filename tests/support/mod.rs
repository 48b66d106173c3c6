//! Test support: a PostgreSQL lab set up for the exporter (role, grants, password
//! file, config), the exporter binary run as a child process, and a small parser
//! for its `/metrics` output.
#![allow(dead_code)]

pub mod adversarial;
pub mod dns;
pub mod drill;
pub mod interrupted;
pub mod maria;
pub mod probes;
pub mod webhook;

use rpo_lab::{free_port, PgLab, PgLabSpec};
use std::collections::BTreeMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

/// A password no log line or metric may ever contain.
pub const PASSWORD: &str = "Pw-UNMISTAKABLE-4b7e19c2";
pub const ROLE: &str = "rpo_exporter";

/// Regions given to lab nodes, in order.
pub const REGIONS: &[&str] = &["us-east-1", "eu-west-1", "ap-southeast-1", "sa-east-1"];

/// A PostgreSQL lab whose primary has the heartbeat table and a least-privilege
/// login role for the exporter, with its password in a file.
pub struct Lab {
    pub pg: PgLab,
    pub dir: TempDir,
    pub password_file: PathBuf,
    /// (node name, region) in lab order.
    pub nodes: Vec<(String, String)>,
}

impl Lab {
    /// A lab set up as `rpo-exporter schema postgres` says: table and grants.
    pub async fn start(spec: PgLabSpec) -> Lab {
        let schema =
            rpo_exporter::engine::schema_sql("postgres", &"rpo.heartbeat".parse().unwrap(), ROLE, None, None)
                .unwrap();
        Lab::start_with_sql(spec, &schema).await
    }

    /// A lab whose exporter role gets only what `setup_sql` grants (run as
    /// superuser after the role is created).
    pub async fn start_with_sql(spec: PgLabSpec, setup_sql: &str) -> Lab {
        let pg = PgLab::start(spec).await.expect("start the PostgreSQL lab (run scripts/install-deps.sh?)");
        pg.create_role(ROLE, PASSWORD, setup_sql).await.expect("create the exporter's role");
        let (dir, password_file) = password_dir();
        let nodes = node_regions(pg.nodes().iter().map(|n| n.name()));
        Lab { pg, dir, password_file, nodes }
    }

    pub fn region(&self, node: &str) -> &str {
        region_of(&self.nodes, node)
    }

    /// One node entry of the config.
    pub fn node_yaml(&self, node: &str) -> String {
        self.node_yaml_at(node, self.pg.node(node).port())
    }

    /// One node entry of the config, reached on `port` (a [`Wan`] proxy).
    pub fn node_yaml_at(&self, node: &str, port: u16) -> String {
        let dsn = format!("host=127.0.0.1 port={port} user={ROLE} dbname=postgres");
        node_entry(node, self.region(node), "postgres", &dsn, &self.password_file)
    }

    /// A config with one cluster `lab` holding every lab node, then `extra_nodes`.
    pub fn config(&self, interval: &str, extra_nodes: &str) -> String {
        self.config_with(interval, false, extra_nodes)
    }

    pub fn config_with(&self, interval: &str, create_table: bool, extra_nodes: &str) -> String {
        let nodes: String = self.nodes.iter().map(|(n, _)| self.node_yaml(n)).collect();
        format!(
            "clusters:\n  - name: lab\n    rpo: 30s\n    rto: 5m\n    heartbeat:\n      interval: {interval}\n      table: rpo.heartbeat\n      create_table: {create_table}\n    nodes:\n{nodes}{extra_nodes}"
        )
    }

    /// Pair labels (source → replica) as the exporter writes them.
    pub fn pair(&self, source: &str, replica: &str) -> Vec<(&'static str, String)> {
        pair_labels(&self.nodes, "lab", source, replica)
    }

    pub fn node_labels(&self, node: &str) -> Vec<(&'static str, String)> {
        node_labels_in(&self.nodes, "lab", node)
    }
}

/// What a lab of either engine gives the exporter, part 1: the password of its account in
/// the file `password` of a new temporary directory.
fn password_dir() -> (TempDir, PathBuf) {
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
    (dir, password_file)
}

/// Part 2: (node name, region) for the lab's nodes in order, regions from [`REGIONS`].
fn node_regions<'a>(names: impl Iterator<Item = &'a str>) -> Vec<(String, String)> {
    names.enumerate().map(|(i, n)| (n.to_owned(), REGIONS[i % REGIONS.len()].to_owned())).collect()
}

/// The region of `node` among `nodes` (node name, region).
fn region_of<'a>(nodes: &'a [(String, String)], node: &str) -> &'a str {
    &nodes.iter().find(|(n, _)| n == node).expect("node in lab").1
}

/// One node entry of the config (the exporter's password in `password_file`).
fn node_entry(node: &str, region: &str, engine: &str, dsn: &str, password_file: &Path) -> String {
    format!(
        "      - name: {node}\n        region: {region}\n        engine: {engine}\n        dsn: \"{dsn}\"\n        password_file: {}\n",
        password_file.display()
    )
}

/// The labels of the pair `source` → `replica` of `cluster`, as the exporter writes them;
/// regions from `nodes` (node name, region).
fn pair_labels(
    nodes: &[(String, String)],
    cluster: &str,
    source: &str,
    replica: &str,
) -> Vec<(&'static str, String)> {
    vec![
        ("db_cluster", cluster.into()),
        ("source_node", source.into()),
        ("source_region", region_of(nodes, source).into()),
        ("replica_node", replica.into()),
        ("replica_region", region_of(nodes, replica).into()),
    ]
}

/// The labels of `node` of `cluster`, as the exporter writes them.
fn node_labels_in(nodes: &[(String, String)], cluster: &str, node: &str) -> Vec<(&'static str, String)> {
    vec![
        ("db_cluster", cluster.into()),
        ("node", node.into()),
        ("node_region", region_of(nodes, node).into()),
    ]
}

/// A WAN between the exporter and the databases: one delay proxy per node
/// (`rpo_lab::Proxy`), each adding the same one-way latency, so every round trip
/// the exporter makes to a node gains twice that. Replication between the
/// servers stays direct.
pub struct Wan {
    proxies: BTreeMap<String, rpo_lab::Proxy>,
}

/// One way between regions far apart: 300 ms round trip, the farthest pair of
/// cloud regions.
pub const FAR: Duration = Duration::from_millis(150);

impl Wan {
    /// Proxies to `(node, port)` targets, each with `one_way` latency.
    pub async fn start(targets: &[(&str, u16)], one_way: Duration) -> Wan {
        let mut proxies = BTreeMap::new();
        for (name, port) in targets {
            let proxy = rpo_lab::Proxy::start(*port).await.expect("start a delay proxy");
            proxy.set_delay(one_way);
            proxies.insert((*name).to_owned(), proxy);
        }
        Wan { proxies }
    }

    /// The proxy in front of `node`.
    pub fn proxy(&self, node: &str) -> &rpo_lab::Proxy {
        self.proxies.get(node).unwrap_or_else(|| panic!("no proxy for {node}"))
    }

    /// The port the exporter reaches `node` on.
    pub fn port(&self, node: &str) -> u16 {
        self.proxy(node).port()
    }
}

/// Both engines behind a WAN: a PostgreSQL primary and replica (cluster `lab`,
/// p → r1) and a MariaDB primary and replica (cluster `maria`, a → b), every node
/// reached through its own delay proxy.
pub struct TwoLabs {
    pub pg: Lab,
    pub my: maria::MyLab,
    pub wan: Wan,
}

impl TwoLabs {
    pub async fn start(one_way: Duration) -> TwoLabs {
        let pg = Lab::start(spec_primary_replica()).await;
        let my = maria::MyLab::start(rpo_lab::MariaLabSpec::new().primary("a").replica("b", &["a"])).await;
        let ports = [
            ("p", pg.pg.node("p").port()),
            ("r1", pg.pg.node("r1").port()),
            ("a", my.db.node("a").port()),
            ("b", my.db.node("b").port()),
        ];
        let wan = Wan::start(&ports, one_way).await;
        TwoLabs { pg, my, wan }
    }

    /// Both clusters with `rpo`, and `heartbeat` added to each heartbeat block
    /// (e.g. `, timeout: 800ms`).
    pub fn config(&self, rpo: &str, heartbeat: &str) -> String {
        let (pg, my, wan) = (&self.pg, &self.my, &self.wan);
        let pg_nodes =
            format!("{}{}", pg.node_yaml_at("p", wan.port("p")), pg.node_yaml_at("r1", wan.port("r1")));
        let my_nodes =
            format!("{}{}", my.node_yaml_at("a", wan.port("a")), my.node_yaml_at("b", wan.port("b")));
        format!(
            "clusters:\n  - name: lab\n    rpo: {rpo}\n    rto: 5m\n    heartbeat: {{ create_table: false{heartbeat} }}\n    nodes:\n{pg_nodes}  - name: maria\n    rpo: {rpo}\n    rto: 5m\n    heartbeat: {{ create_table: false{heartbeat} }}\n    nodes:\n{my_nodes}"
        )
    }
}

/// The exporter binary running with a config, logging at debug level to a file.
pub struct Exporter {
    child: Child,
    pub addr: String,
    pub dir: TempDir,
    pub log_path: PathBuf,
}

impl Exporter {
    pub async fn start(config: &str) -> Exporter {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let addr = format!("127.0.0.1:{}", free_port());
        let mut command = Command::new(env!("CARGO_BIN_EXE_rpo-exporter"));
        command.args(Exporter::args(&config_path)).args(["--web.listen-address", &addr]);
        Exporter::spawn(dir, command, addr).await
    }

    /// The flags every test exporter runs with, for [`Exporter::spawn`]: the config
    /// file, debug logging, the lifecycle API. No listen address.
    pub fn args(config_path: &Path) -> Vec<std::ffi::OsString> {
        let mut args = vec!["--config.file".into(), config_path.as_os_str().to_owned()];
        args.extend(["--log.level", "debug", "--web.enable-lifecycle"].map(Into::into));
        args
    }

    /// Runs `command` (the exporter, or a wrapper that execs it), logging into
    /// `dir`, and waits until `addr` (host:port, `[::1]:port` for IPv6) answers
    /// `/-/ready`. `dir` lives as long as the exporter.
    pub async fn spawn(dir: TempDir, mut command: Command, addr: String) -> Exporter {
        let log_path = dir.path().join("exporter.log");
        let child = command
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .expect("spawn rpo-exporter");
        let exporter = Exporter { child, addr, dir, log_path };
        let url = format!("http://{}/-/ready", exporter.addr);
        let ready = wait_for(Duration::from_secs(10), || async {
            reqwest::get(&url).await.map(|r| r.status().is_success()).unwrap_or(false)
        })
        .await;
        assert!(ready, "exporter not ready at {url}; log:\n{}", exporter.log());
        exporter
    }

    /// Replaces the config file the exporter was started with (for reloads).
    pub fn rewrite_config(&self, config: &str) {
        std::fs::write(self.dir.path().join("config.yml"), config).unwrap();
    }

    /// Rewrites the config file and reloads it with `POST /-/reload`; panics with
    /// the answer unless the reload succeeded.
    pub async fn reload(&self, config: &str) {
        self.rewrite_config(config);
        let client = reqwest::Client::builder().timeout(Duration::from_secs(15)).build().unwrap();
        let resp =
            client.post(format!("http://{}/-/reload", self.addr)).send().await.expect("POST /-/reload");
        let status = resp.status();
        let body = resp.text().await.unwrap_or_default();
        assert!(status.is_success(), "reload failed: {status} {body}\nlog:\n{}", self.log());
    }

    /// Stops this exporter (SIGTERM) and starts another one on the same config
    /// file, as a restart by a service manager would.
    pub async fn restart(mut self) -> Exporter {
        let config = std::fs::read_to_string(self.dir.path().join("config.yml")).unwrap();
        let status = self.terminate();
        assert!(status.success(), "exporter exited with {status}");
        Exporter::start(&config).await
    }

    /// Sends a signal to the exporter process.
    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(self.child.id() as i32), signal).unwrap();
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// GET a path; panics with the log if the exporter does not answer in 2 s.
    pub async fn get(&self, path: &str) -> reqwest::Response {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().unwrap();
        match client.get(format!("http://{}{path}", self.addr)).send().await {
            Ok(r) => r,
            Err(e) => panic!("GET {path} failed: {e}\nlog:\n{}", self.log()),
        }
    }

    pub async fn scrape_text(&self) -> String {
        let r = self.get("/metrics").await;
        assert!(r.status().is_success());
        r.text().await.unwrap()
    }

    pub async fn scrape(&self) -> Metrics {
        Metrics::parse(&self.scrape_text().await)
    }

    /// Sends SIGTERM and waits for the exit status.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGTERM,
        )
        .unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(Instant::now() < deadline, "exporter did not exit on SIGTERM");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for Exporter {
    /// Stops the exporter, then holds every test to two promises of SECURITY.md:
    /// the log never shows the test password, and nothing in the exporter panicked.
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            return;
        }
        let log = self.log();
        assert!(!log.contains(PASSWORD), "the test password leaked into the exporter's log:\n{log}");
        assert!(!log.contains("panicked at"), "the exporter panicked:\n{log}");
    }
}

/// Waits until the pair's lag series exists; panics with the exporter log if not.
pub async fn wait_for_pair(exporter: &Exporter, pair: &[(&'static str, String)]) {
    let ok = wait_for(Duration::from_secs(20), || async {
        exporter.scrape().await.get("rpo_replication_lag_seconds", pair).is_some()
    })
    .await;
    assert!(ok, "no lag series for {pair:?}; log:\n{}", exporter.log());
}

/// Polls `cond` every 100 ms until it holds or `timeout` passes.
pub async fn wait_for<F, Fut>(timeout: Duration, mut cond: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = Instant::now() + timeout;
    loop {
        if cond().await {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// One parsed sample.
#[derive(Debug, Clone)]
pub struct Sample {
    pub name: String,
    pub labels: BTreeMap<String, String>,
    pub value: f64,
}

/// Samples and family types from one scrape.
#[derive(Debug, Clone, Default)]
pub struct Metrics {
    pub samples: Vec<Sample>,
    /// Family name (a counter's without `_total`) → type, from `# TYPE` lines.
    pub types: BTreeMap<String, String>,
}

impl Metrics {
    pub fn parse(text: &str) -> Metrics {
        let mut m = Metrics::default();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("TYPE line");
                // The family's name: the text format 0.0.4 types a counter under its
                // sample name (`…_total`), OpenMetrics without the suffix.
                let name = if kind == "counter" { name.strip_suffix("_total").unwrap_or(name) } else { name };
                m.types.insert(name.to_owned(), kind.to_owned());
                continue;
            }
            if line.starts_with('#') || line.is_empty() {
                continue;
            }
            m.samples.push(parse_sample(line));
        }
        m
    }

    /// Samples of `name` whose labels include all of `labels`.
    pub fn find(&self, name: &str, labels: &[(&str, String)]) -> Vec<&Sample> {
        self.samples
            .iter()
            .filter(|s| s.name == name && labels.iter().all(|(k, v)| s.labels.get(*k) == Some(v)))
            .collect()
    }

    /// The one sample of `name` with `labels`, if present.
    pub fn get(&self, name: &str, labels: &[(&str, String)]) -> Option<f64> {
        let found = self.find(name, labels);
        assert!(found.len() <= 1, "{name} {labels:?} matches {} samples", found.len());
        found.first().map(|s| s.value)
    }
}

fn parse_sample(line: &str) -> Sample {
    let (head, value) = line.rsplit_once(' ').expect("sample line");
    let value: f64 = value.parse().unwrap_or_else(|_| panic!("bad value in {line:?}"));
    let mut labels = BTreeMap::new();
    let name = match head.split_once('{') {
        None => head.to_owned(),
        Some((name, rest)) => {
            let body = rest.strip_suffix('}').expect("closing brace");
            let mut chars = body.chars().peekable();
            while chars.peek().is_some() {
                let key: String = chars.by_ref().take_while(|c| *c != '=').collect();
                assert_eq!(chars.next(), Some('"'), "label value quote in {line:?}");
                let mut value = String::new();
                while let Some(c) = chars.next() {
                    match c {
                        '\\' => match chars.next() {
                            Some('n') => value.push('\n'),
                            Some(other) => value.push(other),
                            None => panic!("dangling escape in {line:?}"),
                        },
                        '"' => break,
                        c => value.push(c),
                    }
                }
                labels.insert(key.trim_start_matches(',').to_owned(), value);
                if chars.peek() == Some(&',') {
                    chars.next();
                }
            }
            name.to_owned()
        }
    };
    Sample { name, labels, value }
}

/// Labels from string pairs.
pub fn labels(pairs: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    pairs.iter().map(|(k, v)| (*k, (*v).to_owned())).collect()
}

/// Extends a label set.
pub fn with(
    mut base: Vec<(&'static str, String)>,
    extra: &[(&'static str, &str)],
) -> Vec<(&'static str, String)> {
    base.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    base
}

/// The shipped rule files, unmodified: the regional set (`alerts/regional/*.yml`) and
/// the global set (`alerts/global/*.yml`), each sorted, as a single Prometheus that sees
/// every region loads them.
pub fn rule_files() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for set in ["regional", "global"] {
        let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("alerts").join(set);
        let mut set_files: Vec<PathBuf> = std::fs::read_dir(&dir)
            .unwrap_or_else(|e| panic!("reading {}: {e}", dir.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| p.extension().is_some_and(|x| x == "yml"))
            .collect();
        set_files.sort();
        assert!(set_files.len() >= 2, "rule files in {}: {set_files:?}", dir.display());
        files.extend(set_files);
    }
    files
}

/// The expression of the shipped alert `name`, and every rule file.
pub fn shipped_alert(name: &str) -> (Vec<PathBuf>, String) {
    let files = rule_files();
    for file in &files {
        let doc: serde_json::Value = serde_saphyr::from_str(&std::fs::read_to_string(file).unwrap()).unwrap();
        for group in doc["groups"].as_array().into_iter().flatten() {
            for rule in group["rules"].as_array().into_iter().flatten() {
                if rule["alert"] == name {
                    return (files.clone(), rule["expr"].as_str().unwrap().to_owned());
                }
            }
        }
    }
    panic!("no alert {name} in the rule files");
}

/// Starts a lab of `spec` and an exporter watching all of it.
pub async fn lab_and_exporter(spec: PgLabSpec, interval: &str) -> (Lab, Exporter) {
    let lab = Lab::start(spec).await;
    let exporter = Exporter::start(&lab.config(interval, "")).await;
    (lab, exporter)
}

pub fn spec_primary_replica() -> PgLabSpec {
    PgLabSpec::new().primary("p").replica("r1", "p")
}

/// `pg_wal_replay_resume()`, checked. After a pause longer than
/// `max_standby_streaming_delay` (30 s), the replay it resumes may at once cancel
/// conflicting queries — the resuming session's own statement included ("canceling
/// statement due to conflict with recovery") although replay did resume.
pub async fn resume_replay(node: &rpo_lab::PgNode) {
    for _ in 0..10 {
        match node.execute("SELECT pg_wal_replay_resume()").await {
            Ok(()) => return,
            Err(e) if format!("{e:#}").contains("conflict with recovery") => {
                let paused = node.query_one_string("SELECT pg_is_wal_replay_paused()::text").await;
                if matches!(paused.as_ref().map(|p| p.as_deref()), Ok(Some("false"))) {
                    return;
                }
            }
            Err(e) => panic!("pg_wal_replay_resume(): {e:#}"),
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("replay still paused after 10 attempts to resume it");
}
