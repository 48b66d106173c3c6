//! The report: every table, markdown section and CSV file the bench writes.
//!
//! Owns [`Sample`] (one tool's reading beside the truth), the statistics over samples
//! (error, false alarms, silent zeros, truth inside [lag, exposure]) and the text of
//! `results.md`, `samples.csv`, `cost.csv`, `footprint.csv` and `scale.csv`. Pure: it
//! measures nothing and writes only files under `--out`.

use std::fmt::Write as _;
use std::path::Path;

/// One tool's reading at one second of one scenario, beside its lab's true lag.
#[derive(Clone)]
pub struct Sample {
    pub engine: &'static str,
    pub scenario: String,
    pub tool: &'static str,
    /// Seconds since the first scenario began.
    pub t: f64,
    pub truth: f64,
    /// None: the scrape failed or the series was absent.
    pub value: Option<f64>,
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

fn stats<'a>(samples: impl Iterator<Item = &'a Sample>) -> Stat {
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

/// The `p` quantile of `v` (nearest rank; sorts `v`), NaN when empty.
pub fn pct(v: &mut [f64], p: f64) -> f64 {
    if v.is_empty() {
        return f64::NAN;
    }
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let i = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    v[i]
}

/// Writes `results.md` (again: each part rewrites it, so a failed later part keeps the
/// earlier ones).
pub fn write_md(out: &Path, md: &str) -> std::io::Result<()> {
    std::fs::write(out.join("results.md"), md)
}

/// `samples.csv`: every sample, in the order taken.
pub fn samples_csv(samples: &[Sample]) -> String {
    let mut csv = String::from("engine,scenario,tool,t_s,truth_s,value_s\n");
    for s in samples {
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
    csv
}

/// The accuracy section: one row per (engine, scenario, tool), PostgreSQL first, then the
/// rpo-exporter bracket table.
pub fn accuracy_md(samples: &[Sample]) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "## Accuracy against ground truth\n\nError = |reported − true lag| per 1 s sample. False alarm: reported > 2 s while truth < 0.5 s. Silent zero: reported < 0.5 s while truth > 2 s. Missing: scrape failed or series absent (not counted in the errors). Rows \"vs truth at reading\" compare rpo-exporter's reading with the truth at the time it was measured (scrape time − `rpo_measurement_age_seconds`).\n");
    let _ = writeln!(md, "| Engine | Scenario | Tool | Samples | Mean abs error (s) | Max abs error (s) | False alarms | Silent zeros | Missing |\n|---|---|---|---|---|---|---|---|---|");
    let mut keys: Vec<(&str, &str, &str)> = Vec::new();
    for s in samples {
        let k = (s.engine, s.scenario.as_str(), s.tool);
        if !keys.contains(&k) {
            keys.push(k);
        }
    }
    // Stable: within an engine, in the order first seen.
    keys.sort_by(|a, b| a.0.cmp(b.0).reverse());
    for (engine, scenario, tool) in keys {
        let st = stats(of(samples, engine, scenario, tool));
        let got = st.n - st.missing;
        let (mean, max) = if got > 0 {
            (format!("{:.3}", st.err_sum / got as f64), format!("{:.3}", st.err_max))
        } else {
            ("–".into(), "–".into())
        };
        let _ = writeln!(
            md,
            "| {engine} | {scenario} | {tool} | {} | {mean} | {max} | {} | {} | {} |",
            st.n, st.false_alarms, st.silent_zeros, st.missing
        );
    }
    md.push_str(&bracket_md(samples));
    md
}

fn of<'a>(
    samples: &'a [Sample],
    engine: &'a str,
    scenario: &'a str,
    tool: &'a str,
) -> impl Iterator<Item = &'a Sample> {
    samples.iter().filter(move |s| s.engine == engine && s.scenario == scenario && s.tool == tool)
}

