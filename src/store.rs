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

use crate::config::Cluster;
use crate::engine::{ErrorKind, Written};
use crate::heartbeat::{
    mono_now, ClockSample, ExposureSource, LagSource, PositionHistory, Reading, RowStatus, WriteHistory,
};
use crate::metrics::{self, Sample, Samples, Switch, Switches};
use std::collections::BTreeMap;
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
    /// This node's commit positions, sampled between heartbeats while it is
    /// writable.
    pub positions: PositionHistory,
    /// Sources seen on this node, by source node name.
    pub pairs: BTreeMap<String, PairData>,
    /// Times the node's role (writable or not) changed, and when it last did
    /// (wall clock, seconds since the epoch).
    pub role_changes: u64,
    pub role_changed_at: Option<f64>,
    pub unlisted_rows: usize,
    pub malformed_rows: usize,
    pub native: Vec<Sample>,
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
    data: Mutex<NodeData>,
    /// The node's label sets, encoded once for the scrape.
    keys: NodeKeys,
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
            data: Mutex::new(NodeData::default()),
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
        }
    }

    pub fn lock(&self) -> MutexGuard<'_, NodeData> {
        // A panic while holding the lock cannot leave numbers half-written in a
        // way that matters more than losing the exporter; keep serving.
        self.data.lock().unwrap_or_else(|p| p.into_inner())
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

fn node_samples(node: &NodeState, now: f64, max_age: f64, switches: Switches, out: &mut Samples) {
    let stats = switches.enabled(Switch::CollectorStats);
    let row_status = switches.enabled(Switch::RowStatus);
    let d = node.lock();
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
        if let Some(t) = cd.last_success_mono {
            out.push_block(&metrics::MEASUREMENT_AGE, l, (now - t).max(0.0));
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
    // A pair's lag is only as good as the last read: when the node is down, the
    // read failed, or it is older than a worker can take to notice a failure, the
    // series go absent (unknown) rather than repeat an old value that may read 0.
    let read = &d.collectors[Collector::HeartbeatRead.index()];
    let fresh = d.up && read.last_ok && read.last_success_mono.is_some_and(|t| now - t <= max_age);
    let mut pair_keys = keys.pairs.lock().unwrap_or_else(|p| p.into_inner());
    // Only the pairs the node has now keep their blocks.
    pair_keys.retain(|source, k| d.pairs.get(source).is_some_and(|p| p.source_region == k.source_region));
    for (source, p) in &d.pairs {
        if !pair_keys.contains_key(source) {
            pair_keys.insert(source.clone(), PairKeys::new(node, source, &p.source_region));
        }
        let k = &pair_keys[source];
        let pair = k.pair.as_str();
        if let (true, Some(Reading::Ok { lag, exposure, .. })) = (fresh, p.reading) {
            out.push_block(&metrics::LAG, pair, lag);
            // Exposure stays an upper bound of the truth until the next read: since
            // this one, the newest heartbeat the replica shows can only have aged.
            // Lag stays as read: the replica may have caught up since.
            out.push_block(&metrics::EXPOSURE, pair, exposure + (now - p.read_mono).max(0.0));
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
    out.extend(&d.native);
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
        let mut out = Samples::default();
        c.samples(crate::heartbeat::mono_now(), switches, &mut out);
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
}
