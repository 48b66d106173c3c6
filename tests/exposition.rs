//! What the outside world sees: the metric contract against docs/metrics.md, the
//! HTTP endpoints, a real Prometheus scraping us, secrets kept out of logs and
//! metrics, and a clean exit on SIGTERM.

mod support;

use rpo_exporter::exposition;
use rpo_exporter::metrics::MetricKind;
use rpo_lab::Prometheus;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use support::*;

/// (name, type, labels, meaning) rows of the table in docs/metrics.md.
fn documented() -> BTreeMap<String, (String, Vec<String>, String)> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/metrics.md")).unwrap();
    let mut rows = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("| `rpo_")) {
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
        assert_eq!(cells.len(), 4, "docs/metrics.md row {line:?}");
        let labels =
            cells[2].split(", ").filter(|l| !l.is_empty()).map(|l| l.trim_matches('`').to_owned()).collect();
        let name = cells[0].trim_matches('`').to_owned();
        assert!(
            rows.insert(name.clone(), (cells[1].to_owned(), labels, cells[3].to_owned())).is_none(),
            "{name} twice"
        );
    }
    rows
}

/// The table docs/metrics.md must hold, rendered from the metric table.
fn expected_rows() -> String {
    exposition::all()
        .map(|d| {
            let kind = match d.kind {
                MetricKind::Gauge => "gauge",
                MetricKind::Counter => "counter",
            };
            let labels: Vec<String> = d.labels.iter().map(|l| format!("`{l}`")).collect();
            format!("| `{}` | {kind} | {} | {} |\n", d.sample_name(), labels.join(", "), d.help)
        })
        .collect()
}

#[test]
fn docs_metrics_md_matches_the_metric_table() {
    let docs = documented();
    let mut problems = Vec::new();
    let mut names = BTreeSet::new();
    for d in exposition::all() {
        let name = d.sample_name();
        names.insert(name.clone());
        let kind = if d.kind == MetricKind::Counter { "counter" } else { "gauge" };
        let labels: Vec<String> = d.labels.iter().map(|l| (*l).to_owned()).collect();
        match docs.get(&name) {
            None => problems.push(format!("{name} is not documented")),
            Some(row) if *row != (kind.to_owned(), labels.clone(), d.help.to_owned()) => problems
                .push(format!("{name}: documented {row:?}, emitted ({kind}, {labels:?}, {:?})", d.help)),
            _ => {}
        }
        assert!(d.name.starts_with("rpo_"), "{} lacks the rpo_ prefix", d.name);
        for clash in ["region", "cluster", "instance", "job", "zone", "env"] {
            assert!(!d.labels.contains(&clash), "{} uses target label {clash}", d.name);
        }
    }
    for name in docs.keys().filter(|n| !names.contains(*n)) {
        problems.push(format!("{name} is documented but never emitted"));
    }
    assert!(problems.is_empty(), "{}\n\nThe table should read:\n{}", problems.join("\n"), expected_rows());
}

#[tokio::test(flavor = "multi_thread")]
async fn live_metrics_match_the_docs_and_prometheus_reads_them() {
    let (lab, exporter) = lab_and_exporter(spec_primary_replica(), "1s").await;
    let pair = lab.pair("p", "r1");
    let ok = wait_for(Duration::from_secs(15), || async {
        exporter.scrape().await.get("rpo_replication_lag_seconds", &pair).is_some()
    })
    .await;
    assert!(ok, "no lag series; log:\n{}", exporter.log());

    // Every family on /metrics is documented with its type, and every sample
    // carries exactly its family's documented labels.
    let docs = documented();
    let m = exporter.scrape().await;
    for (family, kind) in &m.types {
        let name = if kind == "counter" { format!("{family}_total") } else { family.clone() };
        let (doc_kind, _, _) = docs.get(&name).unwrap_or_else(|| panic!("{name} emitted but not documented"));
        assert_eq!(doc_kind, kind, "{name}");
    }
    assert_eq!(m.types.len(), docs.len(), "families on /metrics vs docs/metrics.md");
    for s in &m.samples {
        let (_, doc_labels, _) =
            docs.get(&s.name).unwrap_or_else(|| panic!("sample {} not documented", s.name));
        let got: BTreeSet<&String> = s.labels.keys().collect();
        let want: BTreeSet<&String> = doc_labels.iter().collect();
        assert_eq!(got, want, "labels of {}", s.name);
    }
    for core in ["rpo_objective_seconds", "rpo_rto_objective_seconds", "rpo_node_up", "rpo_node_writable"] {
        assert!(!m.find(core, &[]).is_empty(), "{core} missing");
    }
    assert_eq!(m.get("rpo_objective_seconds", &labels(&[("db_cluster", "lab")])), Some(30.0));
    assert_eq!(m.get("rpo_node_writable", &lab.node_labels("p")), Some(1.0));
    assert_eq!(m.get("rpo_node_writable", &lab.node_labels("r1")), Some(0.0));
    // PostgreSQL's own view of the same replication, beside the heartbeats.
    let standby = with(lab.node_labels("p"), &[("standby", "r1")]);
    assert_eq!(m.get("rpo_pg_standbys", &lab.node_labels("p")), Some(1.0));
    assert_eq!(m.get("rpo_pg_standby_state", &with(standby.clone(), &[("state", "streaming")])), Some(1.0));
    assert_eq!(m.get("rpo_pg_standby_state", &with(standby.clone(), &[("state", "catchup")])), Some(0.0));
    assert!(m.get("rpo_pg_standby_lag_bytes", &with(standby, &[("stage", "replay")])).is_some());
    let r1 = lab.node_labels("r1");
    assert_eq!(m.get("rpo_pg_wal_receiver_status", &with(r1.clone(), &[("status", "streaming")])), Some(1.0));
    assert_eq!(m.get("rpo_pg_replay_paused", &r1), Some(0.0));
    assert!(m.get("rpo_pg_last_replay_timestamp_seconds", &r1).is_some());
    assert_eq!(
        m.get("rpo_pg_replay_paused", &lab.node_labels("p")),
        None,
        "replica-only signals stay off the primary"
    );

    // A real Prometheus scrapes the exporter and serves the pair's lag back.
    let prom = Prometheus::start(std::slice::from_ref(&exporter.addr), Duration::from_secs(1), "/metrics")
        .await
        .unwrap();
    let query = "rpo_replication_lag_seconds{db_cluster=\"lab\",source_node=\"p\",replica_node=\"r1\"}";
    let result = prom
        .wait_for(query, Duration::from_secs(20), |r| r.as_array().is_some_and(|a| a.len() == 1))
        .await
        .unwrap_or_else(|e| panic!("Prometheus never returned the lag: {e:#}\n{}", prom.log_tail(30)));
    let sample = &result[0];
    let value: f64 = sample["value"][1].as_str().unwrap().parse().unwrap();
    println!("Prometheus read {query} = {value} with labels {}", sample["metric"]);
    assert!((0.0..0.5).contains(&value));
    assert_eq!(sample["metric"]["replica_region"], "eu-west-1");
    let up = prom.query("up{job=\"rpo\"}").await.unwrap();
    assert_eq!(up[0]["value"][1], "1", "Prometheus scraped the exporter successfully");
}

