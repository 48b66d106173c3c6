//! The node store: each configured node's latest measurements, written by its
//! worker and copied out by the scrape.
//!
//! One [`NodeState`] per node, each behind its own short-held mutex: a worker
//! locks only to store a finished result, a scrape only to copy numbers out, and
//! no lock is ever held across an `.await`. Counters live here too, so they
//! survive reconnects. A [`ClusterState`] groups a cluster's nodes with the
//! cluster's configuration and turns them into samples
//! ([`ClusterState::samples`], exposure aged to the scrape), each node's label
//! sets encoded once and reused by every scrape (only values are encoded anew). Which nodes are kept
//! across a reload is the root's business (the `state` module); this module knows
//! one configuration at a time.
//!
//! A scrape also reuses a node's encoded samples while the node is unchanged:
//! every write to a node's data goes through [`NodeGuard`], which counts it (the
//! node's generation), and the samples that depend on the data alone are encoded
//! again only when the generation moved since they were last encoded. What depends
//! on the scrape's instant (measurement ages, exposure, whether the last read is
//! still fresh) is worked out on every scrape. The reused samples are handed to
//! the scrape by reference (an `Arc`), so their lines are copied once, into the
//! scrape's body.

use crate::config::Cluster;
use crate::engine::{ErrorKind, Written};
use crate::heartbeat::{
    mono_now, ClockSample, CommitPosition, ExposureSource, LagSource, PositionHistory, PositionSample,
    Reading, RowStatus, WriteHistory,
};
use crate::metrics::{self, Samples, Switch, Switches};
use std::collections::BTreeMap;
use std::ops::{Deref, DerefMut};
use std::sync::{Arc, Mutex, MutexGuard};

/// The measurement loops a worker runs on each node.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Collector {
    /// Connect, then role, identity and clock.
    Role,
    HeartbeatWrite,
    HeartbeatRead,
    /// The engine's native replication signals.
    Replication,
}

impl Collector {
    pub const ALL: [Collector; 4] =
        [Collector::Role, Collector::HeartbeatWrite, Collector::HeartbeatRead, Collector::Replication];

    pub fn as_str(self) -> &'static str {
        match self {
            Collector::Role => "role",
            Collector::HeartbeatWrite => "heartbeat_write",
            Collector::HeartbeatRead => "heartbeat_read",
            Collector::Replication => "replication",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

#[derive(Debug, Default, Clone)]
pub struct CollectorData {
    /// Whether it has ever run on this node (a replica never writes heartbeats).
    pub ran: bool,
    pub last_ok: bool,
    pub last_duration: f64,
    pub last_success_mono: Option<f64>,
    pub errors: BTreeMap<ErrorKind, u64>,
}

pub use crate::pairs::PairData;

#[derive(Debug, Default)]
pub struct NodeData {
    pub up: bool,
    pub writable: Option<bool>,
    pub identity: Option<String>,
    pub expected_row_identity: Option<String>,
    /// Identities under which this node's heartbeat rows may appear.
    pub aliases: Vec<String>,
    pub clock: Option<ClockSample>,
    /// Database clock minus host wall clock, seconds.
    pub clock_offset: Option<f64>,
    pub collectors: [CollectorData; 4],
    pub writes: u64,
    pub sessions_opened: u64,
    pub last_written: Option<Written>,
    /// Whether this exporter holds the node's write lease, once it tried to write.
    pub write_lease: Option<bool>,
    pub history: WriteHistory,
    /// Sources seen on this node, by source node name.
    pub pairs: BTreeMap<String, PairData>,
    /// Times the node's role (writable or not) changed, and when it last did
    /// (wall clock, seconds since the epoch).
    pub role_changes: u64,
    pub role_changed_at: Option<f64>,
    pub unlisted_rows: usize,
    pub malformed_rows: usize,
    /// The engine's native replication samples, encoded by the worker when it
    /// collected them (so a scrape that encodes the node again copies them).
    pub native: Samples,
}

impl NodeData {
    /// Up and accepting writes at its last probe.
    pub fn is_writer(&self) -> bool {
        self.up && self.writable == Some(true)
    }

    pub fn collector(&mut self, c: Collector) -> &mut CollectorData {
        &mut self.collectors[c.index()]
    }

    pub fn record_success(&mut self, c: Collector, duration: f64) {
        let d = self.collector(c);
        d.ran = true;
        d.last_ok = true;
        d.last_duration = duration;
        d.last_success_mono = Some(mono_now());
    }

    pub fn record_failure(&mut self, c: Collector, duration: f64, kind: ErrorKind) {
        let d = self.collector(c);
        d.ran = true;
        d.last_ok = false;
        d.last_duration = duration;
        *d.errors.entry(kind).or_default() += 1;
    }
}

#[derive(Debug)]
pub struct NodeState {
    pub cluster: String,
    pub name: String,
    pub region: String,
    data: Mutex<Tracked>,
    /// The node's label sets, encoded once for the scrape.
    keys: NodeKeys,
    /// The node's samples that depend on its data alone, as the last scrape
    /// encoded them.
    encoded: Mutex<Encoded>,
    /// The node's commit positions, sampled between heartbeats while it is
    /// writable. Apart from its data: no series shows them, so recording one
    /// leaves the node's encoded samples valid.
    positions: Mutex<PositionHistory>,
}

/// A node's data and its generation: how many times it was borrowed for
/// writing. Only [`NodeGuard`] reaches the data, so no change can leave the
/// generation where it was.
#[derive(Debug, Default)]
struct Tracked {
    data: NodeData,
    generation: u64,
}

/// A node's data, locked ([`NodeState::lock`]). Reading through it changes
/// nothing; every mutable borrow moves the node's generation on (before the
/// lock is let go), whether or not a value then changes.
pub struct NodeGuard<'a> {
    guard: MutexGuard<'a, Tracked>,
}

impl NodeGuard<'_> {
    /// Moves on with every mutable borrow of the data: two equal generations
    /// read under the lock mean the data was not written in between.
    pub fn generation(&self) -> u64 {
        self.guard.generation
    }
}

