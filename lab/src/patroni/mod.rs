//! A PostgreSQL cluster under a real HA manager: Patroni nodes (one per "region") with one
//! etcd as their DCS (Patroni's `etcd3`), on 127.0.0.1, every link through a lab [`Proxy`]
//! so that a test can cut it.
//!
//! Owns [`PatroniLab`] (start, wait for a leader and streaming replicas, ask who leads,
//! kill a region, partition a node, switch over, read Patroni's own leader-change times,
//! teardown) and [`PatroniNode`] (one node's ports, DSNs and proxies); the options are
//! [`PatroniOptions`]; the configuration text is in [`config`].
//!
//! Ports of one node (all on 127.0.0.1):
//!
//! | Port | What | Who uses it |
//! |---|---|---|
//! | [`pg_port`](PatroniNode::pg_port) | PostgreSQL itself (`postgresql.listen`) | Patroni; a test that must bypass every proxy |
//! | [`replication_port`](PatroniNode::replication_port) | replication proxy → PostgreSQL (`postgresql.connect_address`) | the other nodes' replication (and `pg_basebackup`, `pg_rewind`) |
//! | [`client_port`](PatroniNode::client_port) | client proxy → PostgreSQL | the exporter, the drill, application writers ([`dsn`](PatroniNode::dsn)) |
//! | [`rest_port`](PatroniNode::rest_port) | Patroni's REST API (`restapi.listen`) | the lab and tests |
//! | [`rest_proxy_port`](PatroniNode::rest_proxy_port) | REST proxy → REST API (`restapi.connect_address`) | the other nodes' Patroni (health checks before a promotion, switchover) |
//! | [`dcs_port`](PatroniNode::dcs_port) | DCS proxy → etcd's client port | this node's Patroni (`etcd3.hosts`, `use_proxies`) |
//!
//! [`PatroniLab::partition`] black-holes a node's replication, client, REST and DCS proxies
//! together: its network is gone for everyone but a test that uses the real ports.
//!
//! Process tree: each node's Patroni runs under a small Python reaper (see
//! [`config::REAPER`]), our direct child, which reaps the postmasters Patroni orphans.
//! Everything runs as the unprivileged `postgres` account when we are root, like the
//! PostgreSQL lab; Patroni runs with `TZ=UTC`, so its log's times are UTC. Dropping the lab
//! SIGKILLs every Patroni and PostgreSQL, stops etcd and removes the directories; a
//! watchdog does the same if the process dies without unwinding.

mod config;

use std::path::{Path, PathBuf};
use std::process::{Child, Command};
use std::sync::Mutex;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use anyhow::{anyhow, bail, Context, Result};
use nix::sys::signal::Signal;
use serde_json::{json, Value};

use crate::cluster::check_node_name;
use crate::postgres::pg_bindir;
use crate::process::{
    children_of, is_alive, scratch_tempdir, sh_quote, signal_tree, tail, wait_child, DirServer, Watchdog,
};
use crate::programs::find_program;
use crate::proxy::Proxy;
use crate::server::Account;

/// Region names given to the nodes by default, in order.
const DEFAULT_REGIONS: [&str; 5] = ["us-east-1", "eu-west-1", "ap-southeast-1", "us-west-2", "sa-east-1"];

/// How a [`PatroniLab`] is shaped and tuned. `PatroniOptions::default()`: 2 nodes, `ttl`
/// 10 s, `loop_wait` 1 s, `retry_timeout` 4 s, `maximum_lag_on_failover` 1 MiB (Patroni's
/// default), asynchronous replication.
///
/// ```
/// let options = rpo_lab::PatroniOptions::default().nodes(3).synchronous_mode(true);
/// ```
#[derive(Clone, Debug)]
pub struct PatroniOptions {
    regions: Vec<String>,
    scope: String,
    pub(crate) ttl: u32,
    pub(crate) loop_wait: u32,
    pub(crate) retry_timeout: u32,
    pub(crate) maximum_lag_on_failover: u64,
    pub(crate) synchronous_mode: bool,
}

impl Default for PatroniOptions {
    fn default() -> Self {
        PatroniOptions {
            regions: DEFAULT_REGIONS[..2].iter().map(|r| r.to_string()).collect(),
            scope: "lab".into(),
            ttl: 10,
            loop_wait: 1,
            retry_timeout: 4,
            maximum_lag_on_failover: 1 << 20,
            synchronous_mode: false,
        }
    }
}

impl PatroniOptions {
    /// `count` nodes (2 to 5), named `pg1`…, in the regions `us-east-1`, `eu-west-1`,
    /// `ap-southeast-1`, `us-west-2`, `sa-east-1` in that order. The first bootstraps the
    /// cluster and is the first leader.
    pub fn nodes(mut self, count: usize) -> Self {
        self.regions = DEFAULT_REGIONS.iter().take(count).map(|r| r.to_string()).collect();
        if count > DEFAULT_REGIONS.len() {
            self.regions.extend((DEFAULT_REGIONS.len()..count).map(|i| format!("region-{}", i + 1)));
        }
        self
    }

    /// One node per region given (2 to 5), named `pg1`… in this order.
    pub fn regions(mut self, regions: &[&str]) -> Self {
        self.regions = regions.iter().map(|r| r.to_string()).collect();
        self
    }

