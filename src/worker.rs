//! One background loop per configured node: connect, probe, write, read, measure.
//!
//! Every heartbeat interval the worker probes the node's role and clock, writes a
//! heartbeat when the node accepts writes, reads every heartbeat row the node
//! shows and turns each into a (source → replica) reading, then reads the
//! engine's native replication signals. Each step is bounded by the cluster's
//! timeout; a step that breaks the connection drops the session, and the next
//! connection attempt waits out an exponential backoff (reset only by a whole
//! successful tick). A query timeout keeps a PostgreSQL session for up to a
//! connect deadline, so a busy server is not also asked to authenticate the
//! exporter again every interval; at most a few sessions open at once across the
//! exporter. Results land in the node's [`NodeState`]; the worker holds no lock
//! across an `.await` and never holds two nodes' locks at once.

use crate::config::{is_label_safe, Cluster, Sources, WriteMode};
use crate::engine::{EngineError, ErrorKind, HeartbeatRead, HeartbeatRow, NodeLabels, Session};
use crate::heartbeat::{evaluate, mono_now, ClockSample, PairInput, Reading, RowStatus, WriteRecord};
use crate::state::{ClusterState, Collector, NodeState, PairData};
use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::time::MissedTickBehavior;
use tokio_util::sync::CancellationToken;

/// Longest wait between connection attempts to a node that is down.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Most sources one replica may report that the config does not list.
const MAX_UNLISTED_SOURCES: usize = 32;
/// How long a clock sample of a source may serve to map its timestamps.
const CLOCK_SAMPLE_TTL: f64 = 600.0;
/// Sessions being opened at once, across the whole exporter. Opening one costs the
/// server a process and an authentication (about 10 ms of CPU for SCRAM) and the
/// exporter its side of the handshake: hundreds at once would starve the very
/// queries that measure lag.
static CONNECTS: tokio::sync::Semaphore = tokio::sync::Semaphore::const_new(8);

/// Exponential backoff with jitter, starting at one interval.
struct Backoff {
    base: Duration,
    next: Duration,
}

impl Backoff {
    fn new(base: Duration) -> Self {
        Backoff { base, next: base }
    }

    fn reset(&mut self) {
        self.next = self.base;
    }

    fn next_delay(&mut self) -> Duration {
        let d = self.next.mul_f64(0.8 + 0.4 * fastrand::f64());
        self.next = (self.next * 2).min(MAX_BACKOFF);
        d.min(MAX_BACKOFF)
    }
}

/// Runs `fut` with a deadline; returns its result and how long it took.
async fn timed<T>(
    limit: Duration,
    what: &str,
    fut: impl Future<Output = Result<T, EngineError>>,
) -> (Result<T, EngineError>, f64) {
    let start = Instant::now();
    let result = match tokio::time::timeout(limit, fut).await {
        Ok(r) => r,
        Err(_) => Err(EngineError::timeout(what, limit)),
    };
    (result, start.elapsed().as_secs_f64())
}

fn wall_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_secs_f64()).unwrap_or_default()
}

pub struct Worker {
    cluster_config: Arc<Cluster>,
    cluster: Arc<ClusterState>,
    index: usize,
    node: Arc<NodeState>,
    labels: NodeLabels,
    session: Option<Session>,
    table_ready: bool,
    backoff: Backoff,
    retry_at: Instant,
    /// Per collector, whether its last run failed, so a streak of failures
    /// logs one warning (and its end one line) instead of one per interval.
    failing: [bool; 4],
    /// Where in its interval the first tick falls, as a fraction of it.
    phase: f64,
    /// Since when queries have been timing out on a session kept open.
    timing_out_since: Option<Instant>,
}

impl Worker {
    /// The worker of `cluster.nodes[index]`; its first tick comes `phase` (0..1)
    /// of an interval after the start.
    pub fn new(cluster: Arc<ClusterState>, index: usize, phase: f64) -> Worker {
        let node = cluster.nodes[index].clone();
        let cluster_config = cluster.config.clone();
        Worker {
            backoff: Backoff::new(cluster_config.heartbeat.interval),
            labels: NodeLabels {
                cluster: node.cluster.clone(),
                node: node.name.clone(),
                region: node.region.clone(),
            },
            cluster_config,
            cluster,
            index,
            node,
            session: None,
            table_ready: false,
            retry_at: Instant::now(),
            failing: [false; 4],
            phase: phase.clamp(0.0, 1.0),
            timing_out_since: None,
        }
    }

