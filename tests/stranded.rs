//! A replica left behind by a failover: primary A, replicas B and C; A dies, B is
//! promoted, C still follows the dead A and never shows B's heartbeats.
//!
//! Once per cluster, the exporter writes B's heartbeats and reads C: C has a
//! B → C pair (row status `missing`) whose lag grows from B's first heartbeat and
//! never vanishes while C answers — on PostgreSQL and MariaDB, across a 300 ms
//! round trip. In sidecar mode C's own exporter cannot know B: its lag from the
//! dead A keeps growing, and RPOReplicationStreamDown (C's receiver is not
//! streaming) holds for C in a Prometheus that scrapes only the survivors.

mod support;

use rpo_lab::{MariaLabSpec, PgLabSpec, Prometheus, PrometheusOptions};
use std::time::{Duration, Instant};
use support::maria::MyLab;
use support::*;

const LAG: &str = "rpo_replication_lag_seconds";
const EXPOSURE: &str = "rpo_data_loss_exposure_seconds";

/// After the failover: the new writer's pair on the stranded replica appears as
/// `missing` and its lag grows one for one for `secs` seconds, never absent.
async fn stranded_pair_grows(
    what: &str,
    exporter: &Exporter,
    pair: &[(&'static str, String)],
    old_pair: &[(&'static str, String)],
    replica: &[(&'static str, String)],
    failed_at: Instant,
    secs: u64,
) {
    let missing = with(pair.to_vec(), &[("status", "missing")]);
    let ok = wait_for(Duration::from_secs(20), || async {
        let m = exporter.scrape().await;
        m.get("rpo_heartbeat_row_status", &missing) == Some(1.0) && m.get(LAG, pair).is_some()
    })
    .await;
    assert!(ok, "{what}: no missing-row pair {pair:?}; log:\n{}", exporter.log());
    let appeared = failed_at.elapsed().as_secs_f64();
    let read_age = with(replica.to_vec(), &[("collector", "heartbeat_read")]);
    let start = Instant::now();
    let (mut first, mut last) = (None, (0.0, 0.0));
    while start.elapsed() < Duration::from_secs(secs) {
        let m = exporter.scrape().await;
        assert_eq!(m.get("rpo_node_up", replica), Some(1.0), "{what}: stranded replica down");
        let lag =
            m.get(LAG, pair).unwrap_or_else(|| panic!("{what}: the pair vanished; log:\n{}", exporter.log()));
        let exposure = m.get(EXPOSURE, pair).expect("exposure");
        let age = m.get("rpo_measurement_age_seconds", &read_age).unwrap();
        assert!(exposure >= lag, "{what}: exposure {exposure} < lag {lag}");
        assert!(m.get(LAG, old_pair).is_none(), "{what}: the dead primary's pair still counts");
        let at = start.elapsed().as_secs_f64();
        first.get_or_insert((at, lag + age));
        last = (at, lag + age);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let (t0, l0) = first.unwrap();
    let (t1, l1) = last;
    println!(
        "{what}: missing-row pair {appeared:.2} s after the failover; lag now {l0:.3} s → {l1:.3} s over {:.2} s",
        t1 - t0
    );
    assert!(((l1 - l0) - (t1 - t0)).abs() <= 1.0, "{what}: lag grew {} in {} s", l1 - l0, t1 - t0);
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_replica_stranded_by_a_failover() {
    let lab = Lab::start(PgLabSpec::new().primary("p").replica("r1", "p").replica("r2", "p")).await;
    let names = ["p", "r1", "r2"];
    let ports: Vec<(&str, u16)> = names.iter().map(|n| (*n, lab.pg.node(n).port())).collect();
    let wan = Wan::start(&ports, FAR).await;
    let nodes: String = names.iter().map(|n| lab.node_yaml_at(n, wan.port(n))).collect();
    let exporter = Exporter::start(&format!(
        "clusters:\n  - name: lab\n    rpo: 30s\n    rto: 5m\n    heartbeat: {{ create_table: false }}\n    nodes:\n{nodes}"
    ))
    .await;
    wait_for_pair(&exporter, &lab.pair("p", "r2")).await;
    lab.pg.node("p").stop().unwrap();
    lab.pg.node("r1").promote().await.unwrap();
    let failed_at = Instant::now();
    stranded_pair_grows(
        "postgres",
        &exporter,
        &lab.pair("r1", "r2"),
        &lab.pair("p", "r2"),
        &lab.node_labels("r2"),
        failed_at,
        8,
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_replica_stranded_by_a_failover() {
    let lab = MyLab::start(MariaLabSpec::new().primary("a").replica("b", &["a"]).replica("c", &["a"])).await;
    let names = ["a", "b", "c"];
    let ports: Vec<(&str, u16)> = names.iter().map(|n| (*n, lab.db.node(n).port())).collect();
    let wan = Wan::start(&ports, FAR).await;
    let nodes: String = names.iter().map(|n| lab.node_yaml_at(n, wan.port(n))).collect();
    let exporter = Exporter::start(&format!(
        "clusters:\n  - name: maria\n    rpo: 30s\n    rto: 5m\n    heartbeat: {{ create_table: false }}\n    nodes:\n{nodes}"
    ))
    .await;
    wait_for_pair(&exporter, &lab.pair("a", "c")).await;
    lab.db.node("a").stop().unwrap();
    lab.db.node("b").exec("STOP SLAVE; SET GLOBAL read_only = OFF").await.unwrap();
    let failed_at = Instant::now();
    stranded_pair_grows(
        "mariadb",
        &exporter,
        &lab.pair("b", "c"),
        &lab.pair("a", "c"),
        &lab.node_labels("c"),
        failed_at,
        8,
    )
    .await;
}

fn sidecar(cluster: &str, node_yaml: &str) -> String {
    format!(
        "clusters:\n  - name: {cluster}\n    rpo: 30s\n    rto: 5m\n    heartbeat: {{ create_table: false }}\n    nodes:\n{node_yaml}"
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn sidecars_show_a_stranded_replica_through_its_alert() {
    let pg = Lab::start(PgLabSpec::new().primary("p").replica("r1", "p").replica("r2", "p")).await;
    let my = MyLab::start(MariaLabSpec::new().primary("a").replica("b", &["a"]).replica("c", &["a"])).await;
    let p_side = Exporter::start(&sidecar("lab", &pg.node_yaml("p"))).await;
    let r1_side = Exporter::start(&sidecar("lab", &pg.node_yaml("r1"))).await;
    let r2_side = Exporter::start(&sidecar("lab", &pg.node_yaml("r2"))).await;
    let a_side = Exporter::start(&sidecar("maria", &my.node_yaml("a"))).await;
    let b_side = Exporter::start(&sidecar("maria", &my.node_yaml("b"))).await;
    let c_side = Exporter::start(&sidecar("maria", &my.node_yaml("c"))).await;
    wait_for_pair(&r2_side, &pg.pair("p", "r2")).await;
    wait_for_pair(&c_side, &my.pair("a", "c")).await;

    let (files, expr) = shipped_alert("RPOReplicationStreamDown");
    let targets: Vec<String> =
        [&r1_side, &r2_side, &b_side, &c_side].iter().map(|e| e.addr.clone()).collect();
    let mut options = PrometheusOptions::new(&targets)
        .scrape_interval(Duration::from_secs(1))
        .evaluation_interval(Duration::from_secs(1));
    for file in files {
        options = options.rule_file(file);
    }
    let prom = Prometheus::start_with(&options).await.unwrap();
    prom.wait_targets_up(Duration::from_secs(20)).await.unwrap();
    // Before the failover the alert's expression holds for nobody.
    let quiet = prom.query(&expr).await.unwrap();
    assert_eq!(quiet.as_array().map(Vec::len), Some(0), "{quiet}");

    // The primaries die with their sidecars; B takes over; C still follows A.
    drop(p_side);
    drop(a_side);
    pg.pg.node("p").stop().unwrap();
    pg.pg.node("r1").promote().await.unwrap();
    my.db.node("a").stop().unwrap();
    my.db.node("b").exec("STOP SLAVE; SET GLOBAL read_only = OFF").await.unwrap();
    let failed_at = Instant::now();

    // Exactly the stranded replicas. (The new MariaDB primary's stopped channel can
    // show for a scrape before its writable role does; the alert's `for: 2m` covers
    // that.)
    let held = prom
        .wait_for(&expr, Duration::from_secs(30), |r| {
            let mut nodes: Vec<&str> =
                r.as_array().into_iter().flatten().filter_map(|s| s["metric"]["node"].as_str()).collect();
            nodes.sort();
            nodes == ["c", "r2"]
        })
        .await
        .unwrap_or_else(|e| panic!("RPOReplicationStreamDown never held for r2 and c: {e:#}\n{expr}"));
    println!(
        "sidecars: RPOReplicationStreamDown holds for the stranded replicas {:.2} s after the failover: {held}",
        failed_at.elapsed().as_secs_f64()
    );
    for series in held.as_array().unwrap() {
        let node = series["metric"]["node"].as_str().unwrap();
        assert!(["r2", "c"].contains(&node), "the alert holds for {node}, a survivor that streams: {held}");
    }
    // Each stranded replica's own sidecar keeps a growing lag from the dead primary: the
    // lag now (the last read's lag plus that read's age) grows one for one with time.
    for (side, pair, node) in [(&r2_side, pg.pair("p", "r2"), "r2"), (&c_side, my.pair("a", "c"), "c")] {
        let read_age = [("collector", "heartbeat_read".to_owned()), ("node", node.to_owned())];
        let lag_now = || async {
            let m = side.scrape().await;
            let lag = m.get(LAG, &pair).expect("lag from the dead primary");
            (
                lag + m.get("rpo_measurement_age_seconds", &read_age).expect("age of the last read"),
                Instant::now(),
            )
        };
        let (before, t0) = lag_now().await;
        tokio::time::sleep(Duration::from_secs(3)).await;
        let (after, t1) = lag_now().await;
        let elapsed = (t1 - t0).as_secs_f64();
        assert!(
            (after - before - elapsed).abs() <= 0.5,
            "{pair:?}: lag now {before:.3} → {after:.3} s over {elapsed:.3} s"
        );
    }
}
