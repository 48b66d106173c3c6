//! Assembles the running exporter: one worker per node (and the probes), the HTTP
//! server, config reloads, and the signal handling that stops everything cleanly.
//!
//! Owns the process's lifetime and the current generation of background tasks,
//! nothing else: measuring is the workers', serving the server's. A reload
//! (SIGHUP or `POST /-/reload`) validates the file first; a bad one leaves the
//! running configuration untouched and says so in
//! `rpo_exporter_config_last_reload_successful`. The config file is also watched
//! (`--config.watch-interval`): when its content changes, including through a
//! Kubernetes ConfigMap's symlink swap, it is reloaded the same way.

use crate::config::{Config, Heartbeat, Node};
use crate::metrics::{Switch, Switches};
use crate::probe::{AnySubsystem, Clusters};
use crate::server;
use crate::server::ReloadRequest;
use crate::state::{Live, State, PROBES};
use crate::store::{ClusterState, NodeState};
use crate::supervise::{supervise, Loop};
use crate::worker::Worker;
use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot, watch};
use tokio_util::sync::CancellationToken;

pub struct ServeOptions {
    /// The config file, read again on every reload.
    pub config_file: PathBuf,
    /// Every `--web.listen-address` (ignored with `systemd_socket`).
    pub listen: Vec<String>,
    /// `--web.systemd-socket`: serve on the sockets systemd passed instead.
    pub systemd_socket: bool,
    /// `--config.watch-interval`: how often the config file is looked at for a
    /// change that reloads it; `None` turns the watch off.
    pub watch_interval: Option<Duration>,
    pub telemetry_path: String,
    /// `--web.enable-lifecycle`: `/-/reload` reloads (otherwise it answers 403).
    pub lifecycle: bool,
    /// `--web.config.file`, loaded and validated: TLS and basic auth for the server.
    pub web_config: Option<server::WebConfigWatch>,
    /// `--collector.NAME` / `--no-collector.NAME`: the optional collectors that run.
    pub collectors: Switches,
}

/// Runs until SIGTERM or SIGINT; SIGHUP (and `reload` requests from the server)
/// reload the config.
pub async fn run(config: Config, options: ServeOptions) -> anyhow::Result<()> {
    let live = Arc::new(Live::with_switches(State::new(&config), options.collectors));
    let shutdown = CancellationToken::new();
    let listeners = if options.systemd_socket {
        server::systemd_listeners()?
    } else {
        server::bind_all(&options.listen).await?
    };
    for listener in &listeners {
        tracing::info!(address = %listener.local_addr()?, path = %options.telemetry_path,
            systemd_socket = options.systemd_socket, clusters = config.clusters.len(),
            nodes = config.clusters.iter().map(|c| c.nodes.len()).sum::<usize>(), "Listening");
    }

    // As the Go exporters log theirs at start: which optional collectors run.
    let (on, off): (Vec<Switch>, Vec<Switch>) =
        Switch::ALL.into_iter().partition(|s| options.collectors.enabled(*s));
    let names = |s: &[Switch]| s.iter().map(|s| s.name()).collect::<Vec<_>>().join(",");
    tracing::info!(enabled = %names(&on), disabled = %names(&off), "Collectors");
    let (reload_tx, reload_rx) = mpsc::channel::<ReloadRequest>(4);
    log_warnings(&options.config_file, &config);
    let watch = options.watch_interval.map(|every| (ConfigFileWatch::new(&options.config_file), every));
    let controller = tokio::spawn(control(
        live.clone(),
        config,
        options.collectors,
        options.config_file.clone(),
        watch,
        reload_rx,
        shutdown.clone(),
    ));
    tokio::spawn(wait_for_signals(shutdown.clone(), reload_tx.clone()));
    let exposition = crate::exposition::Exposition::new(live.clone());
    let web_config = options.web_config.map(|web| {
        let live = live.clone();
        web.report_to(move |ok| live.record_web_config_load(ok))
    });
    let served = server::serve(
        listeners,
        exposition,
        &options.telemetry_path,
        reload_tx,
        options.lifecycle,
        web_config,
        shutdown.clone(),
    )
    .await;
    shutdown.cancel();
    let _ = controller.await;
    tracing::info!("Stopped");
    served
}

/// A background task and the token that stops it.
struct Task {
    token: CancellationToken,
    handle: tokio::task::JoinHandle<()>,
}

impl Task {
    fn spawn<F: std::future::Future<Output = ()> + Send + 'static>(
        parent: &CancellationToken,
        run: impl FnOnce(CancellationToken) -> F,
    ) -> Task {
        let token = parent.child_token();
        Task { handle: tokio::spawn(run(token.clone())), token }
    }
}

