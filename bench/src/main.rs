//! `rpo-bench`: rpo-exporter against the tools people use today (postgres_exporter,
//! mysqld_exporter, pt-heartbeat) on the rpo-lab servers, in one run.
//!
//! Four labs, so that no tool's writes hide another tool's blind spot: PostgreSQL A
//! (rpo-exporter), PostgreSQL B (postgres_exporter), MariaDB A (rpo-exporter), MariaDB B
//! (mysqld_exporter + pt-heartbeat). Every replica reads its upstream through a small TCP
//! proxy of ours. Ground truth per lab: a writer commits a numbered row on the primary
//! every 100 ms and a poller records when each row becomes visible on the replica; true
//! lag at time t = age of the oldest row committed by t but not visible at t.
//!
//! Output: `results.md` (tables), `samples.csv`, `footprint.csv`, `scale.csv`, `cost.csv`.

use anyhow::{bail, Context, Result};
use clap::Parser;
use rpo_lab::{free_port, MariaLab, MariaLabSpec, PgLab, PgLabSpec, Proxy, Watchdog};
use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::process::{Child, Command};

const ROLE: &str = "rpo_exporter";
const PASSWORD: &str = "bench-Pw-7d1c";
const PG_QUERIES: &str = "/usr/share/doc/prometheus-postgres-exporter/examples/queries.yaml";

#[derive(Parser)]
struct Args {
    /// The rpo-exporter binary (release build).
    #[arg(long, default_value = "target/release/rpo-exporter")]
    exporter: PathBuf,
    /// Where to write the report.
    #[arg(long, default_value = "bench/results")]
    out: PathBuf,
    /// Seconds of the idle-primary scenario.
    #[arg(long, default_value_t = 60)]
    idle_secs: u64,
    /// Seconds of each fault scenario.
    #[arg(long, default_value_t = 30)]
    fault_secs: u64,
    /// Scrapes per exporter in the footprint test.
    #[arg(long, default_value_t = 1000)]
    scrapes: usize,
    /// Cluster counts of the scale test (empty: skip).
    #[arg(long, default_value = "10,100,400")]
    scale: String,
    /// Seconds each scale step is measured.
    #[arg(long, default_value_t = 20)]
    scale_secs: u64,
    /// Parts to run, comma-separated (default: all). `scenarios` and `footprint` start the
    /// labs, exporters and peers; `scenarios` also measures the database cost.
    #[arg(long, value_enum, value_delimiter = ',', default_values_t = [Part::Scenarios, Part::Footprint, Part::Scale])]
    only: Vec<Part>,
}

#[derive(Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
enum Part {
    /// Idle and fault scenarios: accuracy against ground truth, database cost.
    Scenarios,
    /// Memory, CPU and scrape latency of every exporter.
    Footprint,
    /// rpo-exporter watching many clusters (`--scale`).
    Scale,
}

// ---------------------------------------------------------------- ground truth

/// Commit instants of the truth rows (row id n at index n-1) and the history of the
/// highest id visible on the replica.
#[derive(Default)]
struct Truth {
    commits: Mutex<Vec<Instant>>,
    visible: Mutex<Vec<(Instant, u64)>>,
    writing: AtomicBool,
}

impl Truth {
    /// True lag at `t`: age of the oldest row committed by `t` and not visible at `t`.
    fn at(&self, t: Instant) -> f64 {
        let v = {
            let vis = self.visible.lock().unwrap();
            let i = vis.partition_point(|(at, _)| *at <= t);
            if i == 0 {
                0
            } else {
                vis[i - 1].1
            }
        };
        let commits = self.commits.lock().unwrap();
        match commits.get(v as usize) {
            Some(c) if *c <= t => t.duration_since(*c).as_secs_f64(),
            _ => 0.0,
        }
    }
    fn saw(&self, id: u64) {
        let mut vis = self.visible.lock().unwrap();
        if vis.last().map(|(_, v)| *v) != Some(id) {
            vis.push((Instant::now(), id));
        }
    }
}

enum Db {
    Pg(u16),
    Maria(mysql_async::Opts),
}

