//! One background loop per configured node: connect, then every interval one tick
//! that probes the node's role and clock, reads every heartbeat row it shows,
//! writes its heartbeat when it accepts writes, and reads the engine's native
//! replication signals.
//!
//! A tick is one round trip however far the node is: the engine sends every step
//! at once ([`crate::engine::TickPlan`]). The write goes in the same round trip
//! when the node was writable at its last probe; a node found writable by this
//! tick's probe (a promotion, a new session) gets its write right after. Each step
//! answers on its own, so a step that fails or times out hides only its own
//! readings: only a failed probe marks the node down. A session is replaced when
//! it breaks, never because one query was slow; a new one waits out an
//! exponential backoff (reset by a tick whose probe and read succeed), and draws from a
//! small exporter-wide budget of connects so hundreds of nodes do not all
//! authenticate at once, with targets that timed out kept to a budget of their
//! own. Results land in the node's [`NodeState`]; the worker holds no lock across
//! an `.await` and never holds two nodes' locks at once.
//!
//! Between ticks, every `heartbeat.position_interval`, the node's positions are
//! read on the same session ([`crate::engine::Positions`]): a node writable at
//! its last probe adds its commit position to its history
//! ([`crate::heartbeat::PositionHistory`]); a replica of such a node carries its
//! pairs to the instant of its applied position ([`pairs::advance`]). So a
//! replica's lag is placed below one interval, and is at most one read old. An
//! engine or server that offers no position is not asked again for the rest of
//! the session.
//!
//! The worker's own node and heartbeat settings are fixed for its life (a reload
//! that changes them starts a new worker); the rest of its cluster (the other
//! nodes, the write mode) it reads from a watch the exporter updates on reload.

use crate::config::Heartbeat;
use crate::endpoint::{Endpoint, Replication, Settings};
use crate::engine::{
    self, EngineError, ErrorKind, HeartbeatRead, NodeLabels, Session, Step, TickOutcome, TickPlan,
    WriteOutcome,
};
use crate::heartbeat::{
    ClockSample, CommitPosition, PositionSample, ReplayedCommit, WriteRecord, MAX_CLOCK_DRIFT,
};
use crate::metrics::{Samples, Switch, Switches};
use crate::pairs::{self, Event, NodeView};
use crate::store::{ClusterState, Collector, NodeState};
use crate::supervise::Pace;
use std::future::Future;
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio::sync::{watch, Semaphore};
use tokio_util::sync::CancellationToken;

/// Longest wait between connection attempts to a node that is down.
const MAX_BACKOFF: Duration = Duration::from_secs(5);
/// Sessions being opened at once, across the whole exporter. Opening one costs the
/// server a process and an authentication (about 10 ms of CPU for SCRAM) and the
/// exporter its side of the handshake: hundreds at once would starve the very
/// queries that measure lag.
static CONNECTS: Semaphore = Semaphore::const_new(8);
/// The same for nodes whose last connect attempt timed out (a black-holed region):
/// a budget of their own, so they never hold a healthy node's turn.
static SUSPECT_CONNECTS: Semaphore = Semaphore::const_new(4);

/// Longest pause of native signals that keep missing their deadline.
const MAX_NATIVE_BACKOFF: Duration = Duration::from_secs(60);

/// Exponential backoff with jitter, starting at one interval.
struct Backoff {
    base: Duration,
    next: Duration,
    max: Duration,
}

impl Backoff {
    fn new(base: Duration, max: Duration) -> Self {
        Backoff { base, next: base, max }
    }

    fn reset(&mut self) {
        self.next = self.base;
    }

