//! Lag and exposure against real MariaDB servers with GTID replication: an idle
//! primary, a stopped SQL thread, a stopped IO thread, delayed replication,
//! chained replication, and two writers read from one multi-source replica.

mod support;

use rpo_lab::MariaLabSpec;
use std::time::{Duration, Instant};
use support::maria::MyLab;
use support::*;

const LAG: &str = "rpo_replication_lag_seconds";
const EXPOSURE: &str = "rpo_data_loss_exposure_seconds";

fn pair_ab() -> MariaLabSpec {
    MariaLabSpec::new().primary("a").replica("b", &["a"])
}

async fn start(spec: MariaLabSpec) -> (MyLab, Exporter) {
    let lab = MyLab::start(spec).await;
    let exporter = Exporter::start(&lab.config()).await;
    (lab, exporter)
}

/// The pair's lag as of now: the reading plus the age of the read it came from
/// (lag grows one for one while replication is stopped).
fn lag_now(m: &Metrics, lab: &MyLab, pair: &[(&'static str, String)], replica: &str) -> (f64, f64) {
    let lag = m.get(LAG, pair).expect("lag series");
    let age = m
        .get(
            "rpo_measurement_age_seconds",
            &with(lab.node_labels(replica), &[("collector", "heartbeat_read")]),
        )
        .expect("read age");
    (lag, lag + age)
}

#[tokio::test(flavor = "multi_thread")]
async fn idle_primary_shows_no_false_lag() {
    let (lab, exporter) = start(pair_ab()).await;
    let pair = lab.pair("a", "b");
    wait_for_pair(&exporter, &pair).await;
    let (mut max_lag, mut max_exposure, mut samples) = (0f64, 0f64, 0);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(30) {
        let m = exporter.scrape().await;
        let lag = m.get(LAG, &pair).expect("lag series vanished on an idle primary");
        let exposure = m.get(EXPOSURE, &pair).expect("exposure series vanished");
        assert!(lag < 0.5, "idle primary: lag {lag}");
        // Aged to the scrape: at most an interval old at the read, plus an interval.
        assert!(exposure < 2.5, "idle primary: exposure {exposure}");
        max_lag = max_lag.max(lag);
        max_exposure = max_exposure.max(exposure);
        samples += 1;
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    println!(
        "mariadb idle 30 s: {samples} samples, max lag {max_lag:.4} s, max exposure {max_exposure:.4} s"
    );
    let m = exporter.scrape().await;
    let b = with(lab.node_labels("b"), &[("channel", "default")]);
    assert_eq!(m.get("rpo_mysql_replica_sql_running", &b), Some(1.0));
    assert_eq!(m.get("rpo_mysql_replica_io_state", &with(b.clone(), &[("state", "yes")])), Some(1.0));
    assert_eq!(m.get("rpo_mysql_seconds_behind_source", &b), Some(0.0));
    assert_eq!(m.get("rpo_mysql_seconds_behind_source_null", &b), Some(0.0));
    assert_eq!(m.get("rpo_node_writable", &lab.node_labels("a")), Some(1.0));
    assert_eq!(m.get("rpo_node_writable", &lab.node_labels("b")), Some(0.0));
    assert!(!m.find("rpo_mysql_gtid_binlog_position", &lab.node_labels("a")).is_empty());
    assert!(
        exporter.log().matches("permission").count() == 0,
        "the schema's grants suffice:\n{}",
        exporter.log()
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn stopped_sql_thread_shows_lag_and_recovers() {
    let (lab, exporter) = start(pair_ab()).await;
    let pair = lab.pair("a", "b");
    wait_for_pair(&exporter, &pair).await;
    let b = lab.db.node("b");
    b.exec(&(lab.on_connection("b", "a", "STOP SLAVE") + " SQL_THREAD")).await.unwrap();
    let stopped = Instant::now();
    tokio::time::sleep(Duration::from_secs(10)).await;
    let m = exporter.scrape().await;
    let (lag, now) = lag_now(&m, &lab, &pair, "b");
    let at = stopped.elapsed().as_secs_f64();
    let ch = with(lab.node_labels("b"), &[("channel", "default")]);
    println!("mariadb SQL thread stopped {at:.2} s: lag {lag:.3} s (lag now {now:.3} s)");
    assert!((now - 10.0).abs() <= 1.5, "lag now {now}, want 10 ± 1.5");
    assert_eq!(m.get("rpo_mysql_replica_sql_running", &ch), Some(0.0));
    assert_eq!(m.get("rpo_mysql_seconds_behind_source_null", &ch), Some(1.0), "SBM is NULL, said explicitly");
    assert!(m.get("rpo_mysql_seconds_behind_source", &ch).is_some_and(f64::is_nan));

    b.exec(&(lab.on_connection("b", "a", "START SLAVE") + " SQL_THREAD")).await.unwrap();
    let restarted = Instant::now();
    let ok = wait_for(Duration::from_secs(3), || async {
        exporter.scrape().await.get(LAG, &pair).is_some_and(|l| l < 1.0)
    })
    .await;
    assert!(ok, "lag not under 1 s within 3 s of restart; log:\n{}", exporter.log());
    println!("mariadb SQL thread restarted: lag under 1 s within {:.2} s", restarted.elapsed().as_secs_f64());
}

#[tokio::test(flavor = "multi_thread")]
async fn stopped_io_thread_nulls_sbm_while_lag_grows() {
    let (lab, exporter) = start(pair_ab()).await;
    let pair = lab.pair("a", "b");
    wait_for_pair(&exporter, &pair).await;
    lab.db.node("b").exec(&(lab.on_connection("b", "a", "STOP SLAVE") + " IO_THREAD")).await.unwrap();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let m = exporter.scrape().await;
    let ch = with(lab.node_labels("b"), &[("channel", "default")]);
    let (lag, now) = lag_now(&m, &lab, &pair, "b");
    println!("mariadb IO thread stopped 6 s: lag {lag:.3} s (now {now:.3} s)");
    assert!(now >= 4.5, "lag did not grow: {now}");
    assert_eq!(m.get("rpo_mysql_seconds_behind_source_null", &ch), Some(1.0));
    assert_eq!(m.get("rpo_mysql_replica_io_state", &with(ch.clone(), &[("state", "no")])), Some(1.0));
    assert_eq!(m.get("rpo_mysql_replica_io_state", &with(ch.clone(), &[("state", "yes")])), Some(0.0));
    assert_eq!(m.get("rpo_mysql_replica_sql_running", &ch), Some(1.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn master_delay_settles_lag_at_the_delay() {
    let (lab, exporter) = start(pair_ab()).await;
    let pair = lab.pair("a", "b");
    wait_for_pair(&exporter, &pair).await;
    let stop = lab.on_connection("b", "a", "STOP SLAVE");
    let change = lab.on_connection("b", "a", "CHANGE MASTER");
    let start_sql = lab.on_connection("b", "a", "START SLAVE");
    lab.db.node("b").exec(&format!("{stop}; {change} TO MASTER_DELAY = 5; {start_sql}")).await.unwrap();
    tokio::time::sleep(Duration::from_secs(9)).await;
    let (mut lo, mut hi) = (f64::MAX, 0f64);
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        let m = exporter.scrape().await;
        let lag = m.get(LAG, &pair).expect("lag with a delayed replica");
        lo = lo.min(lag);
        hi = hi.max(lag);
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    println!("mariadb MASTER_DELAY=5: lag between {lo:.3} and {hi:.3} s over 5 s");
    // MariaDB delays an event until its binlog timestamp, in whole seconds, plus 5 s:
    // a heartbeat written at x.7 is applied 4.3 s later, so the true delay is in
    // (4, 5] s, and lag, a lower bound on the heartbeat grid, up to one interval
    // (1 s) below it: in (3, 5] (a run whose writes fell at .5 read 3.4991 steadily).
    assert!(lo >= 2.95 && hi <= 6.5, "lag {lo}..{hi}, want within (3, 5] and a margin");
    let ch = with(lab.node_labels("b"), &[("channel", "default")]);
    assert_eq!(exporter.scrape().await.get("rpo_mysql_sql_delay_seconds", &ch), Some(5.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn chained_replica_is_measured_end_to_end() {
    let (lab, exporter) =
        start(MariaLabSpec::new().primary("a").replica("b", &["a"]).replica("c", &["b"])).await;
    let a_c = lab.pair("a", "c");
    wait_for_pair(&exporter, &a_c).await;
    assert!(exporter.scrape().await.get(LAG, &a_c).unwrap() < 0.5);
    // b stops applying: nothing new reaches b's binlog, so c falls behind a.
    lab.db.node("b").exec(&(lab.on_connection("b", "a", "STOP SLAVE") + " SQL_THREAD")).await.unwrap();
    tokio::time::sleep(Duration::from_secs(6)).await;
    let m = exporter.scrape().await;
    let (lag, now) = lag_now(&m, &lab, &a_c, "c");
    println!("mariadb chain, b's SQL thread stopped 6 s: a → c lag {lag:.3} s (now {now:.3} s)");
    assert!(now >= 4.5, "a → c lag {now}");
    let c = with(lab.node_labels("c"), &[("channel", "default")]);
    assert_eq!(m.get("rpo_mysql_replica_sql_running", &c), Some(1.0), "c itself is healthy");
}

#[tokio::test(flavor = "multi_thread")]
async fn multi_writer_lag_matrix_shows_both_sources() {
    let lab = MyLab::start(MariaLabSpec::new().primary("a").primary("a2").replica("m", &["a", "a2"])).await;
    let exporter =
        Exporter::start(&format!("clusters:\n{}", lab.cluster_yaml("maria", "multi-writer", ""))).await;
    let (a_m, a2_m) = (lab.pair("a", "m"), lab.pair("a2", "m"));
    wait_for_pair(&exporter, &a_m).await;
    wait_for_pair(&exporter, &a2_m).await;
    let m = exporter.scrape().await;
    assert!(m.get(LAG, &a_m).unwrap() < 0.5 && m.get(LAG, &a2_m).unwrap() < 0.5);
    assert_eq!(
        m.get("rpo_cluster_info", &labels(&[("db_cluster", "maria"), ("write_mode", "multi-writer")])),
        Some(1.0)
    );
    for node in ["a", "a2"] {
        assert_eq!(m.get("rpo_node_writable", &lab.node_labels(node)), Some(1.0), "{node}");
    }
    // One source's connection stops: only its column of the matrix falls behind.
    lab.db.node("m").exec(&lab.on_connection("m", "a2", "STOP SLAVE")).await.unwrap();
    tokio::time::sleep(Duration::from_secs(5)).await;
    let m = exporter.scrape().await;
    let (_, a2_now) = lag_now(&m, &lab, &a2_m, "m");
    let a_lag = m.get(LAG, &a_m).unwrap();
    println!("mariadb multi-source, connection a2 stopped 5 s: a → m {a_lag:.3} s, a2 → m {a2_now:.3} s");
    assert!(a2_now >= 3.5, "a2 → m lag {a2_now}");
    assert!(a_lag < 0.5, "a → m unaffected: {a_lag}");
    let ch = with(lab.node_labels("m"), &[("channel", "a2")]);
    assert_eq!(m.get("rpo_mysql_seconds_behind_source_null", &ch), Some(1.0));
    assert_eq!(m.get("rpo_mysql_replica_channels", &lab.node_labels("m")), Some(2.0));
}
