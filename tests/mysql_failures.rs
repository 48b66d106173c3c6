//! MariaDB failures and formats: a killed and a frozen replica, a pt-heartbeat
//! table read in UTC and in local-time mode, and a missing grant named in the
//! error.

mod support;

use rpo_lab::MariaLabSpec;
use std::time::{Duration, Instant};
use support::maria::{self, MyLab};
use support::*;

const LAG: &str = "rpo_replication_lag_seconds";

fn pair_ab() -> MariaLabSpec {
    MariaLabSpec::new().primary("a").replica("b", &["a"])
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_replica_goes_down_and_comes_back() {
    let lab = MyLab::start(pair_ab()).await;
    let exporter = Exporter::start(&lab.config()).await;
    let pair = lab.pair("a", "b");
    let b = lab.node_labels("b");
    wait_for_pair(&exporter, &pair).await;
    lab.db.node("b").kill().unwrap();
    let killed = Instant::now();
    let ok = wait_for(Duration::from_secs(2), || async {
        exporter.scrape().await.get("rpo_node_up", &b) == Some(0.0)
    })
    .await;
    assert!(ok, "killed replica not down within two intervals; log:\n{}", exporter.log());
    println!("mariadb killed replica: down after {:.2} s", killed.elapsed().as_secs_f64());
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(4) {
        let m = exporter.scrape().await;
        assert_eq!(m.get(LAG, &pair), None, "no lag for a dead replica");
        assert_eq!(m.get("rpo_node_up", &lab.node_labels("a")), Some(1.0));
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    lab.db.node("b").start().unwrap();
    let ok =
        wait_for(Duration::from_secs(20), || async { exporter.scrape().await.get(LAG, &pair).is_some() })
            .await;
    assert!(ok, "replica did not come back; log:\n{}", exporter.log());
}

#[tokio::test(flavor = "multi_thread")]
async fn frozen_replica_keeps_scrapes_fast() {
    let lab = MyLab::start(pair_ab()).await;
    let exporter = Exporter::start(&lab.config()).await;
    let pair = lab.pair("a", "b");
    let b = lab.node_labels("b");
    let read_age = with(b.clone(), &[("collector", "heartbeat_read")]);
    wait_for_pair(&exporter, &pair).await;
    lab.db.node("b").freeze().unwrap();
    let frozen = Instant::now();
    let (mut slowest, mut down_after, mut age) = (0f64, None, 0f64);
    while frozen.elapsed() < Duration::from_secs(6) {
        let t = Instant::now();
        let m = exporter.scrape().await;
        slowest = slowest.max(t.elapsed().as_secs_f64());
        if m.get("rpo_node_up", &b) == Some(0.0) {
            down_after.get_or_insert(frozen.elapsed().as_secs_f64());
        }
        if down_after.is_some() {
            assert_eq!(m.get(LAG, &pair), None, "no lag for a frozen replica");
        }
        age = m.get("rpo_measurement_age_seconds", &read_age).unwrap();
        // Polled often, so the first scrape that reads it down follows the change closely.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let down_after = down_after.expect("frozen replica never reported down");
    println!(
        "mariadb frozen replica: slowest scrape {:.1} ms, down after {down_after:.2} s, read age {age:.2} s",
        slowest * 1e3
    );
    assert!(slowest < 1.0, "a scrape took {slowest} s");
    assert!(down_after <= 2.3, "down after {down_after} s, want within interval + timeout (1.75 s) + 0.55 s of polling and scheduling");
    assert!(age >= 4.0);
    lab.db.node("b").thaw().unwrap();
    let ok =
        wait_for(Duration::from_secs(15), || async { exporter.scrape().await.get(LAG, &pair).is_some() })
            .await;
    assert!(ok, "thawed replica did not come back; log:\n{}", exporter.log());
}

/// Writes pt-heartbeat rows on `a` every second, as `pt-heartbeat --update` does:
/// `ts` is the writer's time as a string, in UTC (`--utc`) or local time.
async fn pt_heartbeat_writer(
    lab: &MyLab,
    table: &str,
    time_fn: &'static str,
    stop: tokio::sync::watch::Receiver<bool>,
) {
    let a = lab.db.node("a");
    let server_id = a.server_id();
    let update = format!(
        "UPDATE {table} SET ts = DATE_FORMAT({time_fn}, '%Y-%m-%dT%H:%i:%s.%f') WHERE server_id = {server_id}"
    );
    while !*stop.borrow() {
        a.exec(&update).await.unwrap();
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn pt_heartbeat_tables_are_read_in_utc_and_local_time() {
    // pt-heartbeat's own table layout; grants to read it and nothing to write.
    let grants = format!(
        "CREATE DATABASE IF NOT EXISTS percona;
         CREATE TABLE IF NOT EXISTS percona.heartbeat_utc (
           ts varchar(26) NOT NULL, server_id int unsigned NOT NULL PRIMARY KEY,
           file varchar(255) DEFAULT NULL, position bigint unsigned DEFAULT NULL,
           relay_master_log_file varchar(255) DEFAULT NULL, exec_master_log_pos bigint unsigned DEFAULT NULL);
         CREATE TABLE IF NOT EXISTS percona.heartbeat_local LIKE percona.heartbeat_utc;
         GRANT SELECT ON percona.* TO '{ROLE}'@'127.0.0.1';
         GRANT SLAVE MONITOR ON *.* TO '{ROLE}'@'127.0.0.1'"
    );
    let lab = MyLab::start_with_sql(pair_ab(), &grants).await;
    // Local time five and a half hours from UTC, on both servers, so that
    // reading the wrong way cannot pass.
    for node in ["a", "b"] {
        lab.db.node(node).exec("SET GLOBAL time_zone = '+05:30'").await.unwrap();
    }
    let a = lab.db.node("a");
    let sid = a.server_id();
    a.exec(&format!(
        "INSERT INTO percona.heartbeat_utc (ts, server_id) VALUES (DATE_FORMAT(UTC_TIMESTAMP(6), '%Y-%m-%dT%H:%i:%s.%f'), {sid});
         INSERT INTO percona.heartbeat_local (ts, server_id) VALUES (DATE_FORMAT(NOW(6), '%Y-%m-%dT%H:%i:%s.%f'), {sid});"
    ))
    .await
    .unwrap();
    let (tx, rx) = tokio::sync::watch::channel(false);
    let utc_writer = pt_heartbeat_writer(&lab, "percona.heartbeat_utc", "UTC_TIMESTAMP(6)", rx.clone());
    let local_writer = pt_heartbeat_writer(&lab, "percona.heartbeat_local", "NOW(6)", rx);

    let config = format!(
        "clusters:\n{}{}{}",
        lab.cluster_yaml(
            "pt-utc",
            "single-writer",
            ", format: pt-heartbeat, utc: true, table: percona.heartbeat_utc"
        ),
        lab.cluster_yaml(
            "pt-local",
            "single-writer",
            ", format: pt-heartbeat, table: percona.heartbeat_local"
        ),
        // The local-time table read as if it were UTC: 5.5 h in the future.
        lab.cluster_yaml(
            "pt-wrong",
            "single-writer",
            ", format: pt-heartbeat, utc: true, table: percona.heartbeat_local"
        ),
    );
    let check = async {
        let exporter = Exporter::start(&config).await;
        let (utc, local, wrong) = (
            lab.pair_in("pt-utc", "a", "b"),
            lab.pair_in("pt-local", "a", "b"),
            lab.pair_in("pt-wrong", "a", "b"),
        );
        let ok = wait_for(Duration::from_secs(15), || async {
            let m = exporter.scrape().await;
            m.get(LAG, &utc).is_some() && m.get(LAG, &local).is_some()
        })
        .await;
        assert!(ok, "pt-heartbeat pairs missing; log:\n{}", exporter.log());
        let start = Instant::now();
        let mut max_exposure = 0f64;
        while start.elapsed() < Duration::from_secs(5) {
            let m = exporter.scrape().await;
            for pair in [&utc, &local] {
                let exposure = m.get("rpo_data_loss_exposure_seconds", pair).unwrap();
                let lag = m.get(LAG, pair).unwrap();
                // Exposure is aged to the scrape: up to an interval on top of its reading.
                assert!(exposure < 2.5 && lag < 0.5, "{pair:?}: lag {lag} exposure {exposure}");
                max_exposure = max_exposure.max(exposure);
            }
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
        let m = exporter.scrape().await;
        assert_eq!(
            m.get("rpo_heartbeat_row_status", &with(wrong.clone(), &[("status", "future_timestamp")])),
            Some(1.0)
        );
        assert_eq!(m.get(LAG, &wrong), None);
        // Monitoring only: nothing written by the exporter.
        assert!(m.find("rpo_heartbeat_writes_total", &[]).is_empty());
        println!("pt-heartbeat UTC and local-time tables: max exposure {max_exposure:.3} s; wrong mode reads future_timestamp");
        tx.send(true).unwrap();
    };
    tokio::join!(utc_writer, local_writer, check);
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_monitor_grant_is_named() {
    // The heartbeat grants only: SHOW ALL SLAVES STATUS needs SLAVE MONITOR.
    let sql = maria::schema_sql();
    let without_monitor: String =
        sql.lines().filter(|l| !l.contains("SLAVE MONITOR")).collect::<Vec<_>>().join("\n");
    let lab = MyLab::start_with_sql(pair_ab(), &without_monitor).await;
    let exporter = Exporter::start(&lab.config()).await;
    // Heartbeats still measure: a missing monitor grant costs only the native signals.
    wait_for_pair(&exporter, &lab.pair("a", "b")).await;
    let errors = with(lab.node_labels("b"), &[("collector", "replication"), ("reason", "permission")]);
    let ok = wait_for(Duration::from_secs(10), || async {
        exporter.scrape().await.get("rpo_collector_errors_total", &errors).is_some_and(|n| n >= 1.0)
    })
    .await;
    assert!(ok, "no permission error; log:\n{}", exporter.log());
    let log = exporter.log();
    assert!(log.contains(&format!("grant it with: GRANT SLAVE MONITOR ON *.* TO '{ROLE}'@'%'")), "{log}");
    assert!(!log.contains(PASSWORD));
}
