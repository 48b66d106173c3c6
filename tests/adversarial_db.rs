//! Adversarial suite, database side: a running exporter on real PostgreSQL and
//! MariaDB servers meets hostile or failing databases — a port that accepts and
//! never answers, a server that drops every connection after its first answer,
//! `max_connections` reached, the heartbeat table dropped and recreated, a replica
//! restarted every 2 s for 30 s — and a config file replaced mid-write. In every
//! case Prometheus's own scrape (a separate client, measured) stays under 1 s,
//! nothing panics, the fault is named in the log, the faulty node says down (or
//! its readings go absent) as documented, and every series measured before that
//! does not belong to the faulty node is still there.

mod support;

use rpo_lab::{MariaLabSpec, PgLabSpec};
use std::io::Write;
use std::time::{Duration, Instant};
use support::adversarial::*;
use support::maria::MyLab;
use support::*;

const LAG: &str = "rpo_replication_lag_seconds";

fn three_nodes() -> PgLabSpec {
    PgLabSpec::new().primary("p").replica("r1", "p").replica("r2", "p")
}

/// Runs `fault` while Prometheus scrapes every 200 ms; returns the scrapes after
/// checking each was fast and kept every series of `before` that `exempt` does
/// not excuse.
async fn during<F: std::future::Future<Output = ()>>(
    what: &str,
    exporter: &Exporter,
    before: &Metrics,
    exempt: impl Fn(&Sample) -> bool,
    fault: F,
) -> Scrapes {
    let scraper = Scraper::start(exporter, Duration::from_millis(200));
    fault.await;
    let scrapes = scraper.finish().await;
    let slowest = scrapes.assert_fast(what, exporter);
    for m in scrapes.metrics() {
        assert_kept(what, before, m, &exempt);
    }
    println!("{what}: {} scrapes during the fault, slowest {slowest:?}", scrapes.count());
    scrapes
}

/// Waits until `cond` holds on a scrape; panics with `what` and the log if not.
async fn until(exporter: &Exporter, secs: u64, what: &str, cond: impl Fn(&Metrics) -> bool) -> Duration {
    let start = Instant::now();
    let ok = wait_for(Duration::from_secs(secs), || async { cond(&exporter.scrape().await) }).await;
    assert!(ok, "{what} within {secs} s; log:\n{}", tail(exporter));
    start.elapsed()
}

