//! Assembles the running exporter: one worker per node (and the probes), the HTTP
//! server, config reloads, and the signal handling that stops everything cleanly.
//!
//! Owns the process's lifetime and the current generation of background tasks,
//! nothing else: measuring is the workers', serving the server's. A reload
//! (SIGHUP or `POST /-/reload`) validates the file first; a bad one leaves the
//! running configuration untouched and says so in
//! `rpo_exporter_config_last_reload_successful`.

use crate::config::Config;
use crate::state::{ClusterState, Live, State};
use crate::worker::Worker;
use crate::{metrics, server};
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub struct ServeOptions {
    /// The config file, read again on every reload.
    pub config_file: PathBuf,
    pub listen: String,
    pub telemetry_path: String,
    /// `--web.config.file`, loaded and validated: TLS and basic auth for the server.
    pub web_config: Option<server::WebConfigWatch>,
}

/// A request to reload the config; the answer says whether it took effect.
pub type ReloadRequest = oneshot::Sender<Result<(), String>>;

/// Runs until SIGTERM or SIGINT; SIGHUP (and `reload` requests from the server)
/// reload the config.
pub async fn run(config: Config, options: ServeOptions) -> anyhow::Result<()> {
    let live = Arc::new(Live::new(State::new(&config)));
    let shutdown = CancellationToken::new();
    let listener = server::bind(&options.listen).await?;
    tracing::info!(address = %listener.local_addr()?, path = %options.telemetry_path,
        clusters = config.clusters.len(), nodes = config.clusters.iter().map(|c| c.nodes.len()).sum::<usize>(),
        "Listening");

    let (reload_tx, reload_rx) = mpsc::channel::<ReloadRequest>(4);
    let controller =
        tokio::spawn(control(live.clone(), options.config_file.clone(), reload_rx, shutdown.clone()));
    tokio::spawn(wait_for_signals(shutdown.clone(), reload_tx.clone()));
    let exposition = metrics::Exposition::new(live.clone());
    let served = server::serve(
        listener,
        exposition,
        &options.telemetry_path,
        reload_tx,
        options.web_config,
        shutdown.clone(),
    )
    .await;
    shutdown.cancel();
    let _ = controller.await;
    tracing::info!("Stopped");
    served
}

/// One generation of background tasks: a worker per node and the probes of
/// one [`State`]. A reload ends it and starts the next.
struct Generation {
    token: CancellationToken,
    tasks: JoinSet<()>,
}

impl Generation {
    fn start(state: &State, parent: &CancellationToken) -> Generation {
        let token = parent.child_token();
        let mut tasks = JoinSet::new();
        // Workers start spread evenly over their interval, so hundreds of nodes do
        // not all connect, and then all query, at the same instant every tick.
        let total = state.clusters.iter().map(|c| c.nodes.len()).sum::<usize>().max(1);
        let mut position = 0;
        for cluster in &state.clusters {
            for index in 0..cluster.nodes.len() {
                let phase = position as f64 / total as f64;
                tasks.spawn(supervise(cluster.clone(), index, phase, token.clone()));
                position += 1;
            }
        }
        if let Some(health) = &state.health {
            tasks.spawn(crate::health::run(health.clone(), token.clone()));
        }
        if let Some(dns) = &state.dns {
            tasks.spawn(crate::dns::run(dns.clone(), state.clusters.clone(), token.clone()));
        }
        Generation { token, tasks }
    }

    /// Stops every task; they end at their next await. A wedged driver call must
    /// not hold a reload or the exit forever.
    async fn stop(mut self) {
        self.token.cancel();
        if tokio::time::timeout(Duration::from_secs(5), async {
            while self.tasks.join_next().await.is_some() {}
        })
        .await
        .is_err()
        {
            tracing::warn!("Background tasks did not stop within 5s; going on without them");
            self.tasks.abort_all();
        }
    }
}

/// Owns the running generation: reloads on request, stops on shutdown.
async fn control(
    live: Arc<Live>,
    config_file: PathBuf,
    mut requests: mpsc::Receiver<ReloadRequest>,
    shutdown: CancellationToken,
) {
    let mut generation = Generation::start(&live.current(), &shutdown);
    loop {
        let reply = tokio::select! {
            _ = shutdown.cancelled() => break,
            request = requests.recv() => match request {
                Some(reply) => reply,
                None => break,
            },
        };
        let outcome = match Config::load(&config_file) {
            Ok(config) => {
                // Unchanged clusters keep their state (and their counters); the
                // old generation stops before the new one touches that state.
                let next = State::rebuild(&config, &live.current());
                generation.stop().await;
                generation = Generation::start(&next, &shutdown);
                live.swap(next);
                tracing::info!(file = %config_file.display(), clusters = config.clusters.len(), "Configuration reloaded");
                Ok(())
            }
            Err(e) => {
                tracing::error!(error = %e, "Configuration reload failed; the previous configuration keeps running");
                Err(e.to_string())
            }
        };
        live.record_reload(outcome.is_ok());
        let _ = reply.send(outcome);
    }
    generation.stop().await;
}

/// Runs a node's worker, and runs a fresh one if it ever panics: a bug in one
/// node's measurements must not silence that node for the life of the process.
async fn supervise(cluster: Arc<ClusterState>, index: usize, phase: f64, shutdown: CancellationToken) {
    loop {
        let worker = Worker::new(cluster.clone(), index, phase);
        match tokio::spawn(worker.run(shutdown.clone())).await {
            Ok(()) => return,
            Err(e) => {
                tracing::error!(cluster = %cluster.config.name, node = %cluster.nodes[index].name, error = %e,
                    "Worker crashed; restarting it");
                tokio::select! {
                    _ = shutdown.cancelled() => return,
                    _ = tokio::time::sleep(Duration::from_secs(1)) => {}
                }
            }
        }
    }
}

async fn wait_for_signals(shutdown: CancellationToken, reload: mpsc::Sender<ReloadRequest>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int), Ok(mut hup)) =
        (signal(SignalKind::terminate()), signal(SignalKind::interrupt()), signal(SignalKind::hangup()))
    else {
        tracing::error!("Cannot install signal handlers; stop the exporter with SIGKILL");
        return;
    };
    loop {
        let name = tokio::select! {
            _ = term.recv() => "SIGTERM",
            _ = int.recv() => "SIGINT",
            _ = hup.recv() => {
                tracing::info!(signal = "SIGHUP", "Reloading configuration");
                let (tx, _rx) = oneshot::channel();
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
