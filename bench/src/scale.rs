//! The scale part: one rpo-exporter watching N clusters (tables rpo.hb_NNN) on one
//! PostgreSQL pair, or on several pairs with the clusters dealt round robin
//! (`--scale-pairs`), for each N of `--scale`.
//!
//! Owns its own labs (sized for the largest step), the generated configs, and what a step
//! measures: the exporter's CPU share and RSS, the servers' CPU share (every process of
//! every pair, from /proc), the host's, heartbeat jitter, scrape latency and size, pairs
//! reporting. The table and CSV are rendered by [`crate::report`].

use crate::report::{self, ScaleStep};
use crate::tools::{
    cluster_yaml, host_cpu, lag_pairs, metric_sum, pg_node_yaml, proc_usage, rpo_exporter, schema_sql,
    scrape, series_count, tree_cpu, written_heartbeats, Proc, TimedScraper,
};
use crate::{PASSWORD, ROLE};
use anyhow::Result;
use rpo_lab::{PgLab, PgLabSpec};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// Settings of the scale labs' servers beyond the lab's own (see [`Scale::size`]).
const SHARED_BUFFERS: &str = "128MB";

/// One scale part: rpo-exporter from `bin` (configs and logs in `work`), `secs` s per
/// count of clusters in `counts`, on `pairs` PostgreSQL pairs.
pub struct Scale<'a> {
    pub bin: &'a Path,
    pub work: &'a Path,
    /// Where the logs are kept.
    pub out: &'a Path,
    pub counts: &'a [usize],
    pub secs: u64,
    pub pairs: usize,
    /// More settings of every cluster's `heartbeat` (flow YAML, e.g. `timeout: 900ms`).
    pub heartbeat: &'a str,
}

