//! Config reload on SIGHUP and `POST /-/reload`: a valid config takes effect
//! without a restart (a new node is watched, a removed node's series go), an
//! invalid one is refused while the old config keeps running, and the reload
//! metrics say which happened.

mod support;

use rpo_lab::PgLabSpec;
use std::time::Duration;
use support::*;

const OK: &str = "rpo_exporter_config_last_reload_successful";
const AT: &str = "rpo_exporter_config_last_reload_success_timestamp_seconds";

fn config_with(lab: &Lab, nodes: &[&str]) -> String {
    let nodes: String = nodes.iter().map(|n| lab.node_yaml(n)).collect();
    format!(
        "clusters:\n  - name: lab\n    rpo: 30s\n    rto: 5m\n    heartbeat: {{ interval: 1s, create_table: false }}\n    nodes:\n{nodes}"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn reload_applies_valid_configs_and_refuses_bad_ones() {
    let lab = Lab::start(PgLabSpec::new().primary("p").replica("r1", "p").replica("r2", "p")).await;
    let exporter = Exporter::start(&config_with(&lab, &["p", "r1"])).await;
    wait_for_pair(&exporter, &lab.pair("p", "r1")).await;
    let m = exporter.scrape().await;
    assert_eq!(m.get(OK, &[]), Some(1.0));
    let started_at = m.get(AT, &[]).unwrap();

    // SIGHUP with r1 swapped for r2.
    exporter.rewrite_config(&config_with(&lab, &["p", "r2"]));
    exporter.signal(nix::sys::signal::Signal::SIGHUP);
    let ok = wait_for(Duration::from_secs(10), || async {
        let m = exporter.scrape().await;
        m.get("rpo_replication_lag_seconds", &lab.pair("p", "r2")).is_some()
            && m.get("rpo_node_up", &lab.node_labels("r1")).is_none()
            && m.find("rpo_replication_lag_seconds", &[("replica_node", "r1".into())]).is_empty()
    })
    .await;
    assert!(ok, "SIGHUP reload did not take effect; log:\n{}", exporter.log());
    let m = exporter.scrape().await;
    assert_eq!(m.get(OK, &[]), Some(1.0));
    assert!(m.get(AT, &[]).unwrap() > started_at);
    assert_eq!(m.get("rpo_node_up", &lab.node_labels("p")), Some(1.0));

    // An invalid config: refused over HTTP with the field path, old config kept.
    let bad = config_with(&lab, &["p", "r2"]).replace("interval: 1s", "interval: 1 fortnight");
    exporter.rewrite_config(&bad);
    let client = reqwest::Client::new();
    let url = format!("http://{}/-/reload", exporter.addr);
    let resp = client.post(&url).send().await.unwrap();
    assert_eq!(resp.status(), 500);
    let body = resp.text().await.unwrap();
    assert!(body.contains("clusters[0].heartbeat.interval: invalid duration \"1 fortnight\""), "{body}");
    let m = exporter.scrape().await;
    assert_eq!(m.get(OK, &[]), Some(0.0), "the failed reload is reported");
    let before = m.get("rpo_heartbeat_seen_timestamp_seconds", &lab.pair("p", "r2")).unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let after =
        exporter.scrape().await.get("rpo_heartbeat_seen_timestamp_seconds", &lab.pair("p", "r2")).unwrap();
    assert!(after > before, "the previous config keeps measuring");
    assert!(exporter.log().contains("Configuration reload failed"), "{}", exporter.log());

    // Fixed again: PUT works too, and the metric recovers.
    exporter.rewrite_config(&config_with(&lab, &["p", "r1", "r2"]));
    let resp = client.put(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    let m = exporter.scrape().await;
    assert_eq!(m.get(OK, &[]), Some(1.0));
    assert!(m.find("rpo_node_up", &[("node", "r1".into())]).len() == 1, "r1 is back");
}

#[tokio::test(flavor = "multi_thread")]
async fn reloading_an_identical_file_restarts_no_worker() {
    let lab = Lab::start(spec_primary_replica()).await;
    let config = config_with(&lab, &["p", "r1"]);
    let exporter = Exporter::start(&config).await;
    wait_for_pair(&exporter, &lab.pair("p", "r1")).await;
    let sessions = |m: &Metrics, node: &str| m.get("rpo_node_sessions_opened_total", &lab.node_labels(node));
    let m = exporter.scrape().await;
    assert_eq!((sessions(&m, "p"), sessions(&m, "r1")), (Some(1.0), Some(1.0)));
    let before = m.get("rpo_heartbeat_seen_timestamp_seconds", &lab.pair("p", "r1")).unwrap();

    // The same file over HTTP (the burst the rate limit allows) and by SIGHUP.
    for _ in 0..3 {
        exporter.reload(&config).await;
    }
    exporter.signal(nix::sys::signal::Signal::SIGHUP);
    let unchanged = wait_for(Duration::from_secs(5), || async {
        exporter.log().matches("Configuration unchanged; nothing to do").count() == 4
    })
    .await;
    assert!(unchanged, "four reloads of the same file; log:\n{}", exporter.log());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let m = exporter.scrape().await;
    assert_eq!(
        (sessions(&m, "p"), sessions(&m, "r1")),
        (Some(1.0), Some(1.0)),
        "a worker reconnected; log:\n{}",
        exporter.log()
    );
    assert!(m.get("rpo_heartbeat_seen_timestamp_seconds", &lab.pair("p", "r1")).unwrap() > before);
    assert_eq!(m.get(OK, &[]), Some(1.0));
}
