//! Data residency: proof, from the database side, that the tables a cluster's
//! `residency:` rules restrict stay in their allowed regions.
//!
//! The probe subsystem of the clusters' `residency:` blocks. One loop per
//! cluster with rules, each round at the cluster's residency interval, never on
//! the scrape path and apart from the heartbeat workers: every node outside a
//! rule's regions is asked, in one short read-only session of its own, whether a
//! table of the rule holds a row there, and how it gets the table (PostgreSQL: a
//! subscription that receives it, or subscribes to a publication holding it;
//! MySQL/MariaDB: replication filters that let it through). The nodes inside the
//! regions are asked which publications hold the rule's tables. All SQL is the
//! engines' (`engine::residency`, `engine::publications`). A finding that could
//! not be made (a missing privilege, a node down) is unknown: its violation
//! series is absent and `rpo_residency_check_success` is 0, never a compliant 0.
//! State kept: the latest result per (cluster, rule, node).

use crate::config::{Cluster, Config, Rule};
use crate::endpoint::{Settings, TableMatch};
use crate::engine::{self, EngineError, ErrorKind, Holding, Reason};
use crate::metrics::{desc, MetricDesc, Samples};
use crate::probe::{Clusters, Subsystem};
use crate::supervise::Pace;
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex};
use tokio_util::sync::CancellationToken;

const VIOLATION_LABELS: &[&str] = &["db_cluster", "rule", "node", "node_region", "reason"];
const CHECK_LABELS: &[&str] = &["db_cluster", "rule", "node"];

desc!(VIOLATION, "rpo_residency_violation", Gauge, VIOLATION_LABELS, "1 while the node, outside the rule's allowed regions, breaks the residency rule for this reason (rows_present, publication, subscription, replication_filter), else 0; absent while the reason could not be checked (see rpo_residency_check_success).");
desc!(CHECK_SUCCESS, "rpo_residency_check_success", Gauge, CHECK_LABELS, "1 if every residency check of the rule on the node ran in its last round, 0 if one could not (node unreachable, missing privilege): then compliance is unknown, not proven.");
desc!(
    LAST_CHECK,
    "rpo_residency_last_check_timestamp_seconds",
    Gauge,
    CHECK_LABELS,
    "When the rule was last checked on the node (successfully or not); absent before the first check."
);

/// The residency families.
pub static METRICS: &[&MetricDesc] = &[&VIOLATION, &CHECK_SUCCESS, &LAST_CHECK];

/// The latest check of one rule on one node.
#[derive(Debug, Clone, PartialEq)]
struct Checked {
    region: String,
    /// The findings that could be made; a reason missing here is unknown.
    found: Vec<(Reason, bool)>,
    success: bool,
    /// Wall-clock seconds.
    at: f64,
}

/// (cluster, rule, node) names.
type Key = (String, String, String);

/// Per node of a cluster: `None` when not asked, else the publications holding each
/// rule's tables (one list per rule) or why they could not be read.
type Published = Option<Result<Vec<Vec<String>>, EngineError>>;

/// The rules of every cluster that has some, and their latest results.
#[derive(Debug)]
pub struct ResidencyState {
    clusters: Vec<Cluster>,
    results: Mutex<BTreeMap<Key, Checked>>,
}

impl ResidencyState {
    fn lock(&self) -> std::sync::MutexGuard<'_, BTreeMap<Key, Checked>> {
        self.results.lock().unwrap_or_else(|p| p.into_inner())
    }
}

