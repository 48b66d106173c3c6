//! Restarts and reloads in the middle of a fault, across a 300 ms round trip.
//!
//! A replica stalled for 20 s when the exporter restarts reads about 20 s of lag
//! from the new process's first reading, never the few seconds since the restart:
//! lag is never below `exposure − interval` when the write history does not
//! reach back to the first unseen heartbeat. A reload of an unchanged file does
//! nothing; one that changes a cluster's objectives keeps its workers, sessions
//! and history; one that changes a node's measurement settings restarts its
//! worker but keeps its history — on PostgreSQL and MariaDB.

mod support;

use rpo_lab::MariaLabSpec;
use std::time::{Duration, Instant};
use support::maria::MyLab;
use support::*;

const LAG: &str = "rpo_replication_lag_seconds";
const EXPOSURE: &str = "rpo_data_loss_exposure_seconds";
const INTERVAL: f64 = 1.0;

/// Reads the pair at its replica's next fresh reading and checks it against a
/// stall that began at `stalled`: lag now (reading plus its age) within an
/// interval of the stall, never below `exposure − interval` at the read.
async fn check_stall(
    what: &str,
    exporter: &Exporter,
    pair: &[(&'static str, String)],
    replica: &[(&'static str, String)],
    stalled: Instant,
) -> f64 {
    let read_age = with(replica.to_vec(), &[("collector", "heartbeat_read")]);
    let deadline = Instant::now() + Duration::from_secs(20);
    let reading = loop {
        let m = exporter.scrape().await;
        let reading =
            m.get(LAG, pair).zip(m.get(EXPOSURE, pair)).zip(m.get("rpo_measurement_age_seconds", &read_age));
        if let Some(r) = reading {
            break r;
        }
        assert!(Instant::now() < deadline, "{what}: no reading of {pair:?}; log:\n{}", exporter.log());
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    let ((lag, exposure), age) = reading;
    let at = stalled.elapsed().as_secs_f64();
    let lag_now = lag + age;
    println!("{what}: stalled {at:.2} s: lag {lag:.3} s read {age:.3} s ago (now {lag_now:.3} s), exposure {exposure:.3} s");
    // Exposure ages from the read's midpoint, the read's age counts from its
    // answer: half a round trip (0.15 s) apart.
    assert!(lag >= exposure - age - INTERVAL - 0.2, "{what}: lag {lag} below exposure {exposure} − interval");
    assert!(lag_now >= at - 1.5 && lag_now <= at + 0.5, "{what}: lag now {lag_now}, stalled {at}");
    lag_now
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_restart_in_a_stall() {
    let lab = Lab::start(spec_primary_replica()).await;
    let wan = Wan::start(&[("p", lab.pg.node("p").port()), ("r1", lab.pg.node("r1").port())], FAR).await;
    let nodes = format!("{}{}", lab.node_yaml_at("p", wan.port("p")), lab.node_yaml_at("r1", wan.port("r1")));
    let config = format!("clusters:\n  - name: lab\n    rpo: 30s\n    rto: 5m\n    heartbeat: {{ create_table: false }}\n    nodes:\n{nodes}");
    let exporter = Exporter::start(&config).await;
    let pair = lab.pair("p", "r1");
    wait_for_pair(&exporter, &pair).await;
    lab.pg.node("r1").execute("SELECT pg_wal_replay_pause()").await.unwrap();
    let stalled = Instant::now();
    tokio::time::sleep(Duration::from_secs(20)).await;
    let exporter = exporter.restart().await;
    check_stall("postgres, restarted 20 s into a stall", &exporter, &pair, &lab.node_labels("r1"), stalled)
        .await;
    lab.pg.node("r1").execute("SELECT pg_wal_replay_resume()").await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_restart_in_a_stall() {
    let lab = MyLab::start(MariaLabSpec::new().primary("a").replica("b", &["a"])).await;
    let wan = Wan::start(&[("a", lab.db.node("a").port()), ("b", lab.db.node("b").port())], FAR).await;
    let nodes = format!("{}{}", lab.node_yaml_at("a", wan.port("a")), lab.node_yaml_at("b", wan.port("b")));
    let config = format!("clusters:\n  - name: maria\n    rpo: 30s\n    rto: 5m\n    heartbeat: {{ create_table: false }}\n    nodes:\n{nodes}");
    let exporter = Exporter::start(&config).await;
    let pair = lab.pair("a", "b");
    wait_for_pair(&exporter, &pair).await;
    lab.db.node("b").exec("STOP SLAVE SQL_THREAD").await.unwrap();
    let stalled = Instant::now();
    tokio::time::sleep(Duration::from_secs(20)).await;
    let exporter = exporter.restart().await;
    check_stall("mariadb, restarted 20 s into a stall", &exporter, &pair, &lab.node_labels("b"), stalled)
        .await;
    lab.db.node("b").exec("START SLAVE SQL_THREAD").await.unwrap();
}

fn sessions(m: &Metrics, node: &[(&'static str, String)]) -> f64 {
    m.get("rpo_node_sessions_opened_total", node).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn reloads_keep_what_they_do_not_change() {
    let labs = TwoLabs::start(FAR).await;
    let (pg, my) = (&labs.pg, &labs.my);
    let config = labs.config("30s", "");
    let exporter = Exporter::start(&config).await;
    let (pg_pair, my_pair) = (pg.pair("p", "r1"), my.pair("a", "b"));
    wait_for_pair(&exporter, &pg_pair).await;
    wait_for_pair(&exporter, &my_pair).await;
    let nodes = [pg.node_labels("p"), pg.node_labels("r1"), my.node_labels("a"), my.node_labels("b")];

    pg.pg.node("r1").execute("SELECT pg_wal_replay_pause()").await.unwrap();
    my.db.node("b").exec("STOP SLAVE SQL_THREAD").await.unwrap();
    let stalled = Instant::now();
    tokio::time::sleep(Duration::from_secs(6)).await;

    // The same file again: nothing at all happens.
    exporter.reload(&config).await;
    assert!(exporter.log().contains("Configuration unchanged"), "{}", exporter.log());
    // Objectives changed: every worker, session and history stays.
    exporter.reload(&labs.config("45s", "")).await;
    let m = exporter.scrape().await;
    assert_eq!(m.get("rpo_objective_seconds", &labels(&[("db_cluster", "lab")])), Some(45.0));
    for node in &nodes {
        assert_eq!(sessions(&m, node), 1.0, "{node:?}: a reload that changed only the rpo reconnected");
    }
    tokio::time::sleep(Duration::from_secs(2)).await;
    check_stall("postgres, after an rpo reload", &exporter, &pg_pair, &pg.node_labels("r1"), stalled).await;
    check_stall("mariadb, after an rpo reload", &exporter, &my_pair, &my.node_labels("b"), stalled).await;

    // A measurement setting changed: new workers and sessions, the history kept.
    exporter.reload(&labs.config("45s", ", timeout: 800ms")).await;
    let ok = wait_for(Duration::from_secs(15), || async {
        let m = exporter.scrape().await;
        nodes.iter().all(|n| sessions(&m, n) == 2.0 && m.get("rpo_node_up", n) == Some(1.0))
    })
    .await;
    assert!(ok, "workers did not reconnect once after a timeout change; log:\n{}", exporter.log());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let pg_lag =
        check_stall("postgres, after a timeout reload", &exporter, &pg_pair, &pg.node_labels("r1"), stalled)
            .await;
    let my_lag =
        check_stall("mariadb, after a timeout reload", &exporter, &my_pair, &my.node_labels("b"), stalled)
            .await;
    // With the history kept, lag is exact, not only bounded: within half an
    // interval of the stall (the first unseen heartbeat came within one).
    let at = stalled.elapsed().as_secs_f64();
    for lag in [pg_lag, my_lag] {
        assert!(lag <= at + 0.5 && lag >= at - INTERVAL - 0.5, "lag {lag}, stalled {at}");
    }
    pg.pg.node("r1").execute("SELECT pg_wal_replay_resume()").await.unwrap();
    my.db.node("b").exec("START SLAVE SQL_THREAD").await.unwrap();
}
