//! A real Prometheus server for tests: owns its config file, TSDB and log in a temporary
//! directory, its loopback port, and the process (killed on drop; a watchdog kills it if
//! the test process dies without unwinding). Also the HTTP API helpers tests need:
//! instant queries, waiting for a query result, scrape targets, alerts.
//!
//! [`Prometheus::start`] scrapes targets; [`Prometheus::start_with`] takes
//! [`PrometheusOptions`] to also load rule files and notify Alertmanagers.

use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use serde_json::Value;

use crate::httpd::{http_server_accessors, on_free_port, HttpServer};
use crate::process::scratch_tempdir;
use crate::programs::find_program;

/// The Prometheus binary: `$RPO_LAB_PROMETHEUS`, else `prometheus` found by [`find_program`].
pub fn prometheus_bin() -> Result<PathBuf> {
    match std::env::var_os("RPO_LAB_PROMETHEUS").map(PathBuf::from) {
        Some(p) if p.is_file() => Ok(p),
        Some(p) => bail!("RPO_LAB_PROMETHEUS={} does not exist", p.display()),
        None => find_program("prometheus"),
    }
}

/// What a [`Prometheus`] scrapes (as job `rpo` unless [`job_name`](Self::job_name) says
/// otherwise), how often it evaluates rules, which rule files it loads, which
/// Alertmanagers it notifies, its external labels and the Prometheus servers it
/// federates. Targets and Alertmanagers must be loopback `host:port`s.
#[derive(Debug, Clone)]
pub struct PrometheusOptions {
    targets: Vec<String>,
    job_name: String,
    external_labels: Vec<(String, String)>,
    federate: Option<Federation>,
    scrape_interval: Duration,
    evaluation_interval: Option<Duration>,
    metrics_path: String,
    rule_files: Vec<PathBuf>,
    alertmanagers: Vec<String>,
}

impl PrometheusOptions {
    /// Scrapes `targets` at `/metrics` every second, evaluating rules at the same pace; no
    /// rules, no Alertmanager.
    pub fn new(targets: &[String]) -> PrometheusOptions {
        PrometheusOptions {
            targets: targets.to_vec(),
            job_name: "rpo".to_owned(),
            external_labels: Vec::new(),
            federate: None,
            scrape_interval: Duration::from_secs(1),
            evaluation_interval: None,
            metrics_path: "/metrics".to_owned(),
            rule_files: Vec::new(),
            alertmanagers: Vec::new(),
        }
    }

    /// How often targets are scraped (also the rule evaluation interval unless
    /// [`evaluation_interval`](Self::evaluation_interval) says otherwise).
    pub fn scrape_interval(mut self, interval: Duration) -> PrometheusOptions {
        self.scrape_interval = interval;
        self
    }

    /// How often rules are evaluated.
    pub fn evaluation_interval(mut self, interval: Duration) -> PrometheusOptions {
        self.evaluation_interval = Some(interval);
        self
    }

    /// The path scraped on every target.
    pub fn metrics_path(mut self, path: &str) -> PrometheusOptions {
        self.metrics_path = path.to_owned();
        self
    }

    /// Loads a rule file (recording and alerting rules), as it is: Prometheus reads it
    /// from where it lies. A rule file Prometheus refuses makes the start fail.
    pub fn rule_file(mut self, path: impl Into<PathBuf>) -> PrometheusOptions {
        self.rule_files.push(path.into());
        self
    }

    /// The scrape job's name (default `rpo`).
    pub fn job_name(mut self, name: &str) -> PrometheusOptions {
        self.job_name = name.to_owned();
        self
    }

    /// An external label, as a regional Prometheus carries its region: added to every
    /// series it federates and every alert it sends.
    pub fn external_label(mut self, name: &str, value: &str) -> PrometheusOptions {
        self.external_labels.push((name.to_owned(), value.to_owned()));
        self
    }

    /// Federates other Prometheus servers as job `job`: each source (`host:port`,
    /// loopback only) is scraped at `/federate` for the series matching `matchers`,
    /// with `honor_labels: true` (their external labels kept), and its `up` series
    /// carries `label="value"`, so a source that stops answering is named by it.
    pub fn federate(
        mut self,
        job: &str,
        sources: &[(String, String)],
        label: &str,
        matchers: &[&str],
    ) -> PrometheusOptions {
        self.federate = Some(Federation {
            job: job.to_owned(),
            sources: sources.to_vec(),
            label: label.to_owned(),
            matchers: matchers.iter().map(|m| (*m).to_owned()).collect(),
        });
        self
    }

