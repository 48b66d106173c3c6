//! What the comparison does to the labs over time.
//!
//! Four labs, so that no tool's writes hide another tool's blind spot: PostgreSQL A
//! (rpo-exporter), PostgreSQL B (postgres_exporter), MariaDB A (rpo-exporter), MariaDB B
//! (mysqld_exporter + pt-heartbeat). Every replica reads its upstream through a small TCP
//! proxy of ours. Owns the labs ([`Labs`]), the scenarios in their order (idle primary,
//! replay paused, replication black-holed, replica killed), the faults and their repair,
//! the sampling clock (one round of readings per second) and the database counters the
//! cost is measured by; and the footprint part's scrapes.

use crate::report::{self, Cost, Footprint, Sample};
use crate::tools::{proc_usage, readings, scrape, series_count, Tools, Truths};
use crate::truth::{start_truth, Db, Truth};
use crate::{PASSWORD, ROLE};
use anyhow::{bail, Result};
use rpo_lab::{MariaLab, MariaLabSpec, PgLab, PgLabSpec, Proxy};
use std::path::Path;
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

pub struct PgSide {
    pub lab: PgLab,
    proxy: Proxy,
    truth: Arc<Truth>,
}

/// A PostgreSQL primary `p` and replica `r1` (through a proxy), its truth table, and the
/// exporter's role made with `role_sql` if given. With `commit_ts` the primary must run
/// with `track_commit_timestamp = on` (the lab's default).
async fn pg_side(role_sql: Option<&str>, commit_ts: bool) -> Result<PgSide> {
    let lab = PgLab::start(PgLabSpec::new().primary("p").replica("r1", "p")).await?;
    let p = lab.node("p");
    // The lab's servers run with it (rpo_lab's shared settings).
    if commit_ts && p.query_one_string("SHOW track_commit_timestamp").await?.as_deref() != Some("on") {
        bail!("track_commit_timestamp is off on the lab's primary");
    }
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
    // The lab watched by rpo-exporter: its heartbeats are commits the truth counts.
    let heartbeats: &[&str] = if role_sql.is_some() { &HEARTBEAT_TABLES } else { &[] };
    let truth = start_truth(
        Db::Pg(p.port()),
        Db::Pg(r1.port()),
        "INSERT INTO bench_truth (id) VALUES ({id})",
        heartbeats,
    );
    Ok(PgSide { lab, proxy, truth })
}

/// The heartbeat tables of the two rpo-exporters of a lab (1 s and 100 ms; see
/// `tools::start`). pt-heartbeat's table on lab B is not counted: the truth there is
/// the writer's rows alone.
const HEARTBEAT_TABLES: [&str; 2] = ["rpo.heartbeat", "rpo.hb_fast"];

pub struct MariaSide {
    pub lab: MariaLab,
    proxy: Proxy,
    truth: Arc<Truth>,
}

/// A MariaDB primary `a` and replica `b` (through a proxy), its truth table, the
/// database pt-heartbeat writes to, and the exporter's user made with `user_sql` if given.
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
    let heartbeats: &[&str] = if user_sql.is_some() { &HEARTBEAT_TABLES } else { &[] };
    let truth = start_truth(
        Db::Maria(a.root_opts()),
        Db::Maria(b.root_opts()),
        "INSERT INTO bench.truth (id) VALUES ({id})",
        heartbeats,
    );
    Ok(MariaSide { lab, proxy, truth })
}

/// The four labs of the comparison.
pub struct Labs {
    /// PostgreSQL watched by rpo-exporter (1 s and 100 ms); its primary tracks commit
    /// timestamps.
    pub pga: PgSide,
    /// PostgreSQL watched by postgres_exporter.
    pub pgb: PgSide,
    /// MariaDB watched by rpo-exporter (1 s and 100 ms).
    pub mya: MariaSide,
    /// MariaDB watched by mysqld_exporter and pt-heartbeat.
    pub myb: MariaSide,
}

impl Labs {
    /// Starts the four labs at once; the A sides get rpo-exporter's schema from `bin`.
    pub async fn start(bin: &Path) -> Result<Labs> {
        eprintln!("bench: starting labs");
        let pg_schema = crate::tools::schema_sql(bin, &["postgres"])?;
        let my_schema =
            crate::tools::schema_sql(bin, &["mysql", "--server", "mariadb-10.11", "--host", "127.0.0.1"])?;
        let (pga, pgb, mya, myb) = tokio::join!(
            pg_side(Some(&pg_schema), true),
            pg_side(None, false),
            maria_side(Some(&my_schema)),
            maria_side(None)
        );
        Ok(Labs { pga: pga?, pgb: pgb?, mya: mya?, myb: myb? })
    }

    pub async fn shutdown(self) {
        let _ = tokio::join!(
            self.pga.lab.shutdown(),
            self.pgb.lab.shutdown(),
            self.mya.lab.shutdown(),
            self.myb.lab.shutdown()
        );
    }

