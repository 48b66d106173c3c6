//! `rpo-exporter drill`: times a failover drill (a game day) of one cluster from
//! the outside and says whether its objectives held.
//!
//! While it runs it writes a numbered drill heartbeat (one row per write, every
//! `--drill.interval`) to whichever node is writable and remembers every
//! acknowledgement; watches every node's role over connections of its own (one
//! task per node, so a dead node stalls nobody); asks the cluster's DNS resolvers
//! (`dns:` records that follow the cluster) and runs the regions' health probes
//! (`health:`). The first failed write starts the clock. From it, the drill
//! measures the data lost (the newest write the old primary acknowledged against
//! the newest of those the node where writes resume holds), the time to a writable
//! new primary, the split-brain window, DNS on 80 % and 100 % of the resolvers,
//! the health probes, and writes resuming; compares them with the cluster's `rpo`
//! and `rto`; and writes a Markdown and a JSON report ([`report`]) with the
//! timeline in the runbook's order. An optional second writer writes the same
//! rows to an application table of the operator's (`--drill.probe-table`) over
//! its own connections. It serves `rpo_drill_*` metrics ([`METRICS`]) while it runs.
//! All SQL is the engines' ([`crate::engine::DrillConnection`]).

pub mod report;

use crate::config::{Active, Cluster, Config, RecordType};
use crate::endpoint::{Settings, TableName};
use crate::engine::{self, DrillSession, DrillWrite, EngineError};
use crate::metrics::{desc, MetricDesc, Samples};
use crate::supervise::Pace;
use report::{Ack, End, Incident, Observed, Reach, Report, WriterLog};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use tokio_util::sync::CancellationToken;

const DRILL: &[&str] = &["db_cluster"];
const WRITER: &[&str] = &["db_cluster", "writer"];
const WRITES: &[&str] = &["db_cluster", "writer", "outcome"];
const NODE: &[&str] = &["db_cluster", "node", "node_region"];
const STEP: &[&str] = &["db_cluster", "step"];
const OBJECTIVE: &[&str] = &["db_cluster", "objective"];

desc!(
    WRITES_TOTAL,
    "rpo_drill_writes",
    Counter,
    WRITES,
    "Drill writes sent (writer: drill, probe), by outcome: acknowledged or failed."
);
desc!(NODE_WRITABLE, "rpo_drill_node_writable", Gauge, NODE, "1 if the node accepted writes at the drill's last look, 0 if read-only; absent while it cannot be reached.");
desc!(
    WRITABLE_NODES,
    "rpo_drill_writable_nodes",
    Gauge,
    DRILL,
    "Nodes seen writable at the drill's last look; 2 or more is a split brain."
);
desc!(
    SPLIT_BRAIN,
    "rpo_drill_split_brain_seconds",
    Gauge,
    DRILL,
    "Time so far with two or more writable nodes during the drill."
);
desc!(
    FAILED_AT,
    "rpo_drill_failure_timestamp_seconds",
    Gauge,
    DRILL,
    "When the first drill write failed (the drill's t = 0); absent until one fails."
);
desc!(DATA_LOSS, "rpo_drill_data_loss_seconds", Gauge, WRITER, "Data lost by the failover: the newest write the old primary acknowledged minus the newest of those the new primary holds; absent until measured.");
desc!(
    DATA_LOSS_WRITES,
    "rpo_drill_data_loss_writes",
    Gauge,
    WRITER,
    "Writes the old primary acknowledged that the new primary does not hold; absent until measured."
);
desc!(STEP_SECONDS, "rpo_drill_step_seconds", Gauge, STEP, "Seconds from the first failed write to each step (fenced, writable, dns_80, dns_100, health, resumed); absent until reached.");
desc!(RECOVERY, "rpo_drill_recovery_seconds", Gauge, DRILL, "The drill's RTO figure: the last of writable, DNS on every resolver, health and writes resumed, from the first failed write; absent until all are reached.");
desc!(
    OBJECTIVE_SECONDS,
    "rpo_drill_objective_seconds",
    Gauge,
    OBJECTIVE,
    "The cluster's objective (rpo, rto) the drill compares its figures with."
);
desc!(
    OBJECTIVE_MET,
    "rpo_drill_objective_met",
    Gauge,
    OBJECTIVE,
    "1 if the drill's figure met the objective (rpo, rto), 0 if not; absent until measured."
);

