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
    /// For rpo-exporter's lag: the `source` label of `rpo_lag_source_info` for the pair
    /// (which bound gave the lag), when the exporter exports it.
    pub source: Option<String>,
}

/// The scenario without write traffic: the truth writers are off.
pub const IDLE: &str = "idle primary";

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
    let mut csv = String::from("engine,scenario,tool,t_s,truth_s,value_s,lag_source\n");
    for s in samples {
        let _ = writeln!(
            csv,
            "{},{},{},{:.3},{:.3},{},{}",
            s.engine,
            s.scenario,
            s.tool,
            s.t,
            s.truth,
            s.value.map(|v| format!("{v:.3}")).unwrap_or_default(),
            s.source.as_deref().unwrap_or("")
        );
    }
    csv
}

/// The accuracy section: one row per (engine, scenario, tool), PostgreSQL first, then the
/// rpo-exporter bracket table.
pub fn accuracy_md(samples: &[Sample]) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "## Accuracy against ground truth\n\nError = |reported − true lag| per sample (every 1.03 s). False alarm: reported > 2 s while truth < 0.5 s. Silent zero: reported < 0.5 s while truth > 2 s. Missing: scrape failed or series absent (not counted in the errors).\n");
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
    md.push_str(&error_summary_md(samples));
    md.push_str(&source_md(samples));
    md
}

/// rpo-exporter's (lag tool, exposure tool) at each heartbeat interval of the bench.
const INTERVALS: [(&str, &str, &str); 2] = [
    ("1 s", "rpo-exporter lag", "rpo-exporter exposure"),
    ("100 ms", "rpo-exporter 100ms lag", "rpo-exporter 100ms exposure"),
];

/// Issue #19's summary: rpo-exporter's error at scrape time per engine, heartbeat
/// interval and traffic (with writes: the fault scenarios, the truth writer on; without:
/// the idle scenario), and how often the truth lay inside [lag, exposure].
fn error_summary_md(samples: &[Sample]) -> String {
    let mut md = String::from("\n### rpo-exporter: lag error by interval and traffic (at scrape time)\n\nWith writes: the fault scenarios (replay paused, disconnected, replica killed), the truth writer committing a row every 100 ms on the primary. Without: the idle scenario, no write on the primary but the heartbeats (true lag 0). Samples: those with a lag reading (a killed replica has none). Inside: truth within [lag − 50 ms, exposure + 50 ms], of the samples with both.\n\n| Engine | Interval | Traffic | Samples | Mean abs error, lag (s) | Mean abs error, exposure (s) | Inside [lag, exposure] |\n|---|---|---|---|---|---|---|\n");
    for engine in ["postgres", "mariadb"] {
        for (interval, lt, et) in INTERVALS {
            for (traffic, writes) in [("with writes", true), ("without (idle primary)", false)] {
                let pick = |tool: &'static str| {
                    samples.iter().filter(move |s| {
                        s.engine == engine && s.tool == tool && (s.scenario != IDLE) == writes
                    })
                };
                if pick(lt).next().is_none() {
                    continue;
                }
                let mean = |tool| {
                    let st = stats(pick(tool));
                    let got = st.n - st.missing;
                    (got, if got > 0 { format!("{:.3}", st.err_sum / got as f64) } else { "–".into() })
                };
                let ((n, lag), (_, exp)) = (mean(lt), mean(et));
                let (mut both, mut inside) = (0, 0);
                for (x, y) in pick(lt).zip(pick(et)) {
                    if let (Some(lv), Some(ev)) = (x.value, y.value) {
                        both += 1;
                        if x.truth >= lv - 0.05 && x.truth <= ev + 0.05 {
                            inside += 1;
                        }
                    }
                }
                let share = if both > 0 {
                    format!("{inside} of {both} ({:.1}%)", 100.0 * inside as f64 / both as f64)
                } else {
                    "–".into()
                };
                let _ = writeln!(md, "| {engine} | {interval} | {traffic} | {n} | {lag} | {exp} | {share} |");
            }
        }
    }
    md
}

