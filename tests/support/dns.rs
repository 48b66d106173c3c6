//! DNS test support: the two answers a failover record switches between, config
//! snippets for the `dns:` section, label sets, and waiting on `/metrics`.

use super::{Exporter, Metrics};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

/// The record the tests fail over, and its answer in each lab region.
pub const RECORD: &str = "www.lab.test.";
pub const ZONE: &str = "lab.test.";
/// us-east-1's answer (where the lab's primary `p` lives).
pub const USE1: &str = "192.0.2.10";
/// eu-west-1's answer (where `r1` lives).
pub const EUW1: &str = "198.51.100.20";

/// A config whose only cluster is a node nobody listens on (the config needs one),
/// followed by `dns_yaml` (a whole `dns:` section).
pub fn dns_only_config(dns_yaml: &str) -> String {
    format!(
        "clusters:\n  - name: c\n    rpo: 1m\n    rto: 1h\n    nodes:\n      - {{ name: n, region: us-east-1, engine: postgres, dsn: \"host=127.0.0.1 port={} user=u dbname=d\" }}\n{dns_yaml}",
        rpo_lab::free_port()
    )
}

/// `[ "a", "b" ]` for a YAML flow sequence of server addresses.
pub fn servers(addrs: &[String]) -> String {
    let quoted: Vec<String> = addrs.iter().map(|a| format!("\"{a}\"")).collect();
    format!("[ {} ]", quoted.join(", "))
}

/// The per-record labels.
pub fn rec(name: &str, rtype: &str) -> Vec<(&'static str, String)> {
    vec![("record", name.to_owned()), ("record_type", rtype.to_owned())]
}

/// The per-server labels of a record.
pub fn srv(name: &str, rtype: &str, server: &str, mode: &str) -> Vec<(&'static str, String)> {
    let mut l = rec(name, rtype);
    l.push(("resolver", server.to_owned()));
    l.push(("mode", mode.to_owned()));
    l
}

/// The per-server labels of `www.lab.test. A`.
pub fn www(server: &str, mode: &str) -> Vec<(&'static str, String)> {
    srv(RECORD, "A", server, mode)
}

/// The failure reason a server's last query gave for a record, if it failed.
pub fn reason(m: &Metrics, labels: &[(&'static str, String)]) -> Option<String> {
    m.find("rpo_dns_query_failure_reason", labels)
        .into_iter()
        .find(|s| s.value == 1.0)
        .map(|s| s.labels["reason"].clone())
}

/// Scrapes until `cond` holds (every 50 ms, each scrape checked to take under 1 s);
/// panics with `what`, the last scrape's DNS lines and the log if it never does.
pub async fn wait_metrics(
    exporter: &Exporter,
    timeout: Duration,
    what: &str,
    cond: impl Fn(&Metrics) -> bool,
) -> Metrics {
    let deadline = Instant::now() + timeout;
    loop {
        let start = Instant::now();
        let text = exporter.scrape_text().await;
        let took = start.elapsed();
        assert!(took < Duration::from_secs(1), "a scrape took {took:?}");
        let m = Metrics::parse(&text);
        if cond(&m) {
            return m;
        }
        if Instant::now() >= deadline {
            let dns: Vec<&str> = text.lines().filter(|l| l.starts_with("rpo_dns_")).collect();
            panic!(
                "timed out waiting for {what}\n--- /metrics (rpo_dns_*) ---\n{}\n--- log ---\n{}",
                dns.join("\n"),
                exporter.log()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// One scrape, checked to take under 1 s.
pub async fn scrape_fast(exporter: &Exporter) -> Metrics {
    let start = Instant::now();
    let text = exporter.scrape_text().await;
    let took = start.elapsed();
    assert!(took < Duration::from_secs(1), "a scrape took {took:?}");
    Metrics::parse(&text)
}

/// Unix time now, as the exporter's timestamps are.
pub fn unix_now() -> f64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}