/// The drill's metric families, served on its own listener.
pub static METRICS: &[&MetricDesc] = &[
    &WRITES_TOTAL,
    &NODE_WRITABLE,
    &WRITABLE_NODES,
    &SPLIT_BRAIN,
    &FAILED_AT,
    &DATA_LOSS,
    &DATA_LOSS_WRITES,
    &STEP_SECONDS,
    &RECOVERY,
    &OBJECTIVE_SECONDS,
    &OBJECTIVE_MET,
];

/// How a drill runs (the command line's `--drill.*` flags).
#[derive(Debug, Clone)]
pub struct Options {
    pub cluster: String,
    /// Between two drill writes, and two looks at every node's role.
    pub interval: Duration,
    /// Deadline for one statement (a write, a role probe).
    pub timeout: Duration,
    pub table: TableName,
    pub probe_table: Option<TableName>,
    pub report_dir: PathBuf,
    /// The drill ends at the latest after this long.
    pub duration: Duration,
    /// Once every figure is measured, the drill ends after this long.
    pub settle: Duration,
    /// Where to serve the metrics; `None` serves none.
    pub listen: Option<String>,
}

/// Where a finished drill put its report.
#[derive(Debug)]
pub struct Written {
    pub markdown: PathBuf,
    pub json: PathBuf,
    pub report: Report,
}

/// Why a drill cannot start.
#[derive(Debug, thiserror::Error)]
pub enum DrillError {
    #[error("--cluster {0:?}: no such cluster in the config (clusters: {1})")]
    UnknownCluster(String, String),
    #[error("cannot write the report to {0}: {1}")]
    Report(PathBuf, std::io::Error),
    #[error("{0}")]
    Listen(anyhow::Error),
}

/// The drill's clock: Unix seconds, advanced by a monotonic clock from the start.
#[derive(Debug, Clone, Copy)]
struct Clock {
    wall: f64,
    start: Instant,
}

impl Clock {
    fn new() -> Clock {
        let wall = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0.0, |d| d.as_secs_f64());
        Clock { wall, start: Instant::now() }
    }

    fn now(&self) -> f64 {
        self.wall + self.start.elapsed().as_secs_f64()
    }
}

/// Every node's latest role as the watchers saw it.
#[derive(Debug, Clone, Default)]
struct NodeSeen {
    writable: Option<bool>,
    at: f64,
    /// Since when it has been seen writable without a break.
    writable_since: Option<f64>,
}

/// What the tasks share, under one short-held lock.
struct Shared {
    observed: Observed,
    seen: Vec<NodeSeen>,
    /// Every write acknowledged per writer: (seq, sent at, node).
    acks: Vec<Vec<Ack>>,
    /// Per region: the share of resolvers answering its value, last round.
    dns_share: BTreeMap<String, f64>,
    last_tick: Option<f64>,
}

struct Drill {
    clock: Clock,
    cluster: Cluster,
    options: Options,
    run: String,
    shared: Mutex<Shared>,
    /// Cancelled when every figure is in (then the settle time runs).
    done: CancellationToken,
}

impl Drill {
    fn lock(&self) -> MutexGuard<'_, Shared> {
        self.shared.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn settings(&self, node: usize, table: &TableName) -> Settings {
        let mut s = self.cluster.heartbeat.settings(&self.cluster.nodes[node]);
        s.table = table.clone();
        s.timeout = self.options.timeout;
        s
    }

    /// Connects to `node` within the cluster's connect timeout.
    async fn connect(&self, node: usize, table: &TableName) -> Result<DrillSession, EngineError> {
        let limit = self.cluster.heartbeat.connect_timeout;
        let settings = self.settings(node, table);
        match tokio::time::timeout(
            limit,
            engine::connect_drill(&self.cluster.nodes[node].endpoint, &settings),
        )
        .await
        {
            Ok(r) => r,
            Err(_) => Err(EngineError::timeout("connect", limit)),
        }
    }
}

