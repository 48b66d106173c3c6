//! The DNS loop: every `dns.interval`, one round over every record.
//!
//! A round (1) works out each record's expected answer — the fixed `active_region`'s,
//! or the region of the followed cluster's writable node as the node workers last
//! saw it ([`Clusters::writable_region`]); (2) finds zones and authoritative servers where needed
//! (cached for [`DISCOVERY_REFRESH`], retried after [`DISCOVERY_RETRY`] while failing); (3) asks
//! every resolver and authoritative server for every record, and every authoritative
//! server for its zone's SOA serial, all at once, each bounded by `dns.timeout`, and
//! stores each outcome as soon as it arrives, so one silent server delays nobody
//! else's result. A round lasts about one timeout (plus discovery when due), and the
//! timeout is at most the interval.

use super::discover::{self, DiscoveryError};
use super::query::{query_record, query_serial, Answer, Failure, Mode, Outcome};
use super::{DnsData, DnsState};
use crate::config::{Active, Authoritative, Dns, Record, RecordType};
use crate::probe::Clusters;
use crate::supervise::Pace;
use hickory_net::proto::rr::{Name, RecordType as WireType};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How long a discovered zone and its name servers are trusted before asking again.
pub const DISCOVERY_REFRESH: Duration = Duration::from_secs(300);
/// How long a failed discovery waits before the next attempt: a discovery asks servers
/// one after the other, so failing ones must not slow every round.
pub const DISCOVERY_RETRY: Duration = Duration::from_secs(30);

fn wall_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or_default()
}

/// What the loop knows of a record between rounds (besides what `State` shows).
struct Plan {
    name: Name,
    wire_type: WireType,
    /// Configured, or discovered.
    zone: Option<String>,
    authoritative: Vec<SocketAddr>,
    discovered_at: Option<Instant>,
    failed_at: Option<Instant>,
    /// The last discovery error, so a failing discovery logs once.
    discovery_error: Option<PlanError>,
}

/// Why a record's zone or servers are not known this round.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
enum PlanError {
    #[error("cannot find the zone of {record}: {problem}")]
    Zone { record: String, problem: DiscoveryError },
    #[error("cannot discover the name servers of {zone}: {problem}")]
    Servers { zone: String, problem: DiscoveryError },
}

/// One finished query of a round.
enum Done {
    Record { index: usize, mode: Mode, server: SocketAddr, outcome: Outcome<Answer> },
    Serial { zone: String, server: SocketAddr, outcome: Outcome<u32> },
}

/// Runs the DNS loop until `shutdown` is cancelled: [`DnsState`]'s loop as a probe
/// subsystem. The exporter supervises it (`crate::supervise`): a round that panics
/// costs a restart, never DNS for good.
pub async fn run(dns: Arc<DnsState>, clusters: Arc<dyn Clusters>, shutdown: CancellationToken) {
    let config = dns.config();
    let mut plans: Vec<Plan> = config
        .records
        .iter()
        .map(|r| Plan {
            name: Name::from_ascii(&r.name).expect("validated by config"),
            wire_type: match r.record_type {
                RecordType::A => WireType::A,
                RecordType::Aaaa => WireType::AAAA,
                RecordType::Cname => WireType::CNAME,
            },
            zone: r.zone.clone(),
            authoritative: match &r.authoritative {
                Authoritative::List(list) => list.clone(),
                Authoritative::Discover { .. } => Vec::new(),
            },
            discovered_at: None,
            failed_at: None,
            discovery_error: None,
        })
        .collect();
    let mut pace = Pace::new(tokio::time::Instant::now(), config.interval, shutdown);
    while pace.round(round(&dns, &*clusters, config, &mut plans)).await.is_some() {}
    tracing::debug!("DNS loop stopped");
}

