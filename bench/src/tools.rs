//! The tools under test, started and read: rpo-exporter, postgres_exporter,
//! mysqld_exporter and pt-heartbeat.
//!
//! Owns the processes ([`Proc`], [`Tools`]), their configs, scraping and parsing the
//! Prometheus text, pt-heartbeat's monitor file, a process's RSS and CPU from /proc, and
//! which series of which tool is read as lag ([`readings`]). It changes nothing in the
//! labs beyond the tools' own accounts and tables.

use crate::scenario::Labs;
use crate::truth::Truth;
use crate::{PASSWORD, ROLE};
use anyhow::{bail, Context, Result};
use rpo_lab::{free_port, MariaNode, Watchdog};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

const PG_QUERIES: &str = "/usr/share/doc/prometheus-postgres-exporter/examples/queries.yaml";

/// One running tool, killed when dropped.
pub struct Proc {
    pub name: String,
    child: Child,
    /// Its /metrics URL (empty for pt-heartbeat).
    pub url: String,
    /// Where its stdout goes; stderr goes to the same path with the extension `err`.
    log: PathBuf,
    _watchdog: Option<Watchdog>,
}

impl Proc {
    fn spawn(name: &str, mut cmd: Command, url: String, log: &Path) -> Result<Proc> {
        cmd.stdout(std::fs::File::create(log)?).stderr(std::fs::File::create(log.with_extension("err"))?);
        cmd.kill_on_drop(true);
        let child = cmd.spawn().with_context(|| format!("spawning {name}"))?;
        let watchdog = child.id().and_then(|pid| Watchdog::kill_on_exit(pid).ok());
        Ok(Proc { name: name.into(), child, url, log: log.to_owned(), _watchdog: watchdog })
    }
    /// Writes its stdout then its stderr (tracing logs go there) to `dest`.
    pub fn save_log(&self, dest: &Path) -> Result<()> {
        let mut text = std::fs::read(&self.log)?;
        text.extend(std::fs::read(self.log.with_extension("err"))?);
        std::fs::write(dest, text)
            .with_context(|| format!("saving {}'s log to {}", self.name, dest.display()))
    }
    pub fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }
    pub async fn wait_ready(&self, client: &reqwest::Client) -> Result<()> {
        for _ in 0..100 {
            if scrape(client, &self.url).await.is_some() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("{} never answered at {}", self.name, self.url)
    }
}

/// The body of one successful scrape of `url` and how long it took.
pub async fn scrape(client: &reqwest::Client, url: &str) -> Option<(String, Duration)> {
    let start = Instant::now();
    let r = client.get(url).send().await.ok()?;
    if !r.status().is_success() {
        return None;
    }
    // Timed to the body's last byte: checking that it is UTF-8 is the bench's
    // work, not the exporter's, and comes after the clock stops.
    let body = r.bytes().await.ok()?;
    let took = start.elapsed();
    Some((String::from_utf8(body.into()).ok()?, took))
}

/// A scraper on its own thread and single-threaded runtime, for timing a large
/// scrape: on the bench's multi-thread runtime the client's connection task and
/// the waiting scrape sit on different threads, and every body chunk of a
/// 900 kB scrape crossed between them, which added some 2.5 ms to the p50 at 100
/// clusters (5.3 ms against 2.9 ms for the same exporter and instant, measured
/// by `rpo-bench-scrape --url`, which times on one thread as this does).
pub struct TimedScraper {
    requests: std::sync::mpsc::Sender<(String, Reply)>,
}

/// Where [`TimedScraper`]'s thread sends a scrape's body and time.
type Reply = tokio::sync::oneshot::Sender<Option<(String, Duration)>>;

impl TimedScraper {
    /// A scraper whose requests time out after `timeout`.
    pub fn new(timeout: Duration) -> Result<TimedScraper> {
        let client = reqwest::Client::builder().timeout(timeout).build()?;
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
        let (requests, incoming) = std::sync::mpsc::channel::<(String, Reply)>();
        std::thread::Builder::new().name("timed-scraper".into()).spawn(move || {
            // Ends when the scraper is dropped (the channel closes).
            while let Ok((url, reply)) = incoming.recv() {
                let _ = reply.send(runtime.block_on(scrape(&client, &url)));
            }
        })?;
        Ok(TimedScraper { requests })
    }