/// Runs a drill of `options.cluster` until every figure is in (and the settle
/// time passed), `options.duration` passed, or `shutdown` is cancelled; then
/// writes the reports.
pub async fn run(
    config: Config,
    options: Options,
    shutdown: CancellationToken,
) -> Result<Written, DrillError> {
    let Some(cluster) = config.clusters.iter().find(|c| c.name == options.cluster).cloned() else {
        let names: Vec<&str> = config.clusters.iter().map(|c| c.name.as_str()).collect();
        return Err(DrillError::UnknownCluster(options.cluster.clone(), names.join(", ")));
    };
    let clock = Clock::new();
    let run = format!("{}-{}", cluster.name, (clock.wall * 1000.0) as u64);
    let dns_records: Vec<crate::config::Record> = config
        .dns
        .iter()
        .flat_map(|d| d.records.iter())
        .filter(|r| r.active == Active::FollowCluster(cluster.name.clone()))
        .cloned()
        .collect();
    let mut writers = vec![WriterLog { table: options.table.to_string(), ..WriterLog::default() }];
    if let Some(t) = &options.probe_table {
        writers.push(WriterLog { table: t.to_string(), ..WriterLog::default() });
    }
    let n_writers = writers.len();
    let observed = Observed {
        cluster: cluster.name.clone(),
        run: run.clone(),
        rpo: cluster.rpo.as_secs_f64(),
        rto: cluster.rto.as_secs_f64(),
        interval: options.interval.as_secs_f64(),
        started_at: clock.now(),
        nodes: cluster.nodes.iter().map(|n| (n.name.clone(), n.region.clone())).collect(),
        writers,
        dns: (!dns_records.is_empty())
            .then(|| (dns_records.iter().map(|r| r.name.clone()).collect(), BTreeMap::new())),
        health: config.health.as_ref().map(|h| h.regions.iter().map(|r| (r.name.clone(), None)).collect()),
        ..Observed::default()
    };
    let listener = match &options.listen {
        Some(address) => Some(crate::server::bind(address).await.map_err(DrillError::Listen)?),
        None => None,
    };
    let nodes = cluster.nodes.len();
    let drill = Arc::new(Drill {
        clock,
        shared: Mutex::new(Shared {
            observed,
            seen: vec![NodeSeen::default(); nodes],
            acks: vec![Vec::new(); n_writers],
            dns_share: BTreeMap::new(),
            last_tick: None,
        }),
        cluster,
        options: options.clone(),
        run,
        done: CancellationToken::new(),
    });
    tracing::info!(cluster = %drill.cluster.name, run = %drill.run, interval = ?options.interval,
        "Drill started: writing drill heartbeats and watching every node");
    let stop = CancellationToken::new();
    let mut tasks = tokio::task::JoinSet::new();
    if let Some(listener) = listener {
        if let Ok(address) = listener.local_addr() {
            tracing::info!(%address, "Serving drill metrics on /metrics");
        }
        let d = drill.clone();
        let render: Arc<dyn Fn() -> String + Send + Sync> =
            Arc::new(move || crate::exposition::encode_text_of(METRICS, d.samples()));
        let s = stop.clone();
        tasks.spawn(async move {
            if let Err(e) = crate::server::serve_metrics(listener, render, s).await {
                tracing::error!(error = %e, "Drill metrics listener failed");
            }
        });
    }
    for node in 0..nodes {
        tasks.spawn(watch(drill.clone(), node, stop.clone()));
    }
    tasks.spawn(write_loop(drill.clone(), 0, drill.options.table.clone(), stop.clone()));
    if let Some(table) = drill.options.probe_table.clone() {
        tasks.spawn(write_loop(drill.clone(), 1, table, stop.clone()));
    }
    tasks.spawn(tick_loop(drill.clone(), stop.clone()));
    if !dns_records.is_empty() {
        let timeout = config.dns.as_ref().map_or(Duration::from_secs(2), |d| d.timeout);
        tasks.spawn(dns_loop(drill.clone(), dns_records, timeout, stop.clone()));
    }
    if let Some(health) = &config.health {
        tasks.spawn(health_loop(drill.clone(), health.regions.clone(), stop.clone()));
    }

    let end = tokio::select! {
        _ = shutdown.cancelled() => End::Interrupted,
        _ = tokio::time::sleep(options.duration) => End::TimeLimit,
        _ = async {
            drill.done.cancelled().await;
            tracing::info!(settle = ?options.settle, "Every figure is measured; ending after the settle time");
            tokio::time::sleep(options.settle).await;
        } => End::Complete,
    };
    stop.cancel();
    // Every loop ends at its next await; a statement in flight is abandoned.
    let _ =
        tokio::time::timeout(Duration::from_secs(2), async { while tasks.join_next().await.is_some() {} })
            .await;
    tasks.abort_all();
    let observed = {
        let mut shared = drill.lock();
        shared.observed.end = end;
        shared.observed.ended_at = drill.clock.now();
        shared.observed.clone()
    };
    let report = Report::from(observed);
    write_report(&drill.options.report_dir, &drill.run, report)
}

