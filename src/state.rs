//! The root of the live state: what a scrape reads, swapped whole on a reload.
//!
//! [`State`] holds one configuration's worth of results: each cluster's node
//! store ([`crate::store`], what the workers write) and each probe subsystem's
//! state. [`State::rebuild`] makes the state for a reloaded configuration, keeping
//! every node measured the same way and every probe result still probed the same
//! way. [`Live`] is the current [`State`] and the exporter's reports about itself;
//! [`Live::samples`] is the whole of the scrape's work.

use crate::config::{Cluster, Config};
use crate::heartbeat::mono_now;
use crate::metrics::{self, Samples, Switches};
use crate::probe::{AnySubsystem, Clusters, Kind};
use crate::store::ClusterState;
use crate::supervise::Loop;
use std::sync::{Arc, Mutex, RwLock};

/// The probe subsystems, one line each (see ARCHITECTURE.md, "Adding a probe
/// subsystem"): the live state builds, rebuilds and samples each, the exporter
/// runs each one's loop, the exposition lists each one's families, in this order.
pub static PROBES: &[Kind] = &[
    Kind::of::<crate::health::HealthState>(), // region probes, the `health:` section
    Kind::of::<crate::dns::DnsState>(),       // DNS propagation, the `dns:` section
    Kind::of::<crate::residency::ResidencyState>(), // data residency, the clusters' `residency:` blocks
];

#[derive(Debug)]
pub struct State {
    pub clusters: Vec<Arc<ClusterState>>,
    /// Each probe subsystem's latest results, one slot per [`PROBES`] entry in its
    /// order: `None` when the config has no section for it.
    pub probes: Vec<Option<Arc<dyn AnySubsystem>>>,
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
    /// The optional collectors (`--collector.NAME`), fixed for the process.
    switches: Switches,
}

impl Live {
    /// The live state with every optional collector on.
    pub fn new(state: State) -> Live {
        Live::with_switches(state, Switches::default())
    }

    pub fn with_switches(state: State, switches: Switches) -> Live {
        Live {
            switches,
            state: RwLock::new(Arc::new(state)),
            reload: Mutex::new((true, wall_clock())),
            web_reload: Mutex::new(None),
        }
    }

