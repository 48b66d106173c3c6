//! rpo-bench-scrape: the cost of one scrape's rendering, without databases or load.
//!
//! Builds the exporter's real [`State`] for N clusters of one primary and one
//! replica from a generated config, fills every node the way a healthy worker
//! would (role, clock, collectors, a reading per pair, each engine's native
//! families), then renders it through the same registry and encoder the server
//! uses, many times, and reports series per scrape, bytes and latency
//! percentiles. The scale step of `rpo-bench` measures the same path over HTTP on
//! a loaded lab; this one isolates the encoder.
//!
//! `cargo run --release -p rpo-bench --bin rpo-bench-scrape -- --clusters 1,100,400`
//! (`--format text` for the Prometheus text format 0.0.4 instead of OpenMetrics;
//! `--no-collector replication,row_status` as the exporter's `--no-collector.NAME`;
//! `--touch 0.25` to change only a quarter of the nodes between two renders, as a
//! scrape every 250 ms sees a 1 s heartbeat; the default, 1, is every node, as a
//! 15 s scrape interval sees it).
//!
//! Over HTTP: `--http` serves the same state through the exporter's own server on
//! loopback and scrapes it with reqwest, one request at a time (`--gzip` asks for
//! gzip as Prometheus does, `--concurrent K` sends K at once); `--url URL` scrapes a
//! running exporter instead (`--interval-ms` apart), a quiet client beside a bench.

use anyhow::{Context, Result};
use clap::Parser;
use rpo_exporter::config::Config;
use rpo_exporter::engine::{self, Engine, ErrorKind, Written};
use rpo_exporter::exposition;
use rpo_exporter::heartbeat::{Basis, ClockSample, ExposureSource, LagSource, Reading, RowStatus};
use rpo_exporter::metrics::{Sample, Samples, Switch, Switches};
use rpo_exporter::state::{Live, State};
use rpo_exporter::store::{Collector, PairData};
use std::fmt::Write as _;
use std::path::Path;
use std::sync::Arc;
use std::time::Instant;

#[derive(Parser)]
struct Args {
    /// Cluster counts to render (one primary and one replica each).
    #[arg(long, default_value = "1,10,100,400")]
    clusters: String,
    /// Renders per count.
    #[arg(long, default_value_t = 500)]
    renders: usize,
    /// Engine of every node: postgres or mysql.
    #[arg(long, default_value = "postgres")]
    engine: String,
    /// Format to render: openmetrics (what Prometheus negotiates) or text (0.0.4).
    #[arg(long, default_value = "openmetrics")]
    format: String,
    /// Optional collectors to turn off (comma list: replication, gtid,
    /// collector_stats, row_status), as `--no-collector.NAME` does.
    #[arg(long, default_value = "")]
    no_collector: String,
    /// Fraction of the nodes changed (a heartbeat written, a collector run) before
    /// each render.
    #[arg(long, default_value_t = 1.0)]
    touch: f64,
    /// Serve the state over loopback HTTP and time whole scrapes.
    #[arg(long)]
    http: bool,
    /// Scrape this URL (a running exporter) instead of a synthetic state.
    #[arg(long)]
    url: Option<String>,
    /// With --url: pause between two scrapes.
    #[arg(long, default_value_t = 250)]
    interval_ms: u64,
    /// Over HTTP: send `Accept-Encoding: gzip`. Without --http: gzip each render
    /// at --gzip-level, timed with it (the size is the gzipped one).
    #[arg(long)]
    gzip: bool,
    /// Without --http: the gzip level, 1 (what the server uses) to 9.
    #[arg(long, default_value_t = 1)]
    gzip_level: u32,
    /// Over HTTP: scrapes sent at once, each round.
    #[arg(long, default_value_t = 1)]
    concurrent: usize,
}