fn write_report(dir: &std::path::Path, run: &str, report: Report) -> Result<Written, DrillError> {
    let fail = |p: &std::path::Path, e| DrillError::Report(p.to_owned(), e);
    std::fs::create_dir_all(dir).map_err(|e| fail(dir, e))?;
    let markdown = dir.join(format!("drill-{run}.md"));
    let json = dir.join(format!("drill-{run}.json"));
    std::fs::write(&markdown, report.markdown()).map_err(|e| fail(&markdown, e))?;
    let text = serde_json::to_string_pretty(&report.json()).unwrap_or_default();
    std::fs::write(&json, text + "\n").map_err(|e| fail(&json, e))?;
    Ok(Written { markdown, json, report })
}

/// A loop's pace from now: one round per `every`, a late round not made up, until `stop`.
fn pace(every: Duration, stop: &CancellationToken) -> Pace {
    Pace::new(tokio::time::Instant::now(), every, stop.clone())
}

/// One node's role, every interval, over its own connection. An error (the
/// node down, unreachable, too slow) reads as unknown and drops the connection.
async fn watch(drill: Arc<Drill>, node: usize, stop: CancellationToken) {
    let mut session: Option<DrillSession> = None;
    let mut pace = pace(drill.options.interval, &stop);
    let table = drill.options.table.clone();
    let name = drill.cluster.nodes[node].name.clone();
    let mut logged: Option<Option<bool>> = None;
    while pace.tick().await {
        let result = async {
            if session.is_none() {
                session = Some(drill.connect(node, &table).await?);
            }
            let s = session.as_mut().expect("connected above");
            match tokio::time::timeout(drill.options.timeout, s.0.writable()).await {
                Ok(r) => r,
                Err(_) => Err(EngineError::timeout("role probe", drill.options.timeout)),
            }
        };
        let result = tokio::select! {
            _ = stop.cancelled() => return,
            r = result => r,
        };
        let writable = match result {
            Ok(w) => Some(w),
            Err(e) => {
                if logged != Some(None) {
                    tracing::info!(node = %name, error = %e, "Drill: node unreachable");
                }
                session = None;
                None
            }
        };
        if logged != Some(writable) && writable.is_some() {
            tracing::info!(node = %name, writable = writable.unwrap_or(false), "Drill: node role");
        }
        logged = Some(writable);
        let now = drill.clock.now();
        let mut shared = drill.lock();
        let seen = &mut shared.seen[node];
        seen.writable_since = match (writable, seen.writable_since) {
            (Some(true), Some(since)) => Some(since),
            (Some(true), None) => Some(now),
            _ => None,
        };
        seen.writable = writable;
        seen.at = now;
        // The old primary, after the first failed write: fenced, or gone.
        let old = shared.observed.writers[0].incident.as_ref().map(|i| (i.old_node, i.failed_at));
        if let Some((Some(old), failed_at)) = old {
            if old == node && now >= failed_at {
                let o = &mut shared.observed;
                match writable {
                    Some(false) if o.fenced_at.is_none() => o.fenced_at = Some(now),
                    None if o.unreachable_at.is_none() => o.unreachable_at = Some(now),
                    _ => {}
                }
            }
        }
    }
}

/// Whether a reading taken at `at` still stands at `now`.
fn fresh(drill: &Drill, at: f64, now: f64) -> bool {
    now - at <= 3.0 * drill.options.interval.as_secs_f64() + drill.options.timeout.as_secs_f64()
}