#[tokio::test(flavor = "multi_thread")]
async fn endpoints_and_clean_shutdown() {
    // No database needed: a node nobody listens on.
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "clusters:\n  - name: c\n    rpo: 1m\n    rto: 1h\n    nodes:\n      - {{ name: n, region: r, engine: postgres, dsn: \"host=127.0.0.1 port={} user=u dbname=d\" }}\n",
        rpo_lab::free_port()
    );
    let _ = dir;
    let mut exporter = Exporter::start(&config).await;
    for path in ["/-/healthy", "/-/ready"] {
        assert!(exporter.get(path).await.status().is_success(), "{path}");
    }
    let landing = exporter.get("/").await.text().await.unwrap();
    assert!(landing.contains("href=\"/metrics\""), "{landing}");
    let r = exporter.get("/metrics").await;
    assert_eq!(r.headers()["content-type"], exposition::CONTENT_TYPE);
    let text = r.text().await.unwrap();
    assert!(text.ends_with("# EOF\n"), "OpenMetrics ends with # EOF");
    assert!(text.contains("rpo_node_up{db_cluster=\"c\",node=\"n\",node_region=\"r\"} 0"));
    assert_eq!(exporter.get("/nope").await.status(), 404);
    let status = exporter.terminate();
    assert!(status.success(), "exit status after SIGTERM: {status}");
    assert!(exporter.log().contains("Shutting down"), "{}", exporter.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn passwords_never_reach_logs_or_metrics() {
    let lab = Lab::start(spec_primary_replica()).await;
    // A second node with a wrong (but just as recognisable) password: its
    // authentication failures are logged at every level, the password never.
    const WRONG: &str = "Wrong-UNMISTAKABLE-93af01";
    let wrong_file = lab.dir.path().join("wrong-password");
    std::fs::write(&wrong_file, WRONG).unwrap();
    let bad = format!(
        "      - name: badpw\n        region: sa-east-1\n        engine: postgres\n        dsn: \"host=127.0.0.1 port={} user={ROLE} dbname=postgres\"\n        password_file: {}\n",
        lab.pg.node("p").port(),
        wrong_file.display()
    );
    let exporter = Exporter::start(&lab.config("1s", &bad)).await;
    let ok = wait_for(Duration::from_secs(15), || async {
        let m = exporter.scrape().await;
        m.get("rpo_replication_lag_seconds", &lab.pair("p", "r1")).is_some()
            && m.get(
                "rpo_collector_errors_total",
                &labels(&[("node", "badpw"), ("collector", "role"), ("reason", "auth")]),
            )
            .is_some_and(|n| n >= 2.0)
    })
    .await;
    assert!(ok, "expected readings and auth failures; log:\n{}", exporter.log());
    let metrics = exporter.scrape_text().await;
    let log = exporter.log();
    assert!(log.contains("level=debug"), "the log runs at debug level");
    assert!(log.contains("password authentication failed"), "{log}");
    for secret in [PASSWORD, WRONG] {
        assert!(!log.contains(secret), "password in the log:\n{log}");
        assert!(!metrics.contains(secret), "password in /metrics");
    }
}