fn config(n: usize, engine: &str) -> Result<Config> {
    let dsn = |port: u16| match engine {
        "mysql" => format!("mysql://rpo@127.0.0.1:{port}/rpo"),
        _ => format!("host=127.0.0.1 port={port} user=rpo dbname=postgres"),
    };
    let mut yaml = String::from("clusters:\n");
    for i in 0..n {
        write!(
            yaml,
            "  - name: c{i:03}\n    rpo: 30s\n    rto: 5m\n    heartbeat: {{ interval: 1s, table: rpo.hb_{i:03} }}\n    nodes:\n      - {{ name: p{i:03}, region: us-east-1, engine: {engine}, dsn: \"{}\" }}\n      - {{ name: r{i:03}, region: eu-west-1, engine: {engine}, dsn: \"{}\" }}\n",
            dsn(5432),
            dsn(5433)
        )?;
    }
    rpo_exporter::load::text(Path::new("<generated>"), &yaml).map_err(|e| anyhow::anyhow!("{e}"))
}

/// Fills every node as a healthy worker leaves it after a few intervals, with the
/// collectors `switches` leaves on.
fn fill(state: &State, engine: &dyn Engine, switches: Switches) {
    let replication = switches.enabled(Switch::Replication);
    let now = rpo_exporter::heartbeat::mono_now();
    for cluster in &state.clusters {
        let primary = &cluster.nodes[0];
        for (i, node) in cluster.nodes.iter().enumerate() {
            let mut d = node.lock();
            d.up = true;
            d.writable = Some(i == 0);
            d.clock = Some(ClockSample { db_us: 1_700_000_000_000_000, mono: now, rtt: 0.0004 });
            d.clock_offset = Some(0.0001);
            for c in Collector::ALL {
                if (c == Collector::HeartbeatWrite && i != 0) || (c == Collector::Replication && !replication)
                {
                    continue;
                }
                d.record_success(c, 0.0007);
            }
            d.record_failure(Collector::Role, 0.75, ErrorKind::Timeout);
            d.record_success(Collector::Role, 0.0005);
            if i == 0 {
                d.writes = 1234;
                d.last_written = Some(Written { seq: 1234, written_us: 1_700_000_000_000_000 });
            } else {
                d.pairs.insert(
                    primary.name.clone(),
                    PairData {
                        source_region: primary.region.clone(),
                        status: RowStatus::Ok,
                        reading: Some(Reading::Ok { lag: 0.0, exposure: 0.42, basis: Basis::Monotonic }),
                        exposure_source: ExposureSource::Heartbeat,
                        lag_source: LagSource::Heartbeat,
                        applied: None,
                        read_mono: now,
                        seen_written_us: Some(1_700_000_000_000_000),
                        last_seq: Some(1234),
                        regressions: 0,
                    },
                );
            }
            // One sample of every native family, with the node labels first.
            let native: Vec<Sample> = engine
                .metrics()
                .iter()
                .filter(|desc| switches.emits(desc))
                .map(|desc| {
                    let mut values = vec![node.cluster.clone(), node.name.clone(), node.region.clone()];
                    values.extend(desc.labels[3..].iter().map(|l| format!("{l}-value")));
                    Sample { desc, values, value: 1.5 }
                })
                .collect();
            d.native = Samples::default();
            d.native.extend(&native);
        }
    }
}

/// Changes every `1 / fraction`-th node as a worker's tick would: a heartbeat
/// written, the write collector's duration.
fn touch(state: &State, fraction: f64, round: usize) {
    let nodes: Vec<_> = state.clusters.iter().flat_map(|c| c.nodes.iter()).collect();
    let every = (1.0 / fraction.clamp(1e-6, 1.0)).round().max(1.0) as usize;
    for (i, node) in nodes.iter().enumerate() {
        if (i + round).is_multiple_of(every) {
            let mut d = node.lock();
            d.writes += 1;
            d.record_success(Collector::HeartbeatWrite, 0.0007 + (round % 7) as f64 * 1e-5);
        }
    }
}