/// Stops tasks; they end at their next await. A wedged driver call must not hold
/// a reload or the exit forever.
async fn stop_all(tasks: Vec<Task>) {
    if tasks.is_empty() {
        return;
    }
    for t in &tasks {
        t.token.cancel();
    }
    let handles: Vec<_> = tasks.into_iter().map(|t| t.handle).collect();
    let aborts: Vec<_> = handles.iter().map(|h| h.abort_handle()).collect();
    if tokio::time::timeout(Duration::from_secs(5), futures_util::future::join_all(handles)).await.is_err() {
        tracing::warn!("Background tasks did not stop within 5s; going on without them");
        aborts.iter().for_each(tokio::task::AbortHandle::abort);
    }
}

/// A node by cluster and node name.
type NodeKey = (String, String);
/// What a worker is started with besides its node state: its node's settings and
/// its cluster's heartbeat settings.
type WorkerConfig = (Node, Heartbeat);

/// A node's worker, and what it was started with: a reload keeps it running
/// while its node state and its own settings stay the same.
struct WorkerTask {
    task: Task,
    node: Arc<NodeState>,
    config: WorkerConfig,
}

/// A probe subsystem's loop, and the state it was started with.
type ProbeTask = (Arc<dyn AnySubsystem>, Task);

/// The running background tasks: a worker per node, a loop per probe subsystem.
/// A reload changes only what its new configuration changes: a worker whose node
/// and heartbeat settings did not change keeps its session and its history, and
/// reads the rest of its cluster (other nodes, write mode) from a watch updated in
/// place; a probe loop runs on while its section is unchanged.
struct Running {
    clusters: HashMap<String, watch::Sender<Arc<ClusterState>>>,
    workers: HashMap<NodeKey, WorkerTask>,
    /// One slot per [`PROBES`] entry, in its order.
    probes: Vec<Option<ProbeTask>>,
    /// The optional collectors every worker runs.
    switches: Switches,
}

impl Running {
    fn new(switches: Switches) -> Running {
        Running {
            switches,
            clusters: HashMap::new(),
            workers: HashMap::new(),
            probes: PROBES.iter().map(|_| None).collect(),
        }
    }

    /// Brings the tasks in line with `state`: stops what it no longer has or
    /// has changed (before anything new touches the same node state), then
    /// starts what is new.
    async fn reconcile(&mut self, state: &State, live: &Arc<Live>, shutdown: &CancellationToken) {
        // In config order: new workers get their phases in that order, the same on
        // every start.
        let wanted: Vec<(NodeKey, (Arc<NodeState>, WorkerConfig))> = state
            .clusters
            .iter()
            .flat_map(|c| {
                c.nodes.iter().filter_map(move |n| {
                    let cfg = c.config.nodes.iter().find(|x| x.name == n.name)?.clone();
                    Some((
                        (c.config.name.clone(), n.name.clone()),
                        (n.clone(), (cfg, c.config.heartbeat.clone())),
                    ))
                })
            })
            .collect();
        let by_key: HashMap<&NodeKey, &(Arc<NodeState>, WorkerConfig)> =
            wanted.iter().map(|(k, v)| (k, v)).collect();
        let stale: Vec<NodeKey> = self
            .workers
            .iter()
            .filter(|(key, w)| {
                !by_key
                    .get(*key)
                    .is_some_and(|(node, config)| Arc::ptr_eq(node, &w.node) && *config == w.config)
            })
            .map(|(key, _)| key.clone())
            .collect();
        let mut stopping: Vec<Task> =
            stale.iter().filter_map(|key| self.workers.remove(key)).map(|w| w.task).collect();
        for (running, wanted) in self.probes.iter_mut().zip(&state.probes) {
            if changed(running, wanted) {
                stopping.extend(running.take().map(|(_, t)| t));
            }
        }
        stop_all(stopping).await;

        // Every worker reads its cluster from its watch at its next tick.
        self.clusters.retain(|name, _| state.clusters.iter().any(|c| c.config.name == *name));
        for cluster in &state.clusters {
            match self.clusters.get(&cluster.config.name) {
                Some(tx) => {
                    tx.send_if_modified(|current| {
                        let changed = !Arc::ptr_eq(current, cluster);
                        *current = cluster.clone();
                        changed
                    });
                }
                None => {
                    self.clusters.insert(cluster.config.name.clone(), watch::channel(cluster.clone()).0);
                }
            }
        }
        // New workers start spread evenly over their interval, so hundreds of nodes
        // do not all connect, and then all query, at the same instant every tick.
        let new: Vec<_> = wanted.into_iter().filter(|(key, _)| !self.workers.contains_key(key)).collect();
        let total = new.len().max(1);
        for (position, ((cluster, name), (node, config))) in new.into_iter().enumerate() {
            let phase = position as f64 / total as f64;
            let rx = self.clusters[&cluster].subscribe();
            let switches = self.switches;
            let task = Task::spawn(shutdown, |token| run_worker(rx, name.clone(), phase, switches, token));
            self.workers.insert((cluster, name), WorkerTask { task, node, config });
        }
        // A probe loop not running now (none was, or it changed and was stopped)
        // starts if the new state has its subsystem.
        for (kind, (running, wanted)) in PROBES.iter().zip(self.probes.iter_mut().zip(&state.probes)) {
            let (None, Some(probe)) = (&running, wanted) else { continue };
            let clusters: Arc<dyn Clusters> = live.clone();
            let task = Task::spawn(shutdown, |token| kind.run(probe.clone(), clusters, token));
            *running = Some((probe.clone(), task));
        }
    }