async fn pg_client(port: u16) -> Result<tokio_postgres::Client> {
    let mut c = tokio_postgres::Config::new();
    c.host("127.0.0.1")
        .port(port)
        .user("postgres")
        .dbname("postgres")
        .connect_timeout(Duration::from_secs(1));
    let (client, conn) = c.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

enum Conn {
    Pg(tokio_postgres::Client),
    Maria(mysql_async::Conn),
}

impl Db {
    async fn connect(&self) -> Result<Conn> {
        Ok(match self {
            Db::Pg(port) => Conn::Pg(pg_client(*port).await?),
            Db::Maria(opts) => Conn::Maria(
                tokio::time::timeout(Duration::from_secs(1), mysql_async::Conn::new(opts.clone())).await??,
            ),
        })
    }
}

impl Conn {
    async fn exec(&mut self, sql: &str) -> Result<()> {
        use mysql_async::prelude::Queryable;
        match self {
            Conn::Pg(c) => {
                c.batch_execute(sql).await?;
            }
            Conn::Maria(c) => c.query_drop(sql).await?,
        }
        Ok(())
    }
    async fn max_id(&mut self) -> Result<u64> {
        use mysql_async::prelude::Queryable;
        match self {
            Conn::Pg(c) => {
                let row = c.query_one("SELECT coalesce(max(id), 0) FROM bench_truth", &[]).await?;
                Ok(row.get::<_, i64>(0) as u64)
            }
            Conn::Maria(c) => {
                let v: Option<u64> = c.query_first("SELECT COALESCE(MAX(id), 0) FROM bench.truth").await?;
                Ok(v.unwrap_or(0))
            }
        }
    }
}

/// Starts the writer (primary) and the poller (replica) of one lab's truth.
fn start_truth(primary: Db, replica: Db, insert: &'static str) -> Arc<Truth> {
    let truth = Arc::new(Truth::default());
    let t = truth.clone();
    tokio::spawn(async move {
        let mut conn = None;
        let mut tick = tokio::time::interval(Duration::from_millis(100));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tick.tick().await;
            if !t.writing.load(Ordering::SeqCst) {
                continue;
            }
            if conn.is_none() {
                conn = primary.connect().await.ok();
            }
            let Some(c) = conn.as_mut() else { continue };
            let id = t.commits.lock().unwrap().len() + 1;
            match tokio::time::timeout(
                Duration::from_secs(2),
                c.exec(&insert.replace("{id}", &id.to_string())),
            )
            .await
            {
                Ok(Ok(())) => t.commits.lock().unwrap().push(Instant::now()),
                _ => conn = None,
            }
        }
    });
    let t = truth.clone();
    tokio::spawn(async move {
        let mut conn: Option<Conn> = None;
        loop {
            if conn.is_none() {
                conn = replica.connect().await.ok();
                if conn.is_none() {
                    tokio::time::sleep(Duration::from_millis(200)).await;
                    continue;
                }
            }
            match tokio::time::timeout(Duration::from_secs(1), conn.as_mut().unwrap().max_id()).await {
                Ok(Ok(id)) => t.saw(id),
                _ => conn = None,
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });
    truth
}

// ---------------------------------------------------------------- processes, scrapes

struct Proc {
    name: String,
    child: Child,
    url: String,
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
    fn save_log(&self, dest: &Path) -> Result<()> {
        let mut text = std::fs::read(&self.log)?;
        text.extend(std::fs::read(self.log.with_extension("err"))?);
        std::fs::write(dest, text)
            .with_context(|| format!("saving {}'s log to {}", self.name, dest.display()))
    }
    fn pid(&self) -> u32 {
        self.child.id().unwrap_or(0)
    }
    async fn wait_ready(&self, client: &reqwest::Client) -> Result<()> {
        for _ in 0..100 {
            if scrape(client, &self.url).await.is_some() {
                return Ok(());
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        bail!("{} never answered at {}", self.name, self.url)
    }
}

async fn scrape(client: &reqwest::Client, url: &str) -> Option<(String, Duration)> {
    let start = Instant::now();
    let r = client.get(url).send().await.ok()?;
    if !r.status().is_success() {
        return None;
    }
    let text = r.text().await.ok()?;
    Some((text, start.elapsed()))
}

/// rpo-exporter's lag and exposure of the pair ending at `replica`, from one scrape,
/// each against the truth at scrape time and at the time of the reading (scrape time
/// minus `rpo_measurement_age_seconds` of the replica's heartbeat read).
fn rpo_readings(
    text: &str,
    replica: &str,
    truth: &Truth,
    now: Instant,
) -> [(&'static str, f64, Option<f64>); 4] {
    let pair = format!("replica_node=\"{replica}\"");
    let lag = metric(text, "rpo_replication_lag_seconds", &[&pair]);
    let exp = metric(text, "rpo_data_loss_exposure_seconds", &[&pair]);
    let node = format!("node=\"{replica}\"");
    let age = metric(text, "rpo_measurement_age_seconds", &["collector=\"heartbeat_read\"", &node]);
    let then = now.checked_sub(Duration::from_secs_f64(age.unwrap_or(0.0).max(0.0))).unwrap_or(now);
    [
        ("rpo-exporter lag", truth.at(now), lag),
        ("rpo-exporter exposure", truth.at(now), exp),
        ("rpo-exporter lag (vs truth at reading)", truth.at(then), lag),
        ("rpo-exporter exposure (vs truth at reading)", truth.at(then), exp),
    ]
}

/// First sample of `name` whose label text contains every one of `want`.
fn metric(text: &str, name: &str, want: &[&str]) -> Option<f64> {
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

fn series_count(text: &str) -> usize {
    text.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).count()
}

/// (RSS bytes, CPU seconds) of a process.
fn proc_usage(pid: u32) -> (f64, f64) {
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

fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let i = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    v[i]
}

// ---------------------------------------------------------------- labs

struct PgSide {
    lab: PgLab,
    proxy: Proxy,
    truth: Arc<Truth>,
}

async fn pg_side(dir: &Path, role_sql: Option<&str>) -> Result<PgSide> {
    let lab = PgLab::start(PgLabSpec::new().primary("p").replica("r1", "p")).await?;
    let p = lab.node("p");
    if let Some(sql) = role_sql {
        lab.create_role(ROLE, PASSWORD, sql).await?;
    }
    p.execute(
        "CREATE TABLE bench_truth (id bigint PRIMARY KEY, at timestamptz NOT NULL DEFAULT clock_timestamp())",
    )
    .await?;
    lab.wait_replayed(Duration::from_secs(30)).await?;
    let proxy = Proxy::start(p.port()).await?;
    let r1 = lab.node("r1");
    let conninfo = r1.query_one_string("SHOW primary_conninfo").await?.unwrap_or_default();
    let new = conninfo.replace(&format!("port={}", p.port()), &format!("port={}", proxy.port()));
    if new == conninfo {
        bail!("cannot find the port in primary_conninfo {conninfo:?}");
    }
    r1.execute(&format!("ALTER SYSTEM SET primary_conninfo = '{}'", new.replace('\'', "''"))).await?;
    r1.execute("SELECT pg_reload_conf()").await?;
    // The WAL receiver restarts through the proxy.
    let sql = "SELECT count(*) FROM pg_stat_wal_receiver WHERE status = 'streaming'";
    tokio::time::sleep(Duration::from_secs(1)).await;
    r1.wait_for_value(sql, "1", Duration::from_secs(20)).await?;
    let _ = dir;
    let truth =
        start_truth(Db::Pg(p.port()), Db::Pg(r1.port()), "INSERT INTO bench_truth (id) VALUES ({id})");
    Ok(PgSide { lab, proxy, truth })
}

struct MariaSide {
    lab: MariaLab,
    proxy: Proxy,
    truth: Arc<Truth>,
}

async fn maria_side(user_sql: Option<&str>) -> Result<MariaSide> {
    let lab = MariaLab::start(MariaLabSpec::new().primary("a").replica("b", &["a"])).await?;
    if let Some(sql) = user_sql {
        lab.create_user(ROLE, PASSWORD, sql).await?;
    }
    let a = lab.node("a");
    a.exec("CREATE DATABASE IF NOT EXISTS bench; CREATE TABLE bench.truth (id BIGINT PRIMARY KEY, at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)) ENGINE=InnoDB; CREATE DATABASE IF NOT EXISTS bench_hb")
        .await?;
    lab.wait_replicated(Duration::from_secs(30)).await?;
    let proxy = Proxy::start(a.port()).await?;
    let b = lab.node("b");
    b.exec(&format!("STOP SLAVE; CHANGE MASTER TO MASTER_PORT={}; START SLAVE", proxy.port())).await?;
    b.wait_replication_running(Duration::from_secs(20)).await?;
    let truth = start_truth(
        Db::Maria(a.root_opts()),
        Db::Maria(b.root_opts()),
        "INSERT INTO bench.truth (id) VALUES ({id})",
    );
    Ok(MariaSide { lab, proxy, truth })
}

fn schema_sql(exporter: &Path, args: &[&str]) -> Result<String> {
    let out = std::process::Command::new(exporter).arg("schema").args(args).output()?;
    if !out.status.success() {
        bail!("rpo-exporter schema {args:?}: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(String::from_utf8(out.stdout)?)
}

fn rpo_exporter(bin: &Path, dir: &Path, name: &str, config: &str) -> Result<Proc> {
    let cfg = dir.join(format!("{name}.yml"));
    std::fs::write(&cfg, config)?;
    let addr = format!("127.0.0.1:{}", free_port());
    let mut cmd = Command::new(bin);
    cmd.arg("--config.file").arg(&cfg).args(["--web.listen-address", &addr]);
    Proc::spawn(name, cmd, format!("http://{addr}/metrics"), &dir.join(format!("{name}.log")))
}

// ---------------------------------------------------------------- samples and stats

#[derive(Clone)]
struct Sample {
    engine: &'static str,
    scenario: String,
    tool: &'static str,
    t: f64,
    truth: f64,
    value: Option<f64>,
}

#[derive(Default)]
struct Stat {
    n: usize,
    missing: usize,
    err_sum: f64,
    err_max: f64,
    false_alarms: usize,
    silent_zeros: usize,
}

fn stats(samples: &[Sample]) -> Stat {
    let mut s = Stat::default();
    for x in samples {
        s.n += 1;
        let Some(v) = x.value else {
            s.missing += 1;
            continue;
        };
        let e = (v - x.truth).abs();
        s.err_sum += e;
        s.err_max = s.err_max.max(e);
        if v > 2.0 && x.truth < 0.5 {
            s.false_alarms += 1;
        }
        if v < 0.5 && x.truth > 2.0 {
            s.silent_zeros += 1;
        }
    }
    s
}

// ---------------------------------------------------------------- main

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<()> {
    let args = Args::parse();
    std::fs::create_dir_all(&args.out)?;
    let work = tempfile_dir()?;
    let bin = std::fs::canonicalize(&args.exporter).context("rpo-exporter binary (cargo build --release)")?;
    let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build()?;
    let started = Instant::now();
    let mut md = String::new();
    let host = std::process::Command::new("uname")
        .arg("-srm")
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_owned())
        .unwrap_or_default();
    let load0 = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    writeln!(
        md,
        "# rpo-bench report\n\nHost: {host}, {} CPUs; load average at start: {}\n",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        load0.trim()
    )?;
    if args.only.iter().any(|p| matches!(p, Part::Scenarios | Part::Footprint)) {
        compare(&args, &bin, &work, &client, started, &mut md).await?;
    }

    // ---- scale
    let counts: Vec<usize> = args.scale.split(',').filter_map(|s| s.trim().parse().ok()).collect();
    if args.only.contains(&Part::Scale) && !counts.is_empty() {
        eprintln!("bench: scale {counts:?}");
        match scale(&bin, &work, &args.out, &client, &counts, args.scale_secs).await {
            Ok((table, csv)) => {
                md.push_str(&table);
                std::fs::write(args.out.join("scale.csv"), csv)?;
            }
            Err(e) => writeln!(md, "## Scale\n\nFailed: {e:#}\n")?,
        }
    }
    let load1 = std::fs::read_to_string("/proc/loadavg").unwrap_or_default();
    writeln!(
        md,
        "Load average at end: {}. Total run time {:.0} s.",
        load1.trim(),
        started.elapsed().as_secs_f64()
    )?;
    write_md(&args.out, &md)?;
    eprintln!("bench: done, report in {}", args.out.join("results.md").display());
    let _ = std::fs::remove_dir_all(&work);
    Ok(())
}

/// The four labs, their exporters and peers: accuracy scenarios, database cost, footprint.
async fn compare(
    args: &Args,
    bin: &Path,
    work: &Path,
    client: &reqwest::Client,
    started: Instant,
    md: &mut String,
) -> Result<()> {
    writeln!(
        md,
        "Idle scenario {} s, fault scenarios {} s each, one sample per second per tool.\n",
        args.idle_secs, args.fault_secs
    )?;

    // ---- labs
    eprintln!("bench: starting labs");
    let pg_schema = schema_sql(bin, &["postgres"])?;
    let my_schema = schema_sql(bin, &["mysql", "--server", "mariadb-10.11", "--host", "127.0.0.1"])?;
    let (pga, pgb, mya, myb) = tokio::join!(
        pg_side(work, Some(&pg_schema)),
        pg_side(work, None),
        maria_side(Some(&my_schema)),
        maria_side(None)
    );
    let (pga, pgb, mya, myb) = (pga?, pgb?, mya?, myb?);
    let pw_file = work.join("password");
    std::fs::write(&pw_file, format!("{PASSWORD}\n"))?;

    // ---- exporters
    eprintln!("bench: starting exporters");
    let pg_cfg = format!(
        "clusters:\n  - name: pg\n    rpo: 30s\n    rto: 5m\n    heartbeat: {{ interval: 1s, table: rpo.heartbeat, create_table: false }}\n    nodes:\n{}{}",
        pg_node_yaml("p", "us-east-1", pga.lab.node("p").port(), &pw_file),
        pg_node_yaml("r1", "eu-west-1", pga.lab.node("r1").port(), &pw_file)
    );
    let my_cfg = format!(
        "clusters:\n  - name: maria\n    rpo: 30s\n    rto: 5m\n    heartbeat: {{ interval: 1s, create_table: false }}\n    nodes:\n{}{}",
        my_node_yaml("a", "us-east-1", &mya.lab.node("a").dsn(ROLE), &pw_file),
        my_node_yaml("b", "eu-west-1", &mya.lab.node("b").dsn(ROLE), &pw_file)
    );
    let rpo_pg = rpo_exporter(bin, work, "rpo-exporter-pg", &pg_cfg)?;
    let rpo_my = rpo_exporter(bin, work, "rpo-exporter-mariadb", &my_cfg)?;
    // The same PostgreSQL pair watched at a 100 ms interval, its own table and node names.
    let fast_sql = schema_sql(bin, &["postgres", "--table", "rpo.hb_fast"])?;
    pga.lab.node("p").execute(&fast_sql).await?;
    pga.lab.wait_replayed(Duration::from_secs(30)).await?;
    let fast_cfg = format!(
        "clusters:\n  - name: pgfast\n    rpo: 30s\n    rto: 5m\n    heartbeat: {{ interval: 100ms, table: rpo.hb_fast, create_table: false }}\n    nodes:\n{}{}",
        pg_node_yaml("pf", "us-east-1", pga.lab.node("p").port(), &pw_file),
        pg_node_yaml("rf", "eu-west-1", pga.lab.node("r1").port(), &pw_file)
    );
    let rpo_fast = rpo_exporter(bin, work, "rpo-exporter-pg-100ms", &fast_cfg)?;

    let addr = format!("127.0.0.1:{}", free_port());
    let mut cmd = Command::new("prometheus-postgres-exporter");
    cmd.env(
        "DATA_SOURCE_NAME",
        format!(
            "host=127.0.0.1 port={} user=postgres dbname=postgres sslmode=disable",
            pgb.lab.node("r1").port()
        ),
    )
    .args(["--web.listen-address", &addr, "--extend.query-path", PG_QUERIES]);
    let pg_exp =
        Proc::spawn("postgres_exporter", cmd, format!("http://{addr}/metrics"), &work.join("pgexp.log"))?;

    let b = myb.lab.node("b");
    let a = myb.lab.node("a");
    let cnf = work.join("my.cnf");
    // mysqld_exporter insists on a password: a monitoring account made on the primary.
    a.exec("CREATE USER 'peer'@'localhost' IDENTIFIED BY 'peer-pw'; GRANT PROCESS, REPLICATION CLIENT, SLAVE MONITOR, SELECT ON *.* TO 'peer'@'localhost'").await?;
    myb.lab.wait_replicated(Duration::from_secs(30)).await?;
    std::fs::write(
        &cnf,
        format!("[client]\nuser=peer\npassword=peer-pw\nsocket={}\n", b.socket().display()),
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
    let my_exp =
        Proc::spawn("mysqld_exporter", cmd, format!("http://{addr}/metrics"), &work.join("myexp.log"))?;

    let mut cmd = Command::new("pt-heartbeat");
    cmd.args([
        "--update",
        "--create-table",
        "--utc",
        "--interval",
        "1",
        "-u",
        "root",
        "-D",
        "bench_hb",
        "--table",
        "heartbeat",
        "-S",
    ])
    .arg(a.socket());
    let pt_update = Proc::spawn("pt-heartbeat --update", cmd, String::new(), &work.join("pt-update.log"))?;
    tokio::time::sleep(Duration::from_secs(2)).await;
    // pt-heartbeat --monitor --file rewrites the file with its latest line every interval
    // (its STDOUT is block-buffered when piped).
    let pt_file = work.join("pt-monitor.out");
    let mut cmd = Command::new("pt-heartbeat");
    cmd.args([
        "--monitor",
        "--utc",
        "--interval",
        "1",
        "-u",
        "root",
        "-D",
        "bench_hb",
        "--table",
        "heartbeat",
    ])
    .args(["--master-server-id", &a.server_id().to_string(), "--file"])
    .arg(&pt_file)
    .arg("-S")
    .arg(b.socket());
    let pt_monitor = Proc::spawn("pt-heartbeat --monitor", cmd, String::new(), &work.join("pt-monitor.log"))?;
    for p in [&rpo_pg, &rpo_my, &pg_exp, &my_exp, &rpo_fast] {
        p.wait_ready(client).await?;
    }
    // Wait for the rpo pairs.
    for _ in 0..150 {
        let a = scrape(client, &rpo_pg.url)
            .await
            .and_then(|(t, _)| metric(&t, "rpo_replication_lag_seconds", &["replica_node=\"r1\""]));
        let b = scrape(client, &rpo_my.url)
            .await
            .and_then(|(t, _)| metric(&t, "rpo_replication_lag_seconds", &["replica_node=\"b\""]));
        if a.is_some() && b.is_some() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    eprintln!("bench: ready after {:.1} s", started.elapsed().as_secs_f64());

    if args.only.contains(&Part::Scenarios) {
        let t0 = Instant::now();
        let mut samples: Vec<Sample> = Vec::new();
        let all_truth = [&pga.truth, &pgb.truth, &mya.truth, &myb.truth];

        // Sampling one scenario.
        let sample_for = |scenario: &'static str, secs: u64| {
            let client = client.clone();
            let (u1, u2, u3, u4) =
                (rpo_pg.url.clone(), pg_exp.url.clone(), rpo_my.url.clone(), my_exp.url.clone());
            let u5 = rpo_fast.url.clone();
            let (ta, tb, tc, td) =
                (pga.truth.clone(), pgb.truth.clone(), mya.truth.clone(), myb.truth.clone());
            let pt_file = pt_file.clone();
            let my_primary_id = a.server_id();
            async move {
                let mut out = Vec::new();
                let mut tick = tokio::time::interval(Duration::from_secs(1));
                let end = Instant::now() + Duration::from_secs(secs);
                while Instant::now() < end {
                    tick.tick().await;
                    let now = Instant::now();
                    let t = now.duration_since(t0).as_secs_f64();
                    let (s1, s2, s3, s4, s5) = tokio::join!(
                        scrape(&client, &u1),
                        scrape(&client, &u2),
                        scrape(&client, &u3),
                        scrape(&client, &u4),
                        scrape(&client, &u5)
                    );
                    let txt =
                        |s: &Option<(String, Duration)>| s.as_ref().map(|x| x.0.clone()).unwrap_or_default();
                    let (s1, s2, s3, s4, s5) = (txt(&s1), txt(&s2), txt(&s3), txt(&s4), txt(&s5));
                    let mut push = |engine, tool, truth: f64, value: Option<f64>| {
                        out.push(Sample { engine, scenario: scenario.to_owned(), tool, t, truth, value })
                    };
                    let (tr_a, tr_b, tr_d) = (ta.at(now), tb.at(now), td.at(now));
                    // PostgreSQL
                    for (tool, truth, value) in rpo_readings(&s1, "r1", &ta, now) {
                        push("postgres", tool, truth, value);
                    }
                    let lag = metric(&s5, "rpo_replication_lag_seconds", &["replica_node=\"rf\""]);
                    let exp = metric(&s5, "rpo_data_loss_exposure_seconds", &["replica_node=\"rf\""]);
                    push("postgres", "rpo-exporter 100ms lag", tr_a, lag);
                    push("postgres", "rpo-exporter 100ms exposure", tr_a, exp);
                    push(
                        "postgres",
                        "postgres_exporter pg_replication_lag",
                        tr_b,
                        metric(&s2, "pg_replication_lag", &[]),
                    );
                    // MariaDB
                    for (tool, truth, value) in rpo_readings(&s3, "b", &tc, now) {
                        push("mariadb", tool, truth, value);
                    }
                    push(
                        "mariadb",
                        "mysqld_exporter Seconds_Behind_Master",
                        tr_d,
                        metric(&s4, "mysql_slave_status_seconds_behind_master", &[]),
                    );
                    let sid = format!("server_id=\"{my_primary_id}\"");
                    let hb = match (
                        metric(&s4, "mysql_heartbeat_now_timestamp_seconds", &[&sid]),
                        metric(&s4, "mysql_heartbeat_stored_timestamp_seconds", &[&sid]),
                    ) {
                        (Some(n), Some(s)) => Some(n - s),
                        _ => None,
                    };
                    push("mariadb", "mysqld_exporter heartbeat (now - stored)", tr_d, hb);
                    let pt = pt_reading(&pt_file);
                    push("mariadb", "pt-heartbeat --monitor", tr_d, pt);
                }
                out
            }
        };

        // ---- scenario 1: idle primary (truth writers off), and the DB cost of heartbeats.
        eprintln!("bench: idle primary {} s", args.idle_secs);
        let writes = |url: String, node: &'static str| {
            let client = client.clone();
            async move {
                scrape(&client, &url).await.and_then(|(t, _)| {
                    metric(&t, "rpo_heartbeat_writes_total", &[&format!("node=\"{node}\"")])
                })
            }
        };
        // Heartbeats written and log positions, before and after the idle scenario.
        let counters = || async {
            (
                writes(rpo_fast.url.clone(), "pf").await,
                writes(rpo_pg.url.clone(), "p").await,
                writes(rpo_my.url.clone(), "a").await,
                lsn(&pga).await,
                binlog(&mya.lab).await,
                binlog(&myb.lab).await,
            )
        };
        let (f0, w0_pg, w0_my, l0_pga, b0_mya, b0_myb) = counters().await;
        let idle_start = Instant::now();
        samples.extend(sample_for("idle primary", args.idle_secs).await);
        let idle_secs = idle_start.elapsed().as_secs_f64();
        let (f1, w1_pg, w1_my, l1_pga, b1_mya, b1_myb) = counters().await;
        let mut cost = String::from("tool,engine,heartbeats,bytes,bytes_per_heartbeat,note\n");
        let mut cost_md = String::from(
            "| Tool | Engine | Heartbeats | Bytes written | Bytes per heartbeat |\n|---|---|---|---|---|\n",
        );
        let mut add_cost =
            |tool: &str, engine: &str, beats: Option<f64>, bytes: Option<f64>, note: &str| match (
                beats, bytes,
            ) {
                (Some(h), Some(b)) if h > 0.0 => {
                    let _ = writeln!(cost, "{tool},{engine},{h},{b},{:.1},{note}", b / h);
                    let _ = writeln!(cost_md, "| {tool} | {engine} | {h:.0} | {b:.0} | {:.1} |", b / h);
                }
                _ => {
                    let _ = writeln!(cost, "{tool},{engine},,,,{note}: not measured");
                    let _ = writeln!(cost_md, "| {tool} | {engine} | – | – | not measured ({note}) |");
                }
            };
        let diff = |a: Option<f64>, b: Option<f64>| Some(b? - a?);
        let bdiff = |a: &Option<(String, f64)>, b: &Option<(String, f64)>| match (a, b) {
            (Some((fa, pa)), Some((fb, pb))) if fa == fb => Some(pb - pa),
            _ => None,
        };
        let pg_beats = match (diff(w0_pg, w1_pg), diff(f0, f1)) {
            (Some(x), Some(y)) => Some(x + y),
            _ => None,
        };
        add_cost(
            "rpo-exporter (1 s + 100 ms writers)",
            "PostgreSQL WAL",
            pg_beats,
            diff(l0_pga, l1_pga),
            "WAL LSN diff over the idle scenario",
        );
        add_cost(
            "rpo-exporter",
            "MariaDB binlog",
            diff(w0_my, w1_my),
            bdiff(&b0_mya, &b1_mya),
            "binlog position diff over the idle scenario",
        );
        add_cost(
            "pt-heartbeat --update",
            "MariaDB binlog",
            Some(idle_secs.floor()),
            bdiff(&b0_myb, &b1_myb),
            "heartbeats = idle seconds at --interval 1",
        );

        // ---- fault scenarios, with the writers on.
        for t in all_truth {
            t.writing.store(true, Ordering::SeqCst);
        }
        tokio::time::sleep(Duration::from_secs(3)).await;

        eprintln!("bench: replay paused / SQL thread stopped {} s", args.fault_secs);
        for s in [&pga, &pgb] {
            s.lab.node("r1").execute("SELECT pg_wal_replay_pause()").await?;
        }
        for s in [&mya, &myb] {
            s.lab.node("b").exec("STOP SLAVE SQL_THREAD").await?;
        }
        samples.extend(sample_for("replay paused / SQL thread stopped", args.fault_secs).await);
        for s in [&pga, &pgb] {
            let r1 = s.lab.node("r1");
            for attempt in 0..5 {
                match r1.execute("SELECT pg_wal_replay_resume()").await {
                    Ok(()) => break,
                    Err(e) => eprintln!("bench: warning: resume attempt {attempt}: {e:#}"),
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        for s in [&mya, &myb] {
            if let Err(e) = s.lab.node("b").exec("START SLAVE SQL_THREAD").await {
                eprintln!("bench: warning: START SLAVE SQL_THREAD: {e:#}");
            }
        }
        tokio::time::sleep(Duration::from_secs(8)).await;

        eprintln!("bench: replication disconnected (black hole) {} s", args.fault_secs);
        for p in [&pga.proxy, &pgb.proxy, &mya.proxy, &myb.proxy] {
            p.set_blackhole(true);
        }
        samples.extend(sample_for("replication disconnected (proxy black hole)", args.fault_secs).await);
        for p in [&pga.proxy, &pgb.proxy, &mya.proxy, &myb.proxy] {
            p.set_blackhole(false);
        }
        tokio::time::sleep(Duration::from_secs(8)).await;

        eprintln!("bench: replica killed {} s", args.fault_secs);
        for s in [&pga, &pgb] {
            s.lab.node("r1").kill()?;
        }
        for s in [&mya, &myb] {
            s.lab.node("b").kill()?;
        }
        samples.extend(sample_for("replica killed", args.fault_secs).await);
        for s in [&pga, &pgb] {
            if let Err(e) = s.lab.node("r1").start() {
                eprintln!("bench: warning: restart r1: {e:#}");
            }
        }
        for s in [&mya, &myb] {
            if let Err(e) = s.lab.node("b").start() {
                eprintln!("bench: warning: restart b: {e:#}");
            }
        }
        for t in all_truth {
            t.writing.store(false, Ordering::SeqCst);
        }

        // ---- accuracy tables
        let mut csv = String::from("engine,scenario,tool,t_s,truth_s,value_s\n");
        for s in &samples {
            let _ = writeln!(
                csv,
                "{},{},{},{:.3},{:.3},{}",
                s.engine,
                s.scenario,
                s.tool,
                s.t,
                s.truth,
                s.value.map(|v| format!("{v:.3}")).unwrap_or_default()
            );
        }
        std::fs::write(args.out.join("samples.csv"), csv)?;
        writeln!(md, "## Accuracy against ground truth\n\nError = |reported − true lag| per 1 s sample. False alarm: reported > 2 s while truth < 0.5 s. Silent zero: reported < 0.5 s while truth > 2 s. Missing: scrape failed or series absent (not counted in the errors). Rows \"vs truth at reading\" compare rpo-exporter's reading with the truth at the time it was measured (scrape time − `rpo_measurement_age_seconds`).\n")?;
        writeln!(md, "| Engine | Scenario | Tool | Samples | Mean abs error (s) | Max abs error (s) | False alarms | Silent zeros | Missing |\n|---|---|---|---|---|---|---|---|---|")?;
        let mut keys: Vec<(&str, String, &str)> = Vec::new();
        for s in &samples {
            let k = (s.engine, s.scenario.clone(), s.tool);
            if !keys.contains(&k) {
                keys.push(k);
            }
        }
        keys.sort_by(|a, b| a.0.cmp(b.0).reverse().then(std::cmp::Ordering::Equal));
        for (engine, scenario, tool) in &keys {
            let xs: Vec<Sample> = samples
                .iter()
                .filter(|s| s.engine == *engine && s.scenario == *scenario && s.tool == *tool)
                .cloned()
                .collect();
            let st = stats(&xs);
            let got = st.n - st.missing;
            let (mean, max) = if got > 0 {
                (format!("{:.3}", st.err_sum / got as f64), format!("{:.3}", st.err_max))
            } else {
                ("–".into(), "–".into())
            };
            writeln!(
                md,
                "| {engine} | {scenario} | {tool} | {} | {mean} | {max} | {} | {} | {} |",
                st.n, st.false_alarms, st.silent_zeros, st.missing
            )?;
        }
        // Bracket: truth within [lag, exposure].
        writeln!(md, "\n### rpo-exporter: truth inside [lag, exposure] (50 ms tolerance)\n\n| Engine | Scenario | Truth at | Samples with both | Inside | Share |\n|---|---|---|---|---|---|")?;
        for engine in ["postgres", "mariadb"] {
            let mut scen: Vec<String> = Vec::new();
            for s in samples.iter().filter(|s| s.engine == engine) {
                if !scen.contains(&s.scenario) {
                    scen.push(s.scenario.clone());
                }
            }
            for sc in &scen {
                for (label, lt, et) in [
                    ("scrape", "rpo-exporter lag", "rpo-exporter exposure"),
                    (
                        "reading",
                        "rpo-exporter lag (vs truth at reading)",
                        "rpo-exporter exposure (vs truth at reading)",
                    ),
                    ("scrape, 100 ms interval", "rpo-exporter 100ms lag", "rpo-exporter 100ms exposure"),
                ] {
                    let get = |tool: &str| -> Vec<&Sample> {
                        samples
                            .iter()
                            .filter(|s| s.engine == engine && &s.scenario == sc && s.tool == tool)
                            .collect()
                    };
                    let (l, e) = (get(lt), get(et));
                    let (mut both, mut inside) = (0, 0);
                    for (x, y) in l.iter().zip(e.iter()) {
                        if let (Some(lv), Some(ev)) = (x.value, y.value) {
                            both += 1;
                            if x.truth >= lv - 0.05 && x.truth <= ev + 0.05 {
                                inside += 1;
                            }
                        }
                    }
                    if both == 0 && label.contains("100 ms") {
                        continue;
                    }
                    let share = if both > 0 {
                        format!("{:.1}%", 100.0 * inside as f64 / both as f64)
                    } else {
                        "–".into()
                    };
                    writeln!(md, "| {engine} | {sc} | {label} | {both} | {inside} | {share} |")?;
                }
            }
        }
        writeln!(md, "\n## Database cost per heartbeat (idle scenario, {idle_secs:.0} s)\n\n{cost_md}")?;
        std::fs::write(args.out.join("cost.csv"), &cost)?;
        write_md(&args.out, md)?;
    }

    if args.only.contains(&Part::Footprint) {
        // ---- footprint
        eprintln!("bench: footprint, {} scrapes each", args.scrapes);
        writeln!(md, "## Footprint ({} scrapes each, sequential)\n\nCPU counts everything the process did during the scrapes (rpo-exporter keeps heartbeating in the background). RSS read from /proc after the scrapes.\n", args.scrapes)?;
        writeln!(md, "| Exporter | RSS after (MiB) | CPU s per 1,000 scrapes | Scrape p50 (ms) | Scrape p99 (ms) | Series |\n|---|---|---|---|---|---|")?;
        let mut fcsv = String::from("exporter,rss_bytes,cpu_s_per_1000,p50_ms,p99_ms,series\n");
        for p in [&rpo_pg, &rpo_fast, &rpo_my, &pg_exp, &my_exp] {
            let (_, c0) = proc_usage(p.pid());
            let mut lat = Vec::new();
            let mut series = 0;
            let t = Instant::now();
            for _ in 0..args.scrapes {
                if let Some((text, d)) = scrape(client, &p.url).await {
                    lat.push(d.as_secs_f64() * 1000.0);
                    series = series_count(&text);
                }
            }
            let wall = t.elapsed().as_secs_f64();
            let (rss, c1) = proc_usage(p.pid());
            let cpu = (c1 - c0) * 1000.0 / args.scrapes as f64;
            let (p50, p99) = (pct(&mut lat.clone(), 0.5), pct(&mut lat, 0.99));
            writeln!(
                md,
                "| {} | {:.1} | {cpu:.2} | {p50:.2} | {p99:.2} | {series} |",
                p.name,
                rss / 1048576.0
            )?;
            let _ = writeln!(fcsv, "{},{rss},{cpu:.3},{p50:.3},{p99:.3},{series}", p.name);
            eprintln!("bench: {} done in {wall:.1} s", p.name);
        }
        std::fs::write(args.out.join("footprint.csv"), fcsv)?;
        write_md(&args.out, md)?;
    }
    drop(pt_monitor);
    drop((rpo_pg, rpo_fast, rpo_my, pg_exp, my_exp, pt_update));
    let _ = tokio::join!(pga.lab.shutdown(), pgb.lab.shutdown(), mya.lab.shutdown(), myb.lab.shutdown());

    Ok(())
}

/// pt-heartbeat's latest --monitor line ("0.00s [ ... ]"), if written in the last 3 s.
fn pt_reading(file: &Path) -> Option<f64> {
    let age = std::fs::metadata(file).ok()?.modified().ok()?.elapsed().ok()?;
    if age > Duration::from_secs(3) {
        return None;
    }
    let text = std::fs::read_to_string(file).ok()?;
    text.split_whitespace().next()?.trim_end_matches('s').parse().ok()
}

async fn lsn(side: &PgSide) -> Option<f64> {
    let n = side.lab.node("p");
    n.query_one_string("SELECT (pg_current_wal_lsn() - '0/0')::bigint")
        .await
        .ok()
        .flatten()
        .and_then(|s| s.parse::<f64>().ok())
}

async fn binlog(lab: &MariaLab) -> Option<(String, f64)> {
    let rows = lab.node("a").query_rows("SHOW MASTER STATUS").await.ok()?;
    let row = rows.into_iter().next()?;
    let file = row.iter().find(|(k, _)| k == "File")?.1.clone()?;
    let pos: f64 = row.iter().find(|(k, _)| k == "Position")?.1.clone()?.parse().ok()?;
    Some((file, pos))
}

fn write_md(out: &Path, md: &str) -> Result<()> {
    std::fs::write(out.join("results.md"), md)?;
    Ok(())
}

fn tempfile_dir() -> Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("rpo-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}

fn pg_node_yaml(name: &str, region: &str, port: u16, pw: &Path) -> String {
    format!(
        "      - name: {name}\n        region: {region}\n        engine: postgres\n        dsn: \"host=127.0.0.1 port={port} user={ROLE} dbname=postgres\"\n        password_file: {}\n",
        pw.display()
    )
}

fn my_node_yaml(name: &str, region: &str, dsn: &str, pw: &Path) -> String {
    format!("      - name: {name}\n        region: {region}\n        engine: mysql\n        dsn: \"{dsn}\"\n        password_file: {}\n", pw.display())
}

/// rpo-exporter watching N clusters (tables rpo.hb_NNN) on one PostgreSQL pair. Each step's
/// exporter log goes to `out/scale-N.log`, the servers' logs to `out/scale-postgres-NODE.log`.
async fn scale(
    bin: &Path,
    work: &Path,
    out: &Path,
    client: &reqwest::Client,
    counts: &[usize],
    secs: u64,
) -> Result<(String, String)> {
    let lab = PgLab::start(PgLabSpec::new().primary("p").replica("r1", "p")).await?;
    let result = scale_steps(&lab, bin, work, out, client, counts, secs).await;
    for node in lab.nodes() {
        let dest = out.join(format!("scale-postgres-{}.log", node.name()));
        if let Err(e) = std::fs::copy(node.log_file(), &dest) {
            eprintln!("bench: warning: saving {}: {e}", dest.display());
        }
    }
    lab.shutdown().await;
    result
}

/// Sizes the lab for the largest step, then runs every step on it.
async fn scale_steps(
    lab: &PgLab,
    bin: &Path,
    work: &Path,
    out: &Path,
    client: &reqwest::Client,
    counts: &[usize],
    secs: u64,
) -> Result<(String, String)> {
    let max = *counts.iter().max().unwrap();
    let conns = 2 * max + 60;
    for n in ["r1", "p"] {
        let node = lab.node(n);
        node.execute(&format!("ALTER SYSTEM SET max_connections = {conns}")).await?;
        node.stop()?;
        node.start()?;
    }
    lab.node("r1").wait_replicating().await?;
    let one = schema_sql(bin, &["postgres", "--table", "rpo.hb_000"])?;
    let sql: String = (0..max).map(|i| one.replace("rpo.hb_000", &format!("rpo.hb_{i:03}"))).collect();
    lab.create_role(ROLE, PASSWORD, &sql).await?;
    let pw = work.join("scale-password");
    std::fs::write(&pw, format!("{PASSWORD}\n"))?;
    let (pp, rp) = (lab.node("p").port(), lab.node("r1").port());
    let mut md = format!("## Scale: rpo-exporter watching N clusters at 1 s (one PostgreSQL pair, table rpo.hb_NNN per cluster, {secs} s per step)\n\nCPU share = CPU seconds / wall seconds over the step (1.0 = one core). Jitter = |interval between consecutive written heartbeat timestamps − 1 s| (from `rpo_heartbeat_written_timestamp_seconds` and `rpo_heartbeat_sequence`, scraped every 250 ms). Scrape latency over the step's scrapes.\n\n| Clusters | Series | CPU share | RSS (MiB) | RSS per cluster (KiB) | Jitter p99 (ms) | Scrape p50 (ms) | Scrape p99 (ms) | Pairs reporting |\n|---|---|---|---|---|---|---|---|---|\n");
    let mut csv =
        String::from("clusters,series,cpu_share,rss_bytes,jitter_p99_ms,scrape_p50_ms,scrape_p99_ms,pairs\n");
    for &n in counts {
        let mut cfg = String::from("clusters:\n");
        for i in 0..n {
            let _ = write!(
                cfg,
                "  - name: c{i:03}\n    rpo: 30s\n    rto: 5m\n    heartbeat: {{ interval: 1s, table: rpo.hb_{i:03}, create_table: false }}\n    nodes:\n{}{}",
                pg_node_yaml(&format!("p{i:03}"), "us-east-1", pp, &pw),
                pg_node_yaml(&format!("r{i:03}"), "eu-west-1", rp, &pw)
            );
        }
        let p = rpo_exporter(bin, work, &format!("rpo-exporter-scale-{n}"), &cfg)?;
        let step = scale_step(&p, client, n, secs).await;
        if let Err(e) = p.save_log(&out.join(format!("scale-{n}.log"))) {
            eprintln!("bench: warning: {e:#}");
        }
        drop(p);
        let ScaleStep { series, share, rss, j99, p50, p99, pairs_min, pairs } = step?;
        let _ = writeln!(
            md,
            "| {n} | {series} | {share:.3} | {:.1} | {:.0} | {j99:.1} | {p50:.2} | {p99:.2} | {pairs_min}–{pairs} of {n} |",
            rss / 1048576.0,
            rss / 1024.0 / n as f64
        );
        let _ = writeln!(csv, "{n},{series},{share:.4},{rss},{j99:.2},{p50:.3},{p99:.3},{pairs_min}");
        eprintln!("bench: scale {n} done");
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    md.push('\n');
    Ok((md, csv))
}

/// What one scale step measured.
struct ScaleStep {
    series: usize,
    /// CPU seconds per wall second.
    share: f64,
    rss: f64,
    /// Heartbeat jitter p99 (ms).
    j99: f64,
    /// Scrape latency (ms).
    p50: f64,
    p99: f64,
    /// Fewest pairs reporting lag in a scrape of the step, and the most before it.
    pairs_min: usize,
    pairs: usize,
}

/// Waits for the exporter `p` (watching `n` clusters) to report, then measures it `secs` s.
async fn scale_step(p: &Proc, client: &reqwest::Client, n: usize, secs: u64) -> Result<ScaleStep> {
    p.wait_ready(client).await?;
    let mut pairs = 0;
    for _ in 0..120 {
        if let Some((t, _)) = scrape(client, &p.url).await {
            pairs = t.lines().filter(|l| l.starts_with("rpo_replication_lag_seconds{")).count();
            if pairs >= n {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, c0) = proc_usage(p.pid());
    let t0 = Instant::now();
    let mut lat = Vec::new();
    let mut last: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    let mut jit = Vec::new();
    let mut series = 0;
    let mut pairs_min = usize::MAX;
    while t0.elapsed() < Duration::from_secs(secs) {
        let tick = Instant::now();
        if let Some((text, d)) = scrape(client, &p.url).await {
            lat.push(d.as_secs_f64() * 1000.0);
            series = series_count(&text);
            pairs_min =
                pairs_min.min(text.lines().filter(|l| l.starts_with("rpo_replication_lag_seconds{")).count());
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
            for (k, s) in seq {
                let Some(&w) = ts.get(&k) else { continue };
                if let Some(&(ps, pw)) = last.get(&k) {
                    if s == ps + 1.0 {
                        jit.push(((w - pw) - 1.0).abs() * 1000.0);
                    }
                }
                last.insert(k, (s, w));
            }
        }
        tokio::time::sleep(Duration::from_millis(250).saturating_sub(tick.elapsed())).await;
    }
    let wall = t0.elapsed().as_secs_f64();
    let (rss, c1) = proc_usage(p.pid());
    let (p50, p99, j99) = (pct(&mut lat.clone(), 0.5), pct(&mut lat, 0.99), pct(&mut jit, 0.99));
    let pairs_min = if pairs_min == usize::MAX { 0 } else { pairs_min };
    Ok(ScaleStep { series, share: (c1 - c0) / wall, rss, j99, p50, p99, pairs_min, pairs })
}
