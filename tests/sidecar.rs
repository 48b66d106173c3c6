//! The sidecar layout: one exporter beside each database, each config listing
//! only its own node. The replica's sidecar learns the writer from the row and
//! compares database clocks.

mod support;

use std::time::{Duration, Instant};
use support::*;

const LAG: &str = "rpo_replication_lag_seconds";
const EXPOSURE: &str = "rpo_data_loss_exposure_seconds";

fn sidecar_config(lab: &Lab, node: &str) -> String {
    format!(
        "clusters:\n  - name: lab\n    rpo: 30s\n    rto: 5m\n    heartbeat: {{ interval: 1s, create_table: false }}\n    nodes:\n{}",
        lab.node_yaml(node)
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn replica_sidecar_measures_the_primary_it_does_not_know() {
    let lab = Lab::start(spec_primary_replica()).await;
    let primary_side = Exporter::start(&sidecar_config(&lab, "p")).await;
    let replica_side = Exporter::start(&sidecar_config(&lab, "r1")).await;
    let pair = lab.pair("p", "r1");
    let ok =
        wait_for(Duration::from_secs(15), || async { replica_side.scrape().await.get(LAG, &pair).is_some() })
            .await;
    assert!(ok, "replica sidecar has no p → r1 pair; log:\n{}", replica_side.log());

    // Idle: the row's time against the replica's clock, within one interval.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        let m = replica_side.scrape().await;
        let exposure = m.get(EXPOSURE, &pair).unwrap();
        let lag = m.get(LAG, &pair).unwrap();
        // Exposure is aged to the scrape: up to an interval on top of its reading.
        assert!(exposure < 2.5 && lag < 0.5, "idle via sidecar: lag {lag} exposure {exposure}");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let p = primary_side.scrape().await;
    assert!(p.get("rpo_heartbeat_writes_total", &lab.node_labels("p")).unwrap() >= 5.0);
    assert!(p.find(LAG, &[]).is_empty(), "the primary's sidecar reads only its own row");

    // Replay paused: the lower-bound lag (exposure − interval) grows.
    lab.pg.node("r1").execute("SELECT pg_wal_replay_pause()").await.unwrap();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let m = replica_side.scrape().await;
    let (lag, exposure) = (m.get(LAG, &pair).unwrap(), m.get(EXPOSURE, &pair).unwrap());
    println!("sidecar, replay paused 6 s: lag {lag:.3} s, exposure {exposure:.3} s");
    // Lag is exposure − interval at the read; exposure has aged since by less than
    // the read interval (plus scheduling slack).
    let aged = exposure - lag - 1.0;
    assert!(lag >= 3.5 && (-1e-6..1.2).contains(&aged), "lag {lag} exposure {exposure}");
    assert_eq!(m.get("rpo_heartbeat_row_status", &with(pair.clone(), &[("status", "ok")])), Some(1.0));
}