    async fn stop(self) {
        let mut tasks: Vec<Task> = self.workers.into_values().map(|w| w.task).collect();
        tasks.extend(self.probes.into_iter().flatten().map(|(_, t)| t));
        stop_all(tasks).await;
    }
}

/// Whether a probe loop's state (kept by [`State::rebuild`] when its section did
/// not change) differs from the one its running task was started with.
fn changed(running: &Option<ProbeTask>, wanted: &Option<Arc<dyn AnySubsystem>>) -> bool {
    match (running, wanted) {
        (Some((old, _)), Some(new)) => !Arc::ptr_eq(old, new),
        (None, None) => false,
        _ => true,
    }
}

/// `--config.file` as last read: whether it changed is told by its stamp (inode,
/// size, times, through symlinks) and its canonical path, then by a hash of its
/// content, so a `touch` or a rewrite with the same text reloads nothing. A
/// Kubernetes ConfigMap volume swaps a `..data` symlink to a new directory: the
/// path then resolves to another file, and the stamp and canonical path change.
struct ConfigFileWatch {
    path: PathBuf,
    seen: (Option<PathBuf>, Option<server::FileStamp>),
    /// SHA-256 of the text last loaded (or refused), `None` if it could not be read.
    loaded: Option<[u8; 32]>,
}

impl ConfigFileWatch {
    fn new(path: &std::path::Path) -> ConfigFileWatch {
        let mut watch = ConfigFileWatch { path: path.to_owned(), seen: (None, None), loaded: None };
        watch.seen = watch.look();
        watch.loaded = std::fs::read(path).ok().map(|text| sha256(&text));
        watch
    }

    fn look(&self) -> (Option<PathBuf>, Option<server::FileStamp>) {
        let stamp = server::stamps(std::slice::from_ref(&self.path)).pop().flatten();
        (std::fs::canonicalize(&self.path).ok(), stamp)
    }

    /// Whether the file now holds other text than the one last loaded. Reads it
    /// only when its stamp or canonical path moved.
    fn changed(&mut self) -> bool {
        let now = self.look();
        if now == self.seen {
            return false;
        }
        self.seen = now;
        std::fs::read(&self.path).ok().map(|text| sha256(&text)) != self.loaded
    }
}

fn sha256(bytes: &[u8]) -> [u8; 32] {
    let mut hash = [0u8; 32];
    hash.copy_from_slice(ring::digest::digest(&ring::digest::SHA256, bytes).as_ref());
    hash
}

/// Owns the running tasks: reloads on request (and when the watched config file
/// changes), stops on shutdown.
async fn control(
    live: Arc<Live>,
    mut config: Config,
    switches: Switches,
    config_file: PathBuf,
    mut watch: Option<(ConfigFileWatch, Duration)>,
    mut requests: mpsc::Receiver<ReloadRequest>,
    shutdown: CancellationToken,
) {
    let mut running = Running::new(switches);
    running.reconcile(&live.current(), &live, &shutdown).await;
    let mut ticks = watch.as_ref().map(|(_, every)| {
        let mut ticks = tokio::time::interval(*every);
        ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticks
    });
    loop {
        let reply = tokio::select! {
            _ = shutdown.cancelled() => break,
            request = requests.recv() => match request {
                Some(reply) => Some(reply),
                None => break,
            },
            _ = async { ticks.as_mut().expect("watching").tick().await }, if ticks.is_some() => {
                if !watch.as_mut().is_some_and(|(w, _)| w.changed()) {
                    continue;
                }
                tracing::info!(file = %config_file.display(), "Config file changed; reloading");
                None
            }
        };
        // Read once: what is loaded is what the watch compares with next. Looked
        // at before reading, so a change while reading is seen at the next tick.
        let seen = watch.as_ref().map(|(w, _)| w.look());
        let (text_hash, loaded) = match crate::config::read_file(&config_file) {
            Ok(text) => (Some(sha256(text.as_bytes())), crate::load::text(&config_file, &text)),
            Err(e) => (None, Err(e)),
        };
        if let (Some((w, _)), Some(seen)) = (watch.as_mut(), seen) {
            w.seen = seen;
            w.loaded = text_hash;
        }
        let outcome = match loaded {
            Ok(next) if next == config => {
                tracing::info!(file = %config_file.display(), "Configuration unchanged; nothing to do");
                Ok(())
            }
            Ok(next) => {
                log_warnings(&config_file, &next);
                // Unchanged clusters and nodes keep their state (and their
                // counters); a node's old worker stops before a new one touches
                // that state.
                let state = State::rebuild(&next, &live.current());
                live.swap(state.clone());
                running.reconcile(&state, &live, &shutdown).await;
                tracing::info!(file = %config_file.display(), clusters = next.clusters.len(), "Configuration reloaded");
                config = next;
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "Configuration reload failed; the previous configuration keeps running");
                Err(e)
            }
        };
        live.record_reload(outcome.is_ok());
        if let Some(reply) = reply {
            let _ = reply.send(outcome);
        }
    }
    running.stop().await;
}

