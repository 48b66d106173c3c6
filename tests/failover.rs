//! Topology: the exporter follows a failover by itself (heartbeats move to the
//! new writable node, the role change is counted, the new source's lag series
//! appear, the old primary's stale row retires), and a second writable node in
//! a single-writer cluster reads as split brain — on PostgreSQL and MariaDB.

mod support;

use rpo_lab::{MariaLabSpec, PgLabSpec, Prometheus, PrometheusOptions};
use std::time::{Duration, Instant};
use support::maria::MyLab;
use support::*;

const LAG: &str = "rpo_replication_lag_seconds";

/// Waits for `cond` on a scrape and returns how long it took; panics with the log.
async fn time_until(
    exporter: &Exporter,
    what: &str,
    limit: Duration,
    cond: impl Fn(&Metrics) -> bool,
) -> f64 {
    let start = Instant::now();
    let ok = wait_for(limit, || async { cond(&exporter.scrape().await) }).await;
    assert!(ok, "{what}: not within {limit:?}; log:\n{}", exporter.log());
    start.elapsed().as_secs_f64()
}

fn writes(m: &Metrics, labels: &[(&'static str, String)]) -> f64 {
    m.get("rpo_heartbeat_writes_total", labels).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_failover_is_followed_without_restart() {
    let (lab, exporter) =
        lab_and_exporter(PgLabSpec::new().primary("p").replica("r1", "p").replica("r2", "r1"), "1s").await;
    wait_for_pair(&exporter, &lab.pair("p", "r2")).await;
    let r1 = lab.node_labels("r1");
    let cluster = labels(&[("db_cluster", "lab")]);
    // A role change needs a role before it: r1 probed as a replica first.
    time_until(&exporter, "r1 read-only", Duration::from_secs(5), |m| {
        m.get("rpo_node_writable", &r1) == Some(0.0)
    })
    .await;

    lab.pg.node("p").stop().unwrap();
    lab.pg.node("r1").promote().await.unwrap();
    let promoted = Instant::now();
    let writable = time_until(&exporter, "r1 writable", Duration::from_secs(5), |m| {
        m.get("rpo_node_writable", &r1) == Some(1.0)
    })
    .await;
    let written =
        time_until(&exporter, "heartbeats on r1", Duration::from_secs(5), |m| writes(m, &r1) >= 1.0).await;
    let new_pair = time_until(&exporter, "r1 → r2 lag", Duration::from_secs(10), |m| {
        m.get(LAG, &lab.pair("r1", "r2")).is_some_and(|l| l < 0.5)
    })
    .await;
    println!(
        "postgres failover: r1 writable {writable:.2} s after pg_promote(), first heartbeat on r1 {:.2} s, r1 → r2 lag series {:.2} s",
        writable + written,
        promoted.elapsed().as_secs_f64().min(writable + written + new_pair)
    );
    assert!(writable + written <= 2.5, "heartbeats moved to r1 after {} s", writable + written);
    let m = exporter.scrape().await;
    assert_eq!(m.get("rpo_node_role_changes_total", &r1), Some(1.0));
    assert!(m.get("rpo_node_role_last_change_timestamp_seconds", &r1).is_some());
    // Until p's worker next ticks (within an interval of the stop, later on a loaded
    // machine) the exporter may still count the stopped p as writable: 2 for a
    // moment is what a failover shows (RPOSplitBrain waits 30 s). It must settle at 1.
    time_until(&exporter, "one writable node", Duration::from_secs(3), |m| {
        m.get("rpo_cluster_writable_nodes", &cluster) == Some(1.0)
    })
    .await;
    // The old primary's last row no longer measures anything, from r2's first read
    // after r1 is seen writable: within an interval.
    time_until(&exporter, "p's stale row retired", Duration::from_secs(3), |m| {
        m.get(LAG, &lab.pair("p", "r2")).is_none()
            && m.get("rpo_data_loss_exposure_seconds", &lab.pair("p", "r2")).is_none()
    })
    .await;
}

/// Starts Prometheus scraping the exporter with the shipped rules and returns
/// what the RPOSplitBrain alert's expression evaluates to once it holds.
async fn split_brain_through_prometheus(exporter: &Exporter) -> serde_json::Value {
    let (files, expr) = shipped_alert("RPOSplitBrain");
    let mut options = PrometheusOptions::new(std::slice::from_ref(&exporter.addr))
        .scrape_interval(Duration::from_secs(1))
        .evaluation_interval(Duration::from_secs(1));
    for file in files {
        options = options.rule_file(file);
    }
    let prom = Prometheus::start_with(&options).await.unwrap();
    prom.wait_for(&expr, Duration::from_secs(30), |r| r.as_array().is_some_and(|a| !a.is_empty()))
        .await
        .unwrap_or_else(|e| panic!("the split-brain alert's expression never held: {e:#}\n{expr}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_split_brain_is_seen() {
    let (lab, exporter) = lab_and_exporter(spec_primary_replica(), "1s").await;
    wait_for_pair(&exporter, &lab.pair("p", "r1")).await;
    // Promote the replica while the old primary still takes writes.
    lab.pg.node("r1").promote().await.unwrap();
    let cluster = labels(&[("db_cluster", "lab")]);
    let took = time_until(&exporter, "two writable nodes", Duration::from_secs(5), |m| {
        m.get("rpo_cluster_writable_nodes", &cluster) == Some(2.0)
    })
    .await;
    println!("postgres split brain: 2 writable nodes seen {took:.2} s after pg_promote()");
    let m = exporter.scrape().await;
    for node in ["p", "r1"] {
        assert_eq!(m.get("rpo_node_writable", &lab.node_labels(node)), Some(1.0));
        assert!(writes(&m, &lab.node_labels(node)) >= 1.0, "both write heartbeats: {node}");
    }
    let result = split_brain_through_prometheus(&exporter).await;
    assert_eq!(result[0]["metric"]["db_cluster"], "lab");
    assert_eq!(result[0]["value"][1], "2");
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_failover_and_split_brain() {
    let lab = MyLab::start(MariaLabSpec::new().primary("a").replica("b", &["a"]).replica("c", &["b"])).await;
    let exporter = Exporter::start(&lab.config()).await;
    wait_for_pair(&exporter, &lab.pair("a", "c")).await;
    let b = lab.node_labels("b");
    time_until(&exporter, "b read-only", Duration::from_secs(5), |m| {
        m.get("rpo_node_writable", &b) == Some(0.0)
    })
    .await;
    let cluster = labels(&[("db_cluster", "maria")]);

    // Split brain first: b takes writes while a still does.
    lab.db.node("b").exec("STOP SLAVE; SET GLOBAL read_only = OFF").await.unwrap();
    let took = time_until(&exporter, "two writable nodes", Duration::from_secs(5), |m| {
        m.get("rpo_cluster_writable_nodes", &cluster) == Some(2.0)
    })
    .await;
    println!("mariadb split brain: 2 writable nodes seen {took:.2} s after read_only=OFF");
    let result = split_brain_through_prometheus(&exporter).await;
    assert_eq!(result[0]["metric"]["db_cluster"], "maria");

    // Then the failover completes: the old primary goes away.
    lab.db.node("a").stop().unwrap();
    let written =
        time_until(&exporter, "heartbeats on b", Duration::from_secs(5), |m| writes(m, &b) >= 1.0).await;
    time_until(&exporter, "one writable node", Duration::from_secs(5), |m| {
        m.get("rpo_cluster_writable_nodes", &cluster) == Some(1.0)
    })
    .await;
    time_until(&exporter, "b → c lag", Duration::from_secs(10), |m| {
        m.get(LAG, &lab.pair("b", "c")).is_some_and(|l| l < 0.5)
    })
    .await;
    // c drops a's row at its first read after a is seen down: within an interval
    // (workers tick at different phases of it).
    time_until(&exporter, "a's stale row retired", Duration::from_secs(3), |m| {
        m.get(LAG, &lab.pair("a", "c")).is_none()
    })
    .await;
    let m = exporter.scrape().await;
    println!("mariadb failover: heartbeats on b within {written:.2} s");
    assert_eq!(m.get("rpo_node_role_changes_total", &b), Some(1.0));
}