async fn round(dns: &DnsState, clusters: &dyn Clusters, config: &Dns, plans: &mut [Plan]) {
    set_expected(dns, clusters, config);
    discover_all(config, plans).await;

    // The round's servers: the records' resolvers and authoritative servers, and each
    // zone's authoritative servers (the union over its records).
    let mut zones: BTreeMap<String, BTreeSet<SocketAddr>> = BTreeMap::new();
    {
        let mut d = dns.lock();
        for (i, (r, plan)) in config.records.iter().zip(plans.iter()).enumerate() {
            let servers = r
                .resolvers
                .iter()
                .map(|s| (Mode::Recursive, *s))
                .chain(plan.authoritative.iter().map(|s| (Mode::Authoritative, *s)));
            d.records[i].state.set_servers(servers);
            d.records[i].authoritative = plan.authoritative.len();
            if let Some(zone) = &plan.zone {
                zones.entry(zone.clone()).or_default().extend(plan.authoritative.iter().copied());
            }
        }
        d.zones.retain(|z, _| zones.contains_key(z));
        for (zone, servers) in &zones {
            let z = d.zones.entry(zone.clone()).or_default();
            z.servers.retain(|s, _| servers.contains(s));
            for s in servers {
                z.servers.entry(*s).or_insert(None);
            }
        }
    }

    let timeout = config.timeout;
    let mut tasks = JoinSet::new();
    for (index, (r, plan)) in config.records.iter().zip(plans.iter()).enumerate() {
        let servers = r
            .resolvers
            .iter()
            .map(|s| (Mode::Recursive, *s))
            .chain(plan.authoritative.iter().map(|s| (Mode::Authoritative, *s)));
        for (mode, server) in servers {
            let (name, wire_type) = (plan.name.clone(), plan.wire_type);
            tasks.spawn(async move {
                let outcome = query_record(server, &name, wire_type, mode, timeout).await;
                Done::Record { index, mode, server, outcome }
            });
        }
    }
    for (zone, servers) in zones {
        let Ok(zone_name) = Name::from_ascii(&zone) else { continue };
        for server in servers {
            let (zone, zone_name) = (zone.clone(), zone_name.clone());
            tasks.spawn(async move {
                let outcome = query_serial(server, &zone_name, timeout).await;
                Done::Serial { zone, server, outcome }
            });
        }
    }
    while let Some(done) = tasks.join_next().await {
        match done {
            Ok(done) => apply(&mut dns.lock(), done),
            Err(e) => tracing::error!(error = %e, "DNS query task failed"),
        }
    }
    // From now on a publication is one the exporter saw happen (not one it found in
    // place), for records whose expected answer is known.
    let mut d = dns.lock();
    for r in d.records.iter_mut().filter(|r| r.state.expected.is_some()) {
        r.state.first_round_done = true;
    }
    d.last_round = Some(Instant::now());
}

/// Stores one outcome, and logs what changed for an operator.
fn apply(d: &mut DnsData, done: Done) {
    let now = wall_now();
    match done {
        Done::Record { index, mode, server, outcome } => {
            let entry = &mut d.records[index];
            let before =
                entry.state.servers.get(&(mode, server)).filter(|s| s.last.is_some()).map(|s| s.failure());
            let failure = outcome.result.as_ref().err().copied();
            log_transition(&entry.name, mode, server, before, failure);
            let (published, propagation) = (entry.state.published_at, entry.state.propagation);
            entry.state.record(mode, server, outcome, now);
            let s = &entry.state;
            if s.published_at.is_some() && published.is_none() {
                tracing::info!(record = %entry.name, region = ?s.active_region, "Expected DNS answer published by every authoritative server");
            }
            if let (Some(p), None) = (s.propagation, propagation) {
                tracing::info!(record = %entry.name, region = ?s.active_region, seconds = p,
                    "Expected DNS answer served by every resolver");
            }
        }
        Done::Serial { zone, server, outcome } => {
            if let Some(z) = d.zones.get_mut(&zone) {
                let was = z.agree();
                if let Some(slot) = z.servers.get_mut(&server) {
                    *slot = Some(outcome);
                }
                let now_agree = z.agree();
                if was == Some(true) && now_agree == Some(false) {
                    tracing::warn!(zone = %zone, "Authoritative servers disagree on the SOA serial");
                } else if was == Some(false) && now_agree == Some(true) {
                    tracing::info!(zone = %zone, "Authoritative servers agree on the SOA serial again");
                }
            }
        }
    }
}

/// Logs a server starting or stopping to fail for a record (once per streak).
fn log_transition(
    record: &str,
    mode: Mode,
    server: SocketAddr,
    before: Option<Option<Failure>>,
    now: Option<Failure>,
) {
    match (before.flatten(), now) {
        (None, Some(f)) => {
            tracing::warn!(record, server = %server, mode = mode.as_str(), reason = f.as_str(),
            "DNS query failed")
        }
        (Some(b), Some(f)) if b != f => tracing::warn!(record, server = %server, mode = mode.as_str(),
            reason = f.as_str(), "DNS query failed"),
        (Some(_), None) => {
            tracing::info!(record, server = %server, mode = mode.as_str(), "DNS query recovered")
        }
        _ => {}
    }
}

