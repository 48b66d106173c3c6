//! The scale part: one rpo-exporter watching N clusters (tables rpo.hb_NNN) on one
//! PostgreSQL pair, for each N of `--scale`.
//!
//! Owns its own lab (sized for the largest step), the generated configs, and what a step
//! measures: CPU share, RSS, heartbeat jitter, scrape latency, pairs reporting. The table
//! and CSV are rendered by [`crate::report`].

use crate::report::{self, ScaleStep};
use crate::tools::{
    cluster_yaml, lag_pairs, pg_node_yaml, proc_usage, rpo_exporter, schema_sql, scrape, series_count,
    written_heartbeats, Proc,
};
use crate::{PASSWORD, ROLE};
use anyhow::Result;
use rpo_lab::{PgLab, PgLabSpec};
use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant};

/// One scale part: rpo-exporter from `bin` (configs and logs in `work`), `secs` s per
/// count of clusters in `counts`.
pub struct Scale<'a> {
    pub bin: &'a Path,
    pub work: &'a Path,
    /// Where the logs are kept.
    pub out: &'a Path,
    pub client: &'a reqwest::Client,
    pub counts: &'a [usize],
    pub secs: u64,
}

impl Scale<'_> {
    /// rpo-exporter watching N clusters (tables rpo.hb_NNN) on one PostgreSQL pair: the
    /// table and the CSV. Each step's exporter log goes to `out/scale-N.log`, the servers'
    /// logs to `out/scale-postgres-NODE.log`.
    pub async fn run(&self) -> Result<(String, String)> {
        let lab = PgLab::start(PgLabSpec::new().primary("p").replica("r1", "p")).await?;
        let result = self.steps(&lab).await;
        for node in lab.nodes() {
            let dest = self.out.join(format!("scale-postgres-{}.log", node.name()));
            if let Err(e) = std::fs::copy(node.log_file(), &dest) {
                eprintln!("bench: warning: saving {}: {e}", dest.display());
            }
        }
        lab.shutdown().await;
        result
    }

    /// Sizes the lab for the largest step, then runs every step on it.
    async fn steps(&self, lab: &PgLab) -> Result<(String, String)> {
        let Scale { bin, work, out, client, counts, secs } = *self;
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
        let (mut md, mut csv) = report::scale_head(secs);
        for &n in counts {
            let mut cfg = String::from("clusters:\n");
            for i in 0..n {
                cfg.push_str(&cluster_yaml(
                    &format!("c{i:03}"),
                    &format!("interval: 1s, table: rpo.hb_{i:03}, create_table: false"),
                    &[
                        pg_node_yaml(&format!("p{i:03}"), "us-east-1", pp, &pw),
                        pg_node_yaml(&format!("r{i:03}"), "eu-west-1", rp, &pw),
                    ],
                ));
            }
            let p = rpo_exporter(bin, work, &format!("rpo-exporter-scale-{n}"), &cfg)?;
            let step = scale_step(&p, client, n, secs).await;
            if let Err(e) = p.save_log(&out.join(format!("scale-{n}.log"))) {
                eprintln!("bench: warning: {e:#}");
            }
            drop(p);
            report::scale_row(&mut md, &mut csv, n, &step?);
            eprintln!("bench: scale {n} done");
            tokio::time::sleep(Duration::from_secs(1)).await;
        }
        md.push('\n');
        Ok((md, csv))
    }
}

/// Waits for the exporter `p` (watching `n` clusters) to report, then measures it `secs` s.
async fn scale_step(p: &Proc, client: &reqwest::Client, n: usize, secs: u64) -> Result<ScaleStep> {
    p.wait_ready(client).await?;
    let mut pairs = 0;
    for _ in 0..120 {
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
    let t0 = Instant::now();
    let mut lat = Vec::new();
    let mut jitter = Jitter::default();
    let mut series = 0;
    let mut pairs_min = usize::MAX;
    while t0.elapsed() < Duration::from_secs(secs) {
        let tick = Instant::now();
        if let Some((text, d)) = scrape(client, &p.url).await {
            lat.push(d.as_secs_f64() * 1000.0);
            series = series_count(&text);
            pairs_min = pairs_min.min(lag_pairs(&text));
            jitter.observe(&text);
        }
        tokio::time::sleep(Duration::from_millis(250).saturating_sub(tick.elapsed())).await;
    }
    let wall = t0.elapsed().as_secs_f64();
    let (rss, c1) = proc_usage(p.pid());
    let (p50, p99, j99) =
        (report::pct(&mut lat.clone(), 0.5), report::pct(&mut lat, 0.99), report::pct(&mut jitter.ms, 0.99));
    let pairs_min = if pairs_min == usize::MAX { 0 } else { pairs_min };
    Ok(ScaleStep { series, share: (c1 - c0) / wall, rss, j99, p50, p99, pairs_min, pairs })
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