impl Deref for NodeGuard<'_> {
    type Target = NodeData;
    fn deref(&self) -> &NodeData {
        &self.guard.data
    }
}

impl DerefMut for NodeGuard<'_> {
    fn deref_mut(&mut self) -> &mut NodeData {
        let tracked = &mut *self.guard;
        tracked.generation = tracked.generation.wrapping_add(1);
        &mut tracked.data
    }
}

/// A node's samples that depend on its data alone ([`fixed_samples`]), and
/// what they were encoded from: the node's generation and whether its last
/// read was fresh. Reused while both are the same; never shown for another.
#[derive(Debug, Default)]
struct Encoded {
    from: Option<(u64, bool)>,
    /// Shared with the scrapes that show them ([`Samples::append_shared`]):
    /// encoded again in place when no scrape holds them any more, else anew.
    samples: Arc<Samples>,
}

/// A node's label sets as the scrape writes them ([`metrics::label_block`]):
/// its series' labels never change while the node lives, so only their values
/// are encoded on each scrape. A cache that cannot serve a stale value: it
/// holds labels only, each entry keyed by every label value it encodes.
#[derive(Debug)]
struct NodeKeys {
    /// `{db_cluster,node,node_region}`.
    node: String,
    /// The same and `collector`, per [`Collector`].
    collectors: [String; 4],
    /// Per pair seen on this node: its source's name and region, and its blocks.
    pairs: Mutex<BTreeMap<String, PairKeys>>,
}

#[derive(Debug)]
struct PairKeys {
    source_region: String,
    /// `{db_cluster,source_node,source_region,replica_node,replica_region}`.
    pair: String,
    /// The same and `status`, per [`RowStatus::ALL`].
    statuses: Vec<String>,
    /// The same and `source`, per [`ExposureSource::ALL`].
    exposure_sources: Vec<String>,
    /// The same and `source`, per [`LagSource::ALL`].
    lag_sources: Vec<String>,
}

