//! DNS propagation: after a regional failover, traffic only moves when DNS does.
//!
//! For every configured failover record this module owns the answer expected now
//! (the active region's, fixed or following a cluster's writable node), each
//! resolver's and each authoritative server's latest answer, the propagation clock
//! of the last change ([`record::RecordState`]), and every authoritative server's SOA
//! serial per zone. One background loop ([`runner`]) asks all servers every
//! `dns.interval`, concurrently, each query bounded by `dns.timeout`, and stores each
//! outcome the moment it arrives in [`DnsState`]; a scrape only copies those numbers
//! out, so it never waits on DNS. [`DnsState`] is the probe subsystem of the `dns:`
//! section ([`Subsystem`]): how it is built from the config, carried over on a
//! reload, sampled and run.
//!
//! - [`query`]: one question to one server (UDP, TCP after truncation) and the
//!   bounded [`query::Failure`] reasons.
//! - [`discover`]: a record's zone and the zone's name servers.
//! - [`record`]: the pure propagation logic, tested without a network.
//! - [`runner`]: the loop, and the follow-the-cluster rule.
//!
//! Record values (addresses, names) never become label values: series are labelled
//! with the configured record name, type, region names and server addresses.

pub mod discover;
pub mod query;
pub mod record;
pub mod runner;

use crate::config::{Config, Dns};
use crate::metrics::{desc, MetricDesc, Samples};
use crate::probe::{Clusters, Subsystem};
use query::{Failure, Outcome};
use record::RecordState;
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard};
use tokio_util::sync::CancellationToken;

const RECORD: &[&str] = &["record", "record_type"];
const SERVER: &[&str] = &["record", "record_type", "resolver", "mode"];

desc!(RECORD_INFO, "rpo_dns_record_info", Gauge, &["record", "record_type", "active_region"], "Always 1 per configured record; active_region is the region whose answer is expected now (none until known: a followed cluster without a writable node yet).");
desc!(ANSWER_MATCHES, "rpo_dns_answer_matches", Gauge, SERVER, "1 if the server's last answer is the expected answer (the same set of values), else 0, also when the query failed; absent while the expected answer is unknown.");
desc!(ANSWER_TTL, "rpo_dns_answer_ttl_seconds", Gauge, SERVER, "TTL of the server's last answer (the smallest of its records); a resolver's counts down as its cached copy ages. Absent after a failed query.");
desc!(QUERY_SUCCESS, "rpo_dns_query_success", Gauge, SERVER, "1 if the server's last query got records of the type (with the AA flag, from an authoritative server), else 0.");
desc!(FAILURE_REASON, "rpo_dns_query_failure_reason", Gauge, &["record", "record_type", "resolver", "mode", "reason"], "1 for why the server's last query failed (timeout, network, refused, servfail, nxdomain, nodata, not_authoritative, malformed, other), 0 for the other reasons; all 0 after a success.");
desc!(FAILURES, "rpo_dns_query_failures", Counter, &["record", "record_type", "resolver", "mode", "reason"], "Failed queries to the server by reason (as rpo_dns_query_failure_reason lists them): catches failures between scrapes.");
desc!(
    QUERY_DURATION,
    "rpo_dns_query_duration_seconds",
    Gauge,
    SERVER,
    "Duration of the server's last query (UDP, and TCP after a truncated answer)."
);
desc!(RATIO, "rpo_dns_propagation_ratio", Gauge, RECORD, "Fraction of the record's resolvers whose last answer is the expected one (a failing resolver counts as not serving it); absent while the expected answer is unknown.");
desc!(CHANGED, "rpo_dns_expected_answer_changed_timestamp_seconds", Gauge, RECORD, "When the expected answer last changed: when it was first known after the exporter started, or when the followed cluster's writable node moved to a region with another answer.");
desc!(PUBLISHED, "rpo_dns_published_timestamp_seconds", Gauge, RECORD, "When every authoritative server that answered first served the expected answer since it last changed; absent while they do not.");
desc!(PROPAGATION, "rpo_dns_propagation_seconds", Gauge, RECORD, "Seconds from publication to every resolver serving the expected answer, for the last change: what resolver caches added (compare with the TTL). Absent until then, and for a change already published when the exporter started.");
desc!(AUTH_SERVERS, "rpo_dns_authoritative_servers", Gauge, RECORD, "Authoritative servers asked for the record in the last round (listed, or discovered from the zone's NS records); 0 while discovery fails.");
desc!(
    SOA_SERIAL,
    "rpo_dns_soa_serial",
    Gauge,
    &["dns_zone", "resolver"],
    "SOA serial the authoritative server last reported for the zone; absent after a failed query."
);
desc!(SERIALS_AGREE, "rpo_dns_soa_serials_agree", Gauge, &["dns_zone"], "1 if every authoritative server that answered reports the same SOA serial for the zone, 0 if they differ; absent when none answered.");