impl Subsystem for ResidencyState {
    const NAME: &'static str = "residency";
    const METRICS: &'static [&'static MetricDesc] = METRICS;

    fn from_config(config: &Config) -> Option<ResidencyState> {
        let clusters: Vec<Cluster> =
            config.clusters.iter().filter(|c| c.residency.is_some()).cloned().collect();
        (!clusters.is_empty()).then(|| ResidencyState { clusters, results: Mutex::new(BTreeMap::new()) })
    }

    fn same_config(&self, other: &ResidencyState) -> bool {
        self.clusters == other.clusters
    }

    /// Keeps the results of every (cluster, rule, node) still checked.
    fn carry_over(&self, previous: &ResidencyState) {
        let old = previous.lock();
        let mut new = self.lock();
        for (key, checked) in old.iter() {
            let (cluster, rule, node) = key;
            let still = self.clusters.iter().any(|c| {
                &c.name == cluster
                    && c.nodes.iter().any(|n| &n.name == node && n.region == checked.region)
                    && c.residency.as_ref().is_some_and(|r| r.rules.iter().any(|r| &r.name == rule))
            });
            if still {
                new.insert(key.clone(), checked.clone());
            }
        }
    }

    fn samples(&self, out: &mut Samples) {
        for ((cluster, rule, node), c) in self.lock().iter() {
            for (reason, violated) in &c.found {
                out.push(
                    &VIOLATION,
                    &[cluster, rule, node, &c.region, reason.as_str()],
                    f64::from(u8::from(*violated)),
                );
            }
            out.push(&CHECK_SUCCESS, &[cluster, rule, node], f64::from(u8::from(c.success)));
            out.push(&LAST_CHECK, &[cluster, rule, node], c.at);
        }
    }

    async fn run(self: Arc<Self>, _: Arc<dyn Clusters>, shutdown: CancellationToken) {
        let loops = (0..self.clusters.len()).map(|i| {
            let (state, shutdown) = (self.clone(), shutdown.clone());
            async move {
                let interval = state.clusters[i].residency.as_ref().map(|r| r.interval).unwrap_or_default();
                let mut pace = Pace::new(tokio::time::Instant::now(), interval, shutdown);
                while pace.round(state.round(i)).await.is_some() {}
            }
        });
        futures_util::future::join_all(loops).await;
    }
}

/// What a node's check runs with: the cluster's connection settings, deadlines
/// from the residency block.
fn settings(cluster: &Cluster, node: &crate::config::Node) -> Settings {
    let residency = cluster.residency.as_ref().expect("only clusters with rules are checked");
    let mut s = cluster.heartbeat.settings(node);
    s.timeout = residency.timeout;
    s.connect_timeout = s.connect_timeout.min(residency.timeout);
    s
}

/// Runs `check` within `deadline`; missing it is a timeout.
async fn bounded<T>(
    deadline: std::time::Duration,
    what: &str,
    check: impl std::future::Future<Output = Result<T, EngineError>>,
) -> Result<T, EngineError> {
    tokio::time::timeout(deadline, check).await.unwrap_or_else(|_| Err(EngineError::timeout(what, deadline)))
}