    /// Patroni's `scope` (the cluster's name in the DCS). Default `lab`.
    pub fn scope(mut self, scope: &str) -> Self {
        self.scope = scope.to_string();
        self
    }

    /// Patroni's `ttl`, `loop_wait` and `retry_timeout` in seconds. Patroni wants
    /// `loop_wait + 2 × retry_timeout ≤ ttl`. A failover after a region dies takes about
    /// `ttl` (the leader key must expire) plus a `loop_wait` or two.
    pub fn timing(mut self, ttl: u32, loop_wait: u32, retry_timeout: u32) -> Self {
        (self.ttl, self.loop_wait, self.retry_timeout) = (ttl, loop_wait, retry_timeout);
        self
    }

    /// Patroni's `maximum_lag_on_failover` in bytes: a replica further behind than this is
    /// never promoted. Raise it to have Patroni promote a replica that missed WAL.
    pub fn maximum_lag_on_failover(mut self, bytes: u64) -> Self {
        self.maximum_lag_on_failover = bytes;
        self
    }

    /// Patroni's `synchronous_mode`: the leader names a synchronous standby, and only it
    /// may be promoted (no acknowledged commit is lost).
    pub fn synchronous_mode(mut self, on: bool) -> Self {
        self.synchronous_mode = on;
        self
    }

    fn validate(&self) -> Result<()> {
        if !(2..=5).contains(&self.regions.len()) {
            bail!("a Patroni lab has 2 to 5 nodes, not {}", self.regions.len());
        }
        check_node_name(&self.scope).context("Patroni scope")?;
        if self.loop_wait + 2 * self.retry_timeout > self.ttl {
            bail!(
                "Patroni timing: loop_wait ({}) + 2 × retry_timeout ({}) must not exceed ttl ({})",
                self.loop_wait,
                self.retry_timeout,
                self.ttl
            );
        }
        Ok(())
    }
}

/// One etcd member, the cluster's DCS, in its own directory.
struct Etcd {
    server: DirServer,
    client_port: u16,
}

impl Etcd {
    async fn start(account_home: &Path) -> Result<Etcd> {
        let etcd = find_program("etcd")?;
        let dir = scratch_tempdir("rpo-lab-etcd.", "the etcd directory")?;
        let account = Account::new("postgres", "created by Debian's postgresql package", account_home)?;
        account.chown(dir.path())?;
        let (client_port, peer_port) = (crate::free_port(), crate::free_port());
        let (client, peer) =
            (format!("http://127.0.0.1:{client_port}"), format!("http://127.0.0.1:{peer_port}"));
        let data = dir.path().join("data");
        let mut command = account.command(&etcd);
        command
            .args(["--name", "e1", "--data-dir"])
            .arg(&data)
            .args(["--listen-client-urls", &client, "--advertise-client-urls", &client])
            .args(["--listen-peer-urls", &peer, "--initial-advertise-peer-urls", &peer])
            .args(["--initial-cluster", &format!("e1={peer}"), "--log-level", "warn"]);
        let mut server = DirServer::spawn("etcd", dir, "etcd.log", "etcd.log", None, &mut command)?;
        let http = reqwest::Client::builder().timeout(Duration::from_secs(1)).build()?;
        let health = format!("{client}/health");
        server
            .wait_ready(Duration::from_secs(30), Duration::from_millis(50), 20, |_| {
                let request = http.get(&health).send();
                async move {
                    match request.await {
                        Ok(r) => r.text().await.is_ok_and(|t| t.contains("\"health\":\"true\"")),
                        Err(_) => false,
                    }
                }
            })
            .await?;
        Ok(Etcd { server, client_port })
    }
}

/// One Patroni node of a [`PatroniLab`]: a Patroni process (under the reaper) and the
/// PostgreSQL it runs, standing for one region, with its proxies (see the module's table).
pub struct PatroniNode {
    name: String,
    region: String,
    pg_port: u16,
    rest_port: u16,
    dir: PathBuf,
    replication: Proxy,
    client: Proxy,
    rest: Proxy,
    dcs: Proxy,
    /// The reaper running Patroni, while it runs.
    reaper: Mutex<Option<Child>>,
}

impl std::fmt::Debug for PatroniNode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatroniNode")
            .field("name", &self.name)
            .field("region", &self.region)
            .field("pg_port", &self.pg_port)
            .field("rest_port", &self.rest_port)
            .field("client_port", &self.client.port())
            .finish()
    }
}

impl PatroniNode {
    /// Its Patroni member name: `pg1`, `pg2`…
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The region it stands for (`us-east-1`…).
    pub fn region(&self) -> &str {
        &self.region
    }

    /// PostgreSQL's own port: no proxy in between, whatever the test did to the network.
    pub fn pg_port(&self) -> u16 {
        self.pg_port
    }

    /// The client proxy's port: the exporter's, the drill's and the writers' way in.
    pub fn client_port(&self) -> u16 {
        self.client.port()
    }

    /// The replication proxy's port (`postgresql.connect_address`): replicas stream from it.
    pub fn replication_port(&self) -> u16 {
        self.replication.port()
    }