impl Scale<'_> {
    /// rpo-exporter watching N clusters (tables rpo.hb_NNN) on the pairs: the table and
    /// the CSV. Each step's exporter log goes to `out/scale-N.log`, the servers' logs to
    /// `out/scale-postgres-NODE.log` (`scale-postgres-K-NODE.log` with several pairs).
    pub async fn run(&self) -> Result<(String, String)> {
        let max = self.counts.iter().copied().max().unwrap_or(0);
        let pairs = self.pairs.clamp(1, max.max(1));
        let mut labs = Vec::new();
        for _ in 0..pairs {
            match PgLab::start(PgLabSpec::new().primary("p").replica("r1", "p")).await {
                Ok(lab) => labs.push(lab),
                Err(e) => {
                    for lab in labs {
                        lab.shutdown().await;
                    }
                    return Err(e);
                }
            }
        }
        let result = self.steps(&labs, max).await;
        for (k, lab) in labs.iter().enumerate() {
            for node in lab.nodes() {
                let name = if pairs == 1 { node.name().to_owned() } else { format!("{k}-{}", node.name()) };
                let dest = self.out.join(format!("scale-postgres-{name}.log"));
                if let Err(e) = std::fs::copy(node.log_file(), &dest) {
                    eprintln!("bench: warning: saving {}: {e}", dest.display());
                }
            }
        }
        for lab in labs {
            lab.shutdown().await;
        }
        result
    }

    /// Sizes every pair for `per` clusters: `max_connections` for one session per
    /// cluster on each server with room to spare, and larger shared buffers; a restart of
    /// both servers (the replica first: a hot standby needs at least the primary's
    /// `max_connections`).
    async fn size(lab: &PgLab, per: usize) -> Result<()> {
        let conns = 2 * per + 60;
        for n in ["r1", "p"] {
            let node = lab.node(n);
            node.execute(&format!("ALTER SYSTEM SET max_connections = {conns}")).await?;
            node.execute(&format!("ALTER SYSTEM SET shared_buffers = '{SHARED_BUFFERS}'")).await?;
            node.stop()?;
            node.start()?;
        }
        lab.node("r1").wait_replicating().await
    }

    /// Sizes the labs for the largest step (`max` clusters), then runs every step on them.
    async fn steps(&self, labs: &[PgLab], max: usize) -> Result<(String, String)> {
        let Scale { bin, work, out, counts, secs, .. } = *self;
        let heartbeat = match self.heartbeat.trim() {
            "" => String::new(),
            extra => format!(", {extra}"),
        };
        let pairs = labs.len();
        // A scrape of 1,000 clusters is some 8 MB: give it time on a busy host.
        let client = reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?;
        let timed = TimedScraper::new(Duration::from_secs(10))?;
        let one = schema_sql(bin, &["postgres", "--table", "rpo.hb_000"])?;
        for (k, lab) in labs.iter().enumerate() {
            Self::size(lab, max.div_ceil(pairs)).await?;
            let sql: String = (k..max)
                .step_by(pairs)
                .map(|i| one.replace("rpo.hb_000", &format!("rpo.hb_{i:03}")))
                .collect();
            lab.create_role(ROLE, PASSWORD, &sql).await?;
        }
        let pw = work.join("scale-password");
        std::fs::write(&pw, format!("{PASSWORD}\n"))?;
        let ports: Vec<(u16, u16)> = labs.iter().map(|l| (l.node("p").port(), l.node("r1").port())).collect();
        let cores = std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1);
        let servers_cpu = || -> f64 {
            labs.iter()
                .flat_map(|l| l.nodes())
                .filter_map(|n| Some(tree_cpu(n.pid()?, &n.child_pids())))
                .sum()
        };
        let (mut md, mut csv) = report::scale_head(secs, pairs, cores);
        for &n in counts {
            let mut cfg = String::from("clusters:\n");
            for i in 0..n {
                let (pp, rp) = ports[i % pairs];
                cfg.push_str(&cluster_yaml(
                    &format!("c{i:03}"),
                    &format!("interval: 1s, table: rpo.hb_{i:03}, create_table: false{heartbeat}"),
                    &[
                        pg_node_yaml(&format!("p{i:03}"), "us-east-1", pp, &pw),
                        pg_node_yaml(&format!("r{i:03}"), "eu-west-1", rp, &pw),
                    ],
                ));
            }
            let started = Instant::now();
            let p = rpo_exporter(bin, work, &format!("rpo-exporter-scale-{n}"), &cfg)?;
            let step = scale_step(&p, &client, &timed, n, secs, &servers_cpu, cores).await;
            if let Err(e) = p.save_log(&out.join(format!("scale-{n}.log"))) {
                eprintln!("bench: warning: {e:#}");
            }
            drop(p);
            let step = step?;
            report::scale_row(&mut md, &mut csv, n, &step, cores);
            eprintln!(
                "bench: scale {n} done in {:.0} s: exporter {:.3}, servers {:.3}, host {:.3} cores; {}–{} of {n} pairs",
                started.elapsed().as_secs_f64(),
                step.share,
                step.servers,
                step.host,
                step.pairs_min,
                step.pairs
            );
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        md.push('\n');
        Ok((md, csv))
    }
}