/// What one scrape over HTTP took: until the response head, until the whole body;
/// and the body's size on the wire and its series.
struct Scraped {
    head_ms: f64,
    ms: f64,
    bytes: usize,
    series: usize,
}

async fn scrape(
    client: &reqwest::Client,
    url: &str,
    format: exposition::Format,
    gzip: bool,
) -> Result<Scraped> {
    let mut request = client.get(url);
    if format == exposition::Format::OpenMetrics {
        request = request.header("accept", PROMETHEUS_ACCEPT);
    }
    if gzip {
        request = request.header("accept-encoding", "gzip");
    }
    let t = Instant::now();
    let response = request.send().await?.error_for_status()?;
    let head_ms = t.elapsed().as_secs_f64() * 1000.0;

    let body = response.bytes().await?;
    let ms = t.elapsed().as_secs_f64() * 1000.0;
    // Counted after the timing: a gzipped body is unpacked first.
    let text = if gzip {
        use std::io::Read;
        let mut text = Vec::new();
        flate2::read::GzDecoder::new(&body[..]).read_to_end(&mut text)?;
        text
    } else {
        body.to_vec()
    };
    let series = text.split(|b| *b == b'\n').filter(|l| !l.is_empty() && l[0] != b'#').count();
    Ok(Scraped { head_ms, ms, bytes: body.len(), series })
}

/// What Prometheus 2.x/3.x sends.
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

/// `rounds` rounds of `concurrent` scrapes of `url`, `pause` apart; before each
/// round, `before` runs (changing the synthetic state).
async fn scrape_loop(
    url: &str,
    args: &Args,
    format: exposition::Format,
    rounds: usize,
    pause: std::time::Duration,
    mut before: impl FnMut(usize),
) -> Result<(Vec<f64>, Vec<f64>, usize, usize)> {
    let client = reqwest::Client::builder().timeout(std::time::Duration::from_secs(5)).build()?;
    let first = scrape(&client, url, format, args.gzip).await?;
    let (mut head, mut ms) = (Vec::new(), Vec::new());
    for round in 0..rounds {
        before(round);
        let mut all = tokio::task::JoinSet::new();
        for _ in 0..args.concurrent.max(1) {
            let (client, url, gzip) = (client.clone(), url.to_owned(), args.gzip);
            all.spawn(async move { scrape(&client, &url, format, gzip).await });
        }
        while let Some(s) = all.join_next().await {
            let s = s??;
            head.push(s.head_ms);
            ms.push(s.ms);
        }
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
    Ok((head, ms, first.bytes, first.series))
}

/// `text` gzipped at `level`, as the server compresses a scrape.
fn gzip(text: &str, level: u32) -> Vec<u8> {
    use std::io::Write;
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::new(level));
    encoder.write_all(text.as_bytes()).expect("in memory");
    encoder.finish().expect("in memory")
}

/// A row of the scrape-latency tables: what was scraped (URL or cluster count),
/// series and bytes of a scrape, head p50, then p50, p99 and max of the whole
/// scrapes (ms).
fn latency_row(what: &str, series: usize, bytes: usize, head: &mut [f64], ms: &mut [f64]) -> String {
    format!(
        "| {what} | {series} | {bytes} | {:.3} | {:.3} | {:.3} | {:.3} |",
        pct(head, 0.5),
        pct(ms, 0.5),
        pct(ms, 0.99),
        pct(ms, 1.0)
    )
}

fn pct(v: &mut [f64], p: f64) -> f64 {
    v.sort_by(|a, b| a.total_cmp(b));
    let i = ((p * v.len() as f64).ceil() as usize).clamp(1, v.len()) - 1;
    v[i]
}