/// Which bound gave rpo-exporter's lag (`rpo_lag_source_info`), as shares of the
/// samples of each scenario; "–" where the exporter does not export it.
fn source_md(samples: &[Sample]) -> String {
    let mut md = String::from("\n### rpo-exporter: source of the lag (`rpo_lag_source_info`)\n\nShare of the scenario's samples by the `source` label of the pair's `rpo_lag_source_info` (heartbeat, commit_timestamp, gtid_position); \"–\": not exported.\n\n| Engine | Scenario | Interval | Samples | Source |\n|---|---|---|---|---|\n");
    for engine in ["postgres", "mariadb"] {
        for sc in scenarios(samples, engine) {
            for (interval, lt, _) in INTERVALS {
                let n = of(samples, engine, sc, lt).count();
                if n == 0 {
                    continue;
                }
                let mut by: Vec<(&str, usize)> = Vec::new();
                for s in of(samples, engine, sc, lt) {
                    if let Some(src) = s.source.as_deref() {
                        match by.iter_mut().find(|(k, _)| *k == src) {
                            Some((_, c)) => *c += 1,
                            None => by.push((src, 1)),
                        }
                    }
                }
                let text = if by.is_empty() {
                    "–".to_owned()
                } else {
                    by.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(b.0)));
                    let parts: Vec<String> = by
                        .iter()
                        .map(|(k, c)| format!("{k} {:.0}% ({c})", 100.0 * *c as f64 / n as f64))
                        .collect();
                    parts.join(", ")
                };
                let _ = writeln!(md, "| {engine} | {sc} | {interval} | {n} | {text} |");
            }
        }
    }
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

/// The scenarios of `engine`'s samples, in the order they ran.
fn scenarios<'a>(samples: &'a [Sample], engine: &str) -> Vec<&'a str> {
    let mut scen: Vec<&str> = Vec::new();
    for s in samples.iter().filter(|s| s.engine == engine) {
        if !scen.contains(&s.scenario.as_str()) {
            scen.push(&s.scenario);
        }
    }
    scen
}

