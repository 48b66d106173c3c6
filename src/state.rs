//! The root of the live state: what a scrape reads, swapped whole on a reload.
//!
//! [`State`] holds one configuration's worth of results: each cluster's node
//! store ([`crate::store`], what the workers write) and each probe subsystem's
//! state. [`State::rebuild`] makes the state for a reloaded configuration, keeping
//! every node measured the same way and every probe result still probed the same
//! way. [`Live`] is the current [`State`] and the exporter's reports about itself;
//! [`Live::samples`] is the whole of the scrape's work.

use crate::config::{Cluster, Config};
use crate::health::HealthState;
use crate::heartbeat::mono_now;
use crate::metrics::{self, Samples};
use crate::store::ClusterState;
use crate::supervise::Loop;
use std::sync::{Arc, Mutex, RwLock};

#[derive(Debug)]
pub struct State {
    pub clusters: Vec<Arc<ClusterState>>,
    /// Region probes' latest results, when the config has a `health:` section.
    pub health: Option<Arc<HealthState>>,
    /// DNS propagation's latest results, when the config has a `dns:` section.
    pub dns: Option<Arc<crate::dns::DnsState>>,
}

/// The state a scrape reads, swapped whole on a config reload, and the reload
/// outcome the exporter reports about itself.
#[derive(Debug)]
pub struct Live {
    state: RwLock<Arc<State>>,
    /// (last reload succeeded, wall-clock time of the last success).
    reload: Mutex<(bool, f64)>,
    /// The same for `--web.config.file`, when one is given.
    web_reload: Mutex<Option<(bool, f64)>>,
}

impl Live {
    pub fn new(state: State) -> Live {
        Live {
            state: RwLock::new(Arc::new(state)),
            reload: Mutex::new((true, wall_clock())),
            web_reload: Mutex::new(None),
        }
    }

    pub fn current(&self) -> Arc<State> {
        self.state.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn swap(&self, next: Arc<State>) {
        *self.state.write().unwrap_or_else(|p| p.into_inner()) = next;
    }

    pub fn record_reload(&self, ok: bool) {
        let mut r = self.reload.lock().unwrap_or_else(|p| p.into_inner());
        r.0 = ok;
        if ok {
            r.1 = wall_clock();
        }
    }

    /// Records whether the web config (re)loaded; its time too when it did.
    pub fn record_web_config_load(&self, ok: bool) {
        let mut r = self.web_reload.lock().unwrap_or_else(|p| p.into_inner());
        let at = match *r {
            Some((_, at)) if !ok => at,
            _ => wall_clock(),
        };
        *r = Some((ok, at));
    }

    /// Everything a scrape shows.
    pub fn samples(&self) -> Samples {
        let mut out = self.current().samples();
        let (ok, at) = *self.reload.lock().unwrap_or_else(|p| p.into_inner());
        out.push(&metrics::RELOAD_OK, &[], f64::from(u8::from(ok)));
        out.push(&metrics::RELOAD_AT, &[], at);
        for task in [Loop::WORKER, Loop::new("dns"), Loop::new("health")] {
            out.push(&metrics::TASK_RESTARTS, &[task.as_str()], task.restarts() as f64);
        }
        if let Some((ok, at)) = *self.web_reload.lock().unwrap_or_else(|p| p.into_inner()) {
            out.push(&metrics::WEB_RELOAD_OK, &[], f64::from(u8::from(ok)));
            out.push(&metrics::WEB_RELOAD_AT, &[], at);
        }
        out
    }
}

fn wall_clock() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

impl State {
    /// The state for a reloaded `config`. A cluster whose configuration did not
    /// change is kept whole. In one that changed, every node whose measurement
    /// did not (same name, region, engine, DSN, heartbeat table and format) keeps
    /// its state: counters, readings and the write history that maps a seen
    /// heartbeat to the first unseen one. The region probes and DNS records the
    /// new config still has, unchanged, keep their readings; everything else
    /// starts afresh, and what the new config dropped is gone.
    pub fn rebuild(config: &Config, old: &State) -> Arc<State> {
        let mut next = State::new(config);
        for cluster in &mut next.clusters {
            let Some(before) = old.clusters.iter().find(|o| o.config.name == cluster.config.name) else {
                continue;
            };
            if before.config == cluster.config {
                *cluster = before.clone();
                continue;
            }
            let nodes = cluster
                .nodes
                .iter()
                .map(|n| match before.node(&n.name) {
                    Some(kept) if same_measurement(&before.config, &cluster.config, &n.name) => kept.clone(),
                    _ => n.clone(),
                })
                .collect();
            *cluster = Arc::new(ClusterState { config: cluster.config.clone(), nodes });
        }
        if let (Some(new), Some(old)) = (&mut next.health, &old.health) {
            if new.same_config(old) {
                *new = old.clone();
            } else {
                new.carry_over(old);
            }
        }
        if let (Some(new), Some(old)) = (&mut next.dns, &old.dns) {
            if new.same_config(old) {
                *new = old.clone();
            } else {
                new.carry_over(old);
            }
        }
        Arc::new(next)
    }

    /// The region of the cluster's writable node, as the node workers last saw it;
    /// `None` when no node is writable or writable nodes sit in several regions
    /// (split brain).
    pub fn writable_region(&self, cluster: &str) -> Option<String> {
        let c = self.clusters.iter().find(|c| c.config.name == cluster)?;
        let regions: std::collections::BTreeSet<&str> =
            c.nodes.iter().filter(|n| n.lock().is_writer()).map(|n| n.region.as_str()).collect();
        match regions.len() {
            1 => regions.into_iter().next().map(str::to_owned),
            _ => None,
        }
    }

    pub fn new(config: &Config) -> State {
        let clusters = config.clusters.iter().map(|c| Arc::new(ClusterState::new(c))).collect();
        let health = config.health.as_ref().map(|h| Arc::new(HealthState::new(h)));
        let dns = config.dns.as_ref().map(|d| Arc::new(crate::dns::DnsState::new(d)));
        State { clusters, health, dns }
    }

    /// Everything a scrape shows, copied out of memory.
    pub fn samples(&self) -> Samples {
        let mut out = Samples::default();
        out.push(&metrics::BUILD_INFO, &[env!("CARGO_PKG_VERSION")], 1.0);
        let now = mono_now();
        for cluster in &self.clusters {
            cluster.samples(now, &mut out);
        }
        if let Some(health) = &self.health {
            health.samples(&mut out);
        }
        if let Some(dns) = &self.dns {
            dns.samples(&mut out);
        }
        out
    }
}

/// Whether node `name` is measured the same way under both cluster configs, so its
/// state (labels, counters, write history) still describes it.
fn same_measurement(before: &Cluster, after: &Cluster, name: &str) -> bool {
    let (Some(a), Some(b)) =
        (before.nodes.iter().find(|n| n.name == name), after.nodes.iter().find(|n| n.name == name))
    else {
        return false;
    };
    a.region == b.region
        && a.engine == b.engine
        && a.dsn == b.dsn
        && before.heartbeat.table == after.heartbeat.table
        && before.heartbeat.format == after.heartbeat.format
}
