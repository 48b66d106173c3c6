//! `rpo-exporter drill` run as a child process: its config in a temporary
//! directory, its metrics on a free port, its reports read back when it ends.

use super::{wait_for, Metrics, PASSWORD};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use tempfile::TempDir;

pub struct Drill {
    child: Child,
    pub addr: String,
    pub dir: TempDir,
    pub log_path: PathBuf,
    pub stdout_path: PathBuf,
}

/// A finished drill's reports.
pub struct DrillReport {
    pub json: serde_json::Value,
    pub markdown: String,
    /// What the drill printed (the Markdown report).
    pub stdout: String,
}

impl Drill {
    /// Starts a drill of `cluster` with `config`, the given extra flags, and
    /// waits until its metrics answer.
    pub async fn start(config: &str, cluster: &str, extra: &[&str]) -> Drill {
        let dir = tempfile::tempdir().unwrap();
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config).unwrap();
        let addr = format!("127.0.0.1:{}", rpo_lab::free_port());
        let log_path = dir.path().join("drill.log");
        let stdout_path = dir.path().join("drill.out");
        let child = Command::new(env!("CARGO_BIN_EXE_rpo-exporter"))
            .arg("drill")
            .arg("--config.file")
            .arg(&config_path)
            .args(["--cluster", cluster, "--drill.listen-address", &addr, "--log.level", "debug"])
            .arg("--drill.report-dir")
            .arg(dir.path().join("reports"))
            .args(extra)
            .stdout(std::fs::File::create(&stdout_path).unwrap())
            .stderr(std::fs::File::create(&log_path).unwrap())
            .stdin(Stdio::null())
            .spawn()
            .expect("spawn rpo-exporter drill");
        let drill = Drill { child, addr, dir, log_path, stdout_path };
        let url = format!("http://{}/metrics", drill.addr);
        let up = wait_for(Duration::from_secs(10), || async {
            reqwest::get(&url).await.map(|r| r.status().is_success()).unwrap_or(false)
        })
        .await;
        assert!(up, "drill metrics not served at {url}; log:\n{}", drill.log());
        drill
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    pub async fn scrape(&self) -> Metrics {
        let client = reqwest::Client::builder().timeout(Duration::from_secs(2)).build().unwrap();
        match client.get(format!("http://{}/metrics", self.addr)).send().await {
            Ok(r) => Metrics::parse(&r.text().await.unwrap_or_default()),
            Err(e) => panic!("scraping the drill failed: {e}\nlog:\n{}", self.log()),
        }
    }

    /// Acknowledged drill writes so far.
    pub async fn acknowledged(&self, cluster: &str) -> f64 {
        let labels = [
            ("db_cluster", cluster.to_owned()),
            ("writer", "drill".to_owned()),
            ("outcome", "acknowledged".to_owned()),
        ];
        self.scrape().await.get("rpo_drill_writes_total", &labels).unwrap_or(0.0)
    }

    /// Waits until `n` drill writes were acknowledged.
    pub async fn wait_acknowledged(&self, cluster: &str, n: f64) {
        let ok = wait_for(Duration::from_secs(15), || async { self.acknowledged(cluster).await >= n }).await;
        assert!(ok, "the drill never had {n} acknowledged writes; log:\n{}", self.log());
    }

    pub fn interrupt(&self) {
        nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(self.child.id() as i32),
            nix::sys::signal::Signal::SIGINT,
        )
        .unwrap();
    }

    /// Waits for the drill to end by itself (at most `limit`), then reads its reports.
    pub async fn finish(&mut self, limit: Duration) -> DrillReport {
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "the drill did not end within {limit:?}; log:\n{}",
                self.log()
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert!(status.success(), "drill exited with {status}; log:\n{}", self.log());
        let reports = self.dir.path().join("reports");
        let mut json = None;
        let mut markdown = None;
        for entry in std::fs::read_dir(&reports).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            match path.extension().and_then(|e| e.to_str()) {
                Some("json") => json = Some(serde_json::from_str(&text).unwrap()),
                Some("md") => markdown = Some(text),
                _ => {}
            }
        }
        let stdout = std::fs::read_to_string(&self.stdout_path).unwrap_or_default();
        let log = self.log();
        assert!(!log.contains(PASSWORD), "the test password leaked into the drill's log");
        assert!(!log.contains("panicked at"), "the drill panicked:\n{log}");
        DrillReport {
            json: json.expect("a JSON report"),
            markdown: markdown.expect("a Markdown report"),
            stdout,
        }
    }
}

impl Drop for Drill {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl DrillReport {
    /// A figure of the JSON report, in seconds (`None` when null).
    pub fn figure(&self, name: &str) -> Option<f64> {
        self.json["figures"][name].as_f64()
    }

    /// The timeline's (step, event, seconds) rows in the report's order.
    pub fn timeline(&self) -> Vec<(String, String, Option<f64>)> {
        self.json["timeline"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| {
                (
                    s["step"].as_str().unwrap().to_owned(),
                    s["event"].as_str().unwrap().to_owned(),
                    s["seconds"].as_f64(),
                )
            })
            .collect()
    }
}
