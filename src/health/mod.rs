//! Region health: HTTP(S) and TCP probes per region, rolled up into one
//! region-healthy signal (all probes, or the region's quorum).
//!
//! One background loop runs every region's probes concurrently each interval,
//! each bounded by its own timeout, and stores the latest result per probe in
//! [`HealthState`]; the scrape only copies those results. A failure is reduced to
//! a bounded [`ProbeStatus`]. For HTTPS the leaf certificate's expiry is read
//! from the handshake. State kept: the latest result and failure counts per probe.
//! [`HealthState`] is the probe subsystem of the `health:` section ([`Subsystem`]).

use crate::config::{Config, Health, Probe, Target};
use crate::metrics::{desc, MetricDesc, Samples};
use crate::probe::{Clusters, Subsystem};
use crate::supervise::Pace;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use std::time::Instant;
use tokio_util::sync::CancellationToken;

const PROBE: &[&str] = &["probe_region", "probe"];
const PROBE_STATUS: &[&str] = &["probe_region", "probe", "status"];
const PROBE_REASON: &[&str] = &["probe_region", "probe", "reason"];
const REGION: &[&str] = &["probe_region"];

desc!(REGION_HEALTHY, "rpo_region_healthy", Gauge, REGION, "1 if at least the region's quorum of probes passed in the last round (by default all of them), else 0; absent before the first round.");
desc!(
    REGION_PASSING,
    "rpo_region_probes_passing",
    Gauge,
    REGION,
    "Probes of the region that passed in the last round."
);
desc!(
    REGION_QUORUM,
    "rpo_region_probe_quorum",
    Gauge,
    REGION,
    "Probes of the region that must pass for it to be healthy."
);
desc!(PROBE_SUCCESS, "rpo_probe_success", Gauge, PROBE, "1 if the probe's last run passed, else 0.");
desc!(
    PROBE_DURATION,
    "rpo_probe_duration_seconds",
    Gauge,
    PROBE,
    "Duration of the probe's last run (connect, TLS handshake and response; at most its timeout)."
);
desc!(PROBE_STATE, "rpo_probe_status", Gauge, PROBE_STATUS, "1 for the probe's current outcome (ok, timeout, refused, resolve, tls, bad_status, error), 0 for the others.");
desc!(
    PROBE_FAILURES,
    "rpo_probe_failures",
    Counter,
    PROBE_REASON,
    "Failed probe runs by bounded reason (timeout, refused, resolve, tls, bad_status, error)."
);
desc!(
    HTTP_STATUS,
    "rpo_probe_http_status_code",
    Gauge,
    PROBE,
    "HTTP status code of the probe's last response; absent for TCP probes and before a response."
);
desc!(
    CERT_EXPIRY,
    "rpo_probe_tls_cert_expiry_timestamp_seconds",
    Gauge,
    PROBE,
    "When the certificate the HTTPS endpoint last presented (its leaf) expires."
);

desc!(ROUND_AGE, "rpo_probe_round_age_seconds", Gauge, &[], "Seconds since the region-probe loop last finished a round, at scrape time; absent before the first. Above two intervals plus the longest probe timeout, the probe results are stale (a stuck or crashed loop).");

/// The region-health families.
pub static METRICS: &[&MetricDesc] = &[
    &ROUND_AGE,
    &REGION_HEALTHY,
    &REGION_PASSING,
    &REGION_QUORUM,
    &PROBE_SUCCESS,
    &PROBE_DURATION,
    &PROBE_STATE,
    &PROBE_FAILURES,
    &HTTP_STATUS,
    &CERT_EXPIRY,
];

/// A probe's outcome, bounded: the `status` and `reason` label values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum ProbeStatus {
    Ok,
    /// No complete answer within the probe's timeout.
    Timeout,
    /// The connection was refused (nothing listens).
    Refused,
    /// The host name did not resolve.
    Resolve,
    /// The TLS handshake failed (untrusted, expired or mismatched certificate).
    Tls,
    /// An HTTP answer with a status code the probe does not accept.
    BadStatus,
    /// Anything else (reset connection, protocol error).
    Error,
}

impl ProbeStatus {
    pub const ALL: [ProbeStatus; 7] = [
        ProbeStatus::Ok,
        ProbeStatus::Timeout,
        ProbeStatus::Refused,
        ProbeStatus::Resolve,
        ProbeStatus::Tls,
        ProbeStatus::BadStatus,
        ProbeStatus::Error,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ProbeStatus::Ok => "ok",
            ProbeStatus::Timeout => "timeout",
            ProbeStatus::Refused => "refused",
            ProbeStatus::Resolve => "resolve",
            ProbeStatus::Tls => "tls",
            ProbeStatus::BadStatus => "bad_status",
            ProbeStatus::Error => "error",
        }
    }
}