    fn truths(&self) -> Truths<'_> {
        Truths { pga: &self.pga.truth, pgb: &self.pgb.truth, mya: &self.mya.truth, myb: &self.myb.truth }
    }

    /// Turns the truth writers of every lab on or off.
    fn set_writing(&self, on: bool) {
        for t in [&self.pga.truth, &self.pgb.truth, &self.mya.truth, &self.myb.truth] {
            t.writing.store(on, Ordering::SeqCst);
        }
    }

    fn set_blackhole(&self, on: bool) {
        for p in [&self.pga.proxy, &self.pgb.proxy, &self.mya.proxy, &self.myb.proxy] {
            p.set_blackhole(on);
        }
    }

    fn pg(&self) -> [&PgSide; 2] {
        [&self.pga, &self.pgb]
    }

    fn maria(&self) -> [&MariaSide; 2] {
        [&self.mya, &self.myb]
    }

    async fn pause_replay(&self) -> Result<()> {
        for s in self.pg() {
            s.lab.node("r1").execute("SELECT pg_wal_replay_pause()").await?;
        }
        for s in self.maria() {
            s.lab.node("b").exec("STOP SLAVE SQL_THREAD").await?;
        }
        Ok(())
    }

    /// Resumes replay (PostgreSQL up to 5 attempts); failures are warnings.
    async fn resume_replay(&self) {
        for s in self.pg() {
            let r1 = s.lab.node("r1");
            for attempt in 0..5 {
                match r1.execute("SELECT pg_wal_replay_resume()").await {
                    Ok(()) => break,
                    Err(e) => eprintln!("bench: warning: resume attempt {attempt}: {e:#}"),
                }
                tokio::time::sleep(Duration::from_secs(1)).await;
            }
        }
        for s in self.maria() {
            if let Err(e) = s.lab.node("b").exec("START SLAVE SQL_THREAD").await {
                eprintln!("bench: warning: START SLAVE SQL_THREAD: {e:#}");
            }
        }
    }

    fn kill_replicas(&self) -> Result<()> {
        for s in self.pg() {
            s.lab.node("r1").kill()?;
        }
        for s in self.maria() {
            s.lab.node("b").kill()?;
        }
        Ok(())
    }

    /// Starts the killed replicas again; failures are warnings.
    fn restart_replicas(&self) {
        for s in self.pg() {
            if let Err(e) = s.lab.node("r1").start() {
                eprintln!("bench: warning: restart r1: {e:#}");
            }
        }
        for s in self.maria() {
            if let Err(e) = s.lab.node("b").start() {
                eprintln!("bench: warning: restart b: {e:#}");
            }
        }
    }

    /// Counters that rpo-exporter's and pt-heartbeat's heartbeats move: heartbeats
    /// written (per rpo-exporter writer), PostgreSQL A's WAL position, both MariaDB
    /// primaries' binlog positions.
    async fn counters(&self, tools: &Tools, client: &reqwest::Client) -> Counters {
        let [fast, pg, my, my_fast] = tools.heartbeats_written(client).await;
        Counters {
            fast,
            pg,
            my,
            my_fast,
            wal: lsn(&self.pga.lab).await,
            binlog_a: binlog(&self.mya.lab).await,
            binlog_b: binlog(&self.myb.lab).await,
        }
    }
}

async fn lsn(lab: &PgLab) -> Option<f64> {
    let n = lab.node("p");
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

/// See [`Labs::counters`].
struct Counters {
    fast: Option<f64>,
    pg: Option<f64>,
    my: Option<f64>,
    my_fast: Option<f64>,
    wal: Option<f64>,
    binlog_a: Option<(String, f64)>,
    binlog_b: Option<(String, f64)>,
}

/// What heartbeats cost the databases between `c0` and `c1`, `idle_secs` apart.
fn cost_rows(c0: &Counters, c1: &Counters, idle_secs: f64) -> [Cost; 3] {
    let diff = |a: Option<f64>, b: Option<f64>| Some(b? - a?);
    // A binlog position moves only within one file.
    let bdiff = |a: &Option<(String, f64)>, b: &Option<(String, f64)>| match (a, b) {
        (Some((fa, pa)), Some((fb, pb))) if fa == fb => Some(pb - pa),
        _ => None,
    };
    let sum = |x: Option<f64>, y: Option<f64>| Some(x? + y?);
    let pg_beats = sum(diff(c0.pg, c1.pg), diff(c0.fast, c1.fast));
    let my_beats = sum(diff(c0.my, c1.my), diff(c0.my_fast, c1.my_fast));
    [
        Cost {
            tool: "rpo-exporter (1 s + 100 ms writers)",
            engine: "PostgreSQL WAL",
            beats: pg_beats,
            bytes: diff(c0.wal, c1.wal),
            note: "WAL LSN diff over the idle scenario",
        },
        Cost {
            tool: "rpo-exporter (1 s + 100 ms writers)",
            engine: "MariaDB binlog",
            beats: my_beats,
            bytes: bdiff(&c0.binlog_a, &c1.binlog_a),
            note: "binlog position diff over the idle scenario",
        },
        Cost {
            tool: "pt-heartbeat --update",
            engine: "MariaDB binlog",
            beats: Some(idle_secs.floor()),
            bytes: bdiff(&c0.binlog_b, &c1.binlog_b),
            note: "heartbeats = idle seconds at --interval 1",
        },
    ]
}

/// What the scenarios produced.
pub struct Outcome {
    pub samples: Vec<Sample>,
    /// Database cost of the heartbeats over the idle scenario.
    pub cost: [Cost; 3],
    pub idle_secs: f64,
}

/// The comparison's scenarios over time.
pub struct Scenarios<'a> {
    pub labs: &'a Labs,
    pub tools: &'a Tools,
    pub client: &'a reqwest::Client,
    /// Seconds of the idle-primary scenario and of each fault scenario.
    pub idle_secs: u64,
    pub fault_secs: u64,
}