    fn next_delay(&mut self) -> Duration {
        let d = self.next.mul_f64(0.8 + 0.4 * fastrand::f64());
        self.next = (self.next * 2).min(self.max);
        d.min(self.max)
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

/// Which setting a node's round trip calls for, if any: a tick is one round trip
/// that must come back within the timeout, and within the interval for the next
/// tick to start on time. Advice comes before the margin is gone (at 60 % of the
/// timeout, 80 % of the interval) and asks for twice the round trip. `None` while
/// the settings hold it with room to spare.
pub fn distance_advice(rtt: f64, hb: &Heartbeat) -> Option<String> {
    let (interval, timeout) = (hb.interval.as_secs_f64(), hb.timeout.as_secs_f64());
    let fmt =
        |s: f64| humantime::format_duration(Duration::from_millis((s * 1000.0).ceil() as u64)).to_string();
    let mut raise = Vec::new();
    if rtt > timeout * 0.6 {
        raise.push(format!("heartbeat.timeout to at least {}", fmt((rtt * 2.0 * 10.0).ceil() / 10.0)));
    }
    if rtt > interval * 0.8 {
        raise.push(format!("heartbeat.interval to at least {}", fmt((rtt * 1.25 * 10.0).ceil() / 10.0)));
    }
    (!raise.is_empty()).then(|| raise.join(" and "))
}

/// The measurement loop of one node.
pub struct Worker {
    cluster: watch::Receiver<Arc<ClusterState>>,
    node: Arc<NodeState>,
    /// How to reach the node, and what a session does there.
    endpoint: Endpoint,
    settings: Settings,
    heartbeat: Heartbeat,
    labels: NodeLabels,
    session: Option<Session>,
    backoff: Backoff,
    retry_at: Instant,
    /// Per collector, whether its last run failed, so a streak of failures
    /// logs one warning (and its end one line) instead of one per interval.
    failing: [bool; 4],
    /// Where in its interval the first tick falls, as a fraction of it.
    phase: f64,
    /// Since when the probe has been timing out on a session kept open.
    timing_out_since: Option<Instant>,
    /// Whether the last connect attempt timed out.
    suspect: bool,
    /// The distance advice last logged, so it is logged once per change.
    advised: Option<String>,
    /// Native signals that missed their deadline and took the session with them
    /// (an engine whose session cannot survive a missed deadline) pause for a
    /// while, so a hanging replica-status statement costs neither the heartbeat
    /// readings nor a session per tick.
    native_backoff: Backoff,
    native_at: Instant,
    /// The optional collectors: without `replication` no native query is sent.
    switches: Switches,
    /// Whether this session's engine offers positions, and its server commit
    /// times (PostgreSQL: `track_commit_timestamp`).
    positions_supported: bool,
    commits_available: bool,
    /// What the node applied as a replica at its last probe or position read.
    last_applied: Option<CommitPosition>,
}

impl Worker {
    /// The worker of the node named `name` in the cluster the watch holds; its
    /// first tick comes `phase` (0..1) of an interval after the start. `None` if
    /// the cluster has no such node.
    pub fn new(
        cluster: watch::Receiver<Arc<ClusterState>>,
        name: &str,
        phase: f64,
        switches: Switches,
    ) -> Option<Worker> {
        let current = cluster.borrow().clone();
        let node = current.node(name)?.clone();
        let node_config = current.config.nodes.iter().find(|n| n.name == name)?;
        let heartbeat = current.config.heartbeat.clone();
        let (endpoint, settings) = (node_config.endpoint.clone(), heartbeat.settings(node_config));
        Some(Worker {
            backoff: Backoff::new(heartbeat.interval, MAX_BACKOFF),
            native_backoff: Backoff::new(heartbeat.interval, MAX_NATIVE_BACKOFF),
            native_at: Instant::now(),
            labels: NodeLabels {
                cluster: node.cluster.clone(),
                node: node.name.clone(),
                region: node.region.clone(),
            },
            cluster,
            node,
            endpoint,
            settings,
            heartbeat,
            session: None,
            retry_at: Instant::now(),
            failing: [false; 4],
            phase: phase.clamp(0.0, 1.0),
            timing_out_since: None,
            suspect: false,
            advised: None,
            switches,
            positions_supported: true,
            commits_available: true,
            last_applied: None,
        })
    }

    /// Measures until `shutdown` is cancelled: a tick every interval, and in
    /// between, every `heartbeat.position_interval`, a commit position read.
    pub async fn run(mut self, shutdown: CancellationToken) {
        let interval = self.heartbeat.interval;
        let start = tokio::time::Instant::now() + interval.mul_f64(self.phase);
        // A shutdown mid-tick abandons the tick; nothing half-done is kept.
        let mut pace = Pace::new(start, interval, shutdown);
        while pace.round(self.round()).await.is_some() {}
        tracing::debug!(cluster = %self.labels.cluster, node = %self.labels.node, "Worker stopped");
    }

    /// One interval's work: the tick, then the position reads on their grid
    /// from the tick's start. A read is skipped rather than let run into the
    /// next tick (the heartbeats keep their cadence whatever a read costs), and
    /// one whose slot a long tick took is not made up.
    async fn round(&mut self) {
        let start = tokio::time::Instant::now();
        self.tick().await;
        let (interval, period) = (self.heartbeat.interval, self.heartbeat.position_interval);
        if period.is_zero() {
            return;
        }
        let next_tick = start + interval;
        let mut slot = start + period;
        let mut took = Duration::ZERO;
        while slot + took + period / 4 < next_tick {
            if slot > tokio::time::Instant::now() {
                tokio::time::sleep_until(slot).await;
                let began = tokio::time::Instant::now();
                if !self.sample_position().await {
                    return;
                }
                took = began.elapsed();
            }
            slot += period;
        }
    }

    /// Reads the node's positions over the open session: a writable node's
    /// commit position goes into its history (what its replicas' lag is placed
    /// with); a replica's applied position carries its pairs of a writer with
    /// such a history to this instant ([`pairs::advance`]). False when there is
    /// nothing to read until the next tick (no session, no position offered).
    async fn sample_position(&mut self) -> bool {
        if !self.positions_supported {
            return false;
        }
        let writable = self.writable();
        if writable && !self.commits_available {
            return false;
        }
        let cluster = self.cluster.borrow().clone();
        let name = &self.node.name;
        // Only a writer's sampled position this replica has not applied (as of
        // its last probe or position read) can move its pairs. With none (no
        // writer with positions, or every sample applied: an idle primary), lag
        // stays what it is and exposure ages at the scrape without a read.
        let behind = |n: &Arc<NodeState>| {
            n.name != *name
                && n.latest_position()
                    .is_some_and(|p| self.last_applied.as_ref().is_none_or(|a| p.ahead_of(a)))
                && n.lock().is_writer()
        };
        if !writable && !cluster.nodes.iter().any(behind) {
            return true;
        }
        let views = if writable { Vec::new() } else { self.views(&cluster) };
        let Some(session) = self.session.as_mut() else { return false };
        let deadline = self.heartbeat.timeout;
        let outcome = session.position(deadline).await;
        let step = outcome.step;
        match step.result {
            Ok(p) if !p.supported => self.positions_supported = false,
            Ok(p) if writable => match p.committed {
                Some(position) => {
                    let by = step.sent + step.took;
                    let clock = self.node.lock().clock;
                    // A commit time is placed through this node's clock, its half
                    // round trip and drift as slack; it was reached by the answer.
                    let by_mono = match (&position, clock) {
                        (CommitPosition::CommitTime(us), Some(clock)) => {
                            let slack = clock.rtt / 2.0 + (by - clock.mono).abs() * MAX_CLOCK_DRIFT;
                            (clock.to_mono(*us) + slack).min(by)
                        }
                        _ => by,
                    };
                    self.node.record_position(PositionSample { position, by_mono });
                }
                None => {
                    tracing::info!(cluster = %self.labels.cluster, node = %self.labels.node,
                        "The primary offers no commit time (track_commit_timestamp is off): its replicas' lag stays on the heartbeat grid");
                    self.commits_available = false;
                }
            },
            Ok(p) => {
                self.last_applied.clone_from(&p.applied);
                if let Some(applied) = p.applied {
                    let replayed = match applied {
                        CommitPosition::CommitTime(commit_us) => {
                            Some(ReplayedCommit { commit_us, observed_mono: step.sent + step.took })
                        }
                        CommitPosition::Gtid(_) => None,
                    };
                    let advance = pairs::Advance {
                        replica: name,
                        nodes: &views,
                        write_mode: cluster.config.write_mode,
                        interval: self.heartbeat.interval.as_secs_f64(),
                        applied: &applied,
                        at_mono: step.sent + step.took / 2.0,
                        replayed,
                    };
                    pairs::advance(&mut self.node.lock().pairs, &advance);
                }
            }
            // A node that did not answer one trivial statement within the
            // timeout, or whose connection broke, is down: the same evidence as a
            // failed probe, reported now rather than at the next tick (which may
            // first have to connect). A statement the server itself gave up on
            // answered in time, and says nothing of the node.
            Err(e) if step.took >= deadline.as_secs_f64() || e.kind.is_connection() || outcome.broken => {
                self.fail(Collector::Role, step.took, &e);
            }
            Err(e) => {
                tracing::debug!(cluster = %self.labels.cluster, node = %self.labels.node,
                    reason = e.kind.as_str(), error = %e, "Reading the node's positions failed");
            }
        }
        if outcome.broken {
            self.drop_session(false);
            return false;
        }
        self.positions_supported
    }

    fn writes(&self) -> bool {
        self.heartbeat.format.writes()
    }

    /// Whether the node accepted writes at its last probe (a failed probe says
    /// down): the next tick writes its heartbeat in the same round trip.
    fn writable(&self) -> bool {
        self.node.lock().is_writer()
    }

    async fn tick(&mut self) {
        if self.session.is_none() && !self.connect().await {
            return;
        }
        let cluster = self.cluster.borrow().clone();
        let plan = TickPlan {
            probe: true,
            read: true,
            write: self.writes() && self.writable(),
            native: self.switches.enabled(Switch::Replication) && Instant::now() >= self.native_at,
        };
        let outcome = self.session_tick(plan).await;
        let healthy = self.apply(&cluster, plan, outcome);
        // Found writable by this tick's probe but not written to (a promotion, or a
        // new session): its heartbeat now, not an interval later.
        if self.writable() && self.writes() && !plan.write && self.session.is_some() {
            let plan = TickPlan { write: true, ..TickPlan::default() };
            let outcome = self.session_tick(plan).await;
            self.apply(&cluster, plan, outcome);
        }
        if healthy {
            self.backoff.reset();
        }
    }

    async fn session_tick(&mut self, plan: TickPlan) -> TickOutcome {
        let session = self.session.as_mut().expect("connected");
        session.tick(plan, self.heartbeat.timeout, &self.labels).await
    }

    /// Opens a session; false when there is none to use this tick.
    async fn connect(&mut self) -> bool {
        if Instant::now() < self.retry_at {
            return false;
        }
        let hb = self.heartbeat.clone();
        let budget = if self.suspect { &SUSPECT_CONNECTS } else { &CONNECTS };
        // The wait for a turn is bounded: whatever holds the budget, no node waits
        // more than one connect timeout before it tries.
        let permit =
            tokio::time::timeout(hb.connect_timeout, budget.acquire()).await.ok().and_then(Result::ok);
        if permit.is_none() {
            tracing::debug!(cluster = %self.labels.cluster, node = %self.labels.node,
                "No connect slot came free within connect_timeout; connecting anyway");
        }
        let (result, took) =
            timed(hb.connect_timeout, "connect", engine::connect(&self.endpoint, &self.settings)).await;
        drop(permit);
        match result {
            Ok(session) => {
                self.session = Some(session);
                self.positions_supported = true;
                self.commits_available = true;
                self.suspect = false;
                self.timing_out_since = None;
                self.node.lock().sessions_opened += 1;
                true
            }
            Err(e) => {
                self.suspect = e.kind == ErrorKind::Timeout;
                if self.suspect && !self.failing[Collector::Role as usize] {
                    tracing::warn!(cluster = %self.labels.cluster, node = %self.labels.node,
                        connect_timeout = %humantime::format_duration(hb.connect_timeout),
                        "Opening a session timed out: if the node is far away or busy, raise heartbeat.connect_timeout of this cluster");
                }
                self.fail(Collector::Role, took, &e);
                self.retry_at = Instant::now() + self.backoff.next_delay();
                false
            }
        }
    }

    /// Stores what a tick brought back, step by step; true if its probe and read
    /// succeeded (the session is evidently good: a failing write or native query
    /// is the server's business, not the connection's).
    fn apply(&mut self, cluster: &ClusterState, plan: TickPlan, outcome: TickOutcome) -> bool {
        let broken = outcome.broken;
        let mut healthy = true;
        let mut probed: Option<bool> = None;
        let mut probe_timed_out = false;
        let mut applied_before = None;
        if let Some(step) = outcome.probe {
            match step.result {
                Ok(probe) => {
                    probed = Some(probe.writable);
                    applied_before = probe.applied.clone();
                    self.last_applied.clone_from(&probe.applied);
                    self.store_probe(probe, step.sent, step.took);
                }
                Err(e) => {
                    healthy = false;
                    probe_timed_out = e.kind == ErrorKind::Timeout;
                    if probe_timed_out && !self.failing[Collector::Role as usize] {
                        tracing::warn!(cluster = %self.labels.cluster, node = %self.labels.node,
                            timeout = %humantime::format_duration(self.heartbeat.timeout),
                            "The node answered no probe within heartbeat.timeout: if it is far away or busy, raise heartbeat.timeout (and heartbeat.interval with it) in this cluster's heartbeat section");
                    }
                    self.fail(Collector::Role, step.took, &e);
                }
            }
        }
        if let Some(Step { result, sent, took }) = outcome.write {
            match result {
                Ok(WriteOutcome::HeldElsewhere) => {
                    self.node.lock().write_lease = Some(false);
                }
                Ok(WriteOutcome::Written(written)) => {
                    let mut d = self.node.lock();
                    d.write_lease = Some(true);
                    d.history.push(WriteRecord {
                        seq: written.seq,
                        mono: sent + took / 2.0,
                        db_us: written.written_us,
                    });
                    d.writes += 1;
                    d.last_written = Some(written);
                    drop(d);
                    self.succeed(Collector::HeartbeatWrite, took);
                }
                // Demoted under us: this tick's probe says so, and nothing was written.
                Err(e) if e.kind == ErrorKind::ReadOnly && probed == Some(false) => {}
                Err(e) => {
                    // A refused write is no reason to stop reading.
                    self.fail(Collector::HeartbeatWrite, took, &e);
                }
            }
        }
        // The replica's last replayed commit, from this tick's native step: sent
        // after the read, so observed after it, by the end of its round trip. A
        // tick without the step (switched off, backing off, failed) has none.
        let replayed = outcome.native.as_ref().and_then(|step| {
            let commit_us = engine::postgres::replayed_commit_us(step.result.as_ref().ok()?)?;
            Some(ReplayedCommit { commit_us, observed_mono: step.sent + step.took })
        });
        let replica_position =
            outcome.native.as_ref().and_then(|step| engine::replica_position(step.result.as_ref().ok()?));
        if let Some(Step { result, sent, took }) = outcome.read {
            match result {
                Ok(read) => {
                    let replica_clock =
                        ClockSample { db_us: read.db_now_us, mono: sent + took / 2.0, rtt: took };
                    let positions = (replica_position, applied_before);
                    self.store_pairs(cluster, read, replica_clock, replayed, positions);
                    self.succeed(Collector::HeartbeatRead, took);
                }
                Err(e) => {
                    healthy = false;
                    self.fail(Collector::HeartbeatRead, took, &e);
                }
            }
        }
        if let Some(Step { result, took, .. }) = outcome.native {
            match result {
                Ok(mut samples) => {
                    // Families switched off (GTID positions) are not kept.
                    samples.retain(|s| self.switches.emits(s.desc));
                    // Encoded here, off the scrape's path: a scrape copies the lines.
                    let mut native = Samples::default();
                    native.extend(&samples);
                    self.node.lock().native = native;
                    self.succeed(Collector::Replication, took);
                    self.native_backoff.reset();
                }
                Err(e) => {
                    if e.kind == ErrorKind::Timeout && broken {
                        self.native_at = Instant::now() + self.native_backoff.next_delay();
                    }
                    self.fail(Collector::Replication, took, &e);
                }
            }
        }
        if plan.probe {
            self.keep_or_drop_session(outcome.broken, probed.is_some(), probe_timed_out);
        } else if outcome.broken {
            self.drop_session(true);
        }
        healthy
    }

    /// Role, identity and clock from a probe answered `took` seconds after `sent`.
    fn store_probe(&mut self, probe: crate::engine::Probe, sent: f64, took: f64) {
        let clock = ClockSample { db_us: probe.db_now_us, mono: sent + took / 2.0, rtt: took };
        let wall_mid = wall_now() - took / 2.0;
        {
            let mut d = self.node.lock();
            if d.writable.is_some_and(|w| w != probe.writable) {
                tracing::info!(cluster = %self.labels.cluster, node = %self.labels.node, writable = probe.writable, "Node role changed");
                d.role_changes += 1;
                d.role_changed_at = Some(wall_now());
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
            d.clock_offset = Some(probe.db_now_us as f64 / 1e6 - wall_mid);
        }
        self.succeed(Collector::Role, took);
        let advice = distance_advice(took, &self.heartbeat);
        if advice != self.advised {
            if let Some(raise) = &advice {
                tracing::warn!(cluster = %self.labels.cluster, node = %self.labels.node, round_trip = %format!("{:.3}s", took),
                    interval = %humantime::format_duration(self.heartbeat.interval),
                    timeout = %humantime::format_duration(self.heartbeat.timeout),
                    "The node is too far for these heartbeat settings: raise {raise} in this cluster's heartbeat section");
            }
            self.advised = advice;
        }
    }

    /// After a tick: a broken session is replaced, at the next tick if the node
    /// answered its probe in this one (a later step broke it), else after a
    /// backoff. One whose probe timed out is most often a busy server:
    /// reconnecting would add an authentication to its load every interval, so
    /// the session is kept while timeouts last less than a connect deadline, where
    /// the driver allows it; past that the link may be dead (a black-holed network
    /// never errors) and only a new session can tell.
    fn keep_or_drop_session(&mut self, broken: bool, probed: bool, probe_timed_out: bool) {
        if broken {
            self.drop_session(!probed);
        } else if probe_timed_out {
            let since = *self.timing_out_since.get_or_insert_with(Instant::now);
            if since.elapsed() >= self.heartbeat.connect_timeout {
                self.drop_session(true);
            }
        } else {
            self.timing_out_since = None;
        }
    }

    /// Drops the session; with `back_off`, the next one waits out the backoff, so
    /// a node that connects and then fails at once does not open a session every
    /// interval.
    fn drop_session(&mut self, back_off: bool) {
        self.session = None;
        self.timing_out_since = None;
        self.retry_at = if back_off { Instant::now() + self.backoff.next_delay() } else { Instant::now() };
    }

    /// Records a success, and the end of a failure streak.
    fn succeed(&mut self, collector: Collector, took: f64) {
        self.node.lock().record_success(collector, took);
        if std::mem::take(&mut self.failing[collector as usize]) {
            tracing::info!(cluster = %self.labels.cluster, node = %self.labels.node, collector = collector.as_str(),
                "Measurement recovered");
        }
    }

    /// Records a failure. Only a node that cannot be probed is down; any other
    /// step that fails hides only its own readings.
    fn fail(&mut self, collector: Collector, took: f64, e: &EngineError) {
        {
            let mut d = self.node.lock();
            d.record_failure(collector, took, e.kind);
            match collector {
                Collector::Role => {
                    // A primary we cannot reach missed its heartbeat: count it as a
                    // failed write too, so write errors say "nobody is writing"
                    // whatever the cause.
                    if d.writable == Some(true) && self.heartbeat.format.writes() {
                        d.record_failure(Collector::HeartbeatWrite, took, e.kind);
                    }
                    d.up = false;
                    d.native.clear();
                }
                Collector::Replication => d.native.clear(),
                Collector::HeartbeatWrite | Collector::HeartbeatRead => {}
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

    /// Every node's state as [`pairs`] judges it, each copied out under its own
    /// lock, one at a time.
    fn views(&self, cluster: &ClusterState) -> Vec<NodeView> {
        cluster
            .nodes
            .iter()
            .zip(&cluster.config.nodes)
            .map(|(n, config)| {
                let d = n.lock();
                NodeView {
                    name: n.name.clone(),
                    region: n.region.clone(),
                    up: d.up,
                    writable: d.writable,
                    aliases: d.aliases.clone(),
                    history: d.history.clone(),
                    positions: n.positions(),
                    clock: d.clock,
                    physical: config.replication == Replication::Physical,
                }
            })
            .collect()
    }

    /// Turns every row this node shows into its pairs ([`pairs::decide`]): each
    /// node's state is copied out under its own lock, one at a time, the decision
    /// made with no lock held, its events logged and its pairs stored.
    fn store_pairs(
        &self,
        cluster: &ClusterState,
        read: HeartbeatRead,
        replica_clock: ClockSample,
        replayed: Option<ReplayedCommit>,
        (replica_position, applied_before): (Option<CommitPosition>, Option<CommitPosition>),
    ) {
        let nodes = self.views(cluster);
        let (previous, expected_identity) = {
            let d = self.node.lock();
            (d.pairs.clone(), d.expected_row_identity.clone())
        };
        let outcome = pairs::decide(&pairs::Input {
            replica: &self.node.name,
            rows: &read.rows,
            nodes: &nodes,
            previous: &previous,
            expected_identity: expected_identity.as_deref(),
            write_mode: cluster.config.write_mode,
            sources: self.heartbeat.sources,
            writes: self.writes(),
            interval: self.heartbeat.interval.as_secs_f64(),
            replica_clock,
            replayed,
            replica_position,
            applied_before,
        });
        for event in &outcome.events {
            match event {
                Event::SequenceRegressed { source, from, to } => {
                    tracing::warn!(cluster = %cluster.config.name, source = %source, replica = %self.node.name, from = from, to = to,
                        "Heartbeat sequence went backwards");
                }
                Event::StatusChanged { source, status } => {
                    tracing::warn!(cluster = %self.labels.cluster, source = %source, replica = %self.node.name, status = status.as_str(),
                        "Heartbeat row cannot be read as lag");
                }
            }
        }
        let mut d = self.node.lock();
        d.pairs = outcome.pairs;
        d.unlisted_rows = outcome.unlisted;
        d.malformed_rows = outcome.malformed;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Sources;

    fn hb(interval_ms: u64, timeout_ms: u64) -> Heartbeat {
        Heartbeat {
            interval: Duration::from_millis(interval_ms),
            timeout: Duration::from_millis(timeout_ms),
            connect_timeout: Duration::from_secs(5),
            position_interval: Duration::ZERO,
            table: "rpo.heartbeat".parse().unwrap(),
            create_table: true,
            sources: Sources::Listed,
            format: crate::endpoint::HeartbeatFormat::Rpo,
        }
    }

    #[test]
    fn distance_advice_names_the_setting_to_raise() {
        // Defaults hold the farthest pair of cloud regions (300 ms round trip).
        assert_eq!(distance_advice(0.300, &hb(1000, 750)), None);
        assert_eq!(distance_advice(0.400, &hb(1000, 750)), None);
        assert_eq!(distance_advice(0.500, &hb(1000, 750)).unwrap(), "heartbeat.timeout to at least 1s");
        assert_eq!(distance_advice(0.300, &hb(250, 750)).unwrap(), "heartbeat.interval to at least 400ms");
        assert_eq!(
            distance_advice(0.900, &hb(1000, 750)).unwrap(),
            "heartbeat.timeout to at least 1s 800ms and heartbeat.interval to at least 1s 200ms"
        );
    }
}