/// Logs what the configuration allows but will likely regret (settings too tight
/// for the distance between regions).
pub fn log_warnings(file: &std::path::Path, config: &Config) {
    for w in config.warnings() {
        tracing::warn!(file = %file.display(), path = %w.path, "{}", w.problem);
    }
}

/// Runs a node's worker, and a fresh one if it ever panics: a bug in one node's
/// measurements must not silence that node for the life of the process.
async fn run_worker(
    cluster: watch::Receiver<Arc<ClusterState>>,
    name: String,
    phase: f64,
    switches: Switches,
    shutdown: CancellationToken,
) {
    let what = format!("{}/{name}", cluster.borrow().config.name);
    let token = shutdown.clone();
    supervise(Loop::WORKER, &what, shutdown, || {
        Worker::new(cluster.clone(), &name, phase, switches).map(|w| w.run(token.clone()))
    })
    .await;
}

async fn wait_for_signals(shutdown: CancellationToken, reload: mpsc::Sender<ReloadRequest>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) =
        (signal(SignalKind::terminate()), signal(SignalKind::interrupt()), signal(SignalKind::hangup()))
    else {
        tracing::error!("Cannot install signal handlers; stop the exporter with SIGKILL");
        return;
    };
    // The answer to the last SIGHUP's reload: while it is still pending, more
    // SIGHUPs join it (the reload reads the file as it is then) instead of queueing.
    let mut pending: Option<oneshot::Receiver<Result<(), crate::config::ConfigError>>> = None;
    loop {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
            _ = hup.recv() => {
                if pending.as_mut().is_some_and(|rx| matches!(rx.try_recv(), Err(oneshot::error::TryRecvError::Empty))) {
                    tracing::info!(signal = "SIGHUP", "A reload is already pending; this SIGHUP joins it");
                    continue;
                }
                tracing::info!(signal = "SIGHUP", "Reloading configuration");
                let (tx, rx) = oneshot::channel();
                pending = Some(rx);
                let _ = reload.send(tx).await;
                continue;
            }
            _ = shutdown.cancelled() => return,
        };
        tracing::info!(signal = name, "Shutting down");
        shutdown.cancel();
        return;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_config_file_watch_sees_new_text_through_a_symlink_swap_and_ignores_the_same_text() {
        let dir = tempfile::tempdir().unwrap();
        let at = |p: &str| dir.path().join(p);
        let publish = |stamp: &str, text: &str| {
            std::fs::create_dir(at(stamp)).unwrap();
            std::fs::write(at(stamp).join("config.yml"), text).unwrap();
            std::os::unix::fs::symlink(stamp, at("..data_tmp")).unwrap();
            std::fs::rename(at("..data_tmp"), at("..data")).unwrap();
        };
        publish("..a", "one");
        std::os::unix::fs::symlink("..data/config.yml", at("config.yml")).unwrap();
        let mut watch = ConfigFileWatch::new(&at("config.yml"));
        assert!(!watch.changed());
        // The same text in a new directory: the path moved, the text did not.
        publish("..b", "one");
        assert!(!watch.changed());
        publish("..c", "two");
        assert!(watch.changed());
        // Told once: with the stamp unchanged the file is not read again (the
        // reload that follows sets `loaded`).
        assert!(!watch.changed());
        // Gone: a change too (the reload then reports the unreadable file).
        std::fs::remove_file(at("..c/config.yml")).unwrap();
        assert!(watch.changed());
    }
}