impl PairKeys {
    fn new(node: &NodeState, source: &str, source_region: &str) -> PairKeys {
        let pair = [node.cluster.as_str(), source, source_region, &node.name, &node.region];
        PairKeys {
            source_region: source_region.to_owned(),
            pair: metrics::label_block(metrics::PAIR, &pair),
            statuses: RowStatus::ALL
                .iter()
                .map(|s| {
                    let [c, so, sr, n, r] = pair;
                    metrics::label_block(metrics::ROW_STATUS.labels, &[c, so, sr, n, r, s.as_str()])
                })
                .collect(),
            exposure_sources: ExposureSource::ALL
                .iter()
                .map(|s| {
                    let [c, so, sr, n, r] = pair;
                    metrics::label_block(metrics::EXPOSURE_SOURCE.labels, &[c, so, sr, n, r, s.as_str()])
                })
                .collect(),
            lag_sources: LagSource::ALL
                .iter()
                .map(|s| {
                    let [c, so, sr, n, r] = pair;
                    metrics::label_block(metrics::LAG_SOURCE.labels, &[c, so, sr, n, r, s.as_str()])
                })
                .collect(),
        }
    }
}

impl NodeState {
    /// A node with nothing measured yet.
    pub fn new(cluster: &str, name: &str, region: &str) -> NodeState {
        let labels = [cluster, name, region];
        NodeState {
            cluster: cluster.to_owned(),
            name: name.to_owned(),
            region: region.to_owned(),
            data: Mutex::default(),
            keys: NodeKeys {
                node: metrics::label_block(metrics::NODE, &labels),
                collectors: Collector::ALL.map(|c| {
                    metrics::label_block(
                        metrics::COLLECTOR_SUCCESS.labels,
                        &[cluster, name, region, c.as_str()],
                    )
                }),
                pairs: Mutex::new(BTreeMap::new()),
            },
            encoded: Mutex::default(),
            positions: Mutex::default(),
        }
    }

    /// The node's commit positions (a cheap clone).
    pub fn positions(&self) -> PositionHistory {
        self.positions.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The newest commit position sampled on the node, if any.
    pub fn latest_position(&self) -> Option<CommitPosition> {
        self.positions.lock().unwrap_or_else(|p| p.into_inner()).latest().cloned()
    }

    /// Records a commit position sampled on the node.
    pub fn record_position(&self, sample: PositionSample) {
        self.positions.lock().unwrap_or_else(|p| p.into_inner()).push(sample);
    }

    pub fn lock(&self) -> NodeGuard<'_> {
        // A panic while holding the lock cannot leave numbers half-written in a
        // way that matters more than losing the exporter; keep serving.
        NodeGuard { guard: self.data.lock().unwrap_or_else(|p| p.into_inner()) }
    }
}

#[derive(Debug)]
pub struct ClusterState {
    pub config: Arc<Cluster>,
    pub nodes: Vec<Arc<NodeState>>,
}

impl ClusterState {
    /// The cluster `config` describes, none of its nodes measured yet.
    pub fn new(config: &Cluster) -> ClusterState {
        ClusterState {
            config: Arc::new(config.clone()),
            nodes: config
                .nodes
                .iter()
                .map(|n| Arc::new(NodeState::new(&config.name, &n.name, &n.region)))
                .collect(),
        }
    }

    pub fn node(&self, name: &str) -> Option<&Arc<NodeState>> {
        self.nodes.iter().find(|n| n.name == name)
    }

    /// The cluster's samples and its nodes', copied out at monotonic time `now`.
    pub fn samples(&self, now: f64, switches: Switches, out: &mut Samples) {
        let c = &self.config;
        let cl = &[c.name.as_str()];
        out.push(&metrics::CLUSTER_INFO, &[&c.name, c.write_mode.as_str()], 1.0);
        out.push(&metrics::OBJECTIVE, cl, c.rpo.as_secs_f64());
        out.push(&metrics::RTO_OBJECTIVE, cl, c.rto.as_secs_f64());
        out.push(&metrics::HEARTBEAT_INTERVAL, cl, c.heartbeat.interval.as_secs_f64());
        let writable = self.nodes.iter().filter(|n| n.lock().is_writer()).count();
        out.push(&metrics::WRITABLE_NODES, cl, writable as f64);
        let hb = &c.heartbeat;
        let max_age = (hb.interval + 2 * hb.timeout).as_secs_f64() + 1.0;
        for node in &self.nodes {
            node_samples(node, now, max_age, switches, out);
        }
    }
}