/// Sets every record's expected answer from its active region.
fn set_expected(dns: &DnsState, clusters: &dyn Clusters, config: &Dns) {
    let now = wall_now();
    let regions: Vec<Option<String>> = config
        .records
        .iter()
        .map(|r| match &r.active {
            Active::Region(region) => Some(region.clone()),
            Active::FollowCluster(cluster) => clusters.writable_region(cluster),
        })
        .collect();
    let mut d = dns.lock();
    for ((r, region), entry) in config.records.iter().zip(regions).zip(d.records.iter_mut()) {
        // No writable node right now (a failover in progress): keep what was expected.
        let Some(region) = region else { continue };
        let before = entry.state.active_region.clone();
        match r.answers.get(&region) {
            Some(values) => entry.state.set_expected(&region, values, now),
            None => entry.state.clear_expected(&region, now),
        }
        if before.as_deref() != Some(region.as_str()) {
            log_region(r, before.as_deref(), &region);
        }
    }
}

fn log_region(r: &Record, before: Option<&str>, region: &str) {
    if r.answers.contains_key(region) {
        tracing::info!(record = %r.name, from = before.unwrap_or("none"), to = region, "Expected DNS answer follows the active region");
    } else {
        tracing::warn!(record = %r.name, region, "The active region has no answer configured for this record; its answers cannot be judged");
    }
}

/// Finds zones and name servers that are missing or due, all records at once.
async fn discover_all(config: &Dns, plans: &mut [Plan]) {
    let timeout = config.timeout;
    let mut tasks = JoinSet::new();
    for (i, (r, plan)) in config.records.iter().zip(plans.iter()).enumerate() {
        let due = plan.discovered_at.is_none_or(|t| t.elapsed() >= DISCOVERY_REFRESH)
            && plan.failed_at.is_none_or(|t| t.elapsed() >= DISCOVERY_RETRY);
        let discover_servers = matches!(r.authoritative, Authoritative::Discover { .. });
        if !due || (r.zone.is_some() && !discover_servers) {
            continue;
        }
        let (r, configured_zone) = (r.clone(), r.zone.clone());
        tasks.spawn(async move {
            let zone = match configured_zone {
                Some(z) => z,
                None => {
                    let (servers, mode) = match &r.authoritative {
                        Authoritative::List(list) => (list.clone(), Mode::Authoritative),
                        Authoritative::Discover { .. } => (r.resolvers.clone(), Mode::Recursive),
                    };
                    match discover::zone_of(&r.name, &servers, mode, timeout).await {
                        Ok(z) => z,
                        Err(problem) => return (i, Err(PlanError::Zone { record: r.name.clone(), problem })),
                    }
                }
            };
            let servers = match r.authoritative {
                Authoritative::List(list) => Ok(list),
                Authoritative::Discover { port } => {
                    discover::name_servers(&zone, &r.resolvers, port, timeout)
                        .await
                        .map_err(|problem| PlanError::Servers { zone: zone.clone(), problem })
                }
            };
            (i, servers.map(|s| (zone, s)))
        });
    }
    while let Some(joined) = tasks.join_next().await {
        let Ok((i, result)) = joined else { continue };
        let plan = &mut plans[i];
        match result {
            Ok((zone, servers)) => {
                if plan.zone.as_deref() != Some(zone.as_str()) || plan.authoritative != servers {
                    let list: Vec<String> = servers.iter().map(ToString::to_string).collect();
                    tracing::info!(record = %config.records[i].name, zone = %zone, servers = %list.join(","),
                        "Authoritative servers found");
                }
                plan.zone = Some(zone);
                plan.authoritative = servers;
                plan.discovered_at = Some(Instant::now());
                plan.failed_at = None;
                plan.discovery_error = None;
            }
            Err(e) => {
                if plan.discovery_error.as_ref() != Some(&e) {
                    tracing::warn!(record = %config.records[i].name, error = %e, "DNS discovery failed; retrying in 30 s");
                }
                plan.discovery_error = Some(e);
                plan.failed_at = Some(Instant::now());
                // Keep last round's servers, if any: better a stale list than none.
            }
        }
    }
}