    /// Sends alerts to the Alertmanager at `host:port` (loopback only).
    pub fn alertmanager(mut self, host_port: &str) -> PrometheusOptions {
        self.alertmanagers.push(host_port.to_owned());
        self
    }

    fn check(&self) -> Result<Vec<PathBuf>> {
        for t in &self.targets {
            check_loopback_target(t)?;
        }
        for a in &self.alertmanagers {
            check_loopback_target(a).with_context(|| format!("alertmanager {a:?}"))?;
        }
        for (source, _) in self.federate.iter().flat_map(|f| &f.sources) {
            check_loopback_target(source).with_context(|| format!("federated {source:?}"))?;
        }
        let names = self.external_labels.iter().map(|(n, _)| n).chain(self.federate.iter().map(|f| &f.label));
        for name in names.chain([&self.job_name]) {
            if name.is_empty() || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-') {
                bail!("{name:?} is not a plain label or job name");
            }
        }
        self.rule_files
            .iter()
            .map(|f| {
                let abs = std::fs::canonicalize(f).with_context(|| format!("rule file {}", f.display()))?;
                if abs.to_string_lossy().contains('\'') {
                    bail!("rule file {}: a quote in the path", abs.display());
                }
                Ok(abs)
            })
            .collect()
    }

    /// Prometheus's configuration file for these options (rule files already absolute).
    fn config_text(&self, rule_files: &[PathBuf]) -> String {
        let eval = self.evaluation_interval.unwrap_or(self.scrape_interval);
        let mut text = scrape_config_text(&self.targets, self.scrape_interval, eval, &self.metrics_path)
            .replace("job_name: rpo\n", &format!("job_name: '{}'\n", self.job_name));
        if self.targets.is_empty() && self.federate.is_some() {
            // A global Prometheus scrapes no exporter: its only job is the federation.
            text.truncate(
                text.find("scrape_configs:\n").map_or(text.len(), |i| i + "scrape_configs:\n".len()),
            );
        }
        if !self.external_labels.is_empty() {
            let labels: Vec<String> =
                self.external_labels.iter().map(|(n, v)| format!("{n}: {}", yaml_quote(v))).collect();
            text = text.replacen(
                "global:\n",
                &format!("global:\n  external_labels: {{{}}}\n", labels.join(", ")),
                1,
            );
        }
        if let Some(f) = &self.federate {
            let matchers: Vec<String> = f.matchers.iter().map(|m| yaml_quote(m)).collect();
            text.push_str(&format!(
                "  - job_name: '{}'\n    honor_labels: true\n    metrics_path: /federate\n    params:\n      'match[]': [{}]\n    static_configs:\n",
                f.job,
                matchers.join(", ")
            ));
            for (source, value) in &f.sources {
                text.push_str(&format!(
                    "      - targets: ['{source}']\n        labels: {{{}: {}}}\n",
                    f.label,
                    yaml_quote(value)
                ));
            }
        }
        if !rule_files.is_empty() {
            text.push_str("rule_files:\n");
            for f in rule_files {
                text.push_str(&format!("  - '{}'\n", f.display()));
            }
        }
        if !self.alertmanagers.is_empty() {
            let list: Vec<String> = self.alertmanagers.iter().map(|a| format!("'{a}'")).collect();
            text.push_str(&format!(
                "alerting:\n  alertmanagers:\n    - static_configs:\n        - targets: [{}]\n",
                list.join(", ")
            ));
        }
        text
    }
}

/// Prometheus servers a global one federates.
#[derive(Debug, Clone)]
struct Federation {
    job: String,
    sources: Vec<(String, String)>,
    label: String,
    matchers: Vec<String>,
}

/// A YAML double-quoted string.
fn yaml_quote(s: &str) -> String {
    format!("\"{}\"", s.replace('\\', "\\\\").replace('"', "\\\""))
}

/// A running Prometheus scraping the given targets as job `rpo`.
#[derive(Debug)]
pub struct Prometheus {
    server: HttpServer,
}

impl Prometheus {
    /// Starts Prometheus on a free 127.0.0.1 port, scraping `targets` (`host:port`, loopback
    /// only) at `metrics_path` every `scrape_interval` (rule evaluation at the same pace),
    /// and waits until it is ready. Retries on another port if the first one was taken.
    pub async fn start(
        targets: &[String],
        scrape_interval: Duration,
        metrics_path: &str,
    ) -> Result<Prometheus> {
        Prometheus::start_with(
            &PrometheusOptions::new(targets).scrape_interval(scrape_interval).metrics_path(metrics_path),
        )
        .await
    }

