//! A real Alertmanager for tests: owns its config file, notification log and silences
//! (`data/`) and log in a temporary directory, its loopback port, and the process (killed
//! on drop; a watchdog kills it if the test process dies without unwinding). Clustering is
//! off (`--cluster.listen-address=""`): by default it would bind 0.0.0.0:9094. Also the
//! API helper tests need: the alerts it holds.

use std::fs::File;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::ports::free_port;
use crate::process::{tail, wait_child, Watchdog};
use crate::programs::find_program;

/// How long Alertmanager may take to report `/-/ready`.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

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
pub struct Alertmanager {
    child: Child,
    port: u16,
    url: String,
    http: reqwest::Client,
    _watchdog: Watchdog,
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for Alertmanager {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Alertmanager").field("url", &self.url).field("dir", &self.dir()).finish()
    }
}

impl Alertmanager {
    /// Starts Alertmanager with `config` (the YAML text of alertmanager.yml) on a free
    /// 127.0.0.1 port and waits until it is ready. Retries on another port if the first one
    /// was taken. A config Alertmanager refuses makes the start fail with its log.
    pub async fn start(config: &str) -> Result<Alertmanager> {
        let mut attempt = 1;
        loop {
            match Alertmanager::start_on(free_port(), config).await {
                Err(e) if attempt < 3 && format!("{e:#}").contains("address already in use") => {
                    attempt += 1;
                }
                result => return result,
            }
        }
    }

    /// Like [`start`](Self::start) on a given port. No retry if the port is taken.
    pub async fn start_on(port: u16, config: &str) -> Result<Alertmanager> {
        let bin = alertmanager_bin()?;
        let dir = tempfile::Builder::new()
            .prefix("rpo-lab-am.")
            .tempdir_in(crate::process::scratch_dir())
            .context("creating Alertmanager's directory")?;
        let config_file = dir.path().join("alertmanager.yml");
        std::fs::write(&config_file, config).context("writing alertmanager.yml")?;
        let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build()?;
        let log = File::create(dir.path().join("alertmanager.log"))?;
        let mut child = Command::new(&bin)
            .arg(format!("--config.file={}", config_file.display()))
            .arg(format!("--storage.path={}", dir.path().join("data").display()))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // No gossip cluster: it would listen on 0.0.0.0:9094.
            .arg("--cluster.listen-address=")
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Own process group: a Ctrl-C in the terminal must not reach it.
            .process_group(0)
            .spawn()
            .with_context(|| format!("spawning {}", bin.display()))?;
        let watchdog = Watchdog::guard(&mut child, dir.path())?;
        let mut am = Alertmanager {
            child,
            port,
            url: format!("http://127.0.0.1:{port}"),
            http,
            _watchdog: watchdog,
            dir,
        };
        am.wait_ready().await?;
        Ok(am)
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// `127.0.0.1:PORT`, as Prometheus's `alerting` config wants it.
    pub fn host_port(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// Its port on 127.0.0.1.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Its directory (config, `data/`, `alertmanager.log`).
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// The last `lines` lines of its log.
    pub fn log_tail(&self, lines: usize) -> String {
        tail(&self.dir().join("alertmanager.log"), lines)
    }

    /// The alerts it holds now (`GET /api/v2/alerts`): each has `labels`, `annotations`,
    /// `status.state` (active, suppressed, unprocessed), `startsAt`, `endsAt`.
    pub async fn alerts(&self) -> Result<Value> {
        let url = format!("{}/api/v2/alerts", self.url);
        let resp = self.http.get(&url).send().await.with_context(|| format!("GET {url}"))?;
        let status = resp.status();
        if !status.is_success() {
            bail!("GET {url}: HTTP {status}: {}", resp.text().await.unwrap_or_default());
        }
        resp.json().await.with_context(|| format!("GET {url}: body is not JSON"))
    }

    async fn wait_ready(&mut self) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let ready = format!("{}/-/ready", self.url);
        let log_file = self.dir().join("alertmanager.log");
        let listening = format!("msg=\"Listening on\" address=127.0.0.1:{}", self.port);
        loop {
            // Our process must say so in its log: on a port someone else serves, /-/ready
            // would answer for that other server.
            let logged = std::fs::read_to_string(&log_file).is_ok_and(|l| l.contains(&listening));
            if logged && matches!(self.child.try_wait(), Ok(None)) {
                if let Ok(r) = self.http.get(&ready).send().await {
                    if r.status().is_success() {
                        return Ok(());
                    }
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!(
                    "alertmanager exited during startup ({status})\n--- log tail ---\n{}",
                    self.log_tail(15)
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "alertmanager not ready after {READY_TIMEOUT:?}\n--- log tail ---\n{}",
                    self.log_tail(15)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        wait_child(&mut self.child, Duration::from_secs(10));
    }
}
