//! What the outside world sees: the metric contract against docs/metrics.md, the
//! HTTP endpoints, a real Prometheus scraping us, secrets kept out of logs and
//! metrics, and a clean exit on SIGTERM.

mod support;

use rpo_exporter::exposition;
use rpo_exporter::exposition::Format;
use rpo_exporter::metrics::{self, MetricKind};
use rpo_lab::Prometheus;
use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;
use support::*;

/// A row of docs/metrics.md: type, labels, meaning.
type Row = (String, Vec<String>, String);

/// The rows of the tables in docs/metrics.md by name, and the collector switch
/// named in a fifth column (`None` for "always" or none).
fn documented_with_switch() -> BTreeMap<String, (Row, Option<String>)> {
    let text = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/metrics.md")).unwrap();
    // The drill's own families (served by `rpo-exporter drill` only) close the page;
    // a unit test in src/drill checks them.
    let text = text.split("## `rpo-exporter drill`").next().unwrap();
    let mut rows = BTreeMap::new();
    for line in text.lines().filter(|l| l.starts_with("| `rpo_") || l.starts_with("| `process_")) {
        let cells: Vec<&str> = line.trim_matches('|').split(" | ").map(str::trim).collect();
        assert!(cells.len() == 4 || cells.len() == 5, "docs/metrics.md row {line:?}");
        let labels =
            cells[2].split(", ").filter(|l| !l.is_empty()).map(|l| l.trim_matches('`').to_owned()).collect();
        let name = cells[0].trim_matches('`').to_owned();
        let switch = cells.get(4).filter(|c| **c != "always").map(|c| c.trim_matches('`').to_owned());
        let row = (cells[1].to_owned(), labels, cells[3].to_owned());
        assert!(rows.insert(name.clone(), (row, switch)).is_none(), "{name} twice");
    }
    rows
}

fn documented() -> BTreeMap<String, Row> {
    documented_with_switch().into_iter().map(|(name, (row, _))| (name, row)).collect()
}

