//! A real Alertmanager for tests: owns its config file, notification log and silences
//! (`data/`) and log in a temporary directory, its loopback port, and the process (killed
//! on drop; a watchdog kills it if the test process dies without unwinding). Clustering is
//! off (`--cluster.listen-address=""`: by default it would bind 0.0.0.0:9094), or on
//! between the members of [`Alertmanager::start_cluster`], gossiping on 127.0.0.1. Also
//! the API helper tests need: the alerts it holds.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::httpd::{http_server_accessors, on_free_port, HttpServer};
use crate::ports::free_port;
use crate::process::scratch_tempdir;
use crate::programs::find_program;

/// The Alertmanager binary: `$RPO_LAB_ALERTMANAGER`, else Debian's
/// `prometheus-alertmanager`, else `alertmanager`, found by [`find_program`].
pub fn alertmanager_bin() -> Result<PathBuf> {
    match std::env::var_os("RPO_LAB_ALERTMANAGER").map(PathBuf::from) {
        Some(p) if p.is_file() => Ok(p),
        Some(p) => bail!("RPO_LAB_ALERTMANAGER={} does not exist", p.display()),
        None => {
            find_program("prometheus-alertmanager").or_else(|e| find_program("alertmanager").map_err(|_| e))
        }
    }
}

/// A running Alertmanager with a given configuration.
#[derive(Debug)]
pub struct Alertmanager {
    server: HttpServer,
}

impl Alertmanager {
    /// Starts Alertmanager with `config` (the YAML text of alertmanager.yml) on a free
    /// 127.0.0.1 port and waits until it is ready. Retries on another port if the first one
    /// was taken. A config Alertmanager refuses makes the start fail with its log.
    pub async fn start(config: &str) -> Result<Alertmanager> {
        on_free_port(|port| Alertmanager::start_on(port, config)).await
    }

    /// Like [`start`](Self::start) on a given port. No retry if the port is taken.
    pub async fn start_on(port: u16, config: &str) -> Result<Alertmanager> {
        // No gossip cluster: it would listen on 0.0.0.0:9094.
        Alertmanager::start_member(port, config, &["--cluster.listen-address=".to_string()]).await
    }

    /// `members` Alertmanagers with the same `config`, clustered: each gossips on its own
    /// 127.0.0.1 port with all the others as peers, so they share silences and the
    /// notification log, and a notification sent by one is not sent again by another
    /// (the second waits `peer_timeout` for the first's log entry). All are ready (and
    /// the cluster settled) when this returns.
    pub async fn start_cluster(
        members: usize,
        config: &str,
        peer_timeout: Duration,
    ) -> Result<Vec<Alertmanager>> {
        let gossip: Vec<u16> = (0..members).map(|_| free_port()).collect();
        let mut started = Vec::with_capacity(members);
        for (i, own) in gossip.iter().enumerate() {
            let mut args = vec![
                format!("--cluster.listen-address=127.0.0.1:{own}"),
                format!("--cluster.advertise-address=127.0.0.1:{own}"),
                format!("--cluster.peer-timeout={}ms", peer_timeout.as_millis()),
            ];
            args.extend(
                gossip
                    .iter()
                    .enumerate()
                    .filter(|(j, _)| *j != i)
                    .map(|(_, p)| format!("--cluster.peer=127.0.0.1:{p}")),
            );
            started.push(on_free_port(|port| Alertmanager::start_member(port, config, &args)).await?);
        }
        Ok(started)
    }

    async fn start_member(port: u16, config: &str, cluster_args: &[String]) -> Result<Alertmanager> {
        let dir = scratch_tempdir("rpo-lab-am.", "Alertmanager's directory")?;
        let config_file = dir.path().join("alertmanager.yml");
        std::fs::write(&config_file, config).context("writing alertmanager.yml")?;
        let mut args = vec![
            format!("--config.file={}", config_file.display()),
            format!("--storage.path={}", dir.path().join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ];
        args.extend(cluster_args.iter().cloned());
        let ready = format!("msg=\"Listening on\" address=127.0.0.1:{port}");
        let server =
            HttpServer::start("alertmanager", &alertmanager_bin()?, dir, port, &args, &ready).await?;
        Ok(Alertmanager { server })
    }

    http_server_accessors!("alertmanager.log");

    /// `127.0.0.1:PORT`, as Prometheus's `alerting` config wants it.
    pub fn host_port(&self) -> String {
        format!("127.0.0.1:{}", self.port())
    }

    /// The alerts it holds now (`GET /api/v2/alerts`): each has `labels`, `annotations`,
    /// `status.state` (active, suppressed, unprocessed), `startsAt`, `endsAt`.
    pub async fn alerts(&self) -> Result<Value> {
        let url = format!("{}/api/v2/alerts", self.url());
        let resp = self.server.http.get(&url).send().await.with_context(|| format!("GET {url}"))?;
        let status = resp.status();
        if !status.is_success() {
            bail!("GET {url}: HTTP {status}: {}", resp.text().await.unwrap_or_default());
        }
        resp.json().await.with_context(|| format!("GET {url}: body is not JSON"))
    }
}