/// What one probe run found.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub status: ProbeStatus,
    pub duration: f64,
    pub http_status: Option<u16>,
    pub cert_expiry: Option<f64>,
    /// For the log: what went wrong, without credentials (URLs are configured
    /// by the operator and carry none of ours).
    pub detail: String,
}

#[derive(Debug, Default, Clone)]
struct ProbeData {
    last: Option<Outcome>,
    failures: BTreeMap<ProbeStatus, u64>,
}

/// Latest results of every probe, per region in config order.
#[derive(Debug)]
pub struct HealthState {
    config: Health,
    probes: Mutex<Vec<Vec<ProbeData>>>,
    /// When the loop last finished a round: a loop that stops is seen by its age.
    last_round: Mutex<Option<Instant>>,
}

impl HealthState {
    pub fn new(config: &Health) -> HealthState {
        let probes = config.regions.iter().map(|r| vec![ProbeData::default(); r.probes.len()]).collect();
        HealthState { config: config.clone(), probes: Mutex::new(probes), last_round: Mutex::new(None) }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Vec<Vec<ProbeData>>> {
        self.probes.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn record(&self, region: usize, probe: usize, outcome: Outcome) {
        let mut all = self.lock();
        let data = &mut all[region][probe];
        if outcome.status != ProbeStatus::Ok {
            *data.failures.entry(outcome.status).or_default() += 1;
        }
        data.last = Some(outcome);
    }

    fn round_done(&self) {
        *self.last_round.lock().unwrap_or_else(|p| p.into_inner()) = Some(Instant::now());
    }
}

impl Subsystem for HealthState {
    const NAME: &'static str = "health";
    const METRICS: &'static [&'static MetricDesc] = METRICS;

    fn from_config(config: &Config) -> Option<HealthState> {
        config.health.as_ref().map(HealthState::new)
    }

    /// Whether `other` probes exactly what this one does.
    fn same_config(&self, other: &HealthState) -> bool {
        self.config == other.config
    }

    /// After a reload that changed the probes: every probe that is still probed
    /// the same way (same region, name, target and timeout) keeps its last result
    /// and failure counts, so a reload loses no reading of an unchanged probe.
    fn carry_over(&self, previous: &HealthState) {
        let old = previous.lock();
        let mut new = self.lock();
        for (region, results) in self.config.regions.iter().zip(new.iter_mut()) {
            let Some((old_region, old_results)) =
                previous.config.regions.iter().zip(old.iter()).find(|(r, _)| r.name == region.name)
            else {
                continue;
            };
            for (probe, data) in region.probes.iter().zip(results.iter_mut()) {
                if let Some((_, kept)) =
                    old_region.probes.iter().zip(old_results.iter()).find(|(p, _)| *p == probe)
                {
                    *data = kept.clone();
                }
            }
        }
        *self.last_round.lock().unwrap_or_else(|p| p.into_inner()) =
            *previous.last_round.lock().unwrap_or_else(|p| p.into_inner());
    }

    fn samples(&self, out: &mut Samples) {
        if let Some(at) = *self.last_round.lock().unwrap_or_else(|p| p.into_inner()) {
            out.push(&ROUND_AGE, &[], at.elapsed().as_secs_f64());
        }
        let all = self.lock();
        for (region, results) in self.config.regions.iter().zip(all.iter()) {
            let r = &[region.name.as_str()];
            out.push(&REGION_QUORUM, r, region.quorum as f64);
            let ran: Vec<&Outcome> = results.iter().filter_map(|p| p.last.as_ref()).collect();
            if ran.len() == results.len() {
                let passing = ran.iter().filter(|o| o.status == ProbeStatus::Ok).count();
                out.push(&REGION_PASSING, r, passing as f64);
                out.push(&REGION_HEALTHY, r, f64::from(u8::from(passing >= region.quorum)));
            }
            for (probe, data) in region.probes.iter().zip(results) {
                let l = &[region.name.as_str(), &probe.name];
                let with = |extra| [region.name.as_str(), &probe.name, extra];
                for (status, n) in &data.failures {
                    out.push(&PROBE_FAILURES, &with(status.as_str()), *n as f64);
                }
                let Some(o) = &data.last else { continue };
                out.push(&PROBE_SUCCESS, l, f64::from(u8::from(o.status == ProbeStatus::Ok)));
                out.push(&PROBE_DURATION, l, o.duration);
                for s in ProbeStatus::ALL {
                    out.push(&PROBE_STATE, &with(s.as_str()), f64::from(u8::from(o.status == s)));
                }
                if let Some(code) = o.http_status {
                    out.push(&HTTP_STATUS, l, f64::from(code));
                }
                if let Some(at) = o.cert_expiry {
                    out.push(&CERT_EXPIRY, l, at);
                }
            }
        }
    }

    async fn run(self: Arc<Self>, _: Arc<dyn Clusters>, shutdown: CancellationToken) {
        probe_loop(self, shutdown).await;
    }
}

/// A probe ready to run: HTTP probes carry their client (and its trust anchors).
struct Runner {
    region: usize,
    index: usize,
    region_name: String,
    probe: Probe,
    client: Result<reqwest::Client, ClientError>,
}

/// Why an HTTP probe has no client; the probe then reports `error` with it.
#[derive(Debug, thiserror::Error)]
enum ClientError {
    #[error("not an http probe")]
    NotHttp,
    #[error("cannot read ca_file {}: {source}", .path.display())]
    CaFile { path: std::path::PathBuf, source: std::io::Error },
    #[error("ca_file {}: {problem}", .path.display())]
    CaPem { path: std::path::PathBuf, problem: String },
    #[error("cannot build the HTTP client: {0}")]
    Build(String),
}

fn http_client(probe: &Probe) -> Result<reqwest::Client, ClientError> {
    let Target::Http { ca_file, insecure_skip_verify, .. } = &probe.target else {
        return Err(ClientError::NotHttp);
    };
    let mut builder = reqwest::Client::builder()
        .timeout(probe.timeout)
        .tls_info(true)
        .danger_accept_invalid_certs(*insecure_skip_verify)
        .user_agent(concat!("rpo-exporter/", env!("CARGO_PKG_VERSION")))
        // A probe checks one endpoint; a redirect elsewhere is its answer.
        .redirect(reqwest::redirect::Policy::none());
    if let Some(path) = ca_file {
        let pem = std::fs::read(path).map_err(|source| ClientError::CaFile { path: path.clone(), source })?;
        for cert in reqwest::Certificate::from_pem_bundle(&pem)
            .map_err(|e| ClientError::CaPem { path: path.clone(), problem: e.to_string() })?
        {
            builder = builder.add_root_certificate(cert);
        }
    }
    builder.build().map_err(|e| ClientError::Build(e.to_string()))
}

/// One region's probes, run on demand rather than by the loop: what
/// `rpo-exporter drill` asks when it waits for the new region to pass.
pub struct RegionCheck {
    runners: Vec<Arc<Runner>>,
    quorum: usize,
}

impl RegionCheck {
    pub fn new(region: &crate::config::Region) -> RegionCheck {
        let runners = region
            .probes
            .iter()
            .enumerate()
            .map(|(index, probe)| {
                Arc::new(Runner {
                    region: 0,
                    index,
                    region_name: region.name.clone(),
                    client: http_client(probe),
                    probe: probe.clone(),
                })
            })
            .collect();
        RegionCheck { runners, quorum: region.quorum }
    }

