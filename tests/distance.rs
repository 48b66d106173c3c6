//! Distance: one exporter per cluster, its nodes a 300 ms round trip away (the
//! farthest pair of cloud regions), behind the lab's delay proxy, with default
//! settings and a 1 s interval. Every node stays up on its first session, the
//! primary gets a heartbeat every interval, idle lag stays under 0.5 s, and a
//! stalled replica reads its stall — on PostgreSQL and MariaDB.

mod support;

use rpo_lab::MariaLabSpec;
use std::future::Future;
use std::time::{Duration, Instant};
use support::maria::MyLab;
use support::*;

const LAG: &str = "rpo_replication_lag_seconds";
const EXPOSURE: &str = "rpo_data_loss_exposure_seconds";

/// What one engine's lab looks like to the checks below.
struct Case<'a> {
    engine: &'a str,
    exporter: &'a Exporter,
    primary: Vec<(&'static str, String)>,
    replica: Vec<(&'static str, String)>,
    pair: Vec<(&'static str, String)>,
}

/// Idle for `secs` seconds, scraped four times a second: nodes up on one session,
/// a heartbeat every interval, lag under 0.5 s.
async fn idle(case: &Case<'_>, secs: u64) {
    let m = case.exporter.scrape().await;
    let writes0 = m.get("rpo_heartbeat_writes_total", &case.primary).unwrap_or(0.0);
    let start = Instant::now();
    let (mut max_lag, mut max_exposure, mut samples) = (0f64, 0f64, 0);
    while start.elapsed() < Duration::from_secs(secs) {
        let m = case.exporter.scrape().await;
        for node in [&case.primary, &case.replica] {
            assert_eq!(m.get("rpo_node_up", node), Some(1.0), "{node:?} down; log:\n{}", case.exporter.log());
        }
        let lag =
            m.get(LAG, &case.pair).unwrap_or_else(|| panic!("no lag series; log:\n{}", case.exporter.log()));
        let exposure = m.get(EXPOSURE, &case.pair).expect("exposure series");
        assert!(lag < 0.5, "{}: idle lag {lag} at 300 ms round trip", case.engine);
        assert!(exposure >= lag, "exposure {exposure} < lag {lag}");
        max_lag = max_lag.max(lag);
        max_exposure = max_exposure.max(exposure);
        samples += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let elapsed = start.elapsed().as_secs_f64();
    let m = case.exporter.scrape().await;
    let writes = m.get("rpo_heartbeat_writes_total", &case.primary).unwrap_or(0.0) - writes0;
    for node in [&case.primary, &case.replica] {
        assert_eq!(
            m.get("rpo_node_sessions_opened_total", node),
            Some(1.0),
            "{node:?}: reconnect churn; log:\n{}",
            case.exporter.log()
        );
    }
    let rtt = m.get("rpo_node_round_trip_seconds", &case.primary).unwrap();
    println!(
        "{} at 150 ms one way (probe round trip {rtt:.3} s): idle {elapsed:.1} s, {samples} scrapes, max lag {max_lag:.3} s, max exposure {max_exposure:.3} s, {writes} heartbeats",
        case.engine
    );
    assert!(rtt >= 0.3, "the proxy did not add 300 ms: round trip {rtt}");
    assert!(
        writes >= elapsed.floor() - 1.0,
        "{writes} heartbeats in {elapsed:.1} s: one per interval expected"
    );
}

/// Stalls the replica for `secs` seconds: lag now (the reading plus its age) is the
/// stall within an interval, exposure is above it; after `resume`, lag falls back.
async fn stall<S: Future<Output = ()>, R: Future<Output = ()>>(
    case: &Case<'_>,
    secs: f64,
    stop: S,
    resume: R,
) {
    let read_age = with(case.replica.clone(), &[("collector", "heartbeat_read")]);
    stop.await;
    let stalled = Instant::now();
    tokio::time::sleep(Duration::from_secs_f64(secs)).await;
    let m = case.exporter.scrape().await;
    let at = stalled.elapsed().as_secs_f64();
    let lag = m.get(LAG, &case.pair).expect("lag while stalled");
    let exposure = m.get(EXPOSURE, &case.pair).expect("exposure while stalled");
    let age = m.get("rpo_measurement_age_seconds", &read_age).expect("read age");
    let lag_now = lag + age;
    println!(
        "{} at 150 ms one way: stalled {at:.2} s: lag {lag:.3} s read {age:.3} s ago (now {lag_now:.3} s), exposure {exposure:.3} s",
        case.engine
    );
    assert!((lag_now - at).abs() <= 1.5, "{}: lag now {lag_now}, stalled {at}", case.engine);
    assert!(exposure >= lag_now - 0.1, "exposure {exposure} below the truth");
    resume.await;
    let ok = wait_for(Duration::from_secs(8), || async {
        case.exporter.scrape().await.get(LAG, &case.pair).is_some_and(|l| l < 0.5)
    })
    .await;
    assert!(ok, "{}: lag did not fall back after the stall; log:\n{}", case.engine, case.exporter.log());
    let m = case.exporter.scrape().await;
    for node in [&case.primary, &case.replica] {
        assert_eq!(m.get("rpo_node_sessions_opened_total", node), Some(1.0), "{node:?}: reconnect churn");
    }
}

fn default_settings(cluster: &str, nodes: &str) -> String {
    format!("clusters:\n  - name: {cluster}\n    rpo: 30s\n    rto: 5m\n    heartbeat: {{ create_table: false }}\n    nodes:\n{nodes}")
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_across_a_300ms_round_trip() {
    let lab = Lab::start(spec_primary_replica()).await;
    let wan = Wan::start(&[("p", lab.pg.node("p").port()), ("r1", lab.pg.node("r1").port())], FAR).await;
    let nodes = format!("{}{}", lab.node_yaml_at("p", wan.port("p")), lab.node_yaml_at("r1", wan.port("r1")));
    let exporter = Exporter::start(&default_settings("lab", &nodes)).await;
    let case = Case {
        engine: "postgres",
        exporter: &exporter,
        primary: lab.node_labels("p"),
        replica: lab.node_labels("r1"),
        pair: lab.pair("p", "r1"),
    };
    wait_for_pair(&exporter, &case.pair).await;
    idle(&case, 15).await;
    let r1 = lab.pg.node("r1");
    stall(&case, 8.0, async { r1.execute("SELECT pg_wal_replay_pause()").await.unwrap() }, async {
        r1.execute("SELECT pg_wal_replay_resume()").await.unwrap()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_across_a_300ms_round_trip() {
    let lab = MyLab::start(MariaLabSpec::new().primary("a").replica("b", &["a"])).await;
    let wan = Wan::start(&[("a", lab.db.node("a").port()), ("b", lab.db.node("b").port())], FAR).await;
    let nodes = format!("{}{}", lab.node_yaml_at("a", wan.port("a")), lab.node_yaml_at("b", wan.port("b")));
    let exporter = Exporter::start(&default_settings("maria", &nodes)).await;
    let case = Case {
        engine: "mariadb",
        exporter: &exporter,
        primary: lab.node_labels("a"),
        replica: lab.node_labels("b"),
        pair: lab.pair("a", "b"),
    };
    wait_for_pair(&exporter, &case.pair).await;
    idle(&case, 15).await;
    let b = lab.db.node("b");
    stall(&case, 8.0, async { b.exec("STOP SLAVE SQL_THREAD").await.unwrap() }, async {
        b.exec("START SLAVE SQL_THREAD").await.unwrap()
    })
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn settings_too_tight_for_the_distance_name_the_one_to_raise() {
    let lab = Lab::start(spec_primary_replica()).await;
    let wan = Wan::start(&[("p", lab.pg.node("p").port()), ("r1", lab.pg.node("r1").port())], FAR).await;
    let nodes = format!("{}{}", lab.node_yaml_at("p", wan.port("p")), lab.node_yaml_at("r1", wan.port("r1")));
    let config = format!(
        "clusters:\n  - name: lab\n    rpo: 30s\n    rto: 5m\n    heartbeat: {{ create_table: false, timeout: 400ms }}\n    nodes:\n{nodes}"
    );
    // check-config says it before anything runs (the nodes are in two regions) ...
    let exporter = Exporter::start(&config).await;
    let check = std::process::Command::new(env!("CARGO_BIN_EXE_rpo-exporter"))
        .arg("check-config")
        .arg(exporter.dir.path().join("config.yml"))
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(check.status.success(), "{stderr}");
    assert!(stderr.contains("clusters[0].heartbeat.timeout: 400ms is too short"), "{stderr}");
    // ... and the exporter once it has measured the round trip.
    let ok = wait_for(Duration::from_secs(15), || async {
        exporter
            .log()
            .contains("The node is too far for these heartbeat settings: raise heartbeat.timeout to at least")
    })
    .await;
    assert!(ok, "no advice in the log:\n{}", exporter.log());
    let line = exporter.log().lines().find(|l| l.contains("too far")).unwrap().to_owned();
    println!("postgres at 150 ms one way, timeout 400ms: {line}");
    wait_for_pair(&exporter, &lab.pair("p", "r1")).await;
}

/// Waits for the primary's next heartbeat write (its sequence moves), so a stall
/// that starts right after it leaves the replica's newest heartbeat as young as
/// it can be: the case where an exposure frozen at its reading falls below the
/// truth as soon as the reading is a little old.
async fn right_after_a_heartbeat(exporter: &Exporter, primary: &[(&'static str, String)]) {
    let seq = |m: &Metrics| m.get("rpo_heartbeat_sequence", primary);
    let before = seq(&exporter.scrape().await);
    let ok = wait_for(Duration::from_secs(5), || async {
        let now = seq(&exporter.scrape().await);
        now.is_some() && now != before
    })
    .await;
    assert!(ok, "no heartbeat written; log:\n{}", exporter.log());
}

/// During a stall that begins at `stalled`, with the primary committing a row every
/// 20 ms, the truth at `t` is at least `t − stalled − 20 ms`: exposure must never be
/// below it when Prometheus scrapes, and lag (a reading) never above the truth.
async fn bounds_at_scrape(
    what: &str,
    exporter: &Exporter,
    pair: &[(&'static str, String)],
    stalled: Instant,
) {
    let mut samples = 0;
    let mut closest = f64::INFINITY;
    while stalled.elapsed() < Duration::from_secs(6) {
        let asked = stalled.elapsed().as_secs_f64();
        let m = exporter.scrape().await;
        let answered = stalled.elapsed().as_secs_f64();
        let (Some(lag), Some(exposure)) = (m.get(LAG, pair), m.get(EXPOSURE, pair)) else {
            panic!("{what}: no reading; log:\n{}", exporter.log())
        };
        let truth_at_least = asked - 0.02;
        closest = closest.min(exposure - truth_at_least);
        assert!(
            exposure >= truth_at_least - 0.03,
            "{what}: exposure {exposure:.3} below the truth (at least {truth_at_least:.3}) at scrape time"
        );
        assert!(lag <= answered + 0.05, "{what}: lag {lag:.3} above the truth (at most {answered:.3})");
        samples += 1;
        tokio::time::sleep(Duration::from_millis(130)).await;
    }
    println!("{what}: exposure at or above the truth in all {samples} scrapes of a 6 s stall (closest margin {closest:.3} s)");
}

#[tokio::test(flavor = "multi_thread")]
async fn exposure_is_an_upper_bound_when_prometheus_scrapes() {
    let labs = TwoLabs::start(FAR).await;
    let (pg, my) = (&labs.pg, &labs.my);
    let exporter = Exporter::start(&labs.config("30s", "")).await;
    let (pg_pair, my_pair) = (pg.pair("p", "r1"), my.pair("a", "b"));
    wait_for_pair(&exporter, &pg_pair).await;
    wait_for_pair(&exporter, &my_pair).await;

    // Application writes on both primaries, every 20 ms, straight to the servers.
    let p = pg.pg.node("p").client().await.unwrap();
    p.batch_execute(
        "CREATE TABLE app_writes (id bigserial PRIMARY KEY, at timestamptz DEFAULT clock_timestamp())",
    )
    .await
    .unwrap();
    let mut a = my.db.node("a").conn().await.unwrap();
    use mysql_async::prelude::Queryable;
    a.query_drop(
        "CREATE TABLE rpo.app_writes (id bigint AUTO_INCREMENT PRIMARY KEY, at datetime(6) DEFAULT NOW(6))",
    )
    .await
    .unwrap();
    let (stop, stopped) = tokio::sync::watch::channel(false);
    let writers = tokio::spawn(async move {
        while !*stopped.borrow() {
            p.execute("INSERT INTO app_writes DEFAULT VALUES", &[]).await.unwrap();
            a.query_drop("INSERT INTO rpo.app_writes () VALUES ()").await.unwrap();
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    });

    right_after_a_heartbeat(&exporter, &pg.node_labels("p")).await;
    pg.pg.node("r1").execute("SELECT pg_wal_replay_pause()").await.unwrap();
    let stalled = Instant::now();
    bounds_at_scrape("postgres, replay paused", &exporter, &pg_pair, stalled).await;
    pg.pg.node("r1").execute("SELECT pg_wal_replay_resume()").await.unwrap();

    right_after_a_heartbeat(&exporter, &my.node_labels("a")).await;
    my.db.node("b").exec("STOP SLAVE SQL_THREAD").await.unwrap();
    let stalled = Instant::now();
    bounds_at_scrape("mariadb, SQL thread stopped", &exporter, &my_pair, stalled).await;
    my.db.node("b").exec("START SLAVE SQL_THREAD").await.unwrap();

    stop.send(true).unwrap();
    writers.await.unwrap();
}
