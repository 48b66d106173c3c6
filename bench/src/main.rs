//! `rpo-bench`: rpo-exporter against the tools people use today (postgres_exporter,
//! mysqld_exporter, pt-heartbeat) on the rpo-lab servers, in one run.
//!
//! Four labs, so that no tool's writes hide another tool's blind spot; each judged
//! against the ground truth of its own lab. This file holds the flags and the order of
//! the parts; the rest lives in:
//! - [`scenario`]: the labs and what the bench does to them over time;
//! - [`tools`]: the tools under test, started, scraped and read;
//! - [`truth`]: the reference lag per lab;
//! - [`report`]: the tables and files written;
//! - [`scale`]: rpo-exporter watching many clusters.
//!
//! Output: `results.md` (tables), `samples.csv`, `footprint.csv`, `scale.csv`, `cost.csv`.

mod report;
mod scale;
mod scenario;
mod tools;
mod truth;

use anyhow::{Context, Result};
use clap::Parser;
use scenario::{Labs, Scenarios};
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};
use tools::Tools;

/// The account rpo-exporter connects as, on every lab.
const ROLE: &str = "rpo_exporter";
const PASSWORD: &str = "bench-Pw-7d1c";

#[derive(Parser)]
// A flag given twice takes the last value: `scripts/bench.sh --out DIR` overrides the
// script's own `--out bench/results`.
#[command(args_override_self = true)]
struct Args {
    /// The rpo-exporter binary (scripts/bench.sh passes the dist build).
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
    #[arg(long, default_value = "10,100,400,1000")]
    scale: String,
    /// PostgreSQL pairs the scale test's clusters are dealt over (round robin).
    #[arg(long, default_value_t = 1)]
    scale_pairs: usize,
    /// More heartbeat settings for every cluster of the scale test, in YAML flow style
    /// (e.g. "timeout: 900ms, connect_timeout: 15s"); the interval stays 1 s.
    #[arg(long, default_value = "")]
    scale_heartbeat: String,
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
        "# rpo-bench report\n\nHost: {host}, {} CPUs; load average at start: {}\n\nrpo-exporter: {}\n",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        load0.trim(),
        args.exporter.display()
    )?;
    if args.only.iter().any(|p| matches!(p, Part::Scenarios | Part::Footprint)) {
        compare(&args, &bin, &work, &client, started, &mut md).await?;
    }

    // ---- scale
    let counts: Vec<usize> = args.scale.split(',').filter_map(|s| s.trim().parse().ok()).collect();
    if args.only.contains(&Part::Scale) && !counts.is_empty() {
        eprintln!("bench: scale {counts:?}");
        let part = scale::Scale {
            bin: &bin,
            work: &work,
            out: &args.out,
            counts: &counts,
            secs: args.scale_secs,
            pairs: args.scale_pairs,
            heartbeat: &args.scale_heartbeat,
        };
        match part.run().await {
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
    report::write_md(&args.out, &md)?;
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
        "Idle scenario {} s, fault scenarios {} s each, one sample every {:.2} s per tool.\n",
        args.idle_secs,
        args.fault_secs,
        scenario::SAMPLE_PERIOD.as_secs_f64()
    )?;
    let labs = Labs::start(bin).await?;
    let tools = Tools::start(bin, work, &labs).await?;
    tools.wait_ready(client).await?;
    eprintln!("bench: ready after {:.1} s", started.elapsed().as_secs_f64());
    if args.only.contains(&Part::Scenarios) {
        let scenarios = Scenarios {
            labs: &labs,
            tools: &tools,
            client,
            idle_secs: args.idle_secs,
            fault_secs: args.fault_secs,
        };
        let outcome = scenarios.run().await?;
        std::fs::write(args.out.join("samples.csv"), report::samples_csv(&outcome.samples))?;
        md.push_str(&report::accuracy_md(&outcome.samples));
        let (cost_csv, cost_md) = report::cost(&outcome.cost, outcome.idle_secs);
        md.push_str(&cost_md);
        std::fs::write(args.out.join("cost.csv"), cost_csv)?;
        report::write_md(&args.out, md)?;
    }
    if args.only.contains(&Part::Footprint) {
        eprintln!("bench: footprint, {} scrapes each", args.scrapes);
        let rows = scenario::footprint(&tools, client, args.scrapes).await;
        let (csv, table) = report::footprint(&rows, args.scrapes);
        md.push_str(&table);
        md.push('\n');
        std::fs::write(args.out.join("footprint.csv"), csv)?;
        report::write_md(&args.out, md)?;
    }
    drop(tools);
    labs.shutdown().await;
    Ok(())
}

fn tempfile_dir() -> Result<PathBuf> {
    let d = std::env::temp_dir().join(format!("rpo-bench-{}", std::process::id()));
    std::fs::create_dir_all(&d)?;
    Ok(d)
}