    /// Runs every probe once, concurrently, each within its timeout: (passed, quorum).
    pub async fn run(&self) -> (usize, usize) {
        let passed =
            run_round(&self.runners).await.iter().filter(|(_, o)| o.status == ProbeStatus::Ok).count();
        (passed, self.quorum)
    }
}

/// Probes every region until `shutdown` is cancelled.
async fn probe_loop(state: Arc<HealthState>, shutdown: CancellationToken) {
    let config = state.config.clone();
    let runners: Vec<Arc<Runner>> = config
        .regions
        .iter()
        .enumerate()
        .flat_map(|(ri, region)| {
            region.probes.iter().enumerate().map(move |(pi, probe)| {
                Arc::new(Runner {
                    region: ri,
                    index: pi,
                    region_name: region.name.clone(),
                    client: http_client(probe),
                    probe: probe.clone(),
                })
            })
        })
        .collect();
    let mut failing: Vec<bool> = vec![false; runners.len()];
    let mut pace = Pace::new(tokio::time::Instant::now(), config.interval, shutdown);
    while let Some(outcomes) = pace.round(run_round(&runners)).await {
        for (i, outcome) in outcomes {
            let r = &runners[i];
            let failed = outcome.status != ProbeStatus::Ok;
            if failed && !failing[i] {
                tracing::warn!(region = %r.region_name, probe = %r.probe.name, reason = outcome.status.as_str(),
                    error = %outcome.detail, "Probe failed");
            } else if !failed && failing[i] {
                tracing::info!(region = %r.region_name, probe = %r.probe.name, "Probe recovered");
            }
            failing[i] = failed;
            state.record(r.region, r.index, outcome);
        }
        state.round_done();
    }
}

/// Runs every probe once, concurrently. A probe that panics fails with status
/// `error` (and a log line) and costs nobody else their result.
async fn run_round(runners: &[Arc<Runner>]) -> Vec<(usize, Outcome)> {
    let probes = runners.iter().map(|r| {
        let r = r.clone();
        async move { probe_once(&r).await }
    });
    join_all_caught(probes)
        .await
        .into_iter()
        .enumerate()
        .map(|(i, outcome)| {
            let outcome = outcome.unwrap_or_else(|message| {
                let r = &runners[i];
                tracing::error!(region = %r.region_name, probe = %r.probe.name, error = %message,
                    "Probe crashed; counted as failed");
                failed(ProbeStatus::Error, format!("the probe crashed: {message}"))
            });
            (i, outcome)
        })
        .collect()
}

/// Runs the futures as concurrent tasks and returns their outputs in order; a
/// task that panicked gives its panic message instead.
async fn join_all_caught<T: Send + 'static>(
    futures: impl IntoIterator<Item = impl std::future::Future<Output = T> + Send + 'static>,
) -> Vec<Result<T, TaskFailed>> {
    let mut set = tokio::task::JoinSet::new();
    let mut index = std::collections::HashMap::new();
    for (i, f) in futures.into_iter().enumerate() {
        index.insert(set.spawn(f).id(), i);
    }
    let mut out: Vec<Option<Result<T, TaskFailed>>> = (0..index.len()).map(|_| None).collect();
    while let Some(joined) = set.join_next_with_id().await {
        let (id, result) = match joined {
            Ok((id, value)) => (id, Ok(value)),
            Err(e) if e.is_panic() => {
                (e.id(), Err(TaskFailed::Panicked(crate::supervise::panic_message(e.into_panic()))))
            }
            Err(e) => (e.id(), Err(TaskFailed::Cancelled(e.to_string()))),
        };
        out[index[&id]] = Some(result);
    }
    out.into_iter().map(|r| r.unwrap_or(Err(TaskFailed::Vanished))).collect()
}