#[tokio::test(flavor = "multi_thread")]
async fn silent_and_cut_databases_are_down_and_harm_nobody() {
    let pg = Lab::start(spec_primary_replica()).await;
    let my = MyLab::start(MariaLabSpec::new().primary("a").replica("b", &["a"])).await;
    let good = format!(
        "clusters:\n  - name: lab\n    rpo: 30s\n    rto: 5m\n    heartbeat: {{ create_table: false }}\n    nodes:\n{}{}\
         \x20 - name: maria\n    rpo: 30s\n    rto: 5m\n    heartbeat: {{ create_table: false }}\n    nodes:\n{}{}",
        pg.node_yaml("p"),
        pg.node_yaml("r1"),
        my.node_yaml("a"),
        my.node_yaml("b")
    );
    let exporter = Exporter::start(&good).await;
    wait_for_pair(&exporter, &pg.pair("p", "r1")).await;
    wait_for_pair(&exporter, &my.pair("a", "b")).await;
    let before = exporter.scrape().await;

    // Four hostile nodes join in a cluster of their own: each engine behind a port
    // that accepts and stays silent, and behind a relay that lets the real
    // server's first answer through and then closes.
    let (pg_silent, my_silent) = (SilentPeer::start().await, SilentPeer::start().await);
    let (pg_cut, my_cut) =
        (CutPeer::start(pg.pg.node("p").port()).await, CutPeer::start(my.db.node("a").port()).await);
    let rename = |entry: String, from: &str, to: &str| {
        entry.replacen(&format!("name: {from}\n"), &format!("name: {to}\n"), 1).replacen(
            "region: us-east-1",
            "region: ap-south-1",
            1,
        )
    };
    let hostile = format!(
        "  - name: hostile\n    rpo: 30s\n    rto: 5m\n    heartbeat: {{ create_table: false, connect_timeout: 2s }}\n    nodes:\n{}{}{}{}",
        rename(pg.node_yaml_at("p", pg_silent.port()), "p", "pg-silent"),
        rename(my.node_yaml_at("a", my_silent.port()), "a", "my-silent"),
        rename(pg.node_yaml_at("p", pg_cut.port()), "p", "pg-cut"),
        rename(my.node_yaml_at("a", my_cut.port()), "a", "my-cut"),
    );
    let node = |n: &str| labels(&[("db_cluster", "hostile"), ("node", n), ("node_region", "ap-south-1")]);
    let all = ["pg-silent", "my-silent", "pg-cut", "my-cut"];
    let started = Instant::now();
    during("silent and cut databases", &exporter, &before, volatile, async {
        exporter.reload(&format!("{good}{hostile}")).await;
        tokio::time::sleep(Duration::from_secs(12)).await;
    })
    .await;
    let m = exporter.scrape().await;
    for n in all {
        assert_eq!(m.get("rpo_node_up", &node(n)), Some(0.0), "{n} says down; log:\n{}", tail(&exporter));
        assert_eq!(m.get("rpo_node_writable", &node(n)), None, "{n}: writable is unknown, so absent");
    }
    assert!(m.find(LAG, &[("db_cluster", "hostile".into())]).is_empty(), "no lag from hostile nodes");
    for n in ["pg-silent", "my-silent"] {
        assert_logged(&exporter, &["Opening a session timed out", n]);
    }
    for n in ["pg-cut", "my-cut"] {
        assert_logged(&exporter, &["Measurement failed", n]);
    }
    let secs = started.elapsed().as_secs_f64();
    println!(
        "silent databases: {} and {} connections over {secs:.0} s, {} and {} still open; \
         cut after the first answer: {} and {} connections",
        pg_silent.accepted(),
        my_silent.accepted(),
        pg_silent.open(),
        my_silent.open(),
        pg_cut.accepted(),
        my_cut.accepted()
    );
    // One connection at a time per silent node (a timed-out one is closed), and
    // reconnects paced by the backoff, not a storm.
    assert!(pg_silent.open() <= 1 && my_silent.open() <= 1, "connections to a silent server pile up");
    assert!(pg_cut.accepted() <= 15 && my_cut.accepted() <= 15, "reconnect storm on a cutting server");
    assert_no_panic(&exporter);
}

#[tokio::test(flavor = "multi_thread")]
async fn max_connections_reached_on_a_real_postgres() {
    let (lab, exporter) = lab_and_exporter(three_nodes(), "1s").await;
    wait_for_pair(&exporter, &lab.pair("p", "r1")).await;
    wait_for_pair(&exporter, &lab.pair("p", "r2")).await;
    let before = exporter.scrape().await;
    let r2 = lab.pg.node("r2");
    // Other sessions take every slot of r2 (superusers may take the reserved ones
    // too); then the exporter's own session is ended, so it must connect again.
    let admin = r2.client().await.unwrap();
    let mut hogs = Vec::new();
    let refusal = loop {
        match r2.client().await {
            Ok(c) => hogs.push(c),
            Err(e) => break format!("{e:#}"),
        }
        assert!(hogs.len() < 200, "max_connections never reached");
    };
    println!("max_connections: {} other sessions hold r2's slots ({refusal})", hogs.len() + 1);
    admin
        .batch_execute(&format!(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = '{ROLE}'"
        ))
        .await
        .unwrap();
    let exempt =
        |s: &Sample| volatile(s) || of_node("r2")(s) || s.labels.get("standby").is_some_and(|v| v == "r2");
    during("max_connections reached", &exporter, &before, exempt, async {
        until(&exporter, 15, "r2 says down", |m| m.get("rpo_node_up", &lab.node_labels("r2")) == Some(0.0))
            .await;
        tokio::time::sleep(Duration::from_secs(5)).await;
    })
    .await;
    let m = exporter.scrape().await;
    assert_eq!(m.get(LAG, &lab.pair("p", "r2")), None, "r2's lag is unknown, so absent");
    // The server's own words, at debug level after the first failure (which here
    // is the terminated session): SQLSTATE 53300, too many connections.
    assert_logged(&exporter, &["Measurement failed", "r2", "53300"]);
    drop(hogs);
    drop(admin);
    let back = until(&exporter, 20, "r2 measured again once slots are free", |m| {
        m.get("rpo_node_up", &lab.node_labels("r2")) == Some(1.0)
            && m.get(LAG, &lab.pair("p", "r2")).is_some()
    })
    .await;
    println!("max_connections: r2 measured again {back:.1?} after the slots were freed");
    assert_kept("after max_connections", &before, &exporter.scrape().await, volatile);
    assert_no_panic(&exporter);
}