    pub fn switches(&self) -> Switches {
        self.switches
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

    /// Everything a scrape shows, every line in its own families (none shared).
    pub fn samples(&self) -> Samples {
        let mut out = Samples::default();
        self.collect(&mut out);
        out.flatten();
        out
    }

    /// Everything a scrape shows, into `out` (a buffer kept from an earlier
    /// scrape keeps its capacity).
    pub fn collect(&self, out: &mut Samples) {
        self.current().collect(self.switches, out);
        let (ok, at) = *self.reload.lock().unwrap_or_else(|p| p.into_inner());
        out.push(&metrics::RELOAD_OK, &[], f64::from(u8::from(ok)));
        out.push(&metrics::RELOAD_AT, &[], at);
        for task in std::iter::once(Loop::WORKER).chain(PROBES.iter().map(|k| k.task)) {
            out.push(&metrics::TASK_RESTARTS, &[task.as_str()], task.restarts() as f64);
        }
        if let Some((ok, at)) = *self.web_reload.lock().unwrap_or_else(|p| p.into_inner()) {
            out.push(&metrics::WEB_RELOAD_OK, &[], f64::from(u8::from(ok)));
            out.push(&metrics::WEB_RELOAD_AT, &[], at);
        }
    }
}

/// The probe loops ask the current state, so a loop started before a reload
/// follows the clusters as they are after it.
impl Clusters for Live {
    fn writable_region(&self, cluster: &str) -> Option<String> {
        self.current().writable_region(cluster)
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
    /// heartbeat to the first unseen one. A probe subsystem whose section did not
    /// change is kept whole (and its loop runs on); one whose section changed
    /// keeps the readings of what it still probes the same way
    /// (`Subsystem::carry_over`). Everything else starts afresh, and what the new
    /// config dropped is gone.
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
        for (new, old) in next.probes.iter_mut().zip(&old.probes) {
            if let (Some(new), Some(old)) = (new, old) {
                *new = new.clone().reloaded(old);
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
        let probes = PROBES.iter().map(|kind| kind.from_config(config)).collect();
        State { clusters, probes }
    }

    /// Everything a scrape shows, copied out of memory; families `switches`
    /// turn off are not collected.
    pub fn collect(&self, switches: Switches, out: &mut Samples) {
        out.push(&metrics::BUILD_INFO, &metrics::BUILD_LABELS, 1.0);
        let now = mono_now();
        for cluster in &self.clusters {
            cluster.samples(now, switches, out);
        }
        for probe in self.probes.iter().flatten() {
            probe.samples(out);
        }
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
        && a.endpoint.engine == b.endpoint.engine
        && a.endpoint.dsn == b.endpoint.dsn
        && before.heartbeat.table == after.heartbeat.table
        && before.heartbeat.format == after.heartbeat.format
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(probe_port: u16, dns: bool) -> Config {
        let mut yaml = format!(
            "clusters:\n  - name: c\n    rpo: 30s\n    rto: 5m\n    nodes:\n      - {{ name: p, region: us-east-1, engine: postgres, dsn: \"host=127.0.0.1 user=rpo dbname=postgres\" }}\nhealth:\n  regions:\n    us-east-1:\n      probes:\n        - {{ name: db, tcp: \"127.0.0.1:{probe_port}\" }}\n"
        );
        if dns {
            yaml.push_str("dns:\n  records:\n    - name: db.example.com\n      type: A\n      active_region: us-east-1\n      answers: { us-east-1: 192.0.2.1 }\n      resolvers: [\"127.0.0.1:53\"]\n      authoritative: [\"127.0.0.1:54\"]\n      zone: example.com\n");
        }
        Config::parse(std::path::Path::new("<test>"), &yaml).unwrap()
    }

    /// The slot of the subsystem whose loop is called `name`.
    fn slot(name: &str) -> usize {
        PROBES.iter().position(|k| k.task.as_str() == name).unwrap()
    }

    fn same(a: &Option<Arc<dyn AnySubsystem>>, b: &Option<Arc<dyn AnySubsystem>>) -> bool {
        matches!((a, b), (Some(a), Some(b)) if Arc::ptr_eq(a, b))
    }

    #[test]
    fn a_reload_keeps_each_probe_subsystem_whose_section_did_not_change() {
        let first = State::new(&config(1, true));
        assert_eq!(first.probes.len(), PROBES.len());
        let (health, dns) = (slot("health"), slot("dns"));
        assert!(first.probes[health].is_some() && first.probes[dns].is_some(), "each section makes its own");

        let unchanged = State::rebuild(&config(1, true), &first);
        assert!(same(&unchanged.probes[health], &first.probes[health]));
        assert!(same(&unchanged.probes[dns], &first.probes[dns]));

        let probe_moved = State::rebuild(&config(2, true), &unchanged);
        assert!(
            !same(&probe_moved.probes[health], &unchanged.probes[health]),
            "a changed section starts anew"
        );
        assert!(same(&probe_moved.probes[dns], &unchanged.probes[dns]));

        let dns_dropped = State::rebuild(&config(2, false), &probe_moved);
        assert!(same(&dns_dropped.probes[health], &probe_moved.probes[health]));
        assert!(dns_dropped.probes[dns].is_none());
    }

    #[test]
    fn every_loop_has_its_restarts_counted() {
        let live = Live::new(State::new(&config(1, false)));
        let family = live.samples().take(&metrics::TASK_RESTARTS).expect("restarts are always shown");
        let tasks: Vec<String> =
            family.samples().flat_map(|(labels, _)| labels.map(|(_, v)| v.to_owned())).collect();
        assert_eq!(tasks[0], "worker");
        for task in ["health", "dns"] {
            assert!(tasks.iter().any(|t| t == task), "{task} in {tasks:?}");
        }
    }
}