/// Why a probe's task gave no outcome.
#[derive(Debug, thiserror::Error)]
enum TaskFailed {
    #[error("{0}")]
    Panicked(String),
    #[error("{0}")]
    Cancelled(String),
    #[error("the task vanished")]
    Vanished,
}

async fn probe_once(r: &Runner) -> Outcome {
    let start = Instant::now();
    let limit = r.probe.timeout;
    let mut outcome = match tokio::time::timeout(limit, attempt(r)).await {
        Ok(o) => o,
        Err(_) => Outcome {
            status: ProbeStatus::Timeout,
            duration: 0.0,
            http_status: None,
            cert_expiry: None,
            detail: format!("no answer within {}", humantime::format_duration(limit)),
        },
    };
    outcome.duration = start.elapsed().as_secs_f64();
    outcome
}

fn failed(status: ProbeStatus, detail: impl Into<String>) -> Outcome {
    Outcome { status, duration: 0.0, http_status: None, cert_expiry: None, detail: detail.into() }
}

async fn attempt(r: &Runner) -> Outcome {
    match &r.probe.target {
        Target::Tcp { address } => match tokio::net::TcpStream::connect(address.as_str()).await {
            Ok(_) => failed(ProbeStatus::Ok, ""),
            Err(e) => failed(classify_io(&e), format!("connect to {address}: {e}")),
        },
        Target::Http { url, expect_status, .. } => {
            let client = match &r.client {
                Ok(c) => c,
                Err(e) => return failed(ProbeStatus::Error, e.to_string()),
            };
            match client.get(url.clone()).send().await {
                Ok(resp) => {
                    let code = resp.status().as_u16();
                    let cert_expiry = resp
                        .extensions()
                        .get::<reqwest::tls::TlsInfo>()
                        .and_then(|info| info.peer_certificate())
                        .and_then(cert_not_after);
                    let accepted = if expect_status.is_empty() {
                        (200..300).contains(&code)
                    } else {
                        expect_status.contains(&code)
                    };
                    let status = if accepted { ProbeStatus::Ok } else { ProbeStatus::BadStatus };
                    Outcome {
                        status,
                        duration: 0.0,
                        http_status: Some(code),
                        cert_expiry,
                        detail: if accepted { String::new() } else { format!("HTTP status {code}") },
                    }
                }
                // reqwest's errors quote the URL, which may hold credentials.
                Err(e) => failed(classify_http(&e), crate::error_chain(&e.without_url())),
            }
        }
    }
}