    /// Patroni's REST API, direct (`GET /patroni`, `/cluster`, `/history`…).
    pub fn rest_port(&self) -> u16 {
        self.rest_port
    }

    /// The REST proxy's port (`restapi.connect_address`): how the other nodes reach it.
    pub fn rest_proxy_port(&self) -> u16 {
        self.rest.port()
    }

    /// The DCS proxy's port: how this node's Patroni reaches etcd.
    pub fn dcs_port(&self) -> u16 {
        self.dcs.port()
    }

    /// The client proxy: add WAN distance with [`Proxy::set_delay`], or cut the node off
    /// from its clients alone with [`Proxy::set_blackhole`].
    pub fn client_proxy(&self) -> &Proxy {
        &self.client
    }

    /// The replication proxy: black-hole it to stop the WAL this node sends to (and
    /// receives from, as its own replication connects to the leader's proxy) its peers.
    pub fn replication_proxy(&self) -> &Proxy {
        &self.replication
    }

    /// The DCS proxy: black-hole it to cut this node's Patroni from etcd.
    pub fn dcs_proxy(&self) -> &Proxy {
        &self.dcs
    }

    /// The REST proxy: what the other nodes' Patroni use to reach this one.
    pub fn rest_proxy(&self) -> &Proxy {
        &self.rest
    }

    /// libpq key=value DSN through the client proxy:
    /// `host=127.0.0.1 port=CLIENT user=USER dbname=DB` (no password: pass it separately).
    pub fn dsn(&self, user: &str, dbname: &str) -> String {
        format!("host=127.0.0.1 port={} user={user} dbname={dbname}", self.client_port())
    }

    /// libpq key=value DSN straight to PostgreSQL's port (no proxy).
    pub fn direct_dsn(&self, user: &str, dbname: &str) -> String {
        format!("host=127.0.0.1 port={} user={user} dbname={dbname}", self.pg_port)
    }

    /// The node's directory: `patroni.yml`, `node.log`, `data/`.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Patroni's log, with its PostgreSQL's log lines interleaved (both write to it).
    pub fn log_file(&self) -> PathBuf {
        self.dir.join("node.log")
    }

