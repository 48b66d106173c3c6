//! What Prometheus and Alertmanager have in common as lab servers: a [`DirServer`] (the
//! program run as our child in a temporary directory — config, `data/`, log — with its
//! watchdog, killed on drop) on a loopback port, ready once it logs so and `/-/ready`
//! answers, another port when the first was taken, and the accessors both offer.

use std::future::Future;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

use anyhow::Result;

use crate::ports::free_port;
use crate::process::DirServer;

/// How long a server may take to report `/-/ready`.
const READY_TIMEOUT: Duration = Duration::from_secs(30);

/// A running Prometheus-family server.
pub(crate) struct HttpServer {
    server: DirServer,
    port: u16,
    url: String,
    pub(crate) http: reqwest::Client,
}

impl std::fmt::Debug for HttpServer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct(self.server.what()).field("url", &self.url).field("dir", &self.dir()).finish()
    }
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
        let log = format!("{what}.log");
        let mut server = DirServer::spawn(what, dir, &log, &log, None, Command::new(bin).args(args))?;
        let url = format!("http://127.0.0.1:{port}");
        let ready = format!("{url}/-/ready");
        let answers = |log: String| {
            let (http, ready) = (&http, &ready);
            async move {
                log.contains(ready_line)
                    && http.get(ready).send().await.is_ok_and(|r| r.status().is_success())
            }
        };
        server.wait_ready(READY_TIMEOUT, Duration::from_millis(50), 15, answers).await?;
        Ok(HttpServer { server, port, url, http })
    }

    /// `http://127.0.0.1:PORT`.
    pub(crate) fn url(&self) -> &str {
        &self.url
    }

    pub(crate) fn port(&self) -> u16 {
        self.port
    }

    pub(crate) fn dir(&self) -> &Path {
        self.server.dir()
    }

    pub(crate) fn log_tail(&self, lines: usize) -> String {
        self.server.log_tail(lines)
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.server.pid()
    }

    pub(crate) fn keep_dir(&mut self) {
        self.server.keep_dir()
    }
}

/// The accessors of a server built on an [`HttpServer`] (its field `server`): `url`,
/// `port`, `dir` (whose log file is `$log`), `log_tail`, `pid` and `keep_dir`.
macro_rules! http_server_accessors {
    ($log:literal) => {
        /// `http://127.0.0.1:PORT`.
        pub fn url(&self) -> &str {
            self.server.url()
        }

        /// Its port on 127.0.0.1.
        pub fn port(&self) -> u16 {
            self.server.port()
        }

        #[doc = concat!("Its directory (config, `data/`, `", $log, "`).")]
        pub fn dir(&self) -> &std::path::Path {
            self.server.dir()
        }

        /// The last `lines` lines of its log.
        pub fn log_tail(&self, lines: usize) -> String {
            self.server.log_tail(lines)
        }

        /// Its process id (e.g. for someone to stop or freeze it from outside; it may
        /// have exited meanwhile).
        pub fn pid(&self) -> Option<u32> {
            self.server.pid()
        }

        /// Keeps its directory (config, data, log) after it stops, for inspection.
        pub fn keep_dir(&mut self) {
            self.server.keep_dir()
        }
    };
}
pub(crate) use http_server_accessors;