/// The leaf certificate's notAfter, seconds since the epoch.
fn cert_not_after(der: &[u8]) -> Option<f64> {
    let (_, cert) = x509_parser::parse_x509_certificate(der).ok()?;
    Some(cert.validity().not_after.timestamp() as f64)
}

fn classify_io(e: &std::io::Error) -> ProbeStatus {
    use std::io::ErrorKind as K;
    match e.kind() {
        K::ConnectionRefused => ProbeStatus::Refused,
        K::TimedOut => ProbeStatus::Timeout,
        _ if e.to_string().contains("failed to lookup address") => ProbeStatus::Resolve,
        _ => ProbeStatus::Error,
    }
}

fn classify_http(e: &reqwest::Error) -> ProbeStatus {
    if e.is_timeout() {
        return ProbeStatus::Timeout;
    }
    // Walk the causes: the io error, the TLS error or the resolver's message.
    let mut source = std::error::Error::source(e);
    while let Some(s) = source {
        if let Some(io) = s.downcast_ref::<std::io::Error>() {
            if io.get_ref().is_some_and(|inner| inner.is::<rustls::Error>()) {
                return ProbeStatus::Tls;
            }
            let status = classify_io(io);
            if status != ProbeStatus::Error {
                return status;
            }
        }
        if s.is::<rustls::Error>() {
            return ProbeStatus::Tls;
        }
        let text = s.to_string();
        if text.contains("dns error") || text.contains("failed to lookup address") {
            return ProbeStatus::Resolve;
        }
        if text.contains("certificate") || text.contains("tls handshake") {
            return ProbeStatus::Tls;
        }
        source = s.source();
    }
    ProbeStatus::Error
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tcp(name: &str, port: u16) -> Probe {
        Probe {
            name: name.into(),
            target: Target::Tcp { address: format!("127.0.0.1:{port}") },
            timeout: std::time::Duration::from_secs(1),
        }
    }

    fn health(regions: &[(&str, Vec<Probe>)]) -> HealthState {
        HealthState::new(&Health {
            interval: std::time::Duration::from_secs(5),
            regions: regions
                .iter()
                .map(|(name, probes)| crate::config::Region {
                    name: (*name).into(),
                    quorum: probes.len(),
                    probes: probes.clone(),
                })
                .collect(),
        })
    }

    #[test]
    fn a_reload_keeps_the_results_of_unchanged_probes() {
        let old = health(&[("us", vec![tcp("a", 1), tcp("b", 2)]), ("eu", vec![tcp("c", 3)])]);
        for (region, probe) in [(0, 0), (0, 1), (1, 0)] {
            old.record(region, probe, failed(ProbeStatus::Refused, ""));
        }
        old.round_done();
        // b now probes another port, c moved region, d is new: only a keeps its result.
        let new = health(&[("us", vec![tcp("d", 4), tcp("b", 9), tcp("a", 1)]), ("ap", vec![tcp("c", 3)])]);
        new.carry_over(&old);
        let kept: Vec<Vec<bool>> =
            new.lock().iter().map(|r| r.iter().map(|p| p.last.is_some()).collect()).collect();
        assert_eq!(kept, vec![vec![false, false, true], vec![false]]);
        assert_eq!(new.lock()[0][2].failures.get(&ProbeStatus::Refused), Some(&1));
        let mut out = Samples::default();
        new.samples(&mut out);
        let text = format!("{out:?}");
        assert!(text.contains("rpo_probe_round_age_seconds"), "the round's age carried over: {text}");
    }

    #[tokio::test]
    async fn a_probe_that_panics_fails_alone() {
        let probes: Vec<std::pin::Pin<Box<dyn std::future::Future<Output = u8> + Send>>> =
            vec![Box::pin(async { 1 }), Box::pin(async { panic!("bad probe") }), Box::pin(async { 3 })];
        let got = join_all_caught(probes).await;
        let got: Vec<Result<u8, String>> = got.into_iter().map(|r| r.map_err(|e| e.to_string())).collect();
        assert_eq!(got, vec![Ok(1), Err("bad probe".to_owned()), Ok(3)]);
    }
}