/// Drops the heartbeat table on the primary while the exporter runs; with
/// `create_table` the exporter makes it again, without it the test does.
async fn table_dropped_then_recreated(create_table: bool) {
    let lab = Lab::start(spec_primary_replica()).await;
    let p = lab.pg.node("p");
    if create_table {
        p.execute(&format!(
            "GRANT CREATE ON DATABASE postgres TO {ROLE}; GRANT CREATE ON SCHEMA rpo TO {ROLE}"
        ))
        .await
        .unwrap();
    }
    let exporter = Exporter::start(&lab.config_with("1s", create_table, "")).await;
    let pair = lab.pair("p", "r1");
    wait_for_pair(&exporter, &pair).await;
    let before = exporter.scrape().await;
    let what = format!("heartbeat table dropped (create_table: {create_table})");
    // The pair's readings go absent (unknown) while there is no table; the nodes
    // themselves stay up: a missing table is no outage.
    let of_pair = |s: &Sample| volatile(s) || s.labels.contains_key("source_node");
    p.execute("DROP TABLE rpo.heartbeat").await.unwrap();
    let dropped = Instant::now();
    let scrapes = during(&what, &exporter, &before, of_pair, async {
        if create_table {
            until(&exporter, 20, "the exporter recreates the table and measures again", |m| {
                m.get(LAG, &pair).is_some_and(|l| l < 1.0)
                    && exporter.log().matches("Created heartbeat table").count() >= 1
            })
            .await;
        } else {
            let missing =
                with(lab.node_labels("p"), &[("collector", "heartbeat_write"), ("reason", "missing_table")]);
            until(&exporter, 10, "the missing table is reported", |m| {
                m.get("rpo_collector_errors_total", &missing).is_some() && m.get(LAG, &pair).is_none()
            })
            .await;
            tokio::time::sleep(Duration::from_secs(2)).await;
            let schema = rpo_exporter::engine::schema_sql(
                "postgres",
                &"rpo.heartbeat".parse().unwrap(),
                ROLE,
                None,
                None,
            )
            .unwrap();
            lab.pg.run_sql_script("p", &schema).await.unwrap();
            until(&exporter, 15, "measured again once the table is back", |m| {
                m.get(LAG, &pair).is_some_and(|l| l < 1.0)
            })
            .await;
        }
    })
    .await;
    for m in scrapes.metrics() {
        for n in ["p", "r1"] {
            assert_eq!(m.get("rpo_node_up", &lab.node_labels(n)), Some(1.0), "{what}: {n} said down");
        }
        if let Some(l) = m.get(LAG, &pair) {
            assert!(l < 30.0, "{what}: lag {l}");
        }
    }
    if create_table {
        assert_logged(&exporter, &["Created heartbeat table"]);
    } else {
        assert_logged(
            &exporter,
            &["Measurement failed", "missing_table", "rpo-exporter schema postgres --table rpo.heartbeat"],
        );
    }
    println!("{what}: measured again {:.1?} after the drop", dropped.elapsed());
    assert_kept(&what, &before, &exporter.scrape().await, volatile);
    assert_no_panic(&exporter);
}

