//! Support for the adversarial suite (`tests/adversarial_*.rs`): what every case
//! checks (Prometheus's own scrape stays fast, no panic, nothing measured before
//! is lost) and the hostile peers the tests play (a database port that accepts
//! and stays silent, one that closes each connection after the server's first
//! answer), and the /proc readings and slope fit of the soak.

use super::{Exporter, Metrics, Sample};
use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// What Prometheus's scrape may take, attack or not.
pub const SCRAPE_BUDGET: Duration = Duration::from_secs(1);

/// One scrape as Prometheus makes it: its own client and connection, a timeout
/// longer than the budget so a slow answer is measured rather than cut.
pub async fn prometheus_scrape(addr: &str) -> Result<(Metrics, Duration), String> {
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .pool_max_idle_per_host(0)
        .build()
        .map_err(|e| e.to_string())?;
    let start = Instant::now();
    let resp = client.get(format!("http://{addr}/metrics")).send().await.map_err(|e| format!("{e:?}"))?;
    if !resp.status().is_success() {
        return Err(format!("status {}", resp.status()));
    }
    let text = resp.text().await.map_err(|e| format!("{e:?}"))?;
    let took = start.elapsed();
    Ok((Metrics::parse(&text), took))
}

/// Prometheus scraping in the background (every `every`) while a case runs.
pub struct Scraper {
    stop: Arc<AtomicBool>,
    task: JoinHandle<Vec<(Duration, Result<Metrics, String>)>>,
}

/// What the background scrapes saw.
pub struct Scrapes {
    pub results: Vec<(Duration, Result<Metrics, String>)>,
}

impl Scraper {
    pub fn start(exporter: &Exporter, every: Duration) -> Scraper {
        let addr = exporter.addr.clone();
        let stop = Arc::new(AtomicBool::new(false));
        let flag = stop.clone();
        let task = tokio::spawn(async move {
            let mut out = Vec::new();
            while !flag.load(Ordering::SeqCst) {
                let start = Instant::now();
                let result = prometheus_scrape(&addr).await;
                out.push(match result {
                    Ok((m, took)) => (took, Ok(m)),
                    Err(e) => (start.elapsed(), Err(e)),
                });
                tokio::time::sleep(every).await;
            }
            out
        });
        Scraper { stop, task }
    }

    pub async fn finish(self) -> Scrapes {
        self.stop.store(true, Ordering::SeqCst);
        Scrapes { results: self.task.await.expect("scraper task") }
    }
}

impl Scrapes {
    /// The slowest scrape; panics (with the log) if any failed or took over the
    /// budget, or if there were none.
    pub fn assert_fast(&self, what: &str, exporter: &Exporter) -> Duration {
        assert!(!self.results.is_empty(), "{what}: no scrape was made");
        let mut slowest = Duration::ZERO;
        for (took, result) in &self.results {
            if let Err(e) = result {
                panic!("{what}: Prometheus's scrape failed after {took:?}: {e}\nlog:\n{}", tail(exporter));
            }
            slowest = slowest.max(*took);
        }
        assert!(
            slowest < SCRAPE_BUDGET,
            "{what}: Prometheus's scrape took {slowest:?} (budget {SCRAPE_BUDGET:?})\nlog:\n{}",
            tail(exporter)
        );
        slowest
    }

    /// Every successful scrape, in order.
    pub fn metrics(&self) -> impl Iterator<Item = &Metrics> {
        self.results.iter().filter_map(|(_, r)| r.as_ref().ok())
    }

    pub fn count(&self) -> usize {
        self.results.len()
    }
}

/// The last 200 lines of the exporter's log, for failure messages.
pub fn tail(exporter: &Exporter) -> String {
    let log = exporter.log();
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(200)..].join("\n")
}

/// The exporter logged no panic (a panicking worker is restarted, so only the log
/// tells).
pub fn assert_no_panic(exporter: &Exporter) {
    let log = exporter.log();
    let panics: Vec<&str> = log.lines().filter(|l| l.contains("panicked")).collect();
    assert!(panics.is_empty(), "the exporter panicked:\n{}", panics.join("\n"));
}

/// The exporter logged a line containing every one of `needles`.
pub fn assert_logged(exporter: &Exporter, needles: &[&str]) {
    let log = exporter.log();
    assert!(
        log.lines().any(|l| needles.iter().all(|n| l.contains(n))),
        "no log line with {needles:?}; log:\n{}",
        tail(exporter)
    );
}

/// A series' identity: its name and labels.
pub fn key(s: &Sample) -> String {
    let labels: Vec<String> = s.labels.iter().map(|(k, v)| format!("{k}={v:?}")).collect();
    format!("{}{{{}}}", s.name, labels.join(","))
}