/// Every family a `--no-collector.NAME` can turn off says so in its row, and no
/// other does.
#[test]
fn docs_metrics_md_names_each_familys_collector() {
    let docs = documented_with_switch();
    for d in exposition::all() {
        let (_, switch) = &docs[&d.sample_name()];
        assert_eq!(switch.as_deref(), d.switch.map(|s| s.name()), "collector column of {}", d.name);
    }
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
        let standard = metrics::PROCESS.iter().any(|p| std::ptr::eq(*p, d));
        assert!(d.name.starts_with("rpo_") || standard, "{} lacks the rpo_ prefix", d.name);
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
    assert_eq!(r.headers()["content-type"], Format::Text.content_type(), "no Accept: text 0.0.4");
    let text = r.text().await.unwrap();
    assert!(!text.contains("# EOF"), "0.0.4 has no # EOF");
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

/// GET /metrics with the given Accept and Accept-Encoding headers.
async fn get_metrics(exporter: &Exporter, accept: Option<&str>, encoding: Option<&str>) -> reqwest::Response {
    let client = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let mut request = client.get(format!("http://{}/metrics", exporter.addr));
    if let Some(accept) = accept {
        request = request.header("accept", accept);
    }
    if let Some(encoding) = encoding {
        request = request.header("accept-encoding", encoding);
    }
    request.send().await.unwrap()
}

/// `promtool check metrics` on `text`: (success, what it printed).
fn promtool_check(text: &str) -> (bool, String) {
    use std::io::Write;
    let mut child = std::process::Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("promtool (from the prometheus package) runs");
    child.stdin.take().unwrap().write_all(text.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.success(), said)
}

/// A config with one node nobody listens on: every family the exporter emits
/// without a database, and no database to wait for.
fn no_database_config() -> String {
    format!(
        "clusters:\n  - name: c\n    rpo: 1m\n    rto: 1h\n    nodes:\n      - {{ name: n, region: r, engine: postgres, dsn: \"host=127.0.0.1 port={} user=u dbname=d\" }}\n",
        rpo_lab::free_port()
    )
}

/// Prometheus's own Accept header (2.42 as scrapers send it by default).
const PROMETHEUS_ACCEPT: &str = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";

#[tokio::test(flavor = "multi_thread")]
async fn content_negotiation_gzip_promtool_and_process_metrics() {
    let exporter = Exporter::start(&no_database_config()).await;
    let text = Format::Text.content_type();
    let om = Format::OpenMetrics.content_type();
    for (accept, want) in [
        (None, text),
        (Some("text/plain;version=0.0.4"), text),
        (Some("*/*"), text),
        (Some("application/openmetrics-text;version=1.0.0"), om),
        (Some(PROMETHEUS_ACCEPT), om),
        (Some("text/plain;version=0.0.4;q=0.9,application/openmetrics-text;q=0.5"), text),
    ] {
        let r = get_metrics(&exporter, accept, None).await;
        assert_eq!(r.status(), 200);
        assert_eq!(r.headers()["content-type"], want, "Accept: {accept:?}");
        assert!(r.headers().get("content-encoding").is_none(), "no gzip unless asked");
        println!("Accept: {accept:?} -> Content-Type: {want}");
        let body = r.text().await.unwrap();
        assert_eq!(body.ends_with("# EOF\n"), want == om, "# EOF only in OpenMetrics");
        // Same sample names in both formats, counters with _total.
        assert!(body.contains("\nrpo_exporter_task_restarts_total{task=\"worker\"} 0"), "{body}");
        assert!(body.contains("\nprocess_cpu_seconds_total "), "{body}");
    }

    // gzip when Accept-Encoding allows it, the same text inside.
    for (accept, format) in [(None, Format::Text), (Some(PROMETHEUS_ACCEPT), Format::OpenMetrics)] {
        let r = get_metrics(&exporter, accept, Some("gzip, deflate")).await;
        assert_eq!(r.headers()["content-encoding"], "gzip");
        assert_eq!(r.headers()["content-type"], format.content_type());
        let gz = r.bytes().await.unwrap();
        let mut body = String::new();
        std::io::Read::read_to_string(&mut flate2::read::GzDecoder::new(&gz[..]), &mut body).unwrap();
        assert!(body.contains("rpo_node_up{db_cluster=\"c\",node=\"n\",node_region=\"r\"} 0"), "{body}");
        assert!(gz.len() * 2 < body.len(), "gzip shrinks {} bytes to {}", body.len(), gz.len());
        println!("Accept-Encoding: gzip -> Content-Encoding: gzip, {} bytes for {}", gz.len(), body.len());
    }
    let r = get_metrics(&exporter, None, Some("identity, gzip;q=0")).await;
    assert!(r.headers().get("content-encoding").is_none());

    // promtool reads and lints the text format 0.0.4: no problem at all.
    let body = get_metrics(&exporter, None, None).await.text().await.unwrap();
    let (ok, said) = promtool_check(&body);
    println!("promtool check metrics (text 0.0.4): ok={ok} {said:?}");
    assert!(ok, "promtool check metrics on text 0.0.4:\n{said}\n{body}");
    // promtool 2.42 has only the 0.0.4 parser: it reads OpenMetrics without a parse
    // error, but takes a counter's `_total` samples for a family apart from the
    // `# HELP`/`# TYPE` that name it without the suffix, and lints them "no help
    // text". Nothing else may come up; the real check of OpenMetrics is a
    // Prometheus ingesting it (open_metrics_is_ingested_by_prometheus).
    let om_body = get_metrics(&exporter, Some(PROMETHEUS_ACCEPT), None).await.text().await.unwrap();
    let (_, said) = promtool_check(&om_body);
    println!("promtool check metrics (OpenMetrics): {said:?}");
    let counters: BTreeSet<String> = exposition::all()
        .filter(|d| d.kind == MetricKind::Counter)
        .map(|d| format!("{} no help text", d.sample_name()))
        .collect();
    for line in said.lines() {
        assert!(counters.contains(line), "promtool on OpenMetrics: {line:?}\n{said}");
    }

    // The process_* readings are this exporter's and plausible.
    let m = Metrics::parse(&body);
    assert_eq!(m.types.get("process_cpu_seconds").map(String::as_str), Some("counter"));
    let value = |name: &str| m.get(name, &[]).unwrap_or_else(|| panic!("{name} missing:\n{body}"));
    assert!(value("process_resident_memory_bytes") > 1e6);
    assert!(value("process_virtual_memory_bytes") >= value("process_resident_memory_bytes"));
    assert!(value("process_open_fds") >= 3.0);
    assert!(value("process_max_fds") >= value("process_open_fds"));
    assert!(value("process_cpu_seconds_total") >= 0.0);
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_secs_f64();
    let start = value("process_start_time_seconds");
    assert!((now - 120.0..now + 1.0).contains(&start), "started {start}, now {now}");
}

#[tokio::test(flavor = "multi_thread")]
async fn open_metrics_is_ingested_by_prometheus() {
    // Prometheus (2.42) asks for OpenMetrics first (PROMETHEUS_ACCEPT), so it reads
    // what the exporter negotiates for it with its OpenMetrics parser.
    let exporter = Exporter::start(&no_database_config()).await;
    let r = get_metrics(&exporter, Some(PROMETHEUS_ACCEPT), None).await;
    assert_eq!(r.headers()["content-type"], Format::OpenMetrics.content_type());
    let prom = Prometheus::start(std::slice::from_ref(&exporter.addr), Duration::from_secs(1), "/metrics")
        .await
        .unwrap();
    let up = prom
        .wait_for("up{job=\"rpo\"}", Duration::from_secs(20), |r| r[0]["value"][1] == "1")
        .await
        .unwrap_or_else(|e| panic!("Prometheus never scraped the exporter: {e:#}\n{}", prom.log_tail(30)));
    println!("up = {}", up[0]["value"][1]);
    for (query, check) in [
        ("process_cpu_seconds_total{job=\"rpo\"}", ">= 0"),
        ("process_resident_memory_bytes{job=\"rpo\"}", "> 0"),
        ("process_open_fds{job=\"rpo\"}", "> 0"),
        ("process_start_time_seconds{job=\"rpo\"}", "> 0"),
        ("rpo_exporter_task_restarts_total{job=\"rpo\",task=\"worker\"}", "== 0"),
        ("rpo_node_up{job=\"rpo\",db_cluster=\"c\",node=\"n\"}", "== 0"),
        ("rpo_objective_seconds{job=\"rpo\",db_cluster=\"c\"}", "== 60"),
    ] {
        let promql = format!("{query} {check}");
        let result = prom.query(&promql).await.unwrap();
        assert_eq!(result.as_array().map(Vec::len), Some(1), "{promql}: {result}");
        println!("Prometheus: {promql} -> {}", result[0]["value"][1]);
    }
    // Nothing the exporter sent was dropped as malformed.
    let samples = prom.query("scrape_samples_scraped{job=\"rpo\"}").await.unwrap();
    let scraped: f64 = samples[0]["value"][1].as_str().unwrap().parse().unwrap();
    let stored = prom.query("count({job=\"rpo\",__name__!~\"up|scrape_.*\"})").await.unwrap();
    let stored: f64 = stored[0]["value"][1].as_str().unwrap().parse().unwrap();
    println!("Prometheus: {scraped} samples scraped, {stored} series stored");
    assert!(scraped >= 20.0 && stored >= scraped - 5.0, "scraped {scraped}, stored {stored}");
}