desc!(ROUND_AGE, "rpo_dns_round_age_seconds", Gauge, &[], "Seconds since the DNS loop last finished a round, at scrape time; absent before the first. Above two intervals plus the timeout, the DNS results are stale (a stuck or crashed loop).");

/// The DNS families, in exposition order.
pub static METRICS: &[&MetricDesc] = &[
    &ROUND_AGE,
    &RECORD_INFO,
    &ANSWER_MATCHES,
    &ANSWER_TTL,
    &QUERY_SUCCESS,
    &FAILURE_REASON,
    &FAILURES,
    &QUERY_DURATION,
    &RATIO,
    &CHANGED,
    &PUBLISHED,
    &PROPAGATION,
    &AUTH_SERVERS,
    &SOA_SERIAL,
    &SERIALS_AGREE,
];

/// One configured record and what is known of it.
#[derive(Debug)]
pub struct RecordEntry {
    /// The `record` label: the configured name, normalised.
    pub name: String,
    pub record_type: &'static str,
    pub state: RecordState,
    /// Authoritative servers asked in the last round.
    pub authoritative: usize,
}

/// One zone's authoritative servers and their last SOA outcome.
#[derive(Debug, Default)]
pub struct ZoneState {
    pub servers: BTreeMap<SocketAddr, Option<Outcome<u32>>>,
}

impl ZoneState {
    /// Some(true) if every server that answered has the same serial, Some(false) if
    /// not, None if none answered.
    pub fn agree(&self) -> Option<bool> {
        let mut serials = self.servers.values().filter_map(|o| o.as_ref()?.result.as_ref().ok());
        let first = serials.next()?;
        Some(serials.all(|s| s == first))
    }
}

#[derive(Debug, Default)]
pub struct DnsData {
    /// In config order.
    pub records: Vec<RecordEntry>,
    /// By zone name (normalised, trailing dot).
    pub zones: BTreeMap<String, ZoneState>,
    /// When the loop last finished a round: a loop that stops is seen by its age.
    pub last_round: Option<std::time::Instant>,
}

/// The DNS loop's latest results, behind one short-held mutex (never held across an
/// `.await`).
#[derive(Debug)]
pub struct DnsState {
    config: Dns,
    data: Mutex<DnsData>,
}

impl DnsState {
    pub fn new(config: &Dns) -> DnsState {
        let records = config
            .records
            .iter()
            .map(|r| RecordEntry {
                name: r.name.clone(),
                record_type: r.record_type.as_str(),
                state: RecordState::default(),
                authoritative: 0,
            })
            .collect();
        DnsState {
            config: config.clone(),
            data: Mutex::new(DnsData { records, zones: BTreeMap::new(), last_round: None }),
        }
    }

    pub fn config(&self) -> &Dns {
        &self.config
    }

    pub fn lock(&self) -> MutexGuard<'_, DnsData> {
        self.data.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Subsystem for DnsState {
    const NAME: &'static str = "dns";
    const METRICS: &'static [&'static MetricDesc] = METRICS;

    fn from_config(config: &Config) -> Option<DnsState> {
        config.dns.as_ref().map(DnsState::new)
    }