impl Scenarios<'_> {
    /// Idle primary (truth writers off, heartbeats' cost measured), then with the writers
    /// on: replay paused, replication black-holed, replica killed.
    pub async fn run(&self) -> Result<Outcome> {
        let t0 = Instant::now();
        let labs = self.labs;
        eprintln!("bench: idle primary {} s", self.idle_secs);
        let c0 = labs.counters(self.tools, self.client).await;
        let idle_start = Instant::now();
        let mut samples = self.sample(report::IDLE, self.idle_secs, t0).await;
        let idle_secs = idle_start.elapsed().as_secs_f64();
        let c1 = labs.counters(self.tools, self.client).await;
        let cost = cost_rows(&c0, &c1, idle_secs);

        labs.set_writing(true);
        tokio::time::sleep(Duration::from_secs(3)).await;

        eprintln!("bench: replay paused / SQL thread stopped {} s", self.fault_secs);
        labs.pause_replay().await?;
        samples.extend(self.sample("replay paused / SQL thread stopped", self.fault_secs, t0).await);
        labs.resume_replay().await;
        tokio::time::sleep(Duration::from_secs(8)).await;

        eprintln!("bench: replication disconnected (black hole) {} s", self.fault_secs);
        labs.set_blackhole(true);
        samples.extend(self.sample("replication disconnected (proxy black hole)", self.fault_secs, t0).await);
        labs.set_blackhole(false);
        tokio::time::sleep(Duration::from_secs(8)).await;

        eprintln!("bench: replica killed {} s", self.fault_secs);
        labs.kill_replicas()?;
        samples.extend(self.sample("replica killed", self.fault_secs, t0).await);
        labs.restart_replicas();
        labs.set_writing(false);
        Ok(Outcome { samples, cost, idle_secs })
    }

    /// Every tool's readings every [`SAMPLE_PERIOD`] for `secs` s; `t` counts from `t0`.
    async fn sample(&self, scenario: &str, secs: u64, t0: Instant) -> Vec<Sample> {
        let mut out = Vec::new();
        let mut tick = tokio::time::interval(SAMPLE_PERIOD);
        let end = Instant::now() + Duration::from_secs(secs);
        while Instant::now() < end {
            tick.tick().await;
            let now = Instant::now();
            let t = now.duration_since(t0).as_secs_f64();
            let round = self.tools.scrape_round(self.client).await;
            out.extend(readings(&round, &self.labs.truths(), now).into_iter().map(|r| Sample {
                engine: r.engine,
                scenario: scenario.to_owned(),
                tool: r.tool,
                t,
                truth: r.truth,
                value: r.value,
                source: r.source,
            }));
        }
        out
    }
}

/// How often the scenarios sample every tool: no multiple of the 100 ms at which the
/// truth writers commit and the exporters read positions, nor of the 1 s heartbeat,
/// so a scenario's samples sweep their phases (30 ms further each sample: ten phases
/// of 100 ms in ten samples) instead of drawing one phase for the whole scenario, as
/// once-a-second samples did (the error then hardly moved within a scenario and
/// differed between runs by the phase).
pub const SAMPLE_PERIOD: Duration = Duration::from_millis(1030);

/// Scrapes each exporter `scrapes` times in turn: its RSS after, its CPU and its scrape
/// latency over them.
pub async fn footprint(tools: &Tools, client: &reqwest::Client, scrapes: usize) -> Vec<Footprint> {
    let mut rows = Vec::new();
    for p in tools.exporters() {
        let (_, c0) = proc_usage(p.pid());
        let mut lat = Vec::new();
        let mut series = 0;
        let t = Instant::now();
        for _ in 0..scrapes {
            if let Some((text, d)) = scrape(client, &p.url).await {
                lat.push(d.as_secs_f64() * 1000.0);
                series = series_count(&text);
            }
        }
        let wall = t.elapsed().as_secs_f64();
        let (rss, c1) = proc_usage(p.pid());
        let cpu = (c1 - c0) * 1000.0 / scrapes as f64;
        let (p50, p99) = (report::pct(&mut lat.clone(), 0.5), report::pct(&mut lat, 0.99));
        rows.push(Footprint { name: p.name.clone(), rss, cpu, p50, p99, series });
        eprintln!("bench: {} done in {wall:.1} s", p.name);
    }
    rows
}