    /// [`scrape`], timed on the scraper's thread.
    pub async fn scrape(&self, url: &str) -> Option<(String, Duration)> {
        let (reply, answer) = tokio::sync::oneshot::channel();
        self.requests.send((url.to_owned(), reply)).ok()?;
        answer.await.ok().flatten()
    }
}

/// First sample of `name` whose label text contains every one of `want`.
pub fn metric(text: &str, name: &str, want: &[&str]) -> Option<f64> {
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else { continue };
        if !(rest.starts_with('{') || rest.starts_with(' ')) {
            continue;
        }
        if want.iter().all(|w| rest.contains(w)) {
            let v: f64 = rest.rsplit(' ').next()?.parse().ok()?;
            if v.is_finite() {
                return Some(v);
            }
        }
    }
    None
}

/// Samples in a scrape (lines that are neither empty nor comments).
pub fn series_count(text: &str) -> usize {
    text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).count()
}

/// Pairs reporting lag in one rpo-exporter scrape.
pub fn lag_pairs(text: &str) -> usize {
    text.lines().filter(|l| l.starts_with("rpo_replication_lag_seconds{")).count()
}

/// The sum of every sample of `name` in one scrape (a counter over all its label sets).
pub fn metric_sum(text: &str, name: &str) -> f64 {
    text.lines()
        .filter_map(|l| l.strip_prefix(name))
        .filter(|rest| rest.starts_with('{') || rest.starts_with(' '))
        .filter_map(|rest| rest.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

/// Each rpo-exporter writer's (heartbeat sequence, written timestamp) in one scrape, by
/// label text; writers lacking either are left out.
pub fn written_heartbeats(text: &str) -> BTreeMap<String, (f64, f64)> {
    let mut seq: BTreeMap<String, f64> = BTreeMap::new();
    let mut ts: BTreeMap<String, f64> = BTreeMap::new();
    for l in text.lines() {
        let (map, rest) = if let Some(r) = l.strip_prefix("rpo_heartbeat_sequence{") {
            (&mut seq, r)
        } else if let Some(r) = l.strip_prefix("rpo_heartbeat_written_timestamp_seconds{") {
            (&mut ts, r)
        } else {
            continue;
        };
        if let Some((labels, v)) = rest.rsplit_once(' ') {
            if let Ok(v) = v.parse::<f64>() {
                map.insert(labels.to_owned(), v);
            }
        }
    }
    seq.into_iter().filter_map(|(k, s)| Some((k.clone(), (s, *ts.get(&k)?)))).collect()
}

/// The `label` of the first sample of `name` whose label text contains every one of
/// `want` and whose value is 1 (an info metric's current state).
pub fn info_label(text: &str, name: &str, want: &[&str], label: &str) -> Option<String> {
    let key = format!("{label}=\"");
    for line in text.lines() {
        let Some(rest) = line.strip_prefix(name) else { continue };
        let Some(labels) = rest.strip_prefix('{') else { continue };
        let Some((labels, value)) = labels.rsplit_once("} ") else { continue };
        if value.trim().parse::<f64>().ok() != Some(1.0) || !want.iter().all(|w| labels.contains(w)) {
            continue;
        }
        // The label at the start or after a comma, not the tail of a longer name.
        let at = labels
            .match_indices(&key)
            .map(|(i, _)| i)
            .find(|&i| i == 0 || labels.as_bytes()[i - 1] == b',')?;
        let v = &labels[at + key.len()..];
        return Some(v[..v.find('"')?].to_owned());
    }
    None
}

/// (RSS bytes, CPU seconds) of a process.
pub fn proc_usage(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    let rss = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        .unwrap_or(f64::NAN)
        * 1024.0;
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let after = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
    let f: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| f.get(i).and_then(|x| x.parse::<f64>().ok()).unwrap_or(f64::NAN);
    // Fields 14 and 15 (utime, stime) are at 11 and 12 after the ")".
    (rss, (ticks(11) + ticks(12)) / 100.0)
}

/// CPU seconds of a server process and its children: its own utime and stime, those of
/// its children that exited (cutime, cstime: a PostgreSQL backend's CPU stays counted
/// after its session ends) and those of `children` still running.
pub fn tree_cpu(pid: u32, children: &[i32]) -> f64 {
    let fields = |pid: i64| -> Vec<f64> {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let after = stat.rsplit_once(')').map(|x| x.1).unwrap_or("");
        // utime, stime, cutime, cstime: fields 14 to 17, at 11 to 14 after the ")".
        after.split_whitespace().skip(11).take(4).map(|x| x.parse::<f64>().unwrap_or(0.0)).collect()
    };
    let own: f64 = fields(i64::from(pid)).iter().sum();
    let kids: f64 = children.iter().map(|&c| fields(i64::from(c)).iter().take(2).sum::<f64>()).sum();
    (own + kids) / 100.0
}

/// (busy, total) CPU seconds of the whole host since boot, from /proc/stat (busy: all
/// but idle and iowait).
pub fn host_cpu() -> (f64, f64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let Some(line) = stat.lines().find(|l| l.starts_with("cpu ")) else { return (f64::NAN, f64::NAN) };
    let v: Vec<f64> = line.split_whitespace().skip(1).filter_map(|x| x.parse().ok()).collect();
    // user nice system idle iowait irq softirq steal (guest time is inside user already).
    let total: f64 = v.iter().take(8).sum();
    let idle = v.get(3).unwrap_or(&0.0) + v.get(4).unwrap_or(&0.0);
    ((total - idle) / 100.0, total / 100.0)
}

/// pt-heartbeat's latest --monitor line ("0.00s [ ... ]"), if written in the last 3 s.
fn pt_reading(file: &Path) -> Option<f64> {
    let age = std::fs::metadata(file).ok()?.modified().ok()?.elapsed().ok()?;
    if age > Duration::from_secs(3) {
        return None;
    }
    pt_parse(&std::fs::read_to_string(file).ok()?)
}

fn pt_parse(line: &str) -> Option<f64> {
    line.split_whitespace().next()?.trim_end_matches('s').parse().ok()
}

// ---------------------------------------------------------------- starting the tools

/// `rpo-exporter schema ARGS`: the SQL that prepares a database for it.
pub fn schema_sql(exporter: &Path, args: &[&str]) -> Result<String> {
    let out = std::process::Command::new(exporter).arg("schema").args(args).output()?;
    if !out.status.success() {
        bail!("rpo-exporter schema {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?)
}

/// Starts rpo-exporter with `config` (written to `dir/NAME.yml`) on a free port.
pub fn rpo_exporter(bin: &Path, dir: &Path, name: &str, config: &str) -> Result<Proc> {
    let cfg = dir.join(format!("{name}.yml"));
    std::fs::write(&cfg, config)?;
    let addr = format!("127.0.0.1:{}", free_port());
    let mut cmd = Command::new(bin);
    cmd.arg("--config.file").arg(&cfg).args(["--web.listen-address", &addr]);
    Proc::spawn(name, cmd, format!("http://{addr}/metrics"), &dir.join(format!("{name}.log")))
}

/// A whole rpo-exporter config of one cluster (see [`cluster_yaml`]).
fn config_yaml(name: &str, heartbeat: &str, nodes: &[String]) -> String {
    format!("clusters:\n{}", cluster_yaml(name, heartbeat, nodes))
}

/// One rpo-exporter cluster of config YAML: a 30 s RPO, `heartbeat` as given, `nodes`.
pub fn cluster_yaml(name: &str, heartbeat: &str, nodes: &[String]) -> String {
    format!(
        "  - name: {name}\n    rpo: 30s\n    rto: 5m\n    heartbeat: {{ {heartbeat} }}\n    nodes:\n{}",
        nodes.concat()
    )
}

pub fn pg_node_yaml(name: &str, region: &str, port: u16, pw: &Path) -> String {
    let dsn = format!("host=127.0.0.1 port={port} user={ROLE} dbname=postgres");
    node_yaml(name, region, "postgres", &dsn, pw)
}

fn my_node_yaml(name: &str, region: &str, dsn: &str, pw: &Path) -> String {
    node_yaml(name, region, "mysql", dsn, pw)
}

fn node_yaml(name: &str, region: &str, engine: &str, dsn: &str, pw: &Path) -> String {
    format!(
        "      - name: {name}\n        region: {region}\n        engine: {engine}\n        dsn: \"{dsn}\"\n        password_file: {}\n",
        pw.display()
    )
}

/// Every tool of the comparison, each on its own lab (see [`Labs`]).
pub struct Tools {
    // Dropped (killed) in this order.
    _pt_monitor: Proc,
    pub rpo_pg: Proc,
    pub rpo_fast: Proc,
    pub rpo_my: Proc,
    pub rpo_my_fast: Proc,
    pub pg_exp: Proc,
    pub my_exp: Proc,
    _pt_update: Proc,
    /// Where pt-heartbeat --monitor keeps its latest line.
    pt_file: PathBuf,
    /// MariaDB B's primary, whose heartbeats mysqld_exporter and pt-heartbeat read.
    my_primary_id: u32,
}

impl Tools {
    /// Starts every tool; `work` holds their configs and logs.
    pub async fn start(bin: &Path, work: &Path, labs: &Labs) -> Result<Tools> {
        let pw_file = work.join("password");
        std::fs::write(&pw_file, format!("{PASSWORD}\n"))?;
        eprintln!("bench: starting exporters");
        let [rpo_pg, rpo_my, rpo_fast, rpo_my_fast] = rpo_exporters(bin, work, labs, &pw_file).await?;
        let pg_exp = postgres_exporter(labs.pgb.lab.node("r1").port(), work)?;
        let (a, b) = (labs.myb.lab.node("a"), labs.myb.lab.node("b"));
        // mysqld_exporter insists on a password: a monitoring account made on the primary.
        a.exec("CREATE USER 'peer'@'localhost' IDENTIFIED BY 'peer-pw'; GRANT PROCESS, REPLICATION CLIENT, SLAVE MONITOR, SELECT ON *.* TO 'peer'@'localhost'").await?;
        labs.myb.lab.wait_replicated(Duration::from_secs(30)).await?;
        let my_exp = mysqld_exporter(b, work)?;
        let mut cmd = pt_heartbeat(&["--update", "--create-table"]);
        cmd.arg("-S").arg(a.socket());
        let pt_update =
            Proc::spawn("pt-heartbeat --update", cmd, String::new(), &work.join("pt-update.log"))?;
        tokio::time::sleep(Duration::from_secs(2)).await;
        // pt-heartbeat --monitor --file rewrites the file with its latest line every interval
        // (its STDOUT is block-buffered when piped).
        let pt_file = work.join("pt-monitor.out");
        let mut cmd = pt_heartbeat(&["--monitor"]);
        cmd.args(["--master-server-id", &a.server_id().to_string(), "--file"])
            .arg(&pt_file)
            .arg("-S")
            .arg(b.socket());
        let pt_monitor =
            Proc::spawn("pt-heartbeat --monitor", cmd, String::new(), &work.join("pt-monitor.log"))?;
        Ok(Tools {
            _pt_monitor: pt_monitor,
            rpo_pg,
            rpo_fast,
            rpo_my,
            rpo_my_fast,
            pg_exp,
            my_exp,
            _pt_update: pt_update,
            pt_file,
            my_primary_id: a.server_id(),
        })
    }

    /// Waits until every exporter answers, then (up to 30 s) until both rpo-exporter pairs
    /// report lag.
    pub async fn wait_ready(&self, client: &reqwest::Client) -> Result<()> {
        for p in [&self.rpo_pg, &self.rpo_my, &self.pg_exp, &self.my_exp, &self.rpo_fast, &self.rpo_my_fast] {
            p.wait_ready(client).await?;
        }
        let lag = |url: &str, pair: &'static str| {
            let client = client.clone();
            let url = url.to_owned();
            async move {
                scrape(&client, &url)
                    .await
                    .and_then(|(t, _)| metric(&t, "rpo_replication_lag_seconds", &[pair]))
            }
        };
        for _ in 0..150 {
            let a = lag(&self.rpo_pg.url, "replica_node=\"r1\"").await;
            let b = lag(&self.rpo_my.url, "replica_node=\"b\"").await;
            if a.is_some() && b.is_some() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        Ok(())
    }

    /// The exporters, in the footprint table's order.
    pub fn exporters(&self) -> [&Proc; 6] {
        [&self.rpo_pg, &self.rpo_fast, &self.rpo_my, &self.rpo_my_fast, &self.pg_exp, &self.my_exp]
    }

    /// Scrapes every tool once, at once (an empty text where a scrape failed).
    pub async fn scrape_round(&self, client: &reqwest::Client) -> Round {
        let (s1, s2, s3, s4, s5, s6) = tokio::join!(
            scrape(client, &self.rpo_pg.url),
            scrape(client, &self.pg_exp.url),
            scrape(client, &self.rpo_my.url),
            scrape(client, &self.my_exp.url),
            scrape(client, &self.rpo_fast.url),
            scrape(client, &self.rpo_my_fast.url)
        );
        let txt = |s: Option<(String, Duration)>| s.map(|x| x.0).unwrap_or_default();
        Round {
            rpo_pg: txt(s1),
            pg_exp: txt(s2),
            rpo_my: txt(s3),
            my_exp: txt(s4),
            rpo_fast: txt(s5),
            rpo_my_fast: txt(s6),
            pt: pt_reading(&self.pt_file),
            my_primary_id: self.my_primary_id,
        }
    }

    /// Heartbeats written so far by rpo-exporter's 100 ms and 1 s PostgreSQL writers and its
    /// 1 s and 100 ms MariaDB writers.
    pub async fn heartbeats_written(&self, client: &reqwest::Client) -> [Option<f64>; 4] {
        let writes = |url: &str, node: &str| {
            let want = format!("node=\"{node}\"");
            let client = client.clone();
            let url = url.to_owned();
            async move {
                scrape(&client, &url)
                    .await
                    .and_then(|(t, _)| metric(&t, "rpo_heartbeat_writes_total", &[&want]))
            }
        };
        [
            writes(&self.rpo_fast.url, "pf").await,
            writes(&self.rpo_pg.url, "p").await,
            writes(&self.rpo_my.url, "a").await,
            writes(&self.rpo_my_fast.url, "af").await,
        ]
    }
}

/// rpo-exporter on PostgreSQL A at 1 s, on MariaDB A at 1 s, and on each of them again at
/// 100 ms (its own table `rpo.hb_fast` and node names `pf`/`rf`, `af`/`bf`).
async fn rpo_exporters(bin: &Path, work: &Path, labs: &Labs, pw: &Path) -> Result<[Proc; 4]> {
    let (pga, mya) = (&labs.pga.lab, &labs.mya.lab);
    let pg_pair = |cluster: &str, heartbeat: &str, [p, r]: [&str; 2]| {
        config_yaml(
            cluster,
            heartbeat,
            &[
                pg_node_yaml(p, "us-east-1", pga.node("p").port(), pw),
                pg_node_yaml(r, "eu-west-1", pga.node("r1").port(), pw),
            ],
        )
    };
    let pg_cfg = pg_pair("pg", "interval: 1s, table: rpo.heartbeat, create_table: false", ["p", "r1"]);
    let my_pair = |cluster: &str, heartbeat: &str, [a, b]: [&str; 2]| {
        config_yaml(
            cluster,
            heartbeat,
            &[
                my_node_yaml(a, "us-east-1", &mya.node("a").dsn(ROLE), pw),
                my_node_yaml(b, "eu-west-1", &mya.node("b").dsn(ROLE), pw),
            ],
        )
    };
    let my_cfg = my_pair("maria", "interval: 1s, create_table: false", ["a", "b"]);
    let rpo_pg = rpo_exporter(bin, work, "rpo-exporter-pg", &pg_cfg)?;
    let rpo_my = rpo_exporter(bin, work, "rpo-exporter-mariadb", &my_cfg)?;
    let fast_sql = schema_sql(bin, &["postgres", "--table", "rpo.hb_fast"])?;
    pga.node("p").execute(&fast_sql).await?;
    pga.wait_replayed(Duration::from_secs(30)).await?;
    let fast_cfg =
        pg_pair("pgfast", "interval: 100ms, table: rpo.hb_fast, create_table: false", ["pf", "rf"]);
    let rpo_fast = rpo_exporter(bin, work, "rpo-exporter-pg-100ms", &fast_cfg)?;
    let my_fast_sql = schema_sql(
        bin,
        &["mysql", "--server", "mariadb-10.11", "--host", "127.0.0.1", "--table", "rpo.hb_fast"],
    )?;
    mya.create_user(ROLE, PASSWORD, &my_fast_sql).await?;
    mya.wait_replicated(Duration::from_secs(30)).await?;
    let my_fast_cfg =
        my_pair("mariafast", "interval: 100ms, table: rpo.hb_fast, create_table: false", ["af", "bf"]);
    let rpo_my_fast = rpo_exporter(bin, work, "rpo-exporter-mariadb-100ms", &my_fast_cfg)?;
    Ok([rpo_pg, rpo_my, rpo_fast, rpo_my_fast])
}

fn postgres_exporter(port: u16, work: &Path) -> Result<Proc> {
    let addr = format!("127.0.0.1:{}", free_port());
    let mut cmd = Command::new("prometheus-postgres-exporter");
    cmd.env(
        "DATA_SOURCE_NAME",
        format!("host=127.0.0.1 port={port} user=postgres dbname=postgres sslmode=disable"),
    )
    .args(["--web.listen-address", &addr, "--extend.query-path", PG_QUERIES]);
    Proc::spawn("postgres_exporter", cmd, format!("http://{addr}/metrics"), &work.join("pgexp.log"))
}

/// mysqld_exporter on `replica` through its socket, as the `peer` account.
fn mysqld_exporter(replica: &MariaNode, work: &Path) -> Result<Proc> {
    let cnf = work.join("my.cnf");
    std::fs::write(
        &cnf,
        format!("[client]\nuser=peer\npassword=peer-pw\nsocket={}\n", replica.socket().display()),
    )?;
    let addr = format!("127.0.0.1:{}", free_port());
    let mut cmd = Command::new("prometheus-mysqld-exporter");
    cmd.arg(format!("--config.my-cnf={}", cnf.display())).args([
        "--web.listen-address",
        &addr,
        "--collect.heartbeat",
        "--collect.heartbeat.database=bench_hb",
        "--collect.heartbeat.table=heartbeat",
        "--collect.heartbeat.utc",
    ]);
    Proc::spawn("mysqld_exporter", cmd, format!("http://{addr}/metrics"), &work.join("myexp.log"))
}

/// pt-heartbeat in `mode` on table bench_hb.heartbeat, once a second, times in UTC.
fn pt_heartbeat(mode: &[&str]) -> Command {
    let mut cmd = Command::new("pt-heartbeat");
    cmd.args(mode).args(["--utc", "--interval", "1", "-u", "root", "-D", "bench_hb", "--table", "heartbeat"]);
    cmd
}

// ---------------------------------------------------------------- reading lag

/// One scrape of every tool, taken at the same time.
pub struct Round {
    pub rpo_pg: String,
    pub pg_exp: String,
    pub rpo_my: String,
    pub my_exp: String,
    pub rpo_fast: String,
    pub rpo_my_fast: String,
    /// pt-heartbeat --monitor's latest reading.
    pub pt: Option<f64>,
    /// The server id whose heartbeats mysqld_exporter reports.
    pub my_primary_id: u32,
}

/// The truths of the four labs (see [`Labs`]).
pub struct Truths<'a> {
    pub pga: &'a Truth,
    pub pgb: &'a Truth,
    pub mya: &'a Truth,
    pub myb: &'a Truth,
}

/// One tool's reading beside the truth of its lab.
#[derive(Debug, PartialEq)]
pub struct Reading {
    pub engine: &'static str,
    pub tool: &'static str,
    pub truth: f64,
    pub value: Option<f64>,
    /// rpo-exporter's lag only: the pair's `rpo_lag_source_info` source, if exported.
    pub source: Option<String>,
}

/// What every tool reported in `round`, each against its lab's truth at `now`, in the
/// samples' order.
pub fn readings(round: &Round, truths: &Truths, now: Instant) -> Vec<Reading> {
    let plain =
        |engine, tool, truth: f64, value: Option<f64>| Reading { engine, tool, truth, value, source: None };
    let mut out = Vec::new();
    let (tr_b, tr_d) = (truths.pgb.at(now), truths.myb.at(now));
    // PostgreSQL
    out.extend(
        rpo_readings(&round.rpo_pg, "r1", truths.pga, now).map(|r| Reading { engine: "postgres", ..r }),
    );
    out.extend(fast_readings("postgres", &round.rpo_fast, "rf", truths.pga.at(now)));
    let pg_lag = metric(&round.pg_exp, "pg_replication_lag", &[]);
    out.push(plain("postgres", "postgres_exporter pg_replication_lag", tr_b, pg_lag));
    // MariaDB
    out.extend(rpo_readings(&round.rpo_my, "b", truths.mya, now).map(|r| Reading { engine: "mariadb", ..r }));
    out.extend(fast_readings("mariadb", &round.rpo_my_fast, "bf", truths.mya.at(now)));
    let sbm = metric(&round.my_exp, "mysql_slave_status_seconds_behind_master", &[]);
    out.push(plain("mariadb", "mysqld_exporter Seconds_Behind_Master", tr_d, sbm));
    let sid = format!("server_id=\"{}\"", round.my_primary_id);
    let hb = match (
        metric(&round.my_exp, "mysql_heartbeat_now_timestamp_seconds", &[&sid]),
        metric(&round.my_exp, "mysql_heartbeat_stored_timestamp_seconds", &[&sid]),
    ) {
        (Some(n), Some(s)) => Some(n - s),
        _ => None,
    };
    out.push(plain("mariadb", "mysqld_exporter heartbeat (now - stored)", tr_d, hb));
    out.push(plain("mariadb", "pt-heartbeat --monitor", tr_d, round.pt));
    out
}

/// The 100 ms rpo-exporter's lag (with its source) and exposure of the pair ending at
/// `replica`, against the truth `truth` at scrape time.
fn fast_readings(engine: &'static str, text: &str, replica: &str, truth: f64) -> [Reading; 2] {
    let pair = format!("replica_node=\"{replica}\"");
    let (lag, exp) = (
        metric(text, "rpo_replication_lag_seconds", &[&pair]),
        metric(text, "rpo_data_loss_exposure_seconds", &[&pair]),
    );
    let source = info_label(text, "rpo_lag_source_info", &[&pair], "source");
    [
        Reading { engine, tool: "rpo-exporter 100ms lag", truth, value: lag, source },
        Reading { engine, tool: "rpo-exporter 100ms exposure", truth, value: exp, source: None },
    ]
}

/// rpo-exporter's lag (with its source) and exposure of the pair ending at `replica`, from
/// one scrape, against the truth at scrape time; the engine is left for the caller. (No
/// comparison "at the reading": between two heartbeat reads the exporter carries its pairs
/// with position reads, so `rpo_measurement_age_seconds` of the heartbeat read no longer
/// dates a pair's reading. The scrape-time comparison is the stricter one.)
fn rpo_readings(text: &str, replica: &str, truth: &Truth, now: Instant) -> [Reading; 2] {
    let pair = format!("replica_node=\"{replica}\"");
    let lag = metric(text, "rpo_replication_lag_seconds", &[&pair]);
    let exp = metric(text, "rpo_data_loss_exposure_seconds", &[&pair]);
    let source = info_label(text, "rpo_lag_source_info", &[&pair], "source");
    let r = |tool, truth, value, source| Reading { engine: "", tool, truth, value, source };
    [r("rpo-exporter lag", truth.at(now), lag, source), r("rpo-exporter exposure", truth.at(now), exp, None)]
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::truth::tests::truth;

    #[test]
    fn metric_finds_the_first_matching_finite_sample() {
        let text =
            "# HELP x\nrpo_lag_total 9\nrpo_lag{a=\"1\"} NaN\nrpo_lag{a=\"1\",b=\"2\"} 3.5\nrpo_lag 7\n";
        for (name, want, got) in [
            ("rpo_lag", &["a=\"1\""][..], Some(3.5)), // NaN skipped, prefix of a longer name not taken
            ("rpo_lag", &[][..], Some(3.5)),
            ("rpo_lag", &["b=\"3\""][..], None),
            ("rpo", &[][..], None),
        ] {
            assert_eq!(metric(text, name, want), got, "{name} {want:?}");
        }
        assert_eq!(series_count(text), 4);
        assert_eq!(metric_sum("x{a=\"1\"} 2\nx_total 5\nx{a=\"2\"} 3\nx 1\n", "x"), 6.0);
        let info = "rpo_lag_source_info{source_node=\"p\",replica_node=\"r\",source=\"heartbeat\"} 0\n\
                    rpo_lag_source_info{source_node=\"p\",replica_node=\"r\",source=\"gtid_position\"} 1\n\
                    rpo_lag_source_info{source=\"commit_timestamp\",replica_node=\"s\"} 1\n";
        for (want, got) in [
            (&["replica_node=\"r\""][..], Some("gtid_position")), // the sample at 1, not the one at 0
            (&["replica_node=\"s\""][..], Some("commit_timestamp")), // the label first
            (&["replica_node=\"t\""][..], None),
        ] {
            assert_eq!(info_label(info, "rpo_lag_source_info", want, "source").as_deref(), got, "{want:?}");
        }
        assert_eq!(lag_pairs("rpo_replication_lag_seconds{a=\"1\"} 1\nrpo_replication_lag_seconds 2\n"), 1);
    }

    #[test]
    fn pt_heartbeat_monitor_line() {
        for (line, want) in
            [("0.00s [  0.00s,  0.00s,  0.00s ]\n", Some(0.0)), ("12.5s [ 1 ]", Some(12.5)), ("", None)]
        {
            assert_eq!(pt_parse(line), want, "{line:?}");
        }
    }

    #[test]
    fn every_tool_is_read_against_its_own_labs_truth() {
        let t0 = Instant::now();
        // Lab truths at t0 + 10 s: PostgreSQL A 4 s, B 3 s, MariaDB A 2 s, B 1 s; A's 6 s
        // earlier (at the reading, 2 s before the scrape).
        let pga = truth(t0, &[4.0, 6.0], &[(5.0, 1)]);
        let pgb = truth(t0, &[7.0], &[]);
        let mya = truth(t0, &[8.0], &[]);
        let myb = truth(t0, &[9.0], &[]);
        let now = t0 + Duration::from_secs(10);
        let round = Round {
            rpo_pg: "rpo_replication_lag_seconds{source_node=\"p\",replica_node=\"r1\"} 3.9\n\
                     rpo_data_loss_exposure_seconds{source_node=\"p\",replica_node=\"r1\"} 4.2\n\
                     rpo_measurement_age_seconds{node=\"r1\",collector=\"heartbeat_read\"} 5\n\
                     rpo_lag_source_info{db_cluster=\"pg\",source_node=\"p\",replica_node=\"r1\",source=\"heartbeat\"} 0\n\
                     rpo_lag_source_info{db_cluster=\"pg\",source_node=\"p\",replica_node=\"r1\",source=\"commit_timestamp\"} 1\n"
                .into(),
            pg_exp: "pg_replication_lag 3\n".into(),
            rpo_my: "rpo_replication_lag_seconds{replica_node=\"b\"} 1.5\n".into(),
            my_exp: "mysql_slave_status_seconds_behind_master{channel_name=\"\"} 0\n\
                     mysql_heartbeat_now_timestamp_seconds{server_id=\"7\"} 100.5\n\
                     mysql_heartbeat_stored_timestamp_seconds{server_id=\"7\"} 99.5\n\
                     mysql_heartbeat_stored_timestamp_seconds{server_id=\"8\"} 0\n"
                .into(),
            rpo_fast: String::new(),
            rpo_my_fast: "rpo_replication_lag_seconds{source_node=\"af\",replica_node=\"bf\"} 1.9\n\
                          rpo_lag_source_info{source_node=\"af\",replica_node=\"bf\",source=\"gtid_position\"} 1\n"
                .into(),
            pt: Some(1.0),
            my_primary_id: 7,
        };
        let truths = Truths { pga: &pga, pgb: &pgb, mya: &mya, myb: &myb };
        let got: Vec<_> = readings(&round, &truths, now)
            .into_iter()
            .map(|r| (r.engine, r.tool, (r.truth * 1e6).round() / 1e6, r.value))
            .collect();
        let sources: Vec<_> =
            readings(&round, &truths, now).into_iter().filter_map(|r| Some((r.tool, r.source?))).collect();
        assert_eq!(
            sources,
            [
                ("rpo-exporter lag", "commit_timestamp".to_owned()),
                ("rpo-exporter 100ms lag", "gtid_position".into())
            ]
        );
        let want = [
            ("postgres", "rpo-exporter lag", 4.0, Some(3.9)),
            ("postgres", "rpo-exporter exposure", 4.0, Some(4.2)),
            ("postgres", "rpo-exporter 100ms lag", 4.0, None),
            ("postgres", "rpo-exporter 100ms exposure", 4.0, None),
            ("postgres", "postgres_exporter pg_replication_lag", 3.0, Some(3.0)),
            ("mariadb", "rpo-exporter lag", 2.0, Some(1.5)),
            ("mariadb", "rpo-exporter exposure", 2.0, None),
            ("mariadb", "rpo-exporter 100ms lag", 2.0, Some(1.9)),
            ("mariadb", "rpo-exporter 100ms exposure", 2.0, None),
            ("mariadb", "mysqld_exporter Seconds_Behind_Master", 1.0, Some(0.0)),
            ("mariadb", "mysqld_exporter heartbeat (now - stored)", 1.0, Some(1.0)),
            ("mariadb", "pt-heartbeat --monitor", 1.0, Some(1.0)),
        ];
        assert_eq!(got, want);
    }
}