/// How often the truth lies inside rpo-exporter's [lag, exposure] (50 ms tolerance).
fn bracket_md(samples: &[Sample]) -> String {
    let mut md = String::from("\n### rpo-exporter: truth inside [lag, exposure] (50 ms tolerance)\n\n| Engine | Scenario | Truth at | Samples with both | Inside | Share |\n|---|---|---|---|---|---|\n");
    for engine in ["postgres", "mariadb"] {
        for sc in scenarios(samples, engine) {
            for (label, lt, et) in [
                ("scrape", "rpo-exporter lag", "rpo-exporter exposure"),
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
    /// Bytes of the last scrape's body.
    pub bytes: usize,
    /// The exporter's CPU seconds per wall second.
    pub share: f64,
    /// The same for the bench itself (scraping and parsing the exporter's output).
    pub bench: f64,
    /// The same for every process of the PostgreSQL servers (postmasters and their
    /// children, exited ones included).
    pub servers: f64,
    /// The whole host's busy CPU per wall second (/proc/stat), every process.
    pub host: f64,
    pub rss: f64,
    /// Heartbeat jitter p99 (ms).
    pub j99: f64,
    /// Scrape latency (ms).
    pub p50: f64,
    pub p99: f64,
    /// Fewest pairs reporting lag in a scrape of the step, and the most before it.
    pub pairs_min: usize,
    pub pairs: usize,
    /// Sessions the exporter opened during the step (`rpo_node_sessions_opened_total`):
    /// 0 in a steady state, reconnects after timeouts otherwise.
    pub reconnects: f64,
}

/// The scale section's heading and table head, and `scale.csv`'s header, for `secs` s per
/// step on `labs` PostgreSQL pairs of a host with `cores` CPUs.
pub fn scale_head(secs: u64, labs: usize, cores: usize) -> (String, String) {
    let on = if labs == 1 {
        "one PostgreSQL pair, table rpo.hb_NNN per cluster".to_owned()
    } else {
        format!("{labs} PostgreSQL pairs, clusters dealt round robin, table rpo.hb_NNN per cluster")
    };
    let md = format!("## Scale: rpo-exporter watching N clusters at 1 s ({on}, {secs} s per step)\n\nCPU share = CPU seconds / wall seconds over the step (1.0 = one core; the host has {cores}). Exporter: the rpo-exporter process. Servers: every process of the PostgreSQL servers (each postmaster and its children, exited ones included), from /proc. Host: the whole machine's busy time from /proc/stat (the bench itself and any other work on the host included; the bench's own share is in `scale.csv`). Limit: what ran out first, judged from those shares. Jitter = |interval between consecutive written heartbeat timestamps − 1 s| (from `rpo_heartbeat_written_timestamp_seconds` and `rpo_heartbeat_sequence`, scraped every 250 ms). Scrape latency over the step's scrapes (uncompressed text, request sent to body read, timed by a client on its own thread and single-threaded runtime); bytes and series of the last one. Sessions opened: `rpo_node_sessions_opened_total` over the step (0 when every session lives; reconnects after timeouts otherwise).\n\n| Clusters | Series | Series per cluster | Bytes per scrape | Exporter CPU share | Servers CPU share | Host CPU share | RSS (MiB) | RSS per cluster (KiB) | Jitter p99 (ms) | Scrape p50 (ms) | Scrape p99 (ms) | Pairs reporting | Sessions opened | Limit |\n|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|\n");
    let csv = String::from(
        "clusters,series,bytes,cpu_share,servers_cpu_share,host_cpu_share,bench_cpu_share,rss_bytes,jitter_p99_ms,scrape_p50_ms,scrape_p99_ms,pairs,sessions_opened\n",
    );
    (md, csv)
}

/// What limited a step of `n` clusters on `cores` CPUs: the host's CPU when it was
/// (nearly) all busy, and by whom (the servers and the exporter, or other work on the
/// host), else none yet; and which of servers and exporter used more.
pub fn scale_limit(step: &ScaleStep, n: usize, cores: usize) -> String {
    let busier = if step.servers >= step.share {
        format!("servers {:.1}× the exporter", step.servers / step.share.max(1e-9))
    } else {
        format!("exporter {:.1}× the servers", step.share / step.servers.max(1e-9))
    };
    let failing = if step.pairs_min < n { ", pairs missing" } else { "" };
    let own = step.servers + step.share;
    if step.host >= 0.9 * cores as f64 {
        if own >= 0.5 * step.host {
            format!(
                "{cores} cores saturated, {:.0}% by servers and exporter ({busier}){failing}",
                100.0 * own / step.host
            )
        } else {
            format!(
                "{cores} cores saturated by other work (servers and exporter {own:.2}, the bench {:.2}, of {:.2}; {busier}){failing}",
                step.bench, step.host
            )
        }
    } else {
        format!("none: {:.0}% of {cores} cores busy ({busier}){failing}", 100.0 * step.host / cores as f64)
    }
}

/// Appends the step of `n` clusters to the scale table and CSV.
pub fn scale_row(md: &mut String, csv: &mut String, n: usize, step: &ScaleStep, cores: usize) {
    let limit = scale_limit(step, n, cores);
    let ScaleStep {
        series,
        bytes,
        share,
        bench,
        servers,
        host,
        rss,
        j99,
        p50,
        p99,
        pairs_min,
        pairs,
        reconnects,
    } = step;
    let _ = writeln!(
        md,
        "| {n} | {series} | {:.1} | {bytes} | {share:.3} | {servers:.3} | {host:.3} | {:.1} | {:.0} | {j99:.1} | {p50:.2} | {p99:.2} | {pairs_min}–{pairs} of {n} | {reconnects:.0} | {limit} |",
        *series as f64 / n as f64,
        rss / 1048576.0,
        rss / 1024.0 / n as f64
    );
    let _ = writeln!(
        csv,
        "{n},{series},{bytes},{share:.4},{servers:.4},{host:.4},{bench:.4},{rss},{j99:.2},{p50:.3},{p99:.3},{pairs_min},{reconnects}"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(engine: &'static str, scenario: &str, tool: &'static str, truth: f64, value: Option<f64>) -> Sample {
        Sample { engine, scenario: scenario.into(), tool, t: 1.0, truth, value, source: None }
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
                "| mariadb | idle | scrape | 0 | 0 | – |",
                // "idle" is not the idle scenario: it counts as with writes.
                "| postgres | 1 s | with writes | 2 | 1.470 | 0.567 | 2 of 2 (100.0%) |",
                "| postgres | idle | 1 s | 3 | – |",
            ]
        );
        assert_eq!(
            samples_csv(&[
                samples[0].clone(),
                Sample { source: Some("heartbeat".into()), ..samples[1].clone() }
            ]),
            "engine,scenario,tool,t_s,truth_s,value_s,lag_source\nmariadb,idle,pt,1.000,0.000,3.000,\npostgres,idle,rpo-exporter lag,1.000,3.000,0.100,heartbeat\n"
        );
    }

    #[test]
    fn error_by_interval_and_traffic_and_lag_sources() {
        let src = |mut x: Sample, source: &str| {
            x.source = Some(source.into());
            x
        };
        let samples = [
            src(s("mariadb", IDLE, "rpo-exporter lag", 0.0, Some(0.0)), "heartbeat"),
            s("mariadb", IDLE, "rpo-exporter exposure", 0.0, Some(1.2)),
            src(s("mariadb", "paused", "rpo-exporter lag", 2.0, Some(1.0)), "gtid_position"),
            s("mariadb", "paused", "rpo-exporter exposure", 2.0, Some(2.5)),
            src(s("mariadb", "paused", "rpo-exporter lag", 3.0, Some(2.9)), "gtid_position"),
            s("mariadb", "paused", "rpo-exporter exposure", 3.0, Some(2.8)), // truth above
            src(s("mariadb", "paused", "rpo-exporter lag", 4.0, Some(0.5)), "heartbeat"),
            s("mariadb", "paused", "rpo-exporter exposure", 4.0, None),
            s("mariadb", "paused", "rpo-exporter 100ms lag", 2.0, Some(1.9)),
            s("mariadb", "paused", "rpo-exporter 100ms exposure", 2.0, Some(2.1)),
        ];
        let md = accuracy_md(&samples);
        let section = |title: &str| -> Vec<String> {
            let at = md.find(title).unwrap_or_else(|| panic!("{title} in {md}"));
            md[at..]
                .lines()
                .skip(1)
                .skip_while(|l| !l.starts_with("| mariadb"))
                .take_while(|l| l.starts_with('|'))
                .map(str::to_owned)
                .collect()
        };
        assert_eq!(
            section("lag error by interval and traffic"),
            [
                "| mariadb | 1 s | with writes | 3 | 1.533 | 0.350 | 1 of 2 (50.0%) |",
                "| mariadb | 1 s | without (idle primary) | 1 | 0.000 | 1.200 | 1 of 1 (100.0%) |",
                "| mariadb | 100 ms | with writes | 1 | 0.100 | 0.100 | 1 of 1 (100.0%) |",
            ]
        );
        assert_eq!(
            section("source of the lag"),
            [
                "| mariadb | idle primary | 1 s | 1 | heartbeat 100% (1) |",
                "| mariadb | paused | 1 s | 3 | gtid_position 67% (2), heartbeat 33% (1) |",
                "| mariadb | paused | 100 ms | 1 | – |",
            ]
        );
    }

    #[test]
    fn scale_row_and_limit() {
        let step = |share, servers, host, pairs_min| ScaleStep {
            series: 2000,
            bytes: 250_000,
            share,
            bench: 0.05,
            servers,
            host,
            rss: 20.0 * 1048576.0,
            j99: 3.0,
            p50: 1.0,
            p99: 2.0,
            pairs_min,
            pairs: 10,
            reconnects: 0.0,
        };
        let (mut md, mut csv) = (String::new(), String::new());
        scale_row(&mut md, &mut csv, 10, &step(0.1, 0.4, 0.6, 10), 2);
        assert_eq!(md, "| 10 | 2000 | 200.0 | 250000 | 0.100 | 0.400 | 0.600 | 20.0 | 2048 | 3.0 | 1.00 | 2.00 | 10–10 of 10 | 0 | none: 30% of 2 cores busy (servers 4.0× the exporter) |\n");
        assert_eq!(csv, "10,2000,250000,0.1000,0.4000,0.6000,0.0500,20971520,3.00,1.000,2.000,10,0\n");
        assert_eq!(
            scale_limit(&step(0.9, 0.6, 1.85, 7), 10, 2),
            "2 cores saturated, 81% by servers and exporter (exporter 1.5× the servers), pairs missing"
        );
        assert_eq!(
            scale_limit(&step(0.01, 0.02, 1.9, 10), 10, 2),
            "2 cores saturated by other work (servers and exporter 0.03, the bench 0.05, of 1.90; servers 2.0× the exporter)"
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