    /// The last `lines` lines of [`log_file`](Self::log_file).
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.log_file(), lines)
    }

    /// Whether this node's Patroni runs (false after [`PatroniLab::kill_region`]).
    pub fn is_running(&self) -> bool {
        let mut guard = self.reaper.lock().unwrap_or_else(|e| e.into_inner());
        match guard.as_mut().map(Child::try_wait) {
            Some(Ok(None)) => true,
            Some(_) => {
                *guard = None;
                false
            }
            None => false,
        }
    }

    /// Patroni's pid (from the reaper's pid file), if it is alive.
    pub fn patroni_pid(&self) -> Option<i32> {
        let text = std::fs::read_to_string(self.dir.join("patroni.pid")).ok()?;
        text.trim().parse().ok().filter(|&p| is_alive(p))
    }

    /// The postmaster's pid (from `postmaster.pid`), if it is alive.
    pub fn postmaster_pid(&self) -> Option<i32> {
        let text = std::fs::read_to_string(self.dir.join("data/postmaster.pid")).ok()?;
        text.lines().next()?.trim().parse().ok().filter(|&p| is_alive(p))
    }

    /// A superuser client straight to PostgreSQL's port (no proxy); the connection task
    /// runs on the current tokio runtime.
    pub async fn client(&self) -> Result<tokio_postgres::Client> {
        crate::postgres::node::superuser_client(self.pg_port, Duration::from_secs(5), &self.describe()).await
    }

    /// Runs `sql` (one or more statements) as superuser, straight to PostgreSQL.
    pub async fn execute(&self, sql: &str) -> Result<()> {
        self.client()
            .await?
            .batch_execute(sql)
            .await
            .with_context(|| format!("running SQL on {}", self.describe()))
    }

    /// Runs `sql` as superuser and returns the first column of the first row as text
    /// (`None` for no row or NULL).
    pub async fn query_one_string(&self, sql: &str) -> Result<Option<String>> {
        let messages = self
            .client()
            .await?
            .simple_query(sql)
            .await
            .with_context(|| format!("querying {}", self.describe()))?;
        Ok(messages
            .iter()
            .find_map(|m| match m {
                tokio_postgres::SimpleQueryMessage::Row(row) => Some(row.get(0).map(str::to_owned)),
                _ => None,
            })
            .flatten())
    }

    /// Whether its PostgreSQL accepts writes (`NOT pg_is_in_recovery()`), asked directly.
    pub async fn is_writable(&self) -> Result<bool> {
        Ok(self.query_one_string("SELECT NOT pg_is_in_recovery()").await?.as_deref() == Some("t"))
    }

    /// `GET /PATH` on its REST API (direct): the status and the body as JSON (`null` if
    /// the body is not JSON).
    pub async fn rest_get(&self, path: &str) -> Result<(u16, Value)> {
        let url = format!("http://127.0.0.1:{}/{}", self.rest_port, path.trim_start_matches('/'));
        let response = http(Duration::from_secs(3))?
            .get(&url)
            .send()
            .await
            .with_context(|| format!("GET {url} ({})", self.name))?;
        let status = response.status().as_u16();
        let text = response.text().await.unwrap_or_default();
        Ok((status, serde_json::from_str(&text).unwrap_or(Value::Null)))
    }

    /// Every "took the leader key" line of its Patroni log (oldest first): the wall-clock
    /// time Patroni logged it (UTC, millisecond precision; logged at the end of the HA
    /// cycle in which it acquired the key, i.e. after it asked PostgreSQL to promote)
    /// and the message. Lines: `promoted self to leader by acquiring session lock` (after
    /// a failover or a switchover) and `acquired session lock as a leader`.
    pub fn leader_changes(&self) -> Vec<(SystemTime, String)> {
        let text = std::fs::read_to_string(self.log_file()).unwrap_or_default();
        text.lines()
            .filter(|l| {
                l.contains("promoted self to leader") || l.contains("acquired session lock as a leader")
            })
            .filter_map(|l| {
                let (stamp, rest) = l.split_once(' ')?;
                Some((parse_utc(stamp.trim_end_matches('Z'))?, rest.trim().to_string()))
            })
            .collect()
    }

    /// Description for messages: `Patroni node "pg1" (us-east-1, postgres 127.0.0.1:N)`.
    pub fn describe(&self) -> String {
        format!("Patroni node {:?} ({}, postgres 127.0.0.1:{})", self.name, self.region, self.pg_port)
    }

    /// SIGKILLs Patroni, then the postmaster and its children, then whatever else the
    /// reaper still has; waits for the reaper to exit (it reaps them).
    fn kill_all(&self) -> Result<()> {
        let mut guard = self.reaper.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(pid) = self.patroni_pid() {
            let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
        }
        if let Some(pid) = self.postmaster_pid() {
            signal_tree(pid, Signal::SIGKILL);
        }
        let Some(child) = guard.as_mut() else { return Ok(()) };
        let reaper = child.id() as i32;
        let deadline = Instant::now() + Duration::from_secs(10);
        while matches!(child.try_wait(), Ok(None)) {
            for orphan in children_of(reaper) {
                signal_tree(orphan, Signal::SIGKILL);
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                wait_child(child, Duration::from_secs(5));
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        *guard = None;
        Ok(())
    }
}

/// A running Patroni cluster with its etcd. Dropping it kills every Patroni and
/// PostgreSQL, stops etcd and removes the directories.
///
/// ```no_run
/// # async fn example() -> anyhow::Result<()> {
/// use rpo_lab::{PatroniLab, PatroniOptions};
/// let lab = PatroniLab::start(PatroniOptions::default().nodes(2)).await?;
/// let old = lab.leader().await?;                          // "pg1"
/// let killed_at = lab.kill_region(&old)?;
/// let new = lab.wait_leader_change(&old, std::time::Duration::from_secs(60)).await?;
/// let (took_over, _) = lab.wait_leader_logged(&new, killed_at, std::time::Duration::from_secs(10)).await?;
/// println!("{new} took over {:?} after the kill", took_over.duration_since(killed_at)?);
/// # Ok(()) }
/// ```
pub struct PatroniLab {
    scope: String,
    options: PatroniOptions,
    nodes: Vec<PatroniNode>,
    account: Account,
    etcd: Etcd,
    /// When the cluster became ready (a leader and every replica streaming).
    bootstrap_time: Duration,
    watchdog: Option<Watchdog>,
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for PatroniLab {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PatroniLab")
            .field("dir", &self.dir.path())
            .field("etcd", &self.etcd.client_port)
            .field("nodes", &self.nodes)
            .finish()
    }
}

impl PatroniLab {
    /// Starts etcd, then the first node (it bootstraps the cluster and becomes the
    /// leader), then the others (each clones the leader through its replication proxy),
    /// and waits until every replica streams. About 10-20 s.
    pub async fn start(options: PatroniOptions) -> Result<PatroniLab> {
        options.validate()?;
        let started = Instant::now();
        find_program("patroni")?;
        let bindir = pg_bindir()?;
        let dir = scratch_tempdir("rpo-lab-patroni.", "the Patroni lab directory")?;
        let account = Account::new("postgres", "created by Debian's postgresql package", dir.path())?;
        account.chown(dir.path())?;
        std::fs::write(dir.path().join("reaper.py"), config::REAPER)?;
        let names: Vec<String> = (1..=options.regions.len()).map(|i| format!("pg{i}")).collect();
        let watchdog = Some(Watchdog::spawn(&watchdog_script(dir.path(), &names))?);
        let etcd = Etcd::start(dir.path()).await?;

        let mut nodes = Vec::new();
        for (name, region) in names.iter().zip(&options.regions) {
            let node_dir = dir.path().join(name);
            account.mkdir(&node_dir)?;
            let (pg_port, rest_port) = (crate::free_port(), crate::free_port());
            let node = PatroniNode {
                name: name.clone(),
                region: region.clone(),
                pg_port,
                rest_port,
                replication: Proxy::start(pg_port).await?,
                client: Proxy::start(pg_port).await?,
                rest: Proxy::start(rest_port).await?,
                dcs: Proxy::start(etcd.client_port).await?,
                dir: node_dir,
                reaper: Mutex::new(None),
            };
            let yaml = config::patroni_yaml(
                &options.scope,
                &options,
                &config::NodeAddrs {
                    name,
                    node_dir: &node.dir,
                    bindir: &bindir,
                    pg_port,
                    rest_port,
                    rest_proxy: node.rest.port(),
                    repl_proxy: node.replication.port(),
                    dcs_proxy: node.dcs.port(),
                },
            );
            let file = node.dir.join("patroni.yml");
            std::fs::write(&file, yaml)?;
            account.chown(&file)?;
            nodes.push(node);
        }
        let mut lab = PatroniLab {
            scope: options.scope.clone(),
            options,
            nodes,
            account,
            etcd,
            bootstrap_time: Duration::ZERO,
            watchdog,
            dir,
        };
        let first = lab.nodes[0].name.clone();
        lab.start_region(&first)?;
        let leader = lab.wait_leader(Duration::from_secs(60)).await?;
        if leader != first {
            bail!("the first node {first:?} bootstrapped, yet {leader:?} leads");
        }
        lab.wait_writable(&first, Duration::from_secs(30)).await?;
        for name in names.iter().skip(1) {
            lab.start_region(name)?;
        }
        lab.wait_ready(Duration::from_secs(90)).await?;
        lab.bootstrap_time = started.elapsed();
        Ok(lab)
    }

    /// How long [`start`](Self::start) took, until the cluster was ready.
    pub fn bootstrap_time(&self) -> Duration {
        self.bootstrap_time
    }

    /// The options it was started with.
    pub fn options(&self) -> &PatroniOptions {
        &self.options
    }

    /// Patroni's `scope`: the cluster's name.
    pub fn scope(&self) -> &str {
        &self.scope
    }

    /// All nodes, `pg1` first.
    pub fn nodes(&self) -> &[PatroniNode] {
        &self.nodes
    }

    /// The node called `name`. Panics if there is none (a bug in the test).
    pub fn node(&self, name: &str) -> &PatroniNode {
        self.nodes.iter().find(|n| n.name == name).unwrap_or_else(|| {
            let names: Vec<&str> = self.nodes.iter().map(|n| n.name.as_str()).collect();
            panic!("no Patroni node named {name:?} (nodes: {names:?})")
        })
    }

    /// The node standing for `region`, if any.
    pub fn node_in(&self, region: &str) -> Option<&PatroniNode> {
        self.nodes.iter().find(|n| n.region == region)
    }

    /// etcd's client port (direct, no proxy).
    pub fn etcd_port(&self) -> u16 {
        self.etcd.client_port
    }

    /// The lab's directory: one subdirectory per node.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Keeps the lab directory (logs, data) after the lab stops, for inspection.
    pub fn keep_dir(&mut self) {
        let _ = std::fs::write(self.dir.path().join(".keep"), b"");
        self.dir.disable_cleanup(true);
        self.etcd.server.keep_dir();
    }

    /// Starts node `name`'s Patroni (again, after [`kill_region`](Self::kill_region)):
    /// it starts its PostgreSQL and rejoins the cluster (with `pg_rewind`, or a new base
    /// backup when that fails). Returns at once; wait with [`wait_ready`](Self::wait_ready).
    pub fn start_region(&self, name: &str) -> Result<()> {
        let node = self.node(name);
        let mut guard = node.reaper.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(Ok(None)) = guard.as_mut().map(Child::try_wait) {
            bail!("{} is already running", node.describe());
        }
        let python = Path::new("/usr/bin/python3");
        let patroni = find_program("patroni")?;
        let log = std::fs::OpenOptions::new().create(true).append(true).open(node.log_file())?;
        self.account.chown(&node.log_file())?;
        let _ = std::fs::remove_file(node.dir.join("patroni.pid"));
        let mut command: Command = self.account.command(python);
        command
            .arg(self.dir.path().join("reaper.py"))
            .arg(node.dir.join("patroni.pid"))
            .arg(&patroni)
            .arg(node.dir.join("patroni.yml"))
            .env("HOME", &node.dir)
            .env("TZ", "UTC")
            .current_dir(&node.dir)
            .stdout(log.try_clone()?)
            .stderr(log);
        use std::os::unix::process::CommandExt;
        command.process_group(0);
        let child = command.spawn().with_context(|| format!("spawning Patroni for {}", node.describe()))?;
        *guard = Some(child);
        Ok(())
    }

    /// Kills region `name` as an outage would: SIGKILL to its Patroni and, at once, to
    /// its PostgreSQL (postmaster and children). Both must die: while Patroni lives it
    /// restarts PostgreSQL. Returns the wall-clock time just before the first signal.
    /// Its proxies stay as they are (connections to it are refused through them).
    pub fn kill_region(&self, name: &str) -> Result<SystemTime> {
        let node = self.node(name);
        let at = SystemTime::now();
        node.kill_all()?;
        if node.postmaster_pid().is_some() {
            bail!("{}: the postmaster survived SIGKILL", node.describe());
        }
        Ok(at)
    }

    /// Partitions node `name` (`on`) or heals it (`!on`): black-holes its replication,
    /// client, REST and DCS proxies (sockets kept open, nothing forwarded). Its Patroni
    /// loses etcd, so a leader demotes itself after `retry_timeout`; the others no longer
    /// reach it; clients through [`dsn`](PatroniNode::dsn) hang. Its real ports still work.
    pub fn partition(&self, name: &str, on: bool) {
        let node = self.node(name);
        for proxy in [&node.replication, &node.client, &node.rest, &node.dcs] {
            proxy.set_blackhole(on);
        }
    }

    /// The leader's name, from the leader key in etcd (asked directly): `None` when no
    /// node holds it.
    pub async fn leader_key(&self) -> Result<Option<String>> {
        let key = format!("/service/{}/leader", self.scope);
        let url = format!("http://127.0.0.1:{}/v3/kv/range", self.etcd.client_port);
        let body = json!({ "key": base64_encode(key.as_bytes()) });
        let reply: Value = http(Duration::from_secs(2))?
            .post(&url)
            .json(&body)
            .send()
            .await
            .with_context(|| format!("POST {url}"))?
            .json()
            .await
            .context("etcd's range answer")?;
        let value = reply["kvs"][0]["value"].as_str();
        match value.map(base64_decode) {
            None => Ok(None),
            Some(Some(bytes)) => Ok(Some(String::from_utf8_lossy(&bytes).into_owned())),
            Some(None) => bail!("etcd: leader key value is not base64: {reply}"),
        }
    }

    /// The leader's name (see [`leader_key`](Self::leader_key)); an error when there is none.
    pub async fn leader(&self) -> Result<String> {
        self.leader_key().await?.ok_or_else(|| anyhow!("no leader key in etcd for scope {:?}", self.scope))
    }

    /// Waits until some node holds the leader key, and returns its name.
    pub async fn wait_leader(&self, timeout: Duration) -> Result<String> {
        self.wait_leader_where(timeout, |_| true).await
    }

    /// Waits until a node other than `old` holds the leader key (a failover or a
    /// switchover happened), and returns its name.
    pub async fn wait_leader_change(&self, old: &str, timeout: Duration) -> Result<String> {
        self.wait_leader_where(timeout, |l| l != old).await
    }

    async fn wait_leader_where(&self, timeout: Duration, ok: impl Fn(&str) -> bool) -> Result<String> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match self.leader_key().await {
                Ok(Some(leader)) if ok(&leader) => return Ok(leader),
                Ok(seen) => format!("{seen:?}"),
                Err(e) => format!("{e:#}"),
            };
            if Instant::now() >= deadline {
                bail!(
                    "{}: no (new) leader after {timeout:?}; last seen: {last}{}",
                    self.scope,
                    self.log_tails()
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until node `name`'s Patroni logs taking the leader key (see
    /// [`PatroniNode::leader_changes`]) at or after `after`, and returns that line's time
    /// and message. Patroni writes the line at the end of the HA cycle in which it took
    /// the key, so the key may move in etcd (see [`wait_leader_change`](Self::wait_leader_change))
    /// a few milliseconds before the line appears; a node that led before has older lines.
    pub async fn wait_leader_logged(
        &self,
        name: &str,
        after: SystemTime,
        timeout: Duration,
    ) -> Result<(SystemTime, String)> {
        let node = self.node(name);
        let deadline = Instant::now() + timeout;
        loop {
            if let Some(line) = node.leader_changes().into_iter().find(|(at, _)| *at >= after) {
                return Ok(line);
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} logged no leader change within {timeout:?}\n{}",
                    node.describe(),
                    node.log_tail(30)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until node `name`'s PostgreSQL accepts writes (asked directly).
    pub async fn wait_writable(&self, name: &str, timeout: Duration) -> Result<()> {
        let node = self.node(name);
        let deadline = Instant::now() + timeout;
        loop {
            if let Ok(true) = node.is_writable().await {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("{} not writable after {timeout:?}\n{}", node.describe(), node.log_tail(30));
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    /// Waits until there is a leader whose PostgreSQL is writable and every other node
    /// whose Patroni runs is a replica streaming from it on the leader's timeline
    /// (`pg_stat_wal_receiver.received_tli`). The timeline matters after a switchover: a
    /// former leader whose shutdown checkpoint lies past the fork streams its old timeline
    /// for a moment before PostgreSQL finds the fork and Patroni stops it to `pg_rewind`.
    pub async fn wait_ready(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        let leader = self.wait_leader(timeout).await?;
        self.wait_writable(&leader, deadline.saturating_duration_since(Instant::now())).await?;
        // The leader's timeline: the first 8 hex digits of its current WAL file's name.
        let timeline = self
            .node(&leader)
            .query_one_string(
                "SELECT ('x' || substr(pg_walfile_name(pg_current_wal_lsn()), 1, 8))::bit(32)::int",
            )
            .await?
            .with_context(|| format!("{leader} has no current WAL file"))?;
        let want = format!("streaming {timeline}");
        for node in self.nodes.iter().filter(|n| n.name != leader && n.is_running()) {
            loop {
                let status = node
                    .query_one_string("SELECT status || ' ' || received_tli FROM pg_stat_wal_receiver")
                    .await;
                if matches!(&status, Ok(Some(s)) if *s == want) {
                    break;
                }
                if Instant::now() >= deadline {
                    bail!(
                        "{} is not streaming from {leader} on its timeline {timeline} after {timeout:?} \
                         (last status and timeline: {status:?})\n{}",
                        node.describe(),
                        node.log_tail(30)
                    );
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
        Ok(())
    }

    /// Switches over to `candidate` through Patroni's REST API (`POST /switchover` to the
    /// leader, direct), which answers once the switchover is done. Returns the wall-clock
    /// times of the request and of the answer; fails unless Patroni says it succeeded.
    pub async fn switchover(&self, candidate: &str) -> Result<(SystemTime, SystemTime)> {
        let leader = self.leader().await?;
        let url = format!("http://127.0.0.1:{}/switchover", self.node(&leader).rest_port);
        let asked = SystemTime::now();
        let response = http(Duration::from_secs(90))?
            .post(&url)
            .json(&json!({ "leader": leader, "candidate": candidate }))
            .send()
            .await
            .with_context(|| format!("POST {url}"))?;
        let done = SystemTime::now();
        let status = response.status();
        let text = response.text().await.unwrap_or_default();
        if !status.is_success() {
            bail!("switchover {leader} → {candidate}: Patroni answered {status}: {text}");
        }
        Ok((asked, done))
    }

    /// Patroni's failover history (REST `GET /history` on the first running node): one
    /// entry per timeline switch: `[timeline, lsn, reason, timestamp, new leader]`. The
    /// timestamp is the modification time of the new timeline's history file, which
    /// PostgreSQL writes as it promotes (ISO 8601 with microseconds, local time = UTC here);
    /// Patroni publishes it a loop or so after the promotion.
    pub async fn history(&self) -> Result<Vec<(u64, String, SystemTime)>> {
        let node = self.nodes.iter().find(|n| n.is_running()).context("no node is running")?;
        let (_, body) = node.rest_get("/history").await?;
        let lines = body.as_array().with_context(|| format!("/history answered {body}"))?;
        Ok(lines
            .iter()
            .filter_map(|l| {
                let timeline = l.get(0)?.as_u64()?;
                let at = parse_utc(l.get(3)?.as_str()?)?;
                let leader = l.get(4).and_then(Value::as_str).unwrap_or_default().to_string();
                Some((timeline, leader, at))
            })
            .collect())
    }

    /// Creates the login role `role` on the leader (only its SCRAM verifier is sent), runs
    /// `extra_sql` there (e.g. the exporter's schema and GRANTs), then waits until every
    /// running replica has replayed it.
    pub async fn create_role(&self, role: &str, password: &str, extra_sql: &str) -> Result<()> {
        let verifier = postgres_protocol::password::scram_sha_256(password.as_bytes());
        let ident = format!("\"{}\"", role.replace('"', "\"\""));
        let leader = self.node(&self.leader().await?);
        leader
            .execute(&format!("CREATE ROLE {ident} LOGIN PASSWORD '{verifier}'"))
            .await
            .with_context(|| format!("creating role {role:?}"))?;
        if !extra_sql.trim().is_empty() {
            leader.execute(extra_sql).await?;
        }
        self.wait_replayed(Duration::from_secs(30)).await
    }

    /// Waits until every running replica has replayed the leader's current WAL position.
    pub async fn wait_replayed(&self, timeout: Duration) -> Result<()> {
        let leader = self.leader().await?;
        let lsn = self
            .node(&leader)
            .query_one_string("SELECT pg_current_wal_lsn()")
            .await?
            .context("pg_current_wal_lsn() returned NULL")?;
        let sql = format!("SELECT pg_last_wal_replay_lsn() >= '{lsn}'::pg_lsn");
        let deadline = Instant::now() + timeout;
        for node in self.nodes.iter().filter(|n| n.name != leader && n.is_running()) {
            while node.query_one_string(&sql).await.ok().flatten().as_deref() != Some("t") {
                if Instant::now() >= deadline {
                    bail!("{} did not replay {lsn} within {timeout:?}", node.describe());
                }
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
        Ok(())
    }

    /// The last lines of every node's log, for error messages.
    pub fn log_tails(&self) -> String {
        self.nodes.iter().map(|n| format!("\n--- {} ---\n{}", n.describe(), n.log_tail(15))).collect()
    }

    /// Kills everything and removes the directories (what `Drop` does), off the runtime.
    pub async fn shutdown(self) {
        let _ = tokio::task::spawn_blocking(move || drop(self)).await;
    }
}

impl Drop for PatroniLab {
    fn drop(&mut self) {
        for node in &self.nodes {
            let _ = node.kill_all();
        }
        self.etcd.server.stop();
        self.watchdog.take(); // everything is down: disarm (the directory goes with `dir`)
    }
}

/// A reqwest client with `timeout` per request.
fn http(timeout: Duration) -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder().timeout(timeout).build()?)
}

/// The script the watchdog runs if this process dies without dropping the lab: SIGKILL
/// every Patroni (its pid file), every postmaster and its children, then remove the
/// directory unless `.keep` exists.
fn watchdog_script(dir: &Path, names: &[String]) -> String {
    let files = |file: &str| -> String {
        names
            .iter()
            .map(|n| sh_quote(&dir.join(n).join(file).display().to_string()))
            .collect::<Vec<_>>()
            .join(" ")
    };
    let quoted = sh_quote(&dir.display().to_string());
    format!(
        r#"
for f in {patroni}; do p=; read -r p < "$f" 2>/dev/null && kill -KILL "$p" 2>/dev/null; done
for f in {postmasters}; do p=; read -r p < "$f" 2>/dev/null || continue
  kill -KILL "$p" 2>/dev/null
  for s in /proc/[0-9]*/stat; do l=; read -r l < "$s" 2>/dev/null || continue
    r=${{l##*) }}; set -- $r; if [ "$2" = "$p" ]; then c=${{s#/proc/}}; kill -KILL "${{c%/stat}}" 2>/dev/null; fi
  done
done
sleep 0.5
[ -e {quoted}/.keep ] || rm -rf {quoted}
"#,
        patroni = files("patroni.pid"),
        postmasters = files("data/postmaster.pid"),
    )
}

/// Parses `YYYY-MM-DDTHH:MM:SS[.fraction][+00:00|Z]` as a UTC time (the offset, if any,
/// must be zero: the lab runs Patroni with `TZ=UTC`).
fn parse_utc(text: &str) -> Option<SystemTime> {
    let text = text.trim();
    let (text, offset_ok) = match text.find(['+', 'Z']).or_else(|| text.rfind('-').filter(|&i| i > 10)) {
        Some(i) => (&text[..i], matches!(&text[i..], "Z" | "+00:00" | "+0000" | "-00:00")),
        None => (text, true),
    };
    if !offset_ok {
        return None;
    }
    let (date, time) = text.split_once(['T', ' '])?;
    let mut d = date.split('-').map(|p| p.parse::<i64>().ok());
    let (y, m, day) = (d.next()??, d.next()??, d.next()??);
    let (hms, fraction) = time.split_once(['.', ',']).unwrap_or((time, ""));
    let mut t = hms.split(':').map(|p| p.parse::<u64>().ok());
    let (hh, mm, ss) = (t.next()??, t.next()??, t.next()??);
    let nanos = if fraction.is_empty() {
        0
    } else {
        let digits: String = fraction.chars().take(9).collect();
        digits.parse::<u64>().ok()? * 10u64.pow(9 - digits.len() as u32)
    };
    // Days from the civil date (Howard Hinnant's algorithm).
    let (y, m) = if m <= 2 { (y - 1, m + 9) } else { (y, m - 3) };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let doy = (153 * m + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = u64::try_from(era * 146_097 + doe - 719_468).ok()?;
    let secs = days * 86_400 + hh * 3600 + mm * 60 + ss;
    Some(UNIX_EPOCH + Duration::from_secs(secs) + Duration::from_nanos(nanos))
}

const B64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_encode(bytes: &[u8]) -> String {
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let n = chunk.iter().enumerate().fold(0u32, |n, (i, &b)| n | u32::from(b) << (16 - 8 * i));
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(B64[(n >> (18 - 6 * i) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

fn base64_decode(text: &str) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let (mut acc, mut bits) = (0u32, 0);
    for c in text.bytes().filter(|&c| c != b'=') {
        acc = acc << 6 | B64.iter().position(|&b| b == c)? as u32;
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64_round_trips() {
        for s in ["", "f", "fo", "foo", "foob", "/service/lab/leader"] {
            assert_eq!(base64_decode(&base64_encode(s.as_bytes())).unwrap(), s.as_bytes());
        }
        assert_eq!(base64_encode(b"pg1"), "cGcx");
        assert_eq!(base64_encode(b"fo"), "Zm8=");
    }

    #[test]
    fn parses_patroni_and_history_times() {
        let t = parse_utc("2026-11-30T11:20:03.123").unwrap();
        assert_eq!(t.duration_since(UNIX_EPOCH).unwrap().as_millis(), 1_796_037_603_123);
        let with_offset = parse_utc("2026-11-30T11:20:03.123000+00:00").unwrap();
        assert_eq!(with_offset, t);
        assert_eq!(parse_utc("1970-01-02 00:00:01,5"), Some(UNIX_EPOCH + Duration::from_millis(86_401_500)));
        assert_eq!(parse_utc("2026-11-30T11:20:03+01:00"), None);
        assert_eq!(parse_utc("garbage"), None);
    }

    #[test]
    fn options_are_checked() {
        assert!(PatroniOptions::default().validate().is_ok());
        assert!(PatroniOptions::default().nodes(1).validate().is_err());
        let error = PatroniOptions::default().timing(10, 1, 5).validate().unwrap_err().to_string();
        assert!(error.contains("must not exceed ttl"), "{error}");
        assert_eq!(PatroniOptions::default().nodes(3).regions[2], "ap-southeast-1");
    }

    #[test]
    fn watchdog_script_is_valid_sh() {
        let script = watchdog_script(Path::new("/x/lab dir"), &["pg1".into(), "pg2".into()]);
        assert!(script.contains("'/x/lab dir/pg2/patroni.pid'"), "{script}");
        let syntax = std::process::Command::new("/bin/sh").args(["-n", "-c", &script]).status().unwrap();
        assert!(syntax.success(), "{script}");
    }
}