/// Writes numbered rows to `table` on whichever node is writable, every interval.
/// Writer 0 (the drill table) starts the drill's clock at its first failure.
async fn write_loop(drill: Arc<Drill>, writer: usize, table: TableName, stop: CancellationToken) {
    let mut pace = pace(drill.options.interval, &stop);
    let mut seq: i64 = 0;
    let mut target: Option<usize> = None;
    let mut not_yet: Option<String> = None;
    let name = drill.cluster.nodes.iter().map(|n| n.name.clone()).collect::<Vec<_>>();
    // A connection to every node, kept open ahead by a keeper per node, so that
    // writes move to a new primary without a connect (TLS, authentication) on the way.
    let slots: Arc<Vec<Mutex<Slot>>> = Arc::new((0..name.len()).map(|_| Mutex::default()).collect());
    for node in 0..name.len() {
        tokio::spawn(keep(drill.clone(), node, table.clone(), slots.clone(), stop.clone()));
    }
    let slot = |node: usize| slots[node].lock().unwrap_or_else(|p| p.into_inner());
    // Taken for a statement (the keeper leaves the slot alone), then put back, or
    // not (dropped) after a failure.
    let take = |node: usize| {
        let mut s = slot(node);
        s.in_use = true;
        s.session.take()
    };
    let put = |node: usize, session: Option<DrillSession>| {
        let mut s = slot(node);
        s.in_use = false;
        if session.is_some() {
            s.session = session;
        }
    };
    while pace.tick().await {
        seq += 1;
        // The node to write to: the current one, else a writable one (during an
        // outage, another than the old primary when there is one).
        let sent_at = drill.clock.now();
        let node = match target {
            Some(node) => Some(node),
            None => {
                let shared = drill.lock();
                let old = shared.observed.writers[writer].incident.as_ref().and_then(|i| i.old_node);
                let writable: Vec<usize> = (0..name.len())
                    .filter(|&n| {
                        let s = &shared.seen[n];
                        s.writable == Some(true) && fresh(&drill, s.at, sent_at)
                    })
                    .collect();
                writable.iter().copied().find(|&n| Some(n) != old).or_else(|| writable.first().copied())
            }
        };
        let result: Result<usize, (Option<usize>, String)> = match node {
            None => Err((None, "no writable node".to_owned())),
            Some(node) => {
                let attempt = async {
                    let mut session = match take(node) {
                        Some(s) => s,
                        None => match drill.connect(node, &table).await {
                            Ok(s) => s,
                            Err(e) => {
                                put(node, None);
                                return Err(e.to_string());
                            }
                        },
                    };
                    let write = DrillWrite {
                        run: drill.run.clone(),
                        seq,
                        client_us: (sent_at * 1e6) as i64,
                        node: name[node].clone(),
                    };
                    let result = match tokio::time::timeout(drill.options.timeout, session.0.write(&write))
                        .await
                    {
                        Ok(Ok(())) => Ok(()),
                        Ok(Err(e)) => Err(e.to_string()),
                        Err(_) => Err(EngineError::timeout("drill write", drill.options.timeout).to_string()),
                    };
                    // A session whose write failed (or was abandoned mid-statement) is dropped.
                    put(node, result.is_ok().then_some(session));
                    result
                };
                let outcome = tokio::select! {
                    _ = stop.cancelled() => return,
                    r = attempt => r,
                };
                target = outcome.is_ok().then_some(node);
                outcome.map(|()| node).map_err(|e| (Some(node), e))
            }
        };
        let acked_at = drill.clock.now();
        match result {
            Ok(node) => {
                let ack = Ack { seq, sent_at, acked_at, node };
                let resumed = {
                    let mut shared = drill.lock();
                    shared.acks[writer].push(ack);
                    let since = shared.seen[node].writable_since;
                    let log = &mut shared.observed.writers[writer];
                    log.acked += 1;
                    log.last_ack = Some(ack);
                    match &mut log.incident {
                        Some(i) if i.resumed.is_none() => {
                            i.resumed = Some(ack);
                            i.writable_since = since;
                            i.last_acked.map(|last| last.seq)
                        }
                        _ => None,
                    }
                };
                if let Some(up_to) = resumed {
                    tracing::info!(writer, node = %name[node], seq, "Drill: writes resumed; reading what survived");
                    let mut session = take(node);
                    measure_loss(&drill, writer, up_to, session.as_mut()).await;
                    put(node, session);
                }
            }
            Err((node, error)) => {
                let mut shared = drill.lock();
                let log = &mut shared.observed.writers[writer];
                // Before the first acknowledgement nothing was lost: the drill is
                // still finding its primary.
                if log.last_ack.is_none() {
                    // Said once per distinct problem (a missing table, a refused login).
                    if not_yet.as_deref() != Some(error.as_str()) {
                        tracing::warn!(writer, table = %table, node = ?node.map(|n| &name[n]), error = %error,
                            "Drill: no write acknowledged yet");
                        not_yet = Some(error);
                    }
                    continue;
                }
                log.failed += 1;
                if log.incident.is_none() {
                    let last = log.last_ack;
                    tracing::warn!(writer, node = ?node.map(|n| &name[n]), seq, error = %error,
                        "Drill: first failed write; the clock starts");
                    log.incident = Some(Incident {
                        failed_seq: seq,
                        failed_at: sent_at,
                        error,
                        old_node: last.map(|a| a.node),
                        last_acked: last,
                        ..Incident::default()
                    });
                }
            }
        }
        check_done(&drill);
    }
}

