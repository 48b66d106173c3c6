//! The shape every probe subsystem shares (DNS propagation, region health): one
//! section of the config, one background loop, its own metric families, and a
//! state the loop writes, the scrape copies out and a reload carries over.
//!
//! A subsystem implements [`Subsystem`] on its state type; the registry
//! (`PROBES` in the `state` module, one [`Kind::of`] line per subsystem) is the
//! one list that the live state (built from the config, rebuilt on a reload,
//! sampled on a scrape), the exporter (one supervised loop each, restarted only
//! when its section changed) and the exposition (its families) read. [`Kind`]
//! and [`AnySubsystem`] are that list's type-erased view of a subsystem.
//!
//! Loops get the live state's answers through [`Clusters`], never the state
//! itself: this module, and every subsystem, sits below the root. Keeps no state.

use crate::config::Config;
use crate::metrics::{MetricDesc, Samples};
use crate::supervise::{supervise, Loop};
use std::any::Any;
use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use tokio_util::sync::CancellationToken;

/// What a probe loop may ask of the live state: the node workers' latest view of
/// each cluster. The root (`state::Live`) answers it.
pub trait Clusters: Send + Sync {
    /// The region of the cluster's writable node, as the node workers last saw
    /// it; `None` when no node is writable or writable nodes sit in several
    /// regions (split brain).
    fn writable_region(&self, cluster: &str) -> Option<String>;
}

/// A probe subsystem, implemented by its state: the latest results of its loop.
pub trait Subsystem: Debug + Send + Sync + Sized + 'static {
    /// Its name: the `task` label of its loop's restarts, and the loop's name in
    /// logs.
    const NAME: &'static str;
    /// Its metric families, in exposition order.
    const METRICS: &'static [&'static MetricDesc];

    /// A fresh state when the validated `config` has this subsystem's section
    /// (its schema lives in `config`, the one reader of the file).
    fn from_config(config: &Config) -> Option<Self>;

    /// Whether `other` was made from exactly the same section: a reload then
    /// keeps `other` itself, and its loop runs on.
    fn same_config(&self, other: &Self) -> bool;

    /// After a reload that changed the section: takes over what `previous` knew
    /// of whatever is still probed the same way. `previous`'s loop may still be
    /// finishing a round while this runs.
    fn carry_over(&self, previous: &Self);

    /// Copies the latest results into `out`; never waits on the network.
    fn samples(&self, out: &mut Samples);

    /// The loop: a round every interval (`crate::supervise::Pace`) until
    /// `shutdown` is cancelled, each result stored in `self` as it comes. It runs
    /// supervised: a panic costs a restart, not the subsystem.
    fn run(
        self: Arc<Self>,
        clusters: Arc<dyn Clusters>,
        shutdown: CancellationToken,
    ) -> impl Future<Output = ()> + Send + 'static;
}

/// A subsystem's state with its type erased: what the live state holds.
pub trait AnySubsystem: Debug + Send + Sync {
    /// The state a reload keeps, `self` being the new config's: `previous` when
    /// it was made from the same section, else `self` after taking over what
    /// `previous` knew.
    fn reloaded(self: Arc<Self>, previous: &Arc<dyn AnySubsystem>) -> Arc<dyn AnySubsystem>;
    fn samples(&self, out: &mut Samples);
    fn run(
        self: Arc<Self>,
        clusters: Arc<dyn Clusters>,
        shutdown: CancellationToken,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>>;
    fn as_any(&self) -> &dyn Any;
}

impl<S: Subsystem> AnySubsystem for S {
    fn reloaded(self: Arc<Self>, previous: &Arc<dyn AnySubsystem>) -> Arc<dyn AnySubsystem> {
        match previous.as_any().downcast_ref::<S>() {
            Some(old) if self.same_config(old) => previous.clone(),
            Some(old) => {
                self.carry_over(old);
                self
            }
            None => self,
        }
    }

    fn samples(&self, out: &mut Samples) {
        Subsystem::samples(self, out);
    }

    fn run(
        self: Arc<Self>,
        clusters: Arc<dyn Clusters>,
        shutdown: CancellationToken,
    ) -> Pin<Box<dyn Future<Output = ()> + Send>> {
        Box::pin(Subsystem::run(self, clusters, shutdown))
    }

    fn as_any(&self) -> &dyn Any {
        self
    }
}

/// One probe subsystem as the registry lists it.
#[derive(Debug)]
pub struct Kind {
    /// Its loop's kind: the `task` label of its restarts.
    pub task: Loop,
    /// Its metric families.
    pub metrics: &'static [&'static MetricDesc],
    from_config: fn(&Config) -> Option<Arc<dyn AnySubsystem>>,
}

impl Kind {
    /// The registry's entry for subsystem `S`.
    pub const fn of<S: Subsystem>() -> Kind {
        Kind { task: Loop::new(S::NAME), metrics: S::METRICS, from_config: erased::<S> }
    }

    /// A fresh state when `config` has the subsystem's section.
    pub fn from_config(&self, config: &Config) -> Option<Arc<dyn AnySubsystem>> {
        (self.from_config)(config)
    }

    /// Runs the subsystem's loop over `state` until `shutdown` is cancelled, and a
    /// fresh one after a panic (`crate::supervise`).
    pub fn run(
        &self,
        state: Arc<dyn AnySubsystem>,
        clusters: Arc<dyn Clusters>,
        shutdown: CancellationToken,
    ) -> impl Future<Output = ()> + Send + 'static {
        let (task, token) = (self.task, shutdown.clone());
        supervise(task, task.as_str(), shutdown, move || {
            Some(state.clone().run(clusters.clone(), token.clone()))
        })
    }
}

fn erased<S: Subsystem>(config: &Config) -> Option<Arc<dyn AnySubsystem>> {
    S::from_config(config).map(|s| Arc::new(s) as Arc<dyn AnySubsystem>)
}