    /// Measures until `shutdown` is cancelled.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let interval = self.cluster_config.heartbeat.interval;
        let start = tokio::time::Instant::now() + interval.mul_f64(self.phase);
        let mut ticker = tokio::time::interval_at(start, interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = ticker.tick() => {}
            }
            // A shutdown mid-tick abandons the tick; nothing half-done is kept.
            tokio::select! {
                _ = shutdown.cancelled() => break,
                _ = self.tick() => {}
            }
        }
        tracing::debug!(cluster = %self.labels.cluster, node = %self.labels.node, "Worker stopped");
    }

    async fn tick(&mut self) {
        let hb = self.cluster_config.heartbeat.clone();
        if self.session.is_none() {
            if Instant::now() < self.retry_at {
                return;
            }
            let Ok(_permit) = CONNECTS.acquire().await else { return };
            let node_cfg = &self.cluster_config.nodes[self.index];
            let (result, took) = timed(hb.connect_timeout, "connect", Session::connect(node_cfg, &hb)).await;
            match result {
                Ok(session) => {
                    self.session = Some(session);
                    self.table_ready = false;
                    self.node.lock().sessions_opened += 1;
                }
                Err(e) => {
                    self.fail(Collector::Role, took, &e);
                    self.retry_at = Instant::now() + self.backoff.next_delay();
                    return;
                }
            }
        }
        match self.measure().await {
            Ok(()) => {
                self.backoff.reset();
                self.timing_out_since = None;
            }
            Err(e) if e.kind.breaks_session() => {
                if self.keeps_session_after(&e, hb.connect_timeout) {
                    return;
                }
                // Reconnect after a backoff: a node that connects and then fails at
                // once must not open a session every interval.
                self.session = None;
                self.timing_out_since = None;
                self.retry_at = Instant::now() + self.backoff.next_delay();
            }
            Err(_) => {}
        }
    }

    /// A query that missed its deadline on an otherwise healthy session is most
    /// often a busy server: reconnecting would add an authentication to its load
    /// every interval. The session is kept while timeouts last less than a connect
    /// deadline, where the driver allows it; past that the link may be dead (a
    /// black-holed network never errors) and only a new session can tell.
    fn keeps_session_after(&mut self, e: &EngineError, limit: Duration) -> bool {
        if e.kind != ErrorKind::Timeout || !self.session.as_ref().is_some_and(Session::survives_timeout) {
            return false;
        }
        let since = *self.timing_out_since.get_or_insert_with(Instant::now);
        since.elapsed() < limit
    }

    /// Records a success, and the end of a failure streak.
    fn succeed(&mut self, collector: Collector, took: f64) {
        self.node.lock().record_success(collector, took);
        if std::mem::take(&mut self.failing[collector as usize]) {
            tracing::info!(cluster = %self.labels.cluster, node = %self.labels.node, collector = collector.as_str(),
                "Measurement recovered");
        }
    }

    /// Records a failure; a node that cannot be probed is down.
    fn fail(&mut self, collector: Collector, took: f64, e: &EngineError) {
        {
            let mut d = self.node.lock();
            d.record_failure(collector, took, e.kind);
            // A primary we cannot reach missed its heartbeat: count it as a failed
            // write too, so write errors say "nobody is writing" whatever the cause.
            if collector == Collector::Role && d.writable == Some(true) {
                d.record_failure(Collector::HeartbeatWrite, took, e.kind);
            }
            if e.kind.breaks_session() || collector == Collector::Role {
                d.up = false;
            }
            if collector == Collector::Replication || !d.up {
                d.native.clear();
            }
        }
        let failing = std::mem::replace(&mut self.failing[collector as usize], true);
        if !failing {
            tracing::warn!(cluster = %self.labels.cluster, node = %self.labels.node, collector = collector.as_str(),
                reason = e.kind.as_str(), error = %e, "Measurement failed");
        } else {
            tracing::debug!(cluster = %self.labels.cluster, node = %self.labels.node, collector = collector.as_str(),
                reason = e.kind.as_str(), error = %e, "Measurement failed again");
        }
    }

    /// Records a failed step; only an error that broke the session ends the tick.
    fn step_failed(&mut self, collector: Collector, took: f64, e: EngineError) -> Result<(), EngineError> {
        self.fail(collector, took, &e);
        if e.kind.breaks_session() {
            Err(e)
        } else {
            Ok(())
        }
    }

    async fn measure(&mut self) -> Result<(), EngineError> {
        let hb = self.cluster_config.heartbeat.clone();
        let session = self.session.as_mut().expect("connected");

        // Role, identity and clock, in one round trip.
        let (wall0, mono0) = (wall_now(), mono_now());
        let (probe, took) = timed(hb.timeout, "role probe", session.probe()).await;
        let probe = match probe {
            Ok(p) => p,
            Err(e) => {
                self.fail(Collector::Role, took, &e);
                return Err(e);
            }
        };
        let clock = ClockSample { db_us: probe.db_now_us, mono: mono0 + took / 2.0, rtt: took };
        {
            let mut d = self.node.lock();
            if d.writable.is_some_and(|w| w != probe.writable) {
                tracing::info!(cluster = %self.labels.cluster, node = %self.labels.node, writable = probe.writable, "Node role changed");
                d.role_changes += 1;
                d.role_changed_at = Some(wall0);
            }
            if !d.up {
                tracing::info!(cluster = %self.labels.cluster, node = %self.labels.node, writable = probe.writable, "Node is up");
            }
            d.up = true;
            d.writable = Some(probe.writable);
            d.identity = Some(probe.identity.clone());
            d.expected_row_identity = probe.expected_row_identity.clone();
            d.aliases = probe.aliases.clone();
            d.clock = Some(clock);
            d.clock_offset = Some(probe.db_now_us as f64 / 1e6 - (wall0 + took / 2.0));
        }
        self.succeed(Collector::Role, took);

        if probe.writable && hb.format.writes() {
            self.write_heartbeat(&probe.identity).await?;
        }
        self.read_heartbeats().await?;
        self.read_replication().await
    }

    async fn write_heartbeat(&mut self, identity: &str) -> Result<(), EngineError> {
        let hb = &self.cluster_config.heartbeat;
        let node_cfg = &self.cluster_config.nodes[self.index];
        let session = self.session.as_mut().expect("connected");
        let table_ready = self.table_ready;
        let mono0 = mono_now();
        let (result, took) = timed(hb.timeout, "heartbeat write", async {
            if !table_ready {
                session.ensure_table(&hb.table, hb.create_table).await?;
            }
            session.write_heartbeat(node_cfg, identity).await
        })
        .await;
        match result {
            Ok(written) => {
                self.table_ready = true;
                let mut d = self.node.lock();
                d.history.push(WriteRecord {
                    seq: written.seq,
                    mono: mono0 + took / 2.0,
                    db_us: written.written_us,
                });
                d.writes += 1;
                d.last_written = Some(written);
                drop(d);
                self.succeed(Collector::HeartbeatWrite, took);
                Ok(())
            }
            Err(e) => {
                if e.kind == ErrorKind::MissingTable {
                    self.table_ready = false;
                }
                // A refused write is no reason to stop reading.
                self.step_failed(Collector::HeartbeatWrite, took, e)
            }
        }
    }

    async fn read_heartbeats(&mut self) -> Result<(), EngineError> {
        let hb = &self.cluster_config.heartbeat;
        let session = self.session.as_mut().expect("connected");
        let mono0 = mono_now();
        let (result, took) = timed(hb.timeout, "heartbeat read", session.read_heartbeats()).await;
        match result {
            Ok(read) => {
                let replica_clock =
                    ClockSample { db_us: read.db_now_us, mono: mono0 + took / 2.0, rtt: took };
                self.store_pairs(read, replica_clock);
                self.succeed(Collector::HeartbeatRead, took);
                Ok(())
            }
            Err(e) => self.step_failed(Collector::HeartbeatRead, took, e),
        }
    }

    async fn read_replication(&mut self) -> Result<(), EngineError> {
        let hb = &self.cluster_config.heartbeat;
        let session = self.session.as_mut().expect("connected");
        let (result, took) = timed(hb.timeout, "replication status", session.replication(&self.labels)).await;
        match result {
            Ok(samples) => {
                self.node.lock().native = samples;
                self.succeed(Collector::Replication, took);
                Ok(())
            }
            Err(e) => self.step_failed(Collector::Replication, took, e),
        }
    }

    /// The source node a row belongs to: its `node` column, or for tables that
    /// key rows by server identity (pt-heartbeat's server_id) the listed node
    /// known under that identity, else `server-<identity>`.
    fn source_name(&self, row: &HeartbeatRow) -> Option<String> {
        if let Some(name) = &row.node {
            return Some(name.clone());
        }
        let identity = row.identity.as_ref()?;
        let listed = self.cluster.nodes.iter().find(|n| n.lock().aliases.contains(identity));
        Some(listed.map_or_else(|| format!("server-{identity}"), |n| n.name.clone()))
    }

    /// Turns every row this node shows into a (source → this node) reading.
    fn store_pairs(&self, read: HeartbeatRead, replica_clock: ClockSample) {
        let cfg = &self.cluster_config;
        let (previous, expected_identity) = {
            let d = self.node.lock();
            (d.pairs.clone(), d.expected_row_identity.clone())
        };
        let single_writer = cfg.write_mode == WriteMode::SingleWriter;
        // Taken before the loop: no node's lock is held while another's is taken.
        let writable_now: Vec<String> = self
            .cluster
            .nodes
            .iter()
            .filter(|n| {
                let d = n.lock();
                d.up && d.writable == Some(true)
            })
            .map(|n| n.name.clone())
            .collect();
        let mut pairs = BTreeMap::new();
        let (mut unlisted, mut malformed) = (0, 0);
        let mut unlisted_sources = 0;
        for row in read.rows {
            let Some(name) = self.source_name(&row) else { continue };
            if name == self.node.name {
                continue;
            }
            let listed = self.cluster.node(&name).cloned();
            let source_region = match (&listed, cfg.heartbeat.sources) {
                (Some(src), _) => src.region.clone(),
                (None, Sources::Listed) => {
                    unlisted += 1;
                    continue;
                }
                (None, Sources::Any) => {
                    let region = row.region.clone().unwrap_or_default();
                    if !is_label_safe(&name)
                        || !is_label_safe(&region)
                        || unlisted_sources >= MAX_UNLISTED_SOURCES
                    {
                        malformed += 1;
                        continue;
                    }
                    unlisted_sources += 1;
                    region
                }
            };
            // What this process knows of the source: its writes, its clock, its role.
            let (reading, retired) = match &listed {
                Some(src) => {
                    let d = src.lock();
                    let writable = d.up && d.writable == Some(true);
                    // A reachable source that no longer takes writes (a demoted
                    // primary), or in a single-writer cluster any source while
                    // another node is the writable one (a failed-over primary),
                    // wrote its row in the past: that row measures nothing now.
                    let demoted = d.up && d.writable == Some(false);
                    let superseded = single_writer && !writable && writable_now.iter().any(|n| *n != name);
                    let input = PairInput {
                        seq: row.seq,
                        written_us: row.written_us,
                        replica_clock,
                        history: Some(&d.history),
                        source_clock: d.clock.filter(|c| replica_clock.mono - c.mono < CLOCK_SAMPLE_TTL),
                        interval: cfg.heartbeat.interval.as_secs_f64(),
                    };
                    (evaluate(&input), demoted || superseded)
                }
                None => {
                    let input = PairInput {
                        seq: row.seq,
                        written_us: row.written_us,
                        replica_clock,
                        history: None,
                        source_clock: None,
                        interval: cfg.heartbeat.interval.as_secs_f64(),
                    };
                    (evaluate(&input), false)
                }
            };
            if retired {
                continue;
            }
            let identity_ok = match (&expected_identity, &row.identity) {
                (Some(expected), Some(seen)) => expected == seen,
                _ => true,
            };
            let status = if identity_ok { reading.status() } else { RowStatus::IdentityMismatch };
            let prev = previous.get(&name);
            let mut regressions = prev.map_or(0, |p| p.regressions);
            if let (Some(last), Some(seq)) = (prev.and_then(|p| p.last_seq), row.seq) {
                if seq < last {
                    regressions += 1;
                    tracing::warn!(cluster = %cfg.name, source = %name, replica = %self.node.name, from = last, to = seq,
                        "Heartbeat sequence went backwards");
                }
            }
            if status != RowStatus::Ok && prev.map(|p| p.status) != Some(status) {
                tracing::warn!(cluster = %cfg.name, source = %name, replica = %self.node.name, status = status.as_str(),
                    "Heartbeat row cannot be read as lag");
            }
            let reading = match (status, reading) {
                (RowStatus::Ok, r @ Reading::Ok { .. }) => Some(r),
                _ => None,
            };
            pairs.insert(
                name,
                PairData {
                    source_region,
                    status,
                    reading,
                    seen_written_us: row.written_us,
                    last_seq: row.seq.or(prev.and_then(|p| p.last_seq)),
                    regressions,
                },
            );
        }
        let mut d = self.node.lock();
        d.pairs = pairs;
        d.unlisted_rows = unlisted;
        d.malformed_rows = malformed;
    }
}