/// A writer's connection to one node: open and idle, or taken for a statement.
#[derive(Default)]
struct Slot {
    session: Option<DrillSession>,
    in_use: bool,
}

/// Keeps a connection to `node` ready in its slot for the writer: every interval
/// (at least 250 ms), an empty slot is filled with a new connection.
async fn keep(
    drill: Arc<Drill>,
    node: usize,
    table: TableName,
    slots: Arc<Vec<Mutex<Slot>>>,
    stop: CancellationToken,
) {
    let mut pace = pace(slow_pace(&drill), &stop);
    while pace.tick().await {
        {
            let slot = slots[node].lock().unwrap_or_else(|p| p.into_inner());
            if slot.in_use || slot.session.is_some() {
                continue;
            }
        }
        let session = tokio::select! {
            _ = stop.cancelled() => return,
            s = drill.connect(node, &table) => s,
        };
        if let Ok(s) = session {
            let mut slot = slots[node].lock().unwrap_or_else(|p| p.into_inner());
            if !slot.in_use && slot.session.is_none() {
                slot.session = Some(s);
            }
        }
    }
}

/// Reads, on the node where writes resumed, the newest of the old primary's
/// acknowledged writes it holds, and counts the acknowledged ones it lacks.
async fn measure_loss(drill: &Drill, writer: usize, up_to: i64, session: Option<&mut DrillSession>) {
    let Some(session) = session else { return };
    let result =
        match tokio::time::timeout(drill.options.timeout * 4, session.0.newest(&drill.run, up_to)).await {
            Ok(r) => r.map_err(|e| e.to_string()),
            Err(_) => Err("reading the newest drill write timed out".to_owned()),
        };
    let mut shared = drill.lock();
    let acks = std::mem::take(&mut shared.acks[writer]);
    let i = shared.observed.writers[writer].incident.as_mut().expect("an incident resumed");
    match result {
        Ok(present) => {
            let present_seq = present.map_or(i64::MIN, |(seq, _)| seq);
            let old = i.old_node;
            i.lost_writes = Some(
                acks.iter().filter(|a| Some(a.node) == old && a.seq > present_seq && a.seq <= up_to).count()
                    as u64,
            );
            i.newest_present = Some(present.map(|(seq, us)| (seq, us as f64 / 1e6)));
            tracing::info!(writer, lost_writes = i.lost_writes, "Drill: data loss measured");
        }
        Err(e) => {
            tracing::error!(writer, error = %e, "Drill: cannot read the drill table on the new primary");
            i.loss_error = Some(e);
        }
    }
    shared.acks[writer] = acks;
}

/// Every interval: how many nodes are writable (the split-brain window).
async fn tick_loop(drill: Arc<Drill>, stop: CancellationToken) {
    let mut pace = pace(drill.options.interval, &stop);
    while pace.tick().await {
        let now = drill.clock.now();
        let mut shared = drill.lock();
        let writable =
            shared.seen.iter().filter(|s| s.writable == Some(true) && fresh(&drill, s.at, now)).count();
        if let Some(last) = shared.last_tick {
            if writable >= 2 {
                let o = &mut shared.observed;
                o.split_brain_seconds += now - last;
                o.split_brain_first.get_or_insert(last);
                o.split_brain_last = Some(now);
            }
        }
        if writable >= 2 && shared.last_tick.is_some() {
            tracing::debug!(writable, "Drill: split brain");
        }
        shared.last_tick = Some(now);
    }
}

/// How often DNS and the health probes are asked: the drill's interval, at least 250 ms.
fn slow_pace(drill: &Drill) -> Duration {
    drill.options.interval.max(Duration::from_millis(250))
}