fn main() -> Result<()> {
    let args = Args::parse();
    let engine = engine::find(&args.engine).map_err(|e| anyhow::anyhow!("--engine: {}", e.problem))?;
    let format = match args.format.as_str() {
        "openmetrics" => exposition::Format::OpenMetrics,
        "text" => exposition::Format::Text,
        other => anyhow::bail!("--format: {other:?} is neither openmetrics nor text"),
    };
    let mut switches = Switches::default();
    for name in args.no_collector.split(',').map(str::trim).filter(|n| !n.is_empty()) {
        let switch = Switch::ALL.into_iter().find(|s| s.name() == name);
        switches =
            switches.with(switch.with_context(|| format!("--no-collector: no collector {name:?}"))?, false);
    }
    let client_rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    if let Some(url) = &args.url {
        let pause = std::time::Duration::from_millis(args.interval_ms);
        let (mut head, mut ms, bytes, series) =
            client_rt.block_on(scrape_loop(url, &args, format, args.renders, pause, |_| {}))?;
        println!("| URL | Series | Bytes | head p50 (ms) | p50 (ms) | p99 (ms) | max (ms) |");
        println!("|---|---|---|---|---|---|---|");
        println!("{}", latency_row(url, series, bytes, &mut head, &mut ms));
        return Ok(());
    }
    if args.http {
        println!(
            "| Clusters | Series | Bytes on the wire | head p50 (ms) | p50 (ms) | p99 (ms) | max (ms) |"
        );
    } else {
        println!("| Clusters | Series | Series per cluster | Bytes | p50 (ms) | p99 (ms) | max (ms) | µs per series (p50) |");
    }
    println!("|---|---|---|---|---|---|---|{}", if args.http { "" } else { "---|" });
    // The exporter's own runtime: a worker thread per core.
    let server_rt = tokio::runtime::Builder::new_multi_thread().enable_all().build()?;
    for n in args.clusters.split(',') {
        let n: usize = n.trim().parse().with_context(|| format!("--clusters: {n:?}"))?;
        let state = State::new(&config(n, &args.engine)?);
        fill(&state, engine, switches);
        let live = Arc::new(Live::with_switches(state, switches));
        let exposition = exposition::Exposition::new(live.clone());
        if args.http {
            let listener = server_rt.block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))?;
            let url = format!("http://{}/metrics", listener.local_addr()?);
            let shutdown = tokio_util::sync::CancellationToken::new();
            let (reload, _reloads) = tokio::sync::mpsc::channel(1);
            let server = server_rt.spawn(rpo_exporter::server::serve(
                vec![listener],
                exposition,
                "/metrics",
                reload,
                false,
                None,
                shutdown.clone(),
            ));
            let state = live.current();
            let touched = |round| touch(&state, args.touch, round);
            let result = client_rt.block_on(scrape_loop(
                &url,
                &args,
                format,
                args.renders,
                Default::default(),
                touched,
            ));
            shutdown.cancel();
            server_rt.block_on(server)??;
            let (mut head, mut ms, bytes, series) = result?;
            println!("{}", latency_row(&n.to_string(), series, bytes, &mut head, &mut ms));
            continue;
        }
        let first = exposition.render_as(format)?;
        let series = first.lines().filter(|l| !l.is_empty() && !l.starts_with('#')).count();
        let state = live.current();
        let mut ms: Vec<f64> = (0..args.renders)
            .map(|round| {
                touch(&state, args.touch, round);
                let t = Instant::now();
                let text = exposition.render_as(format).expect("render");
                if args.gzip {
                    std::hint::black_box(gzip(&text, args.gzip_level));
                }
                std::hint::black_box(text);
                t.elapsed().as_secs_f64() * 1000.0
            })
            .collect();
        let (p50, p99, max) = (pct(&mut ms, 0.5), pct(&mut ms, 0.99), pct(&mut ms, 1.0));
        let bytes = if args.gzip { gzip(&first, args.gzip_level).len() } else { first.len() };
        println!(
            "| {n} | {series} | {:.1} | {bytes} | {p50:.3} | {p99:.3} | {max:.3} | {:.3} |",
            series as f64 / n as f64,
            p50 * 1000.0 / series as f64
        );
    }
    Ok(())
}
