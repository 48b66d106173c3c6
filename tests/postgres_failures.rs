//! Failures the readings must survive: a killed replica, a frozen replica, and
//! hostile heartbeat rows. In each, a scrape stays fast, lag never reads 0 for a
//! replica that cannot be read, and every other pair keeps its readings.

mod support;

use std::time::{Duration, Instant};
use support::*;

const LAG: &str = "rpo_replication_lag_seconds";
const EXPOSURE: &str = "rpo_data_loss_exposure_seconds";

/// Scrapes every 100 ms until `node` reads down; returns how long that took.
async fn time_until_down(exporter: &Exporter, node: &[(&'static str, String)], limit: Duration) -> f64 {
    let start = Instant::now();
    let ok =
        wait_for(limit, || async { exporter.scrape().await.get("rpo_node_up", node) == Some(0.0) }).await;
    assert!(ok, "node not down within {limit:?}; log:\n{}", exporter.log());
    start.elapsed().as_secs_f64()
}

#[tokio::test(flavor = "multi_thread")]
async fn killed_replica_goes_down_never_reads_zero_and_comes_back() {
    let (lab, exporter) = lab_and_exporter(spec_primary_replica(), "1s").await;
    let pair = lab.pair("p", "r1");
    let r1 = lab.node_labels("r1");
    wait_for_pair(&exporter, &pair).await;

    lab.pg.node("r1").kill().unwrap();
    let detected = time_until_down(&exporter, &r1, Duration::from_secs(2)).await;
    println!("killed replica: rpo_node_up 0 after {detected:.2} s");
    // Down for 5 s: the pair's lag is unknown, so absent, never 0.
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(5) {
        let m = exporter.scrape().await;
        assert_eq!(m.get("rpo_node_up", &r1), Some(0.0));
        assert_eq!(m.get(LAG, &pair), None, "lag must not be reported for a dead replica");
        assert_eq!(m.get(EXPOSURE, &pair), None);
        assert!(m.get("rpo_node_up", &lab.node_labels("p")) == Some(1.0), "the primary is unaffected");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    lab.pg.node("r1").start().unwrap();
    let restarted = Instant::now();
    let ok = wait_for(Duration::from_secs(15), || async {
        let m = exporter.scrape().await;
        m.get("rpo_node_up", &r1) == Some(1.0) && m.get(LAG, &pair).is_some()
    })
    .await;
    assert!(ok, "replica did not come back; log:\n{}", exporter.log());
    println!("killed replica: back {:.2} s after restart", restarted.elapsed().as_secs_f64());
}

#[tokio::test(flavor = "multi_thread")]
async fn frozen_replica_keeps_scrapes_fast_and_its_age_grows() {
    let (lab, exporter) = lab_and_exporter(spec_primary_replica(), "1s").await;
    let pair = lab.pair("p", "r1");
    let r1 = lab.node_labels("r1");
    let read_age = with(r1.clone(), &[("collector", "heartbeat_read")]);
    wait_for_pair(&exporter, &pair).await;

    lab.pg.node("r1").freeze().unwrap();
    let frozen = Instant::now();
    let (mut slowest, mut last_age, mut first_age) = (0f64, 0f64, None);
    let mut down_after = None;
    while frozen.elapsed() < Duration::from_secs(6) {
        let t = Instant::now();
        let m = exporter.scrape().await;
        let took = t.elapsed().as_secs_f64();
        slowest = slowest.max(took);
        assert!(took < 1.0, "scrape took {took:.3} s while a replica is frozen");
        let age = m.get("rpo_measurement_age_seconds", &read_age).expect("age of the last read");
        first_age.get_or_insert(age);
        last_age = age;
        if m.get("rpo_node_up", &r1) == Some(0.0) {
            down_after.get_or_insert(frozen.elapsed().as_secs_f64());
        }
        if down_after.is_some() {
            assert_eq!(m.get(LAG, &pair), None, "lag must not be reported for a frozen replica");
        }
        if let Some(lag) = m.get(LAG, &pair) {
            assert!(down_after.is_none() && lag >= 0.0);
        }
        // Polled often, so the first scrape that reads it down follows the change closely.
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let down_after = down_after.expect("frozen replica never reported down");
    println!(
        "frozen replica: slowest scrape {:.1} ms, down after {down_after:.2} s, read age {:.2} → {last_age:.2} s",
        slowest * 1e3,
        first_age.unwrap()
    );
    assert!(down_after <= 2.3, "down after {down_after} s, want within interval + timeout (1.75 s) + 0.55 s of polling and scheduling");
    assert!(last_age >= 4.0, "measurement age did not grow: {last_age}");

    lab.pg.node("r1").thaw().unwrap();
    let ok =
        wait_for(Duration::from_secs(15), || async { exporter.scrape().await.get(LAG, &pair).is_some() })
            .await;
    assert!(ok, "thawed replica did not come back; log:\n{}", exporter.log());
}

/// A replica that stalls for less than a connect deadline (5 s by default) is down
/// while it stalls and back on the same session afterwards: a busy server is not
/// also asked to authenticate the exporter again.
#[tokio::test(flavor = "multi_thread")]
async fn short_stall_keeps_the_session() {
    let (lab, exporter) = lab_and_exporter(spec_primary_replica(), "1s").await;
    let pair = lab.pair("p", "r1");
    let r1 = lab.node_labels("r1");
    wait_for_pair(&exporter, &pair).await;
    let sessions = |m: &Metrics| m.get("rpo_node_sessions_opened_total", &r1);
    assert_eq!(sessions(&exporter.scrape().await), Some(1.0));

    lab.pg.node("r1").freeze().unwrap();
    let down = wait_for(Duration::from_secs(3), || async {
        exporter.scrape().await.get("rpo_node_up", &r1) == Some(0.0)
    })
    .await;
    assert!(down, "stalled replica never read down");
    tokio::time::sleep(Duration::from_millis(1500)).await;
    lab.pg.node("r1").thaw().unwrap();
    let thawed = Instant::now();
    let back =
        wait_for(Duration::from_secs(5), || async { exporter.scrape().await.get(LAG, &pair).is_some() })
            .await;
    assert!(back, "thawed replica did not come back; log:\n{}", exporter.log());
    println!("short stall: lag back {:.2} s after the thaw", thawed.elapsed().as_secs_f64());
    let m = exporter.scrape().await;
    assert_eq!(sessions(&m), Some(1.0), "a stall shorter than connect_timeout must not reconnect");
    assert_eq!(m.get("rpo_node_up", &r1), Some(1.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_rows_are_reported_per_pair_without_harm() {
    let lab = Lab::start(spec_primary_replica()).await;
    // Listed sources that are down (nothing listens on their port): their rows
    // are read on every replica like a dead primary's last words.
    let closed = rpo_lab::free_port();
    let ghost = |name: &str| {
        format!(
            "      - name: {name}\n        region: sa-east-1\n        engine: postgres\n        dsn: \"host=127.0.0.1 port={closed} user={ROLE} dbname=postgres\"\n        password_file: {}\n",
            lab.password_file.display()
        )
    };
    let ghosts: String =
        ["ghost-null", "ghost-future", "ghost-back", "ghost-alien"].iter().map(|n| ghost(n)).collect();
    // Multi-writer: every writer's row is a live source even while its node is
    // down (in a single-writer cluster a dead writer's row retires as soon as
    // another node is the writable one).
    let config =
        lab.config("1s", &ghosts).replace("    rto: 5m\n", "    rto: 5m\n    write_mode: multi-writer\n");
    let exporter = Exporter::start(&config).await;
    let p = lab.pg.node("p");
    let sysid =
        p.query_one_string("SELECT system_identifier::text FROM pg_control_system()").await.unwrap().unwrap();
    // A table made by hand may allow what ours forbids.
    p.execute(&format!(
        "ALTER TABLE rpo.heartbeat ALTER COLUMN written_at DROP NOT NULL;
         INSERT INTO rpo.heartbeat VALUES
           ('ghost-null',   'sa-east-1', 1,   NULL,                         '{sysid}'),
           ('ghost-future', 'sa-east-1', 1,   now() + interval '1 hour',    '{sysid}'),
           ('ghost-back',   'sa-east-1', 100, now(),                        '{sysid}'),
           ('ghost-alien',  'sa-east-1', 1,   now(),                        'another-cluster'),
           ('stranger',     'nowhere',   1,   now(),                        '{sysid}');"
    ))
    .await
    .unwrap();
    let src = |name: &str| {
        vec![
            ("db_cluster", "lab".to_owned()),
            ("source_node", name.to_owned()),
            ("source_region", "sa-east-1".to_owned()),
            ("replica_node", "r1".to_owned()),
            ("replica_region", lab.region("r1").to_owned()),
        ]
    };
    let status = |name: &str, s: &str| with(src(name), &[("status", s)]);
    let ok = wait_for(Duration::from_secs(10), || async {
        exporter.scrape().await.get("rpo_heartbeat_row_status", &status("ghost-back", "ok")) == Some(1.0)
    })
    .await;
    assert!(ok, "hostile rows not read; log:\n{}", exporter.log());
    // The sequence goes backwards.
    p.execute("UPDATE rpo.heartbeat SET seq = 50, written_at = now() WHERE node = 'ghost-back'")
        .await
        .unwrap();
    let ok = wait_for(Duration::from_secs(5), || async {
        exporter.scrape().await.get("rpo_heartbeat_sequence_regressions_total", &src("ghost-back"))
            == Some(1.0)
    })
    .await;
    assert!(ok, "regression not counted; log:\n{}", exporter.log());

    tokio::time::sleep(Duration::from_secs(2)).await;
    let m = exporter.scrape().await;
    for (name, want) in [
        ("ghost-null", "null_timestamp"),
        ("ghost-future", "future_timestamp"),
        ("ghost-alien", "identity_mismatch"),
        ("ghost-back", "ok"),
    ] {
        for s in ["ok", "null_timestamp", "future_timestamp", "identity_mismatch"] {
            let v = m.get("rpo_heartbeat_row_status", &status(name, s));
            assert_eq!(v, Some(f64::from(u8::from(s == want))), "{name} status {s}");
        }
        if want != "ok" {
            assert_eq!(m.get(LAG, &src(name)), None, "{name}: no lag from an unusable row");
            assert_eq!(m.get(EXPOSURE, &src(name)), None, "{name}: no exposure from an unusable row");
        }
    }
    let back_lag = m.get(LAG, &src("ghost-back")).expect("a row whose sequence went back still measures");
    assert!(back_lag >= 0.0);
    let unknown = labels(&[("replica_node", "r1"), ("reason", "unlisted_source")]);
    assert_eq!(m.get("rpo_heartbeat_unknown_rows", &unknown), Some(1.0), "the stranger's row");
    // Nothing negative anywhere, and the real pair is untouched.
    for s in m.samples.iter().filter(|s| s.name == LAG || s.name == EXPOSURE) {
        assert!(s.value >= 0.0, "negative reading {s:?}");
    }
    let real = lab.pair("p", "r1");
    assert!(m.get(LAG, &real).is_some_and(|l| l < 0.5), "p → r1 affected");
    assert_eq!(m.get("rpo_heartbeat_row_status", &with(real, &[("status", "ok")])), Some(1.0));
    assert!(!exporter.log().contains("panicked"), "{}", exporter.log());
}