#[tokio::test(flavor = "multi_thread")]
async fn heartbeat_table_dropped_then_recreated_by_hand() {
    table_dropped_then_recreated(false).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn heartbeat_table_dropped_then_recreated_by_the_exporter() {
    table_dropped_then_recreated(true).await;
}

/// Stops and starts a server every 2 s (or as fast as it restarts) for 30 s;
/// returns how many restarts that made.
async fn restart_every_2s(restart: impl Fn() + Send + Sync) -> usize {
    let (start, mut restarts) = (Instant::now(), 0);
    while start.elapsed() < Duration::from_secs(30) {
        let cycle = Instant::now();
        tokio::task::block_in_place(&restart);
        restarts += 1;
        tokio::time::sleep(Duration::from_secs(2).saturating_sub(cycle.elapsed())).await;
    }
    restarts
}

#[tokio::test(flavor = "multi_thread")]
async fn a_replica_restarted_every_2s_for_30s() {
    let pg = Lab::start(three_nodes()).await;
    let my = MyLab::start(MariaLabSpec::new().primary("a").replica("b", &["a"]).replica("c", &["a"])).await;
    let config = format!("{}{}", pg.config("1s", ""), my.cluster_yaml("maria", "single-writer", ""));
    let exporter = Exporter::start(&config).await;
    for pair in [pg.pair("p", "r1"), pg.pair("p", "r2"), my.pair("a", "b"), my.pair("a", "c")] {
        wait_for_pair(&exporter, &pair).await;
    }
    let before = exporter.scrape().await;
    // r1 and b restart; r2 and c, beside them, must not notice.
    let restarted = |s: &Sample| {
        volatile(s)
            || (s.labels.get("db_cluster").is_some_and(|c| c == "lab") && of_node("r1")(s))
            || (s.labels.get("db_cluster").is_some_and(|c| c == "maria") && of_node("b")(s))
            || s.labels.get("standby").is_some_and(|v| v == "r1")
    };
    let (r1, b) = (pg.pg.node("r1"), my.db.node("b"));
    let mut restarts = (0, 0);
    let scrapes = during("replicas restarted every 2 s", &exporter, &before, restarted, async {
        restarts = tokio::join!(
            restart_every_2s(|| {
                r1.stop().unwrap();
                r1.start().unwrap();
            }),
            restart_every_2s(|| {
                b.stop().unwrap();
                b.start().unwrap();
            }),
        );
    })
    .await;
    let downs = |n: &[(&'static str, String)]| {
        scrapes.metrics().filter(|m| m.get("rpo_node_up", n) == Some(0.0)).count()
    };
    let (r1_down, b_down) = (downs(&pg.node_labels("r1")), downs(&my.node_labels("b")));
    let back = until(&exporter, 30, "r1 and b measured again after the restarts", |m| {
        m.get("rpo_node_up", &pg.node_labels("r1")) == Some(1.0)
            && m.get(LAG, &pg.pair("p", "r1")).is_some_and(|l| l < 2.0)
            && m.get("rpo_node_up", &my.node_labels("b")) == Some(1.0)
            && m.get(LAG, &my.pair("a", "b")).is_some_and(|l| l < 2.0)
    })
    .await;
    let m = exporter.scrape().await;
    let sessions = |n: &[(&'static str, String)]| m.get("rpo_node_sessions_opened_total", n).unwrap_or(0.0);
    println!(
        "replicas restarted every 2 s for 30 s: postgres r1 {} times (down in {r1_down} of {} scrapes, {} sessions), \
         mariadb b {} times (down in {b_down}, {} sessions); both measured again {back:.1?} after the last restart",
        restarts.0,
        scrapes.count(),
        sessions(&pg.node_labels("r1")),
        restarts.1,
        sessions(&my.node_labels("b")),
    );
    assert!(restarts.0 >= 10 && restarts.1 >= 5, "too few restarts: {restarts:?}");
    assert!(r1_down > 0 && b_down > 0, "the restarts were never seen");
    assert_logged(&exporter, &["Measurement failed", "node=r1"]);
    assert_logged(&exporter, &["Measurement failed", "node=b"]);
    assert_kept("after the restarts", &before, &m, volatile);
    assert_no_panic(&exporter);
}

#[tokio::test(flavor = "multi_thread")]
async fn heartbeat_table_dropped_on_mariadb_then_recreated_by_the_exporter() {
    let my = MyLab::start(MariaLabSpec::new().primary("a").replica("b", &["a"])).await;
    let a = my.db.node("a");
    a.exec(&format!("GRANT CREATE ON rpo.* TO '{ROLE}'@'127.0.0.1'")).await.unwrap();
    let config = my.config().replace("create_table: false", "create_table: true");
    let exporter = Exporter::start(&config).await;
    let pair = my.pair("a", "b");
    wait_for_pair(&exporter, &pair).await;
    let before = exporter.scrape().await;
    let what = "heartbeat table dropped on MariaDB (create_table: true)";
    let of_pair = |s: &Sample| volatile(s) || s.labels.contains_key("source_node");
    a.exec("DROP TABLE rpo.heartbeat").await.unwrap();
    let dropped = Instant::now();
    let scrapes = during(what, &exporter, &before, of_pair, async {
        until(&exporter, 20, "the exporter recreates the table and measures again", |m| {
            m.get(LAG, &pair).is_some_and(|l| l < 1.0)
                && exporter.log().matches("Created heartbeat table").count() >= 1
        })
        .await;
    })
    .await;
    for m in scrapes.metrics() {
        for n in ["a", "b"] {
            assert_eq!(m.get("rpo_node_up", &my.node_labels(n)), Some(1.0), "{what}: {n} said down");
        }
    }
    assert_logged(&exporter, &["Created heartbeat table"]);
    println!("{what}: measured again {:.1?} after the drop", dropped.elapsed());
    assert_kept(what, &before, &exporter.scrape().await, volatile);
    assert_no_panic(&exporter);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_config_file_replaced_mid_write() {
    let lab = Lab::start(three_nodes()).await;
    let config = |nodes: &[&str]| {
        let nodes: String = nodes.iter().map(|n| lab.node_yaml(n)).collect();
        format!("clusters:\n  - name: lab\n    rpo: 30s\n    rto: 5m\n    heartbeat: {{ create_table: false }}\n    nodes:\n{nodes}")
    };
    let exporter = Exporter::start(&config(&["p", "r1"])).await;
    wait_for_pair(&exporter, &lab.pair("p", "r1")).await;
    let before = exporter.scrape().await;
    let path = exporter.dir.path().join("config.yml");

    // The new file is written in place, as `cat new > config.yml` or an editor
    // without an atomic rename does; a reload comes in when half of it is there:
    // cut inside r2's DSN, an unterminated string.
    let next = config(&["p", "r1", "r2"]);
    let cut = next.rfind("dsn: \"host=").unwrap() + 12;
    let mut file = std::fs::File::create(&path).unwrap();
    file.write_all(&next.as_bytes()[..cut]).unwrap();
    file.flush().unwrap();
    let seen_before = before.get("rpo_heartbeat_seen_timestamp_seconds", &lab.pair("p", "r1")).unwrap();
    let scrapes = during("config file replaced mid-write", &exporter, &before, volatile, async {
        exporter.signal(nix::sys::signal::Signal::SIGHUP);
        until(&exporter, 10, "the failed reload is reported", |m| {
            m.get("rpo_exporter_config_last_reload_successful", &[]) == Some(0.0)
        })
        .await;
        tokio::time::sleep(Duration::from_secs(2)).await;
    })
    .await;
    let last = scrapes.metrics().last().unwrap();
    assert!(
        last.get("rpo_heartbeat_seen_timestamp_seconds", &lab.pair("p", "r1")).unwrap() > seen_before,
        "the old config keeps measuring"
    );
    assert!(
        last.find("rpo_node_up", &[("node", "r2".into())]).is_empty(),
        "nothing of the half file applied"
    );
    assert_logged(&exporter, &["Configuration reload failed", &path.display().to_string()]);

    // The writer finishes; the next reload applies the whole file.
    file.write_all(&next.as_bytes()[cut..]).unwrap();
    drop(file);
    exporter.signal(nix::sys::signal::Signal::SIGHUP);
    let took = until(&exporter, 15, "the complete file applies", |m| {
        m.get("rpo_exporter_config_last_reload_successful", &[]) == Some(1.0)
            && m.get(LAG, &lab.pair("p", "r2")).is_some()
    })
    .await;
    println!("config replaced mid-write: refused half-written, the whole file measured {took:.1?} after its reload");
    assert_kept("after the complete config", &before, &exporter.scrape().await, volatile);
    assert_no_panic(&exporter);
}