/// Waits for the exporter `p` (watching `n` clusters) to report, then measures it `secs`
/// s; `servers_cpu` gives the servers' CPU seconds so far. The latency is timed by `scraper`.
async fn scale_step(
    p: &Proc,
    client: &reqwest::Client,
    scraper: &TimedScraper,
    n: usize,
    secs: u64,
    servers_cpu: &dyn Fn() -> f64,
    cores: usize,
) -> Result<ScaleStep> {
    p.wait_ready(client).await?;
    let mut pairs = 0;
    // Up to a minute, 90 ms per cluster beyond that: 2N sessions open at most 8 at a time.
    let deadline = Instant::now() + Duration::from_millis(60_000.max(90 * n as u64));
    while Instant::now() < deadline {
        if let Some((t, _)) = scrape(client, &p.url).await {
            pairs = lag_pairs(&t);
            if pairs >= n {
                break;
            }
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    let (_, c0) = proc_usage(p.pid());
    let (_, b0) = proc_usage(std::process::id());
    // Scanning 2,000 server processes takes a while on a busy host: each CPU figure gets
    // the wall time between the middles of its two readings.
    let (s0, ts0) = timed(servers_cpu);
    let h0 = host_cpu();
    let t0 = Instant::now();
    let mut lat = Vec::new();
    let mut jitter = Jitter::default();
    let (mut series, mut bytes) = (0, 0);
    let mut pairs_min = usize::MAX;
    // Sessions the exporter opened, at the first and the last scrape of the step.
    let mut opened: Option<(f64, f64)> = None;
    while t0.elapsed() < Duration::from_secs(secs) {
        let tick = Instant::now();
        if let Some((text, d)) = scraper.scrape(&p.url).await {
            lat.push(d.as_secs_f64() * 1000.0);
            series = series_count(&text);
            bytes = text.len();
            pairs_min = pairs_min.min(lag_pairs(&text));
            let o = metric_sum(&text, "rpo_node_sessions_opened_total");
            opened = Some((opened.map_or(o, |(first, _)| first), o));
            jitter.observe(&text);
        }
        tokio::time::sleep(Duration::from_millis(250).saturating_sub(tick.elapsed())).await;
    }
    let wall = t0.elapsed().as_secs_f64();
    let (rss, c1) = proc_usage(p.pid());
    let (_, b1) = proc_usage(std::process::id());
    let h1 = host_cpu();
    let (s1, ts1) = timed(servers_cpu);
    let (p50, p99, j99) =
        (report::pct(&mut lat.clone(), 0.5), report::pct(&mut lat, 0.99), report::pct(&mut jitter.ms, 0.99));
    let pairs_min = if pairs_min == usize::MAX { 0 } else { pairs_min };
    Ok(ScaleStep {
        series,
        bytes,
        share: (c1 - c0) / wall,
        bench: (b1 - b0) / wall,
        servers: (s1 - s0) / ts1.duration_since(ts0).as_secs_f64(),
        // Busy ticks over all ticks, times the cores: no wall clock involved.
        host: (h1.0 - h0.0) / (h1.1 - h0.1) * cores as f64,
        rss,
        j99,
        p50,
        p99,
        pairs_min,
        pairs,
        reconnects: opened.map_or(f64::NAN, |(a, b)| b - a),
    })
}

/// `f()` and the instant halfway through computing it.
fn timed(f: &dyn Fn() -> f64) -> (f64, Instant) {
    let t = Instant::now();
    let v = f();
    (v, t + t.elapsed() / 2)
}

/// Heartbeat jitter: how far the interval between consecutive heartbeats of a writer, as
/// rpo-exporter reports them, is from 1 s.
#[derive(Default)]
struct Jitter {
    /// Each writer's last (sequence, written timestamp), by label text.
    last: BTreeMap<String, (f64, f64)>,
    /// |interval − 1 s| in ms, for every two consecutive heartbeats seen.
    ms: Vec<f64>,
}

impl Jitter {
    fn observe(&mut self, text: &str) {
        for (k, (s, w)) in written_heartbeats(text) {
            if let Some(&(ps, pw)) = self.last.get(&k) {
                if s == ps + 1.0 {
                    self.ms.push(((w - pw) - 1.0).abs() * 1000.0);
                }
            }
            self.last.insert(k, (s, w));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jitter_counts_consecutive_heartbeats_only() {
        let scrape = |seq: u32, ts: f64| {
            format!("rpo_heartbeat_sequence{{node=\"p\"}} {seq}\nrpo_heartbeat_written_timestamp_seconds{{node=\"p\"}} {ts}\n")
        };
        let mut j = Jitter::default();
        for (seq, ts) in [(1, 100.0), (1, 100.0), (2, 101.25), (4, 103.0), (5, 103.9)] {
            j.observe(&scrape(seq, ts));
        }
        let ms: Vec<i64> = j.ms.iter().map(|m| m.round() as i64).collect();
        assert_eq!(ms, [250, 100]);
    }
}