    /// Whether `other` checks exactly what this one does (a reload may keep it).
    fn same_config(&self, other: &DnsState) -> bool {
        self.config == other.config
    }

    /// Takes over what `previous` knew of the records both configs have (same name
    /// and type, in order) and of the zones, so a reload that changes one record's
    /// servers neither blanks the others' readings until the next round nor
    /// restarts a propagation clock. The next round reconciles the servers with
    /// the new config. `previous`'s loop may still be finishing a round: its
    /// entries stay in place (emptied), so it writes into nothing anyone reads.
    fn carry_over(&self, previous: &DnsState) {
        let mut old = previous.lock();
        let mut new = self.lock();
        let mut taken = vec![false; old.records.len()];
        for entry in &mut new.records {
            let same = |(i, o): &(usize, &RecordEntry)| {
                !taken[*i] && o.name == entry.name && o.record_type == entry.record_type
            };
            if let Some((i, _)) = old.records.iter().enumerate().find(same) {
                taken[i] = true;
                entry.state = std::mem::take(&mut old.records[i].state);
                entry.authoritative = old.records[i].authoritative;
            }
        }
        new.zones = std::mem::take(&mut old.zones);
        // The readings carried over are as old as the last round that made them.
        new.last_round = old.last_round;
    }

    /// Copies the latest DNS results into `out`.
    fn samples(&self, out: &mut Samples) {
        let d = self.lock();
        if let Some(at) = d.last_round {
            out.push(&ROUND_AGE, &[], at.elapsed().as_secs_f64());
        }
        for r in &d.records {
            record_samples(r, out);
        }
        for (zone, z) in &d.zones {
            for (server, outcome) in &z.servers {
                if let Some(Ok(serial)) = outcome.as_ref().map(|o| &o.result) {
                    out.push(&SOA_SERIAL, &[zone, &server.to_string()], f64::from(*serial));
                }
            }
            if let Some(agree) = z.agree() {
                out.push(&SERIALS_AGREE, &[zone], f64::from(u8::from(agree)));
            }
        }
    }

    /// The loop ([`runner::run`]); `follow_cluster` asks `clusters`.
    async fn run(self: Arc<Self>, clusters: Arc<dyn Clusters>, shutdown: CancellationToken) {
        runner::run(self, clusters, shutdown).await;
    }
}

fn record_samples(r: &RecordEntry, out: &mut Samples) {
    let s = &r.state;
    let record = &[r.name.as_str(), r.record_type];
    let active = s.active_region.as_deref().unwrap_or("none");
    out.push(&RECORD_INFO, &[&r.name, r.record_type, active], 1.0);
    if let Some(ratio) = s.ratio() {
        out.push(&RATIO, record, ratio);
    }
    for (metric, value) in
        [(&CHANGED, s.changed_at), (&PUBLISHED, s.published_at), (&PROPAGATION, s.propagation)]
    {
        if let Some(v) = value {
            out.push(metric, record, v);
        }
    }
    out.push(&AUTH_SERVERS, record, r.authoritative as f64);
    for (&(mode, server), slot) in &s.servers {
        let Some(last) = &slot.last else { continue };
        let addr = server.to_string();
        let labels = &[&r.name, r.record_type, &addr, mode.as_str()];
        let with = |reason: Failure| [&r.name, r.record_type, &addr, mode.as_str(), reason.as_str()];
        if let Some(m) = s.matches(mode, server) {
            out.push(&ANSWER_MATCHES, labels, f64::from(u8::from(m)));
        }
        if let Some(a) = slot.answer() {
            out.push(&ANSWER_TTL, labels, f64::from(a.ttl));
        }
        out.push(&QUERY_SUCCESS, labels, f64::from(u8::from(slot.answer().is_some())));
        for f in Failure::ALL {
            out.push(&FAILURE_REASON, &with(f), f64::from(u8::from(slot.failure() == Some(f))));
        }
        for (f, n) in &slot.failures {
            out.push(&FAILURES, &with(*f), *n as f64);
        }
        out.push(&QUERY_DURATION, labels, last.duration.as_secs_f64());
    }
}
