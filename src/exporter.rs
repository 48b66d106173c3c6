//! Assembles the running exporter: one worker per node, the HTTP server, and the
//! signal handling that stops them both cleanly.
//!
//! Owns the process's lifetime and nothing else: measuring is the workers',
//! serving the server's.

use crate::config::Config;
use crate::state::{ClusterState, State};
use crate::worker::Worker;
use crate::{metrics, server};
use std::sync::Arc;
use std::time::Duration;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

pub struct ServeOptions {
    pub listen: String,
    pub telemetry_path: String,
}

/// Runs until SIGTERM or SIGINT.
pub async fn run(config: Config, options: ServeOptions) -> anyhow::Result<()> {
    let state = Arc::new(State::new(&config));
    let shutdown = CancellationToken::new();
    let listener = server::bind(&options.listen).await?;
    tracing::info!(address = %listener.local_addr()?, path = %options.telemetry_path,
        clusters = config.clusters.len(), nodes = config.clusters.iter().map(|c| c.nodes.len()).sum::<usize>(),
        "Listening");

    let mut workers = JoinSet::new();
    for cluster in &state.clusters {
        for index in 0..cluster.nodes.len() {
            workers.spawn(supervise(cluster.clone(), index, shutdown.clone()));
        }
    }
    if let Some(health) = &state.health {
        workers.spawn(crate::health::run(health.clone(), shutdown.clone()));
    }
    tokio::spawn(wait_for_signal(shutdown.clone()));
    let registry = metrics::registry(state.clone());
    let served = server::serve(listener, registry, &options.telemetry_path, shutdown.clone()).await;
    shutdown.cancel();
    // Workers stop at their next await; a wedged driver call must not hold exit.
    if tokio::time::timeout(Duration::from_secs(5), async { while workers.join_next().await.is_some() {} })
        .await
        .is_err()
    {
        tracing::warn!("Workers did not stop within 5s; exiting anyway");
    }
    tracing::info!("Stopped");
    served
}

/// Runs a node's worker, and runs a fresh one if it ever panics: a bug in one
/// node's measurements must not silence that node for the life of the process.
async fn supervise(cluster: Arc<ClusterState>, index: usize, shutdown: CancellationToken) {
    loop {
        let worker = Worker::new(cluster.clone(), index);
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

async fn wait_for_signal(shutdown: CancellationToken) {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt()))
    else {
        tracing::error!("Cannot install signal handlers; stop the exporter with SIGKILL");
        return;
    };
    let name = tokio::select! {
        _ = term.recv() => "SIGTERM",
        _ = int.recv() => "SIGINT",
        _ = shutdown.cancelled() => return,
    };
    tracing::info!(signal = name, "Shutting down");
    shutdown.cancel();
}