    /// Starts Prometheus on a free 127.0.0.1 port as `options` say (scrape targets, rule
    /// files, Alertmanagers) and waits until it is ready. Retries on another port if the
    /// first one was taken.
    pub async fn start_with(options: &PrometheusOptions) -> Result<Prometheus> {
        on_free_port(|port| Prometheus::start_with_on(port, options)).await
    }

    /// Like [`start`](Self::start) on a given port (e.g. one from [`free_port`], so that
    /// the targets can include Prometheus itself). No retry if the port is taken.
    pub async fn start_on(
        port: u16,
        targets: &[String],
        scrape_interval: Duration,
        metrics_path: &str,
    ) -> Result<Prometheus> {
        let options =
            PrometheusOptions::new(targets).scrape_interval(scrape_interval).metrics_path(metrics_path);
        Prometheus::start_with_on(port, &options).await
    }

    /// Like [`start_with`](Self::start_with) on a given port. No retry if the port is taken.
    pub async fn start_with_on(port: u16, options: &PrometheusOptions) -> Result<Prometheus> {
        let rule_files = options.check()?;
        let dir = scratch_tempdir("rpo-lab-prom.", "Prometheus's directory")?;
        let config_file = dir.path().join("prometheus.yml");
        std::fs::write(&config_file, options.config_text(&rule_files)).context("writing prometheus.yml")?;
        let args = [
            format!("--config.file={}", config_file.display()),
            format!("--storage.tsdb.path={}", dir.path().join("data").display()),
            format!("--web.listen-address=127.0.0.1:{port}"),
        ];
        let ready = "Server is ready to receive web requests";
        let server = HttpServer::start("prometheus", &prometheus_bin()?, dir, port, &args, ready).await?;
        Ok(Prometheus { server })
    }

    http_server_accessors!("prometheus.log");

    /// An instant query: returns `data.result` (an array of `{metric, value}` for a vector).
    pub async fn query(&self, promql: &str) -> Result<Value> {
        let body = self
            .api("/api/v1/query", &[("query", promql)])
            .await
            .with_context(|| format!("Prometheus query `{promql}`"))?;
        Ok(body["data"]["result"].clone())
    }