/// A node's samples: the ones of its data alone as the last scrape encoded them
/// when the node has not changed since (and its last read is as fresh or stale
/// as then), else encoded anew; then the ones of the scrape's instant.
fn node_samples(node: &NodeState, now: f64, max_age: f64, switches: Switches, out: &mut Samples) {
    let d = node.lock();
    // A pair's lag is only as good as the last read: when the node is down, the
    // read failed, or it is older than a worker can take to notice a failure, the
    // series go absent (unknown) rather than repeat an old value that may read 0.
    let read = &d.collectors[Collector::HeartbeatRead.index()];
    let fresh = d.up && read.last_ok && read.last_success_mono.is_some_and(|t| now - t <= max_age);
    let mut encoded = node.encoded.lock().unwrap_or_else(|p| p.into_inner());
    let from = Some((d.generation(), fresh));
    if encoded.from != from {
        let samples = Arc::make_mut(&mut encoded.samples);
        samples.clear();
        fixed_samples(node, &d, fresh, switches, samples);
        encoded.from = from;
    }
    out.append_shared(encoded.samples.clone());
    drop(encoded);
    instant_samples(node, &d, now, fresh, out);
}

/// The samples of the scrape's instant: each collector's measurement age, each
/// fresh pair's exposure aged to the scrape.
fn instant_samples(node: &NodeState, d: &NodeData, now: f64, fresh: bool, out: &mut Samples) {
    for c in Collector::ALL {
        let cd = &d.collectors[c.index()];
        if let (true, Some(t)) = (cd.ran, cd.last_success_mono) {
            out.push_block(&metrics::MEASUREMENT_AGE, &node.keys.collectors[c.index()], (now - t).max(0.0));
        }
    }
    if !fresh {
        return;
    }
    let mut pair_keys = node.keys.pairs.lock().unwrap_or_else(|p| p.into_inner());
    for (source, p) in &d.pairs {
        if let Some(Reading::Ok { exposure, .. }) = p.reading {
            // Exposure stays an upper bound of the truth until the next read: since
            // this one, the newest heartbeat the replica shows can only have aged.
            // Lag stays as read: the replica may have caught up since.
            let k = pair_key(node, &mut pair_keys, source, p);
            out.push_block(&metrics::EXPOSURE, &k.pair, exposure + (now - p.read_mono).max(0.0));
        }
    }
}

/// The kept label sets of the pair from `source`, made when it is new.
fn pair_key<'a>(
    node: &NodeState,
    pair_keys: &'a mut BTreeMap<String, PairKeys>,
    source: &str,
    p: &PairData,
) -> &'a PairKeys {
    if !pair_keys.contains_key(source) {
        pair_keys.insert(source.to_owned(), PairKeys::new(node, source, &p.source_region));
    }
    &pair_keys[source]
}

