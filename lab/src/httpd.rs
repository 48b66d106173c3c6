//! What Prometheus and Alertmanager have in common as lab servers: the program run as our
//! child in a temporary directory (config, `data/`, log) on a loopback port, a watchdog
//! that kills it and removes the directory if the test process dies, the wait until it is
//! ready, another port when the first was taken, and the kill on drop.

use std::fs::File;
use std::future::Future;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};

use crate::ports::free_port;
use crate::process::{scratch_dir, tail, wait_child, Watchdog};

/// How long a server may take to report `/-/ready`.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A running Prometheus-family server.
pub(crate) struct HttpServer {
    what: &'static str,
    child: Child,
    port: u16,
    url: String,
    pub(crate) http: reqwest::Client,
    log_file: PathBuf,
    _watchdog: Watchdog,
    dir: tempfile::TempDir,
}

impl std::fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct(self.what).field("url", &self.url).field("dir", &self.dir()).finish()
    }
}

/// A new directory for server `what`: `PREFIX.XXXXXX` under the scratch directory.
pub(crate) fn server_dir(prefix: &str, what: &str) -> Result<tempfile::TempDir> {
    tempfile::Builder::new()
        .prefix(prefix)
        .tempdir_in(scratch_dir())
        .with_context(|| format!("creating {what}'s directory"))
}

/// Runs `start_on(port)` on a free port, again on another one (three times at most) when
/// the port was taken meanwhile.
pub(crate) async fn on_free_port<T, Fut>(start_on: impl Fn(u16) -> Fut) -> Result<T>
where
    Fut: Future<Output = Result<T>>,
{
    let mut attempt = 1;
    loop {
        match start_on(free_port()).await {
            Err(e) if attempt < 3 && format!("{e:#}").contains("address already in use") => attempt += 1,
            result => return result,
        }
    }
}

impl HttpServer {
    /// Starts `bin args…` in `dir` (its log `dir/WHAT.log`) listening on `port`, and waits
    /// until its log holds `ready_line` and `/-/ready` answers: on a port someone else
    /// serves, `/-/ready` alone would answer for that other server.
    pub(crate) async fn start(
        what: &'static str,
        bin: &Path,
        dir: tempfile::TempDir,
        port: u16,
        args: &[String],
        ready_line: &str,
    ) -> Result<HttpServer> {
        let http = reqwest::Client::builder().no_proxy().timeout(Duration::from_secs(10)).build()?;
        let log_file = dir.path().join(format!("{what}.log"));
        let log = File::create(&log_file)?;
        let mut child = Command::new(bin)
            .args(args)
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(log.try_clone()?)
            .stderr(log)
            // Own process group: a Ctrl-C in the terminal must not reach it.
            .process_group(0)
            .spawn()
            .with_context(|| format!("spawning {}", bin.display()))?;
        let watchdog = Watchdog::guard(&mut child, dir.path())?;
        let url = format!("http://127.0.0.1:{port}");
        let mut server = HttpServer { what, child, port, url, http, log_file, _watchdog: watchdog, dir };
        server.wait_ready(ready_line).await?;
        Ok(server)
    }

    /// `http://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    pub(crate) fn dir(&self) -> &Path {
        self.dir.path()
    }

    pub(crate) fn log_tail(&self, lines: usize) -> String {
        tail(&self.log_file, lines)
    }

    async fn wait_ready(&mut self, ready_line: &str) -> Result<()> {
        let deadline = Instant::now() + READY_TIMEOUT;
        let ready = format!("{}/-/ready", self.url);
        loop {
            let logged = std::fs::read_to_string(&self.log_file).is_ok_and(|l| l.contains(ready_line));
            if logged && matches!(self.child.try_wait(), Ok(None)) {
                if let Ok(r) = self.http.get(&ready).send().await {
                    if r.status().is_success() {
                        return Ok(());
                    }
                }
            }
            if let Ok(Some(status)) = self.child.try_wait() {
                bail!(
                    "{} exited during startup ({status})\n--- log tail ---\n{}",
                    self.what,
                    self.log_tail(15)
                );
            }
            if Instant::now() >= deadline {
                bail!(
                    "{} not ready after {READY_TIMEOUT:?}\n--- log tail ---\n{}",
                    self.what,
                    self.log_tail(15)
                );
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

impl Drop for HttpServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        wait_child(&mut self.child, Duration::from_secs(10));
    }
}
