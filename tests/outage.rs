//! Outage isolation. A region that goes silent (its nodes black-holed) cannot
//! delay another node's new session by more than one connect timeout; and a step
//! that stalls (a native-signal query waiting on a lock, a heartbeat write
//! waiting on a row lock) hides only its own readings: the node stays up on its
//! session and the lag it just read stays — on PostgreSQL and MariaDB.

mod support;

use rpo_lab::MariaLabSpec;
use std::time::{Duration, Instant};
use support::maria::MyLab;
use support::*;

const LAG: &str = "rpo_replication_lag_seconds";
const CONNECT_TIMEOUT: f64 = 5.0;
const INTERVAL: f64 = 1.0;
const BLACK_HOLED: usize = 10;

fn metric(m: &Metrics, name: &str, node: &[(&'static str, String)]) -> f64 {
    m.get(name, node).unwrap_or(0.0)
}

#[tokio::test(flavor = "multi_thread")]
async fn a_silent_region_delays_no_healthy_session() {
    let pg = Lab::start(spec_primary_replica()).await;
    let my = MyLab::start(MariaLabSpec::new().primary("a")).await;
    let healthy = Wan::start(&[("p", pg.pg.node("p").port()), ("a", my.db.node("a").port())], FAR).await;
    // Ten nodes per engine in a region that went silent: connections are taken
    // and never answered.
    let mut silent = Vec::new();
    let (mut pg_nodes, mut my_nodes) =
        (pg.node_yaml_at("p", healthy.port("p")), my.node_yaml_at("a", healthy.port("a")));
    for i in 0..BLACK_HOLED {
        for (engine, port) in [("pg", pg.pg.node("p").port()), ("my", my.db.node("a").port())] {
            let proxy = rpo_lab::Proxy::start(port).await.unwrap();
            proxy.set_blackhole(true);
            let entry = if engine == "pg" {
                pg.node_yaml_at("p", proxy.port())
            } else {
                my.node_yaml_at("a", proxy.port())
            };
            let entry = entry
                .replacen("name: p\n", &format!("name: pg-silent-{i}\n"), 1)
                .replacen("name: a\n", &format!("name: my-silent-{i}\n"), 1)
                .replacen("region: us-east-1", "region: ap-south-1", 1);
            if engine == "pg" {
                pg_nodes.push_str(&entry);
            } else {
                my_nodes.push_str(&entry);
            }
            silent.push(proxy);
        }
    }
    let config = format!(
        "clusters:\n  - name: lab\n    rpo: 30s\n    rto: 5m\n    heartbeat: {{ create_table: false }}\n    nodes:\n{pg_nodes}  - name: maria\n    rpo: 30s\n    rto: 5m\n    heartbeat: {{ create_table: false }}\n    nodes:\n{my_nodes}"
    );
    let exporter = Exporter::start(&config).await;
    let (p, a) = (pg.node_labels("p"), my.node_labels("a"));
    // Every silent node has timed out at least once: they all hold, or wait for,
    // a turn to connect from now on.
    let timed_out = |m: &Metrics| {
        m.find("rpo_collector_errors_total", &[("collector", "role".into()), ("reason", "timeout".into())])
            .len()
    };
    let ok = wait_for(Duration::from_secs(30), || async {
        let m = exporter.scrape().await;
        timed_out(&m) >= 2 * BLACK_HOLED
            && m.get("rpo_node_up", &p) == Some(1.0)
            && m.get("rpo_node_up", &a) == Some(1.0)
    })
    .await;
    assert!(ok, "silent nodes never timed out, or healthy ones never came up; log:\n{}", exporter.log());

    // Cut the healthy nodes' sessions.
    healthy.proxy("p").reset();
    healthy.proxy("a").reset();
    let cut = Instant::now();
    let back = |node: Vec<(&'static str, String)>| {
        let exporter = &exporter;
        async move {
            let ok = wait_for(Duration::from_secs(30), || async {
                let m = exporter.scrape().await;
                let age = with(node.clone(), &[("collector", "heartbeat_read")]);
                metric(&m, "rpo_node_sessions_opened_total", &node) == 2.0
                    && m.get("rpo_node_up", &node) == Some(1.0)
                    && m.get("rpo_measurement_age_seconds", &age)
                        .is_some_and(|a| a < cut.elapsed().as_secs_f64())
            })
            .await;
            assert!(ok, "{node:?} never came back; log:\n{}", exporter.log());
            cut.elapsed().as_secs_f64()
        }
    };
    let (pg_back, my_back) = tokio::join!(back(p.clone()), back(a.clone()));
    println!(
        "{} silent nodes: after a cut, postgres back in {pg_back:.2} s, mariadb back in {my_back:.2} s (bound: connect timeout + interval = {} s)",
        2 * BLACK_HOLED,
        CONNECT_TIMEOUT + INTERVAL
    );
    for took in [pg_back, my_back] {
        // The bound, plus the scrape poll and a heartbeat's round trip.
        assert!(took <= CONNECT_TIMEOUT + INTERVAL + 0.5, "a healthy node took {took:.2} s to come back");
    }
    drop(silent);
}

/// Holds for `secs` seconds: the node stays up on its one session, `stalled`'s
/// collector fails with a timeout while `working` ones succeed, and the pair
/// keeps its lag series.
async fn only_its_own_readings(
    what: &str,
    exporter: &Exporter,
    node: &[(&'static str, String)],
    stalled: &str,
    working: &[&str],
    pair: &[(&'static str, String)],
    secs: u64,
) {
    let col = |c: &str| with(node.to_vec(), &[("collector", c)]);
    let errors = with(node.to_vec(), &[("collector", stalled), ("reason", "timeout")]);
    let ok = wait_for(Duration::from_secs(10), || async {
        let m = exporter.scrape().await;
        metric(&m, "rpo_collector_errors_total", &errors) >= 1.0
            && m.get("rpo_collector_success", &col(stalled)) == Some(0.0)
    })
    .await;
    assert!(ok, "{what}: the {stalled} step never timed out; log:\n{}", exporter.log());
    let start = Instant::now();
    let mut scrapes = 0;
    while start.elapsed() < Duration::from_secs(secs) {
        let m = exporter.scrape().await;
        assert_eq!(
            m.get("rpo_node_up", node),
            Some(1.0),
            "{what}: node marked down; log:\n{}",
            exporter.log()
        );
        assert_eq!(metric(&m, "rpo_node_sessions_opened_total", node), 1.0, "{what}: reconnected");
        assert!(m.get(LAG, pair).is_some(), "{what}: lag hidden; log:\n{}", exporter.log());
        for c in working {
            assert_eq!(
                m.get("rpo_collector_success", &col(c)),
                Some(1.0),
                "{what}: {c} failed too; log:\n{}",
                exporter.log()
            );
        }
        assert_eq!(
            m.get("rpo_collector_success", &col(stalled)),
            Some(0.0),
            "{what}: the stall ended early; log:\n{}",
            exporter.log()
        );
        scrapes += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let m = exporter.scrape().await;
    let n = metric(&m, "rpo_collector_errors_total", &errors);
    println!("{what}: {n} {stalled} timeouts over {secs} s; up, one session and the lag series in all {scrapes} scrapes");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_stalled_step_hides_only_its_own_readings() {
    let labs = TwoLabs::start(FAR).await;
    let (pg, my) = (&labs.pg, &labs.my);
    let config = labs.config("30s", "");
    let exporter = Exporter::start(&config).await;
    wait_for_pair(&exporter, &pg.pair("p", "r1")).await;
    wait_for_pair(&exporter, &my.pair("a", "b")).await;

    // PostgreSQL replica: its WAL-receiver view locked on the primary, a lock
    // that replay takes on the replica, so the native query there waits.
    let p = pg.pg.node("p").client().await.unwrap();
    p.batch_execute("BEGIN; LOCK TABLE pg_catalog.pg_stat_wal_receiver IN ACCESS EXCLUSIVE MODE")
        .await
        .unwrap();
    only_its_own_readings(
        "postgres replica, native query waiting on a lock",
        &exporter,
        &pg.node_labels("r1"),
        "replication",
        &["role", "heartbeat_read"],
        &pg.pair("p", "r1"),
        6,
    )
    .await;
    p.batch_execute("COMMIT").await.unwrap();
    for node in [pg.node_labels("p"), pg.node_labels("r1")] {
        let native = with(node, &[("collector", "replication")]);
        let ok = wait_for(Duration::from_secs(5), || async {
            exporter.scrape().await.get("rpo_collector_success", &native) == Some(1.0)
        })
        .await;
        assert!(ok, "native signals did not recover after the lock; log:\n{}", exporter.log());
    }

    // Primaries: their heartbeat row locked by another transaction, so the write
    // waits. The pair's lag grows, as it should: no heartbeat is written.
    let p = pg.pg.node("p").client().await.unwrap();
    p.batch_execute("BEGIN; SELECT * FROM rpo.heartbeat WHERE node = 'p' FOR UPDATE").await.unwrap();
    let mut a = my.db.node("a").conn().await.unwrap();
    use mysql_async::prelude::Queryable;
    a.query_drop("BEGIN").await.unwrap();
    a.query_drop("SELECT * FROM rpo.heartbeat WHERE node = 'a' FOR UPDATE").await.unwrap();
    let (p_node, p_pair, a_node, a_pair) =
        (pg.node_labels("p"), pg.pair("p", "r1"), my.node_labels("a"), my.pair("a", "b"));
    let all = ["role", "heartbeat_read", "replication"];
    tokio::join!(
        only_its_own_readings(
            "postgres primary, heartbeat write waiting on a row lock",
            &exporter,
            &p_node,
            "heartbeat_write",
            &all,
            &p_pair,
            6,
        ),
        only_its_own_readings(
            "mariadb primary, heartbeat write waiting on a row lock",
            &exporter,
            &a_node,
            "heartbeat_write",
            &all,
            &a_pair,
            6,
        ),
    );
    p.batch_execute("COMMIT").await.unwrap();
    a.query_drop("COMMIT").await.unwrap();
    for (node, pair) in [(pg.node_labels("p"), pg.pair("p", "r1")), (my.node_labels("a"), my.pair("a", "b"))]
    {
        let write = with(node, &[("collector", "heartbeat_write")]);
        let ok = wait_for(Duration::from_secs(5), || async {
            let m = exporter.scrape().await;
            m.get("rpo_collector_success", &write) == Some(1.0) && m.get(LAG, &pair).is_some_and(|l| l < 0.5)
        })
        .await;
        assert!(ok, "{pair:?}: heartbeats did not resume; log:\n{}", exporter.log());
    }
}