impl ResidencyState {
    /// One round of cluster `i`: every node asked at once, then the results stored.
    async fn round(&self, i: usize) {
        let cluster = &self.clusters[i];
        let Some(residency) = &cluster.residency else { return };
        let rules = &residency.rules;
        let targets: Vec<TableMatch> = rules.iter().map(|r| r.tables.clone()).collect();
        let deadline = residency.timeout;
        let holders = futures_util::future::join_all(cluster.nodes.iter().map(|node| {
            let targets = &targets;
            async move {
                let outside: Vec<usize> =
                    (0..rules.len()).filter(|&k| !rules[k].allows(&node.region)).collect();
                if outside.is_empty() {
                    return None;
                }
                let asked: Vec<TableMatch> = outside.iter().map(|&k| targets[k].clone()).collect();
                let s = settings(cluster, node);
                let answer = bounded(
                    deadline,
                    "residency check",
                    engine::residency(&node.endpoint, &s, node.replication, &asked),
                )
                .await;
                Some((outside, answer))
            }
        }))
        .await;
        // The possible publishers (the nodes inside a rule's regions), asked only
        // when a node outside subscribes to something.
        let subscribes = holders.iter().flatten().any(|(_, answer)| {
            answer.as_ref().is_ok_and(|hs| {
                hs.iter()
                    .any(|h| h.subscribed.as_ref().is_some_and(|s| s.as_ref().is_ok_and(|s| !s.is_empty())))
            })
        });
        let publishers = futures_util::future::join_all(cluster.nodes.iter().map(|node| {
            let targets = &targets;
            async move {
                if !subscribes || rules.iter().all(|r| !r.allows(&node.region)) {
                    return None;
                }
                let s = settings(cluster, node);
                Some(
                    bounded(deadline, "residency check", engine::publications(&node.endpoint, &s, targets))
                        .await,
                )
            }
        }))
        .await;
        let at = wall_clock();
        let mut results = Vec::new();
        for (node, held) in cluster.nodes.iter().zip(holders) {
            let Some((outside, answer)) = held else { continue };
            for (n, &k) in outside.iter().enumerate() {
                let rule = &rules[k];
                let holding = match &answer {
                    Ok(holdings) => holdings.get(n).ok_or_else(|| {
                        EngineError::new(ErrorKind::Query, "the engine answered fewer rules than asked")
                    }),
                    Err(e) => Err(e.clone()),
                };
                let checked = match holding {
                    Ok(h) => judge(cluster, rule, k, h, &publishers),
                    Err(e) => (Vec::new(), vec![e]),
                };
                let (found, errors) = checked;
                let key = (cluster.name.clone(), rule.name.clone(), node.name.clone());
                let success = errors.is_empty();
                results.push((key, Checked { region: node.region.clone(), found, success, at }, errors));
            }
        }
        // Stored at once; what changed is logged after, outside the lock: a
        // violation as it starts and ends, a check as it stops and resumes running
        // (every round would repeat them each interval).
        let mut changes = Vec::new();
        {
            let mut stored = self.lock();
            for (key, checked, errors) in results {
                let before = stored.insert(key.clone(), checked.clone());
                changes.push((key, before, checked, errors));
            }
        }
        for ((cluster, rule, node), before, now, errors) in changes {
            let was = |reason: Reason| {
                before.as_ref().and_then(|b| b.found.iter().find(|(r, _)| *r == reason).map(|(_, v)| *v))
            };
            for (reason, violated) in &now.found {
                match (was(*reason), violated) {
                    (Some(true), true) | (Some(false) | None, false) => {}
                    (_, true) => {
                        tracing::warn!(db_cluster = %cluster, rule = %rule, node = %node, node_region = %now.region, reason = reason.as_str(), "Residency violation")
                    }
                    (Some(true), false) => {
                        tracing::info!(db_cluster = %cluster, rule = %rule, node = %node, node_region = %now.region, reason = reason.as_str(), "Residency violation cleared")
                    }
                }
            }
            let ran_before = before.as_ref().is_none_or(|b| b.success);
            match (ran_before, errors.first()) {
                (true, Some(e)) => {
                    tracing::warn!(db_cluster = %cluster, rule = %rule, node = %node, error = %e, "Residency check could not run")
                }
                (false, None) => {
                    tracing::info!(db_cluster = %cluster, rule = %rule, node = %node, "Residency check runs again")
                }
                _ => {}
            }
        }
    }
}

/// The findings of rule `rule` (index `k`) on one node, and what could not be
/// found out. [`Reason::Publication`] joins the node's subscribed publications with
/// what the nodes inside the rule's regions publish of its tables.
fn judge(
    cluster: &Cluster,
    rule: &Rule,
    k: usize,
    holding: &Holding,
    publishers: &[Published],
) -> (Vec<(Reason, bool)>, Vec<EngineError>) {
    let mut found = Vec::new();
    let mut errors = Vec::new();
    for (reason, result) in &holding.findings {
        match result {
            Ok(v) => found.push((*reason, *v)),
            Err(e) => errors.push(e.clone()),
        }
    }
    match &holding.subscribed {
        None => {}
        Some(Err(e)) => errors.push(e.clone()),
        Some(Ok(subscribed)) if subscribed.is_empty() => found.push((Reason::Publication, false)),
        Some(Ok(subscribed)) => {
            let mut unknown = None;
            let mut hit = false;
            let mut asked = 0;
            for (node, answer) in cluster.nodes.iter().zip(publishers) {
                if !rule.allows(&node.region) {
                    continue;
                }
                asked += 1;
                match answer {
                    Some(Ok(per_rule)) => {
                        hit |= per_rule.get(k).is_some_and(|pubs| pubs.iter().any(|p| subscribed.contains(p)))
                    }
                    Some(Err(e)) => {
                        unknown = Some(EngineError::new(
                            e.kind,
                            format!("cannot read the publications on {}: {e}", node.name),
                        ))
                    }
                    None => {
                        unknown = Some(EngineError::new(
                            ErrorKind::Query,
                            format!("the publications on {} were not read", node.name),
                        ))
                    }
                }
            }
            match unknown {
                // No publisher in this config (a sidecar's): the publication check is
                // not this exporter's to make; `subscription` still sees what arrives.
                _ if asked == 0 => {}
                Some(e) if !hit => errors.push(e),
                _ => found.push((Reason::Publication, hit)),
            }
        }
    }
    (found, errors)
}

fn wall_clock() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}
