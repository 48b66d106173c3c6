//! Lag and exposure against a real PostgreSQL primary with streaming replicas:
//! an idle primary, paused replay, cascading replication, a stopped primary.

mod support;

use rpo_lab::PgLabSpec;
use std::time::{Duration, Instant};
use support::*;

const LAG: &str = "rpo_replication_lag_seconds";
const EXPOSURE: &str = "rpo_data_loss_exposure_seconds";

#[tokio::test(flavor = "multi_thread")]
async fn idle_primary_shows_no_false_lag() {
    let (lab, exporter) = lab_and_exporter(spec_primary_replica(), "1s").await;
    let pair = lab.pair("p", "r1");
    wait_for_pair(&exporter, &pair).await;
    // Nothing but heartbeats for 30 s: sampled four times a second.
    let (mut max_lag, mut max_exposure, mut samples) = (0f64, 0f64, 0);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        let m = exporter.scrape().await;
        let lag = m.get(LAG, &pair).expect("lag series vanished on an idle primary");
        let exposure = m.get(EXPOSURE, &pair).expect("exposure series vanished");
        assert!(lag < 0.5, "idle primary: lag {lag} ≥ 0.5 s after {:?}", start.elapsed());
        // At scrape time exposure has aged since the read (at most an interval)
        // on top of the heartbeat's age at the read (at most an interval).
        assert!(exposure < 2.5, "idle primary: exposure {exposure} ≥ 2 intervals + 0.5 s");
        assert!(lag >= 0.0 && exposure >= lag, "lag {lag} exposure {exposure}");
        max_lag = max_lag.max(lag);
        max_exposure = max_exposure.max(exposure);
        samples += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    println!("idle 30 s: {samples} samples, max lag {max_lag:.4} s, max exposure {max_exposure:.4} s");
}

#[tokio::test(flavor = "multi_thread")]
async fn paused_replay_shows_lag_and_recovers() {
    let (lab, exporter) = lab_and_exporter(spec_primary_replica(), "1s").await;
    let pair = lab.pair("p", "r1");
    let r1 = lab.node_labels("r1");
    let read_age = with(r1.clone(), &[("collector", "heartbeat_read")]);
    wait_for_pair(&exporter, &pair).await;

    lab.pg.node("r1").execute("SELECT pg_wal_replay_pause()").await.unwrap();
    let paused_at = Instant::now();
    let ok = wait_for(Duration::from_secs(3), || async {
        exporter.scrape().await.get("rpo_pg_replay_paused", &r1) == Some(1.0)
    })
    .await;
    assert!(ok, "rpo_pg_replay_paused never read 1");
    tokio::time::sleep(Duration::from_secs(10).saturating_sub(paused_at.elapsed())).await;
    let m = exporter.scrape().await;
    let at = paused_at.elapsed().as_secs_f64();
    let lag = m.get(LAG, &pair).expect("lag series while paused");
    let exposure = m.get(EXPOSURE, &pair).expect("exposure while paused");
    let age = m.get("rpo_measurement_age_seconds", &read_age).expect("read age");
    // The reading is as of the last read, `age` ago; lag grows one for one while
    // replay is paused, so lag + age is the lag now.
    let lag_now = lag + age;
    println!("paused {at:.2} s: lag {lag:.3} s read {age:.3} s ago (lag now {lag_now:.3} s), exposure {exposure:.3} s");
    assert!((lag_now - 10.0).abs() <= 1.5, "lag now {lag_now}, want 10 ± 1.5");
    // Exposure is aged to the scrape (`age`); lag is as read.
    assert!(exposure >= lag && exposure - age - lag <= 1.5, "exposure {exposure} vs lag {lag}");

    lab.pg.node("r1").execute("SELECT pg_wal_replay_resume()").await.unwrap();
    let resumed_at = Instant::now();
    let ok = wait_for(Duration::from_secs(3), || async {
        exporter.scrape().await.get(LAG, &pair).is_some_and(|l| l < 1.0)
    })
    .await;
    let took = resumed_at.elapsed().as_secs_f64();
    assert!(ok, "lag not under 1 s within 3 s of resume; log:\n{}", exporter.log());
    println!("after resume: lag under 1 s within {took:.2} s");
}

#[tokio::test(flavor = "multi_thread")]
async fn cascading_replica_is_measured_end_to_end() {
    let spec = PgLabSpec::new().primary("p").replica("r1", "p").replica("r2", "r1");
    let (lab, exporter) = lab_and_exporter(spec, "1s").await;
    let p_r2 = lab.pair("p", "r2");
    wait_for_pair(&exporter, &p_r2).await;
    let m = exporter.scrape().await;
    assert!(m.get(LAG, &p_r2).unwrap() < 0.5);
    // r1 relays the primary's WAL to r2; r1 gone, r2 falls behind the primary
    // although r2 itself is healthy: only an end-to-end reading sees that.
    lab.pg.node("r1").stop().unwrap();
    let stopped = Instant::now();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let m = exporter.scrape().await;
    let lag = m.get(LAG, &p_r2).expect("p → r2 lag while r1 is down");
    let since = stopped.elapsed().as_secs_f64();
    println!("r1 stopped {since:.2} s: p → r2 lag {lag:.3} s");
    assert!(lag >= since - 2.5, "p → r2 lag {lag} after {since} s without its upstream");
    assert_eq!(m.get("rpo_node_up", &lab.node_labels("r2")), Some(1.0));
    assert_eq!(m.get("rpo_node_up", &lab.node_labels("r1")), Some(0.0));

    lab.pg.node("r1").start().unwrap();
    let ok = wait_for(Duration::from_secs(20), || async {
        exporter.scrape().await.get(LAG, &p_r2).is_some_and(|l| l < 0.5)
    })
    .await;
    assert!(ok, "p → r2 did not catch up after r1 came back");
}

#[tokio::test(flavor = "multi_thread")]
async fn stopped_primary_counts_write_errors_and_exposure_grows() {
    let (lab, exporter) = lab_and_exporter(spec_primary_replica(), "1s").await;
    let pair = lab.pair("p", "r1");
    let write_errors = with(lab.node_labels("p"), &[("collector", "heartbeat_write")]);
    wait_for_pair(&exporter, &pair).await;
    let errors_before: f64 = exporter
        .scrape()
        .await
        .find("rpo_collector_errors_total", &write_errors)
        .iter()
        .map(|s| s.value)
        .sum();

    lab.pg.node("p").stop().unwrap();
    tokio::time::sleep(Duration::from_secs(2)).await;
    let first = exporter.scrape().await.get(EXPOSURE, &pair).expect("exposure while the primary is down");
    tokio::time::sleep(Duration::from_secs(4)).await;
    let m = exporter.scrape().await;
    let later = m.get(EXPOSURE, &pair).expect("exposure while the primary is down");
    let errors: f64 = m.find("rpo_collector_errors_total", &write_errors).iter().map(|s| s.value).sum();
    println!("primary down: exposure {first:.3} s → {later:.3} s; write errors {errors_before} → {errors}");
    assert!(later - first >= 3.0, "exposure did not keep growing: {first} → {later}");
    assert!(errors >= errors_before + 2.0, "write errors not counted: {errors_before} → {errors}");
    assert_eq!(m.get("rpo_node_up", &lab.node_labels("p")), Some(0.0));
    assert_eq!(m.get("rpo_node_up", &lab.node_labels("r1")), Some(1.0));
}