/// The node's samples that depend on its data alone (and on whether its last
/// read is `fresh`), not on the scrape's instant: what a scrape may reuse while
/// the node's generation stays the same.
fn fixed_samples(node: &NodeState, d: &NodeData, fresh: bool, switches: Switches, out: &mut Samples) {
    let stats = switches.enabled(Switch::CollectorStats);
    let row_status = switches.enabled(Switch::RowStatus);
    let keys = &node.keys;
    let labels = &[node.cluster.as_str(), &node.name, &node.region];
    let [cluster, name, region] = *labels;
    let n = keys.node.as_str();
    out.push_block(&metrics::NODE_UP, n, f64::from(u8::from(d.up)));
    if let (true, Some(w)) = (d.up, d.writable) {
        out.push_block(&metrics::NODE_WRITABLE, n, f64::from(u8::from(w)));
    }
    out.push_block(&metrics::SESSIONS_OPENED, n, d.sessions_opened as f64);
    out.push_block(&metrics::ROLE_CHANGES, n, d.role_changes as f64);
    if let Some(at) = d.role_changed_at {
        out.push_block(&metrics::ROLE_CHANGED, n, at);
    }
    if let Some(offset) = d.clock_offset {
        out.push_block(&metrics::CLOCK_OFFSET, n, offset);
    }
    if let Some(clock) = d.clock {
        out.push_block(&metrics::CLOCK_RTT, n, clock.rtt);
    }
    for c in Collector::ALL {
        let cd = &d.collectors[c.index()];
        if !cd.ran {
            continue;
        }
        let l = keys.collectors[c.index()].as_str();
        if stats {
            out.push_block(&metrics::COLLECTOR_SUCCESS, l, f64::from(u8::from(cd.last_ok)));
            out.push_block(&metrics::COLLECTOR_DURATION, l, cd.last_duration);
        }
        for (kind, n) in &cd.errors {
            out.push(
                &metrics::COLLECTOR_ERRORS,
                &[cluster, name, region, c.as_str(), kind.as_str()],
                *n as f64,
            );
        }
    }
    if let Some(held) = d.write_lease {
        out.push_block(&metrics::HB_WRITER, n, f64::from(u8::from(held)));
    }
    if d.writes > 0 {
        out.push_block(&metrics::HB_WRITES, n, d.writes as f64);
    }
    if let Some(w) = d.last_written {
        out.push_block(&metrics::HB_WRITTEN, n, w.written_us as f64 / 1e6);
        out.push_block(&metrics::HB_SEQUENCE, n, w.seq as f64);
    }
    let read = &d.collectors[Collector::HeartbeatRead.index()];
    let mut pair_keys = keys.pairs.lock().unwrap_or_else(|p| p.into_inner());
    // Only the pairs the node has now keep their blocks.
    pair_keys.retain(|source, k| d.pairs.get(source).is_some_and(|p| p.source_region == k.source_region));
    for (source, p) in &d.pairs {
        let k = pair_key(node, &mut pair_keys, source, p);
        let pair = k.pair.as_str();
        if let (true, Some(Reading::Ok { lag, .. })) = (fresh, p.reading) {
            out.push_block(&metrics::LAG, pair, lag);
            if row_status {
                let at = ExposureSource::ALL.iter().position(|s| *s == p.exposure_source).unwrap_or(0);
                out.push_block(&metrics::EXPOSURE_SOURCE, &k.exposure_sources[at], 1.0);
                let at = LagSource::ALL.iter().position(|s| *s == p.lag_source).unwrap_or(0);
                out.push_block(&metrics::LAG_SOURCE, &k.lag_sources[at], 1.0);
            }
        }
        if let Some(us) = p.seen_written_us {
            out.push_block(&metrics::SEEN, pair, us as f64 / 1e6);
        }
        if row_status {
            for (s, status) in RowStatus::ALL.iter().zip(&k.statuses) {
                out.push_block(&metrics::ROW_STATUS, status, f64::from(u8::from(p.status == *s)));
            }
        }
        out.push_block(&metrics::SEQ_REGRESSIONS, pair, p.regressions as f64);
    }
    drop(pair_keys);
    if read.ran {
        for (reason, rows) in [("unlisted_source", d.unlisted_rows), ("malformed", d.malformed_rows)] {
            out.push(&metrics::UNKNOWN_ROWS, &[cluster, name, region, reason], rows as f64);
        }
    }
    out.append(&d.native);
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heartbeat::Basis;

    fn cluster() -> ClusterState {
        let yaml = "clusters:\n  - name: c\n    rpo: 30s\n    rto: 5m\n    nodes:\n      - { name: p, region: us-east-1, engine: postgres, dsn: \"host=127.0.0.1 user=rpo dbname=postgres\" }\n      - { name: r, region: eu-west-1, engine: postgres, dsn: \"host=127.0.0.1 port=5433 user=rpo dbname=postgres\" }\n";
        let config = crate::config::Config::parse(std::path::Path::new("<test>"), yaml).unwrap();
        ClusterState::new(&config.clusters[0])
    }

    fn scrape(c: &ClusterState, switches: Switches) -> String {
        scrape_at(c, switches, crate::heartbeat::mono_now())
    }

    fn scrape_at(c: &ClusterState, switches: Switches, now: f64) -> String {
        let mut out = Samples::default();
        c.samples(now, switches, &mut out);
        out.flatten();
        let mut text = String::new();
        for desc in metrics::CORE {
            if let Some(f) = out.take(desc) {
                // Every line carries exactly its family's labels, in order: a
                // kept label set can only be used for the families it was made for.
                assert!(f.samples().all(|(labels, _)| labels.count() == desc.labels.len()));
                text.push_str(f.lines());
            }
        }
        text
    }

    fn pair(region: &str, lag: f64) -> PairData {
        PairData {
            source_region: region.to_owned(),
            status: RowStatus::Ok,
            reading: Some(Reading::Ok { lag, exposure: lag + 0.5, basis: Basis::Monotonic }),
            exposure_source: ExposureSource::Heartbeat,
            lag_source: LagSource::Heartbeat,
            applied: None,
            read_mono: mono_now(),
            seen_written_us: Some(1_700_000_000_000_000),
            last_seq: Some(1),
            regressions: 0,
        }
    }

    /// Label sets are encoded once and kept; every change in the store shows in
    /// the next scrape, a changed label value (a source's region) included, and a
    /// pair that is gone leaves no line and no kept block behind.
    #[test]
    fn each_scrape_shows_the_store_as_it_is_now() {
        let c = cluster();
        let r = &c.nodes[1];
        {
            let mut d = r.lock();
            d.up = true;
            d.writable = Some(false);
            d.record_success(Collector::HeartbeatRead, 0.001);
            d.pairs.insert("p".into(), pair("us-east-1", 0.25));
        }
        let first = scrape(&c, Switches::default());
        let key = "{db_cluster=\"c\",source_node=\"p\",source_region=\"us-east-1\",replica_node=\"r\",replica_region=\"eu-west-1\"}";
        assert!(first.contains(&format!("rpo_replication_lag_seconds{key} 0.25\n")), "{first}");
        assert!(first.contains("rpo_node_up{db_cluster=\"c\",node=\"r\",node_region=\"eu-west-1\"} 1\n"));
        assert!(first.contains("rpo_heartbeat_row_status{db_cluster=\"c\",source_node=\"p\",source_region=\"us-east-1\",replica_node=\"r\",replica_region=\"eu-west-1\",status=\"ok\"} 1\n"));

        {
            let mut d = r.lock();
            d.up = false;
            d.pairs.insert("p".into(), pair("us-west-2", 3.5));
            d.record_success(Collector::Role, 0.125);
        }
        let second = scrape(&c, Switches::default());
        assert!(second.contains("rpo_node_up{db_cluster=\"c\",node=\"r\",node_region=\"eu-west-1\"} 0\n"));
        assert!(!second.contains("us-east-1\",replica_node"), "the old region's block stayed:\n{second}");
        assert!(second.contains("source_region=\"us-west-2\""), "{second}");
        assert!(!second.contains("rpo_replication_lag_seconds{"), "a down node's lag is unknown:\n{second}");
        assert!(second.contains("rpo_collector_duration_seconds{db_cluster=\"c\",node=\"r\",node_region=\"eu-west-1\",collector=\"role\"} 0.125\n"));

        r.lock().pairs.clear();
        let third = scrape(&c, Switches::default().with(Switch::CollectorStats, false));
        assert!(!third.contains("source_node="), "{third}");
        assert!(!third.contains("rpo_collector_duration_seconds"), "{third}");
        assert!(r.keys.pairs.lock().unwrap().is_empty(), "a gone pair's block is dropped");
    }

    /// The node's encoded samples of its data alone, and what they were made from.
    fn encoded(node: &NodeState) -> (Option<(u64, bool)>, String) {
        let e = node.encoded.lock().unwrap();
        let text = metrics::CORE.iter().filter_map(|d| e.samples.get(d)).map(|f| f.lines()).collect();
        (e.from, text)
    }

    /// Reading a node leaves its generation alone; any write moves it on.
    #[test]
    fn only_writes_move_a_node_generation() {
        let c = cluster();
        let node = &c.nodes[0];
        let g0 = node.lock().generation();
        assert!(!node.lock().is_writer());
        let _ = node.lock().pairs.len();
        assert_eq!(node.lock().generation(), g0, "reads are no change");
        node.lock().sessions_opened += 1;
        let g1 = node.lock().generation();
        assert_ne!(g1, g0);
        node.lock().record_success(Collector::Role, 0.001);
        assert_ne!(node.lock().generation(), g1, "a write through a method counts too");
    }

    /// An unchanged node's encoded samples are reused byte for byte; a changed
    /// one's are encoded again and show the new values on the next scrape; what
    /// depends on the scrape's instant (ages, exposure, whether the last read is
    /// still fresh) follows the instant even while the node's samples are reused.
    #[test]
    fn a_scrape_reuses_only_unchanged_nodes_samples() {
        let c = cluster();
        let (p, r) = (&c.nodes[0], &c.nodes[1]);
        // A whole second, so the instants below and their differences are exact
        // in binary and print as written (t0 + 1.0 − t0 is 0.9999… for some t0).
        let t0 = mono_now().floor();
        {
            let mut d = p.lock();
            d.up = true;
            d.writable = Some(true);
            d.writes = 5;
            d.record_success(Collector::HeartbeatWrite, 0.002);
        }
        {
            let mut d = r.lock();
            d.up = true;
            d.writable = Some(false);
            d.record_success(Collector::HeartbeatRead, 0.001);
            d.collector(Collector::HeartbeatRead).last_success_mono = Some(t0);
            let mut pair = pair("us-east-1", 0.25);
            pair.read_mono = t0;
            d.pairs.insert("p".into(), pair);
        }
        let key = "{db_cluster=\"c\",source_node=\"p\",source_region=\"us-east-1\",replica_node=\"r\",replica_region=\"eu-west-1\"}";
        let age = |s: f64| {
            format!("rpo_measurement_age_seconds{{db_cluster=\"c\",node=\"r\",node_region=\"eu-west-1\",collector=\"heartbeat_read\"}} {s}\n")
        };
        let first = scrape_at(&c, Switches::default(), t0 + 1.0);
        assert!(first.contains(&format!("rpo_data_loss_exposure_seconds{key} 1.75\n")), "{first}");
        assert!(first.contains(&age(1.0)), "{first}");
        let (p_from, p_text) = encoded(p);
        let (r_from, r_text) = encoded(r);
        assert!(p_text.contains(
            "rpo_heartbeat_writes_total{db_cluster=\"c\",node=\"p\",node_region=\"us-east-1\"} 5\n"
        ));

        // Nothing written: both nodes' samples are reused as they were, while
        // the ages and the exposure move with the scrape's instant.
        let second = scrape_at(&c, Switches::default(), t0 + 3.0);
        assert_eq!(encoded(p), (p_from, p_text.clone()));
        assert_eq!(encoded(r), (r_from, r_text.clone()));
        assert!(second.contains(&format!("rpo_data_loss_exposure_seconds{key} 3.75\n")), "{second}");
        assert!(second.contains(&age(3.0)) && !second.contains(&age(1.0)), "{second}");
        assert!(second.contains(&format!("rpo_replication_lag_seconds{key} 0.25\n")));

        // The primary writes a heartbeat: its samples are encoded again and show
        // it; the replica's are still reused.
        p.lock().writes = 6;
        let third = scrape_at(&c, Switches::default(), t0 + 3.0);
        assert!(
            third.contains(
                "rpo_heartbeat_writes_total{db_cluster=\"c\",node=\"p\",node_region=\"us-east-1\"} 6\n"
            ),
            "{third}"
        );
        assert!(!third.contains("} 5\n"), "{third}");
        assert_ne!(encoded(p).0, p_from);
        assert_eq!(encoded(r), (r_from, r_text.clone()));

        // Long after the last read, the replica's lag goes absent although the
        // replica itself has not changed: freshness is the scrape's instant's.
        let late = scrape_at(&c, Switches::default(), t0 + 3600.0);
        assert!(!late.contains("rpo_replication_lag_seconds{"), "{late}");
        assert!(!late.contains("rpo_data_loss_exposure_seconds{"), "{late}");
        assert!(late.contains(&format!("rpo_heartbeat_seen_timestamp_seconds{key} 1700000000\n")));
        assert_eq!(encoded(r).0, r_from.map(|(g, _)| (g, false)));
        // And back at a fresh instant it is there again, as before.
        let again = scrape_at(&c, Switches::default(), t0 + 3.0);
        assert_eq!(again, third);
    }
}
