//! Two exporters watching one cluster, as people run an HA pair: the node's write
//! lease (a session lock on the primary) lets one write the heartbeats while the
//! other only reads them, so the row's sequence advances once per interval, not
//! twice, and neither sees the other's writes as a regression. When the writer's
//! host vanishes without closing its connection (a black hole between it and the
//! primary), the server drops its idle session and the other exporter takes the
//! lease over; when the network heals, the first comes back as the reader.

mod support;

use std::time::{Duration, Instant};
use support::*;

const WRITER: &str = "rpo_heartbeat_writer";

/// The sequence of `node`'s heartbeat row, read on the primary.
async fn row_seq(lab: &Lab, node: &str) -> i64 {
    let sql = format!("SELECT seq::text FROM rpo.heartbeat WHERE node = '{node}'");
    let seq = lab.pg.node("p").query_one_string(&sql).await.unwrap().expect("the primary's row");
    seq.parse().unwrap()
}

async fn writer(exporter: &Exporter, labels: &[(&'static str, String)]) -> Option<f64> {
    exporter.scrape().await.get(WRITER, labels)
}

async fn wait_writer(what: &str, exporter: &Exporter, labels: &[(&'static str, String)], want: f64) -> f64 {
    let start = Instant::now();
    let ok =
        wait_for(Duration::from_secs(40), || async { writer(exporter, labels).await == Some(want) }).await;
    assert!(ok, "{what}: {WRITER} never became {want}; log:\n{}", exporter.log());
    start.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread")]
async fn two_exporters_write_one_heartbeat_and_hand_the_lease_over() {
    let lab = Lab::start(spec_primary_replica()).await;
    let targets = [("p", lab.pg.node("p").port()), ("r1", lab.pg.node("r1").port())];
    // Exporter a is a region away from the databases, b next to them.
    let (wan_a, wan_b) = (Wan::start(&targets, FAR).await, Wan::start(&targets, Duration::ZERO).await);
    let config = |wan: &Wan| {
        let nodes =
            format!("{}{}", lab.node_yaml_at("p", wan.port("p")), lab.node_yaml_at("r1", wan.port("r1")));
        format!(
            "clusters:\n  - name: lab\n    rpo: 30s\n    rto: 5m\n    heartbeat: {{ interval: 1s, create_table: false }}\n    nodes:\n{nodes}"
        )
    };
    let (p, pair) = (lab.node_labels("p"), lab.pair("p", "r1"));

    let a = Exporter::start(&config(&wan_a)).await;
    wait_writer("a alone", &a, &p, 1.0).await;
    let b = Exporter::start(&config(&wan_b)).await;
    wait_for_pair(&b, &pair).await;
    wait_writer("b beside a", &b, &p, 0.0).await;

    // One writer: the row advances by a's writes alone, about one per second.
    let writes = |m: &Metrics| m.get("rpo_heartbeat_writes_total", &p).unwrap_or(0.0);
    let (seq0, writes0) = (row_seq(&lab, "p").await, writes(&a.scrape().await));
    tokio::time::sleep(Duration::from_secs(10)).await;
    let (seq1, writes1) = (row_seq(&lab, "p").await, writes(&a.scrape().await));
    let (advanced, wrote) = (seq1 - seq0, writes1 - writes0);
    println!("in 10 s the row advanced {advanced}, exporter a wrote {wrote}");
    assert!((8..=12).contains(&advanced), "the row advanced {advanced} in 10 s at a 1 s interval");
    assert!((wrote - advanced as f64).abs() <= 1.0, "a wrote {wrote}, the row advanced {advanced}");
    let (ma, mb) = (a.scrape().await, b.scrape().await);
    assert_eq!(mb.get("rpo_heartbeat_writes_total", &p), None, "b wrote heartbeats");
    for (name, m) in [("a", &ma), ("b", &mb)] {
        let regressions = m.get("rpo_heartbeat_sequence_regressions_total", &pair).unwrap_or(0.0);
        assert_eq!(regressions, 0.0, "{name} saw the sequence go backwards");
        let ok = with(pair.clone(), &[("status", "ok")]);
        assert_eq!(m.get("rpo_heartbeat_row_status", &ok), Some(1.0), "{name}: the row is not ok");
        let lag = m.get("rpo_replication_lag_seconds", &pair).unwrap();
        assert!(lag < 3.0, "{name}: lag {lag} on a healthy pair");
    }

    // a's host vanishes: nothing it sent reaches the primary, nothing comes back,
    // and no connection is closed. The primary drops a's idle session, and b
    // takes the lease over.
    wan_a.proxy("p").set_blackhole(true);
    wan_a.proxy("r1").set_blackhole(true);
    let took = wait_writer("b after a vanished", &b, &p, 1.0).await;
    println!("b took the lease over {took:.1} s after a vanished");
    assert!(took < 25.0, "the lease took {took:.1} s to pass on");
    let fresh = wait_for(Duration::from_secs(10), || async {
        b.scrape().await.get("rpo_data_loss_exposure_seconds", &pair).is_some_and(|e| e < 3.0)
    })
    .await;
    assert!(fresh, "heartbeats did not resume under b; log:\n{}", b.log());

    // The network heals: a reconnects, finds the lease taken, and reads.
    wan_a.proxy("p").set_blackhole(false);
    wan_a.proxy("r1").set_blackhole(false);
    wait_writer("a after the network healed", &a, &p, 0.0).await;
    let (seq0, writes0) = (row_seq(&lab, "p").await, writes(&b.scrape().await));
    tokio::time::sleep(Duration::from_secs(5)).await;
    let (seq1, writes1) = (row_seq(&lab, "p").await, writes(&b.scrape().await));
    assert!((writes1 - writes0 - (seq1 - seq0) as f64).abs() <= 1.0, "b is not the only writer any more");
}