    /// Repeats `promql` until `predicate(result)` holds, for up to `timeout`; returns the
    /// result that satisfied it. Query errors count as "not yet" (and are reported on
    /// timeout along with the last result).
    ///
    /// Note: Prometheus 2.42 hands static targets to its scrapers about 5 s after start
    /// (its discovery manager updates on a 5 s tick), whatever the scrape interval: allow
    /// for it in timeouts.
    pub async fn wait_for(
        &self,
        promql: &str,
        timeout: Duration,
        predicate: impl Fn(&Value) -> bool,
    ) -> Result<Value> {
        let deadline = Instant::now() + timeout;
        loop {
            let last = match self.query(promql).await {
                Ok(v) if predicate(&v) => return Ok(v),
                Ok(v) => v.to_string(),
                Err(e) => format!("error: {e:#}"),
            };
            if Instant::now() >= deadline {
                bail!("Prometheus: `{promql}` did not satisfy the condition within {timeout:?}; last result: {last}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// The active scrape targets (`data.activeTargets` of `/api/v1/targets`).
    pub async fn targets(&self) -> Result<Value> {
        let body = self.api("/api/v1/targets", &[("state", "active")]).await?;
        Ok(body["data"]["activeTargets"].clone())
    }

    /// The alerts its rules hold now, pending or firing (`data.alerts` of `/api/v1/alerts`):
    /// each has `labels`, `annotations`, `state`, `activeAt` and `value`.
    pub async fn alerts(&self) -> Result<Value> {
        let body = self.api("/api/v1/alerts", &[]).await?;
        Ok(body["data"]["alerts"].clone())
    }

    /// Waits until every active target has been scraped successfully (`health = "up"`).
    pub async fn wait_targets_up(&self, timeout: Duration) -> Result<()> {
        let deadline = Instant::now() + timeout;
        loop {
            let targets = self.targets().await?;
            let list = targets.as_array().cloned().unwrap_or_default();
            if !list.is_empty() && list.iter().all(|t| t["health"] == "up") {
                return Ok(());
            }
            if Instant::now() >= deadline {
                bail!("Prometheus targets not all up within {timeout:?}: {targets}");
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// GET an API endpoint; error unless HTTP 200 and `status = "success"`.
    async fn api(&self, path: &str, params: &[(&str, &str)]) -> Result<Value> {
        let resp = self
            .server
            .http
            .get(format!("{}{path}", self.url()))
            .query(params)
            .send()
            .await
            .with_context(|| format!("GET {}{path}", self.url()))?;
        let status = resp.status();
        let body: Value = resp
            .json()
            .await
            .with_context(|| format!("GET {}{path}: HTTP {status}, body is not JSON", self.url()))?;
        if body["status"] != "success" {
            bail!(
                "GET {}{path}: HTTP {status}, {}: {}",
                self.url(),
                body["errorType"].as_str().unwrap_or("error"),
                body["error"].as_str().unwrap_or("(no message)")
            );
        }
        Ok(body)
    }
}

/// Prometheus's scrape config for job `rpo`, rules evaluated at the scrape interval.
#[cfg(test)]
fn config_text(targets: &[String], interval: Duration, metrics_path: &str) -> String {
    scrape_config_text(targets, interval, interval, metrics_path)
}

/// Prometheus's scrape config for job `rpo`, with its own rule evaluation interval.
fn scrape_config_text(
    targets: &[String],
    interval: Duration,
    evaluation: Duration,
    metrics_path: &str,
) -> String {
    let ms = interval.as_millis().max(1);
    let eval_ms = evaluation.as_millis().max(1);
    let timeout_ms = ms.min(10_000);
    let list: Vec<String> = targets.iter().map(|t| format!("'{t}'")).collect();
    format!(
        "global:\n  scrape_interval: {ms}ms\n  evaluation_interval: {eval_ms}ms\n  scrape_timeout: {timeout_ms}ms\n\
         scrape_configs:\n  - job_name: rpo\n    metrics_path: '{metrics_path}'\n    static_configs:\n      - targets: [{}]\n",
        list.join(", ")
    )
}

/// Targets must be `host:port` on a loopback address: the lab never scrapes anything else.
fn check_loopback_target(target: &str) -> Result<()> {
    let (host, port) =
        target.rsplit_once(':').with_context(|| format!("scrape target {target:?} is not host:port"))?;
    port.parse::<u16>().with_context(|| format!("scrape target {target:?}: bad port"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    let loopback =
        host == "localhost" || host.parse::<std::net::IpAddr>().map(|ip| ip.is_loopback()).unwrap_or(false);
    if !loopback || target.contains('\'') {
        bail!("scrape target {target:?}: only loopback addresses (127.0.0.1, localhost) are allowed");
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_targets() {
        assert!(check_loopback_target("127.0.0.1:9090").is_ok());
        assert!(check_loopback_target("localhost:1").is_ok());
        assert!(check_loopback_target("[::1]:80").is_ok());
        assert!(check_loopback_target("10.0.0.1:9090").is_err());
        assert!(check_loopback_target("0.0.0.0:9090").is_err());
        assert!(check_loopback_target("example.com:80").is_err());
        assert!(check_loopback_target("127.0.0.1").is_err());
    }

    #[test]
    fn options_add_rules_and_alertmanagers() {
        let options = PrometheusOptions::new(&["127.0.0.1:1".into()])
            .scrape_interval(Duration::from_secs(1))
            .evaluation_interval(Duration::from_millis(500))
            .alertmanager("127.0.0.1:2");
        let c = options.config_text(&[PathBuf::from("/x/rules.yml")]);
        assert!(c.contains("scrape_interval: 1000ms"), "{c}");
        assert!(c.contains("evaluation_interval: 500ms"), "{c}");
        assert!(c.contains("rule_files:\n  - '/x/rules.yml'\n"), "{c}");
        assert!(
            c.contains("alertmanagers:\n    - static_configs:\n        - targets: ['127.0.0.1:2']"),
            "{c}"
        );
        assert!(PrometheusOptions::new(&[]).alertmanager("10.0.0.1:9093").check().is_err());
        assert!(PrometheusOptions::new(&[]).rule_file("/does/not/exist.yml").check().is_err());
    }

    #[test]
    fn config_has_job_and_intervals() {
        let c = config_text(&["127.0.0.1:1".into()], Duration::from_millis(500), "/metrics");
        assert!(c.contains("job_name: rpo"));
        assert!(c.contains("scrape_interval: 500ms"));
        assert!(c.contains("scrape_timeout: 500ms"));
        assert!(c.contains("targets: ['127.0.0.1:1']"));
    }
}