/// Every series of `before` that `exempt` does not excuse is still in `after`.
/// The `*_source_info` series are excused: each names the bound a pair's lag or
/// exposure came from, which may change from one reading to the next (their
/// pair's lag and exposure series are still checked).
pub fn assert_kept(what: &str, before: &Metrics, after: &Metrics, exempt: impl Fn(&Sample) -> bool) {
    let now: BTreeSet<String> = after.samples.iter().map(key).collect();
    let lost: Vec<String> = before
        .samples
        .iter()
        .filter(|s| !exempt(s) && !s.name.ends_with("_source_info"))
        .map(key)
        .filter(|k| !now.contains(k))
        .collect();
    assert!(lost.is_empty(), "{what}: series measured before are gone:\n{}", lost.join("\n"));
}

/// Series that belong to `node` (its own, or a pair it is part of).
pub fn of_node(node: &str) -> impl Fn(&Sample) -> bool + '_ {
    move |s: &Sample| {
        ["node", "source_node", "replica_node"]
            .iter()
            .any(|l| s.labels.get(*l).map(String::as_str) == Some(node))
    }
}

/// Series documented to come and go on a healthy lab: PostgreSQL's own standby
/// lag is absent while it reports NULL (no recent WAL activity to time).
pub fn volatile(s: &Sample) -> bool {
    s.name == "rpo_pg_standby_lag_seconds"
}

/// A database port that accepts connections and never says a word: a server
/// that hung after `accept`, or a black hole behind a load balancer.
pub struct SilentPeer {
    port: u16,
    accepted: Arc<AtomicUsize>,
    open: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl SilentPeer {
    pub async fn start() -> SilentPeer {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let (accepted, open) = (Arc::new(AtomicUsize::new(0)), Arc::new(AtomicUsize::new(0)));
        let (a, o) = (accepted.clone(), open.clone());
        let task = tokio::spawn(async move {
            while let Ok((mut stream, _)) = listener.accept().await {
                a.fetch_add(1, Ordering::SeqCst);
                o.fetch_add(1, Ordering::SeqCst);
                let o = o.clone();
                // Read (and ignore) whatever comes until the client gives up.
                tokio::spawn(async move {
                    let mut buf = [0u8; 4096];
                    while matches!(stream.read(&mut buf).await, Ok(n) if n > 0) {}
                    o.fetch_sub(1, Ordering::SeqCst);
                });
            }
        });
        SilentPeer { port, accepted, open, task }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// Connections accepted so far.
    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }

    /// Connections the client has not closed yet.
    pub fn open(&self) -> usize {
        self.open.load(Ordering::SeqCst)
    }
}

impl Drop for SilentPeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A relay in front of a real server that forwards the server's first answer
/// (MySQL's greeting, PostgreSQL's authentication request) and then closes both
/// sides: a server that drops every connection right after the handshake.
pub struct CutPeer {
    port: u16,
    accepted: Arc<AtomicUsize>,
    task: JoinHandle<()>,
}

impl CutPeer {
    pub async fn start(target: u16) -> CutPeer {
        let listener = TcpListener::bind(("127.0.0.1", 0)).await.unwrap();
        let port = listener.local_addr().unwrap().port();
        let accepted = Arc::new(AtomicUsize::new(0));
        let a = accepted.clone();
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                a.fetch_add(1, Ordering::SeqCst);
                tokio::spawn(cut_after_first_answer(client, target));
            }
        });
        CutPeer { port, accepted, task }
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    pub fn accepted(&self) -> usize {
        self.accepted.load(Ordering::SeqCst)
    }
}

impl Drop for CutPeer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn cut_after_first_answer(client: TcpStream, target: u16) {
    let Ok(server) = TcpStream::connect(("127.0.0.1", target)).await else { return };
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    // Client → server until the cut.
    let upstream = tokio::spawn(async move {
        let mut buf = [0u8; 4096];
        while let Ok(n) = client_read.read(&mut buf).await {
            if n == 0 || server_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
        }
    });
    // The server's first answer, then nothing: both sockets close.
    let mut buf = [0u8; 4096];
    if let Ok(n) = server_read.read(&mut buf).await {
        if n > 0 {
            let _ = client_write.write_all(&buf[..n]).await;
        }
    }
    upstream.abort();
}

/// VmRSS in KiB and the number of open file descriptors of `pid`.
pub fn rss_and_fds(pid: u32) -> (f64, f64) {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc/PID/status");
    let rss = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .and_then(|v| v.parse::<f64>().ok())
        .expect("VmRSS in /proc/PID/status");
    let fds = std::fs::read_dir(format!("/proc/{pid}/fd")).expect("read /proc/PID/fd").count();
    (rss, fds as f64)
}

/// Least-squares slope of `ys` over `xs`.
pub fn slope(xs: &[f64], ys: &[f64]) -> f64 {
    let n = xs.len() as f64;
    let (mx, my) = (xs.iter().sum::<f64>() / n, ys.iter().sum::<f64>() / n);
    let cov: f64 = xs.iter().zip(ys).map(|(x, y)| (x - mx) * (y - my)).sum();
    let var: f64 = xs.iter().map(|x| (x - mx) * (x - mx)).sum();
    cov / var
}