/// Asks every resolver of the cluster's records; per region, the share of
/// (record, resolver) answers that are that region's, and when it first reached
/// 80 % and 100 % after the first failed write.
async fn dns_loop(
    drill: Arc<Drill>,
    records: Vec<crate::config::Record>,
    timeout: Duration,
    stop: CancellationToken,
) {
    use crate::dns::query::{query_record, Mode};
    use hickory_net::proto::rr::{Name, RecordType as WireType};
    let mut pace = pace(slow_pace(&drill), &stop);
    while pace.tick().await {
        let started = drill.clock.now();
        let mut asks = Vec::new();
        for r in &records {
            let Ok(name) = Name::from_ascii(&r.name) else { continue };
            let rtype = match r.record_type {
                RecordType::A => WireType::A,
                RecordType::Aaaa => WireType::AAAA,
                RecordType::Cname => WireType::CNAME,
            };
            for server in &r.resolvers {
                let (name, server): (Name, SocketAddr) = (name.clone(), *server);
                asks.push(
                    async move { (r, query_record(server, &name, rtype, Mode::Recursive, timeout).await) },
                );
            }
        }
        let answers = tokio::select! {
            _ = stop.cancelled() => return,
            a = futures_util::future::join_all(asks) => a,
        };
        let total = answers.len().max(1) as f64;
        let mut matching: BTreeMap<String, usize> = BTreeMap::new();
        for (record, outcome) in &answers {
            let Ok(answer) = &outcome.result else { continue };
            for (region, values) in &record.answers {
                if values.len() == answer.values.len() && values.iter().all(|v| answer.values.contains(v)) {
                    *matching.entry(region.clone()).or_default() += 1;
                }
            }
        }
        let now = drill.clock.now();
        let mut shared = drill.lock();
        let failed_at = shared.observed.writers[0].incident.as_ref().map(|i| i.failed_at);
        shared.dns_share = matching.iter().map(|(r, n)| (r.clone(), *n as f64 / total)).collect();
        if let (Some(t0), Some((_, reach))) = (failed_at, shared.observed.dns.as_mut()) {
            if started >= t0 {
                for (region, n) in matching {
                    let share = n as f64 / total;
                    let entry: &mut Reach = reach.entry(region).or_default();
                    if share >= 0.8 && entry.at80.is_none() {
                        entry.at80 = Some(now);
                    }
                    if share >= 1.0 && entry.at100.is_none() {
                        entry.at100 = Some(now);
                    }
                }
            }
        }
        drop(shared);
        check_done(&drill);
    }
}

/// Runs every region's health probes; per region, when its quorum first passed
/// after the first failed write.
async fn health_loop(drill: Arc<Drill>, regions: Vec<crate::config::Region>, stop: CancellationToken) {
    let checks: Vec<(String, crate::health::RegionCheck)> =
        regions.iter().map(|r| (r.name.clone(), crate::health::RegionCheck::new(r))).collect();
    let mut pace = pace(slow_pace(&drill), &stop);
    while pace.tick().await {
        let started = drill.clock.now();
        let rounds = futures_util::future::join_all(
            checks.iter().map(|(name, c)| async move { (name, c.run().await) }),
        );
        let results = tokio::select! {
            _ = stop.cancelled() => return,
            r = rounds => r,
        };
        let now = drill.clock.now();
        let mut shared = drill.lock();
        let failed_at = shared.observed.writers[0].incident.as_ref().map(|i| i.failed_at);
        if let (Some(t0), Some(health)) = (failed_at, shared.observed.health.as_mut()) {
            if started >= t0 {
                for (name, (passed, quorum)) in results {
                    let at = health.entry(name.clone()).or_default();
                    if passed >= quorum && at.is_none() {
                        *at = Some(now);
                    }
                }
            }
        }
        drop(shared);
        check_done(&drill);
    }
}