/// How often the truth lies inside rpo-exporter's [lag, exposure] (50 ms tolerance).
fn bracket_md(samples: &[Sample]) -> String {
    let mut md = String::from("\n### rpo-exporter: truth inside [lag, exposure] (50 ms tolerance)\n\n| Engine | Scenario | Truth at | Samples with both | Inside | Share |\n|---|---|---|---|---|---|\n");
    for engine in ["postgres", "mariadb"] {
        let mut scen: Vec<&str> = Vec::new();
        for s in samples.iter().filter(|s| s.engine == engine) {
            if !scen.contains(&s.scenario.as_str()) {
                scen.push(&s.scenario);
            }
        }
        for sc in scen {
            for (label, lt, et) in [
                ("scrape", "rpo-exporter lag", "rpo-exporter exposure"),
                (
                    "reading",
                    "rpo-exporter lag (vs truth at reading)",
                    "rpo-exporter exposure (vs truth at reading)",
                ),
                ("scrape, 100 ms interval", "rpo-exporter 100ms lag", "rpo-exporter 100ms exposure"),
            ] {
                let (mut both, mut inside) = (0, 0);
                for (x, y) in of(samples, engine, sc, lt).zip(of(samples, engine, sc, et)) {
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
                let _ = writeln!(md, "| {engine} | {sc} | {label} | {both} | {inside} | {share} |");
            }
        }
    }
    md
}

/// Heartbeats one tool wrote during the idle scenario and the bytes of log they cost.
pub struct Cost {
    pub tool: &'static str,
    pub engine: &'static str,
    pub beats: Option<f64>,
    pub bytes: Option<f64>,
    /// How it was measured.
    pub note: &'static str,
}

/// `cost.csv` and the cost section of `results.md`.
pub fn cost(rows: &[Cost], idle_secs: f64) -> (String, String) {
    let mut csv = String::from("tool,engine,heartbeats,bytes,bytes_per_heartbeat,note\n");
    let mut md = format!("\n## Database cost per heartbeat (idle scenario, {idle_secs:.0} s)\n\n| Tool | Engine | Heartbeats | Bytes written | Bytes per heartbeat |\n|---|---|---|---|---|\n");
    for Cost { tool, engine, beats, bytes, note } in rows {
        match (beats, bytes) {
            (Some(h), Some(b)) if *h > 0.0 => {
                let _ = writeln!(csv, "{tool},{engine},{h},{b},{:.1},{note}", b / h);
                let _ = writeln!(md, "| {tool} | {engine} | {h:.0} | {b:.0} | {:.1} |", b / h);
            }
            _ => {
                let _ = writeln!(csv, "{tool},{engine},,,,{note}: not measured");
                let _ = writeln!(md, "| {tool} | {engine} | – | – | not measured ({note}) |");
            }
        }
    }
    md.push('\n');
    (csv, md)
}

/// One exporter's footprint over the scrapes of the footprint part.
pub struct Footprint {
    pub name: String,
    pub rss: f64,
    /// CPU seconds per 1,000 scrapes.
    pub cpu: f64,
    /// Scrape latency (ms).
    pub p50: f64,
    pub p99: f64,
    pub series: usize,
}

/// `footprint.csv` and the footprint section of `results.md`.
pub fn footprint(rows: &[Footprint], scrapes: usize) -> (String, String) {
    let mut md = format!("## Footprint ({scrapes} scrapes each, sequential)\n\nCPU counts everything the process did during the scrapes (rpo-exporter keeps heartbeating in the background). RSS read from /proc after the scrapes.\n\n| Exporter | RSS after (MiB) | CPU s per 1,000 scrapes | Scrape p50 (ms) | Scrape p99 (ms) | Series |\n|---|---|---|---|---|---|\n");
    let mut csv = String::from("exporter,rss_bytes,cpu_s_per_1000,p50_ms,p99_ms,series\n");
    for Footprint { name, rss, cpu, p50, p99, series } in rows {
        let _ =
            writeln!(md, "| {name} | {:.1} | {cpu:.2} | {p50:.2} | {p99:.2} | {series} |", rss / 1048576.0);
        let _ = writeln!(csv, "{name},{rss},{cpu:.3},{p50:.3},{p99:.3},{series}");
    }
    (csv, md)
}

/// What one scale step measured.
pub struct ScaleStep {
    pub series: usize,
    /// CPU seconds per wall second.
    pub share: f64,
    pub rss: f64,
    /// Heartbeat jitter p99 (ms).
    pub j99: f64,
    /// Scrape latency (ms).
    pub p50: f64,
    pub p99: f64,
    /// Fewest pairs reporting lag in a scrape of the step, and the most before it.
    pub pairs_min: usize,
    pub pairs: usize,
}

/// The scale section's heading and table head, and `scale.csv`'s header.
pub fn scale_head(secs: u64) -> (String, String) {
    let md = format!("## Scale: rpo-exporter watching N clusters at 1 s (one PostgreSQL pair, table rpo.hb_NNN per cluster, {secs} s per step)\n\nCPU share = CPU seconds / wall seconds over the step (1.0 = one core). Jitter = |interval between consecutive written heartbeat timestamps − 1 s| (from `rpo_heartbeat_written_timestamp_seconds` and `rpo_heartbeat_sequence`, scraped every 250 ms). Scrape latency over the step's scrapes.\n\n| Clusters | Series | CPU share | RSS (MiB) | RSS per cluster (KiB) | Jitter p99 (ms) | Scrape p50 (ms) | Scrape p99 (ms) | Pairs reporting |\n|---|---|---|---|---|---|---|---|---|\n");
    let csv =
        String::from("clusters,series,cpu_share,rss_bytes,jitter_p99_ms,scrape_p50_ms,scrape_p99_ms,pairs\n");
    (md, csv)
}

/// Appends the step of `n` clusters to the scale table and CSV.
pub fn scale_row(md: &mut String, csv: &mut String, n: usize, step: &ScaleStep) {
    let ScaleStep { series, share, rss, j99, p50, p99, pairs_min, pairs } = step;
    let _ = writeln!(
        md,
        "| {n} | {series} | {share:.3} | {:.1} | {:.0} | {j99:.1} | {p50:.2} | {p99:.2} | {pairs_min}–{pairs} of {n} |",
        rss / 1048576.0,
        rss / 1024.0 / n as f64
    );
    let _ = writeln!(csv, "{n},{series},{share:.4},{rss},{j99:.2},{p50:.3},{p99:.3},{pairs_min}");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(engine: &'static str, scenario: &str, tool: &'static str, truth: f64, value: Option<f64>) -> Sample {
        Sample { engine, scenario: scenario.into(), tool, t: 1.0, truth, value }
    }

    #[test]
    fn pct_is_the_nearest_rank() {
        for (v, p, want) in [
            (vec![3.0, 1.0, 2.0], 0.5, 2.0),
            (vec![3.0, 1.0, 2.0], 0.99, 3.0),
            (vec![5.0], 0.0, 5.0),
            ((1..=100).map(f64::from).collect(), 0.99, 99.0),
        ] {
            assert_eq!(pct(&mut v.clone(), p), want, "{v:?} {p}");
        }
        assert!(pct(&mut [], 0.5).is_nan());
    }

    #[test]
    fn accuracy_tables() {
        let samples = [
            s("mariadb", "idle", "pt", 0.0, Some(3.0)), // false alarm
            s("postgres", "idle", "rpo-exporter lag", 3.0, Some(0.1)), // silent zero
            s("postgres", "idle", "rpo-exporter exposure", 3.0, Some(3.5)),
            s("postgres", "idle", "rpo-exporter lag", 1.0, None),
            s("postgres", "idle", "rpo-exporter exposure", 1.0, Some(1.2)),
            s("postgres", "idle", "rpo-exporter lag", 1.0, Some(0.96)),
            s("postgres", "idle", "rpo-exporter exposure", 1.0, Some(2.0)),
            s("mariadb", "idle", "none", 0.0, None),
        ];
        let md = accuracy_md(&samples);
        let rows: Vec<&str> =
            md.lines().filter(|l| l.starts_with("| postgres") || l.starts_with("| mariadb")).collect();
        assert_eq!(
            rows,
            [
                "| postgres | idle | rpo-exporter lag | 3 | 1.470 | 2.900 | 0 | 1 | 1 |",
                "| postgres | idle | rpo-exporter exposure | 3 | 0.567 | 1.000 | 0 | 0 | 0 |",
                "| mariadb | idle | pt | 1 | 3.000 | 3.000 | 1 | 0 | 0 |",
                "| mariadb | idle | none | 1 | – | – | 0 | 0 | 1 |",
                // Lag 0.1 ≤ 3 ≤ 3.5 and 0.96 ≤ 1 ≤ 2 (the second pair lacks a lag).
                "| postgres | idle | scrape | 2 | 2 | 100.0% |",
                "| postgres | idle | reading | 0 | 0 | – |",
                "| mariadb | idle | scrape | 0 | 0 | – |",
                "| mariadb | idle | reading | 0 | 0 | – |",
            ]
        );
        assert_eq!(
            samples_csv(&samples[..2]),
            "engine,scenario,tool,t_s,truth_s,value_s\nmariadb,idle,pt,1.000,0.000,3.000\npostgres,idle,rpo-exporter lag,1.000,3.000,0.100\n"
        );
    }

    #[test]
    fn cost_table() {
        let row = |beats, bytes| Cost { tool: "t", engine: "e", beats, bytes, note: "n" };
        let (csv, md) =
            cost(&[row(Some(10.0), Some(2500.0)), row(Some(0.0), Some(1.0)), row(None, None)], 60.2);
        assert_eq!(csv, "tool,engine,heartbeats,bytes,bytes_per_heartbeat,note\nt,e,10,2500,250.0,n\nt,e,,,,n: not measured\nt,e,,,,n: not measured\n");
        assert!(md.starts_with("\n## Database cost per heartbeat (idle scenario, 60 s)\n\n"));
        assert!(md.ends_with("| t | e | 10 | 2500 | 250.0 |\n| t | e | – | – | not measured (n) |\n| t | e | – | – | not measured (n) |\n\n"));
    }
}