/// Cancels `done` once every figure of the drill table's writer is in: writes
/// resumed and the loss read, DNS on every resolver and the health probes (where
/// configured), the old primary fenced or gone (unless writes resumed on it),
/// and the probe writer's own resumption.
fn check_done(drill: &Drill) {
    if drill.done.is_cancelled() {
        return;
    }
    let observed = drill.lock().observed.clone();
    // A probe writer that never failed has nothing to wait for.
    let probe_failed = observed.writers.get(1).is_some_and(|w| w.incident.is_some());
    let report = Report::from(observed);
    let measured = |f: report::Figure| f != report::Figure::NotReached;
    let same = report.new_primary.is_some() && report.new_primary == report.old_primary;
    let done = report.failed_at.is_some()
        && measured(report.resumed)
        && report.data_loss_seconds.is_some()
        && measured(report.dns100)
        && measured(report.health)
        && (same || measured(report.fenced) || measured(report.unreachable))
        && (!probe_failed || report.probe.is_some_and(|(s, _, resumed)| s.is_some() && measured(resumed)));
    if done {
        drill.done.cancel();
    }
}

impl Drill {
    /// The drill's metrics now.
    fn samples(&self) -> Samples {
        let shared = self.lock();
        let report = Report::from(shared.observed.clone());
        let c = self.cluster.name.as_str();
        let mut s = Samples::default();
        for (w, log) in shared.observed.writers.iter().enumerate() {
            let writer = if w == 0 { "drill" } else { "probe" };
            s.push(&WRITES_TOTAL, &[c, writer, "acknowledged"], log.acked as f64);
            s.push(&WRITES_TOTAL, &[c, writer, "failed"], log.failed as f64);
        }
        let now = self.clock.now();
        let mut writable = 0;
        for (n, seen) in shared.seen.iter().enumerate() {
            let node = &self.cluster.nodes[n];
            if let Some(w) = seen.writable.filter(|_| fresh(self, seen.at, now)) {
                writable += usize::from(w);
                s.push(&NODE_WRITABLE, &[c, &node.name, &node.region], f64::from(u8::from(w)));
            }
        }
        s.push(&WRITABLE_NODES, &[c], writable as f64);
        s.push(&SPLIT_BRAIN, &[c], shared.observed.split_brain_seconds);
        if let Some(t0) = report.failed_at {
            s.push(&FAILED_AT, &[c], t0);
        }
        if let (Some(loss), Some(writes)) = (report.data_loss_seconds, report.data_loss_writes) {
            s.push(&DATA_LOSS, &[c, "drill"], loss);
            s.push(&DATA_LOSS_WRITES, &[c, "drill"], writes as f64);
        }
        if let Some((Some(loss), Some(writes), _)) = report.probe {
            s.push(&DATA_LOSS, &[c, "probe"], loss);
            s.push(&DATA_LOSS_WRITES, &[c, "probe"], writes as f64);
        }
        for (step, figure) in [
            ("fenced", report.fenced),
            ("writable", report.writable),
            ("dns_80", report.dns80),
            ("dns_100", report.dns100),
            ("health", report.health),
            ("resumed", report.resumed),
        ] {
            if let report::Figure::Seconds(v) = figure {
                s.push(&STEP_SECONDS, &[c, step], v);
            }
        }
        if let Some(r) = report.recovery {
            s.push(&RECOVERY, &[c], r);
        }
        s.push(&OBJECTIVE_SECONDS, &[c, "rpo"], shared.observed.rpo);
        s.push(&OBJECTIVE_SECONDS, &[c, "rto"], shared.observed.rto);
        for (objective, verdict) in [("rpo", report.rpo), ("rto", report.rto)] {
            match verdict {
                report::Verdict::Pass => s.push(&OBJECTIVE_MET, &[c, objective], 1.0),
                report::Verdict::Fail => s.push(&OBJECTIVE_MET, &[c, objective], 0.0),
                report::Verdict::Unknown => {}
            }
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/metrics.md's drill section lists exactly these families, help text and all.
    #[test]
    fn docs_list_the_drill_metrics() {
        let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/metrics.md")).unwrap();
        let section =
            text.split("## `rpo-exporter drill`").nth(1).expect("docs/metrics.md has a drill section");
        let rows: Vec<&str> = section.lines().filter(|l| l.starts_with("| `rpo_drill_")).collect();
        let expected: Vec<String> = METRICS
            .iter()
            .map(|d| {
                let kind = if d.kind == crate::metrics::MetricKind::Counter { "counter" } else { "gauge" };
                let labels: Vec<String> = d.labels.iter().map(|l| format!("`{l}`")).collect();
                format!("| `{}` | {kind} | {} | {} |", d.sample_name(), labels.join(", "), d.help)
            })
            .collect();
        assert_eq!(rows, expected, "docs/metrics.md's drill rows should read:\n{}", expected.join("\n"));
    }
}
