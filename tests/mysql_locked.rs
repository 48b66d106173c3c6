//! A MariaDB primary locked by `FLUSH TABLES WITH READ LOCK` for 60 s, with the
//! exporter ticking every 300 ms: every heartbeat write waits on the global read
//! lock. The server must give up on each of them in time (`max_statement_time`,
//! `lock_wait_timeout`), so the exporter's sessions on the primary stay few, its
//! connections are not replaced tick after tick, and heartbeats resume as soon as
//! the lock is released.

mod support;

use rpo_lab::MariaLabSpec;
use std::time::{Duration, Instant};
use support::maria::MyLab;
use support::*;

const HOLD: Duration = Duration::from_secs(60);
/// Sessions of the exporter's account on the primary: one in a steady state; a
/// replacement may overlap the session it replaces.
const MAX_SESSIONS: usize = 2;

/// The exporter account's sessions on `node` as (id, command, state, time) rows.
async fn exporter_sessions(lab: &MyLab, node: &str) -> Vec<Vec<(String, Option<String>)>> {
    lab.db
        .node(node)
        .query_rows(&format!(
            "SELECT ID, COMMAND, STATE, TIME_MS, LEFT(INFO, 40) AS INFO
             FROM information_schema.PROCESSLIST WHERE USER = '{ROLE}' ORDER BY ID"
        ))
        .await
        .expect("read the processlist")
}

#[tokio::test(flavor = "multi_thread")]
async fn a_global_read_lock_piles_up_no_sessions_and_heartbeats_resume() {
    let lab = MyLab::start(MariaLabSpec::new().primary("a").replica("b", &["a"])).await;
    let config = lab.config().replace("interval: 1s", "interval: 300ms, timeout: 250ms");
    let exporter = Exporter::start(&config).await;
    let a = lab.node_labels("a");
    wait_for_pair(&exporter, &lab.pair("a", "b")).await;
    let writes = |m: &Metrics| m.get("rpo_heartbeat_writes_total", &a).unwrap_or(0.0);
    let write_errors = |m: &Metrics| {
        m.find("rpo_collector_errors_total", &with(a.clone(), &[("collector", "heartbeat_write")]))
            .iter()
            .map(|s| s.value)
            .sum::<f64>()
    };
    let sessions_opened = |m: &Metrics| m.get("rpo_node_sessions_opened_total", &a).unwrap_or(0.0);
    let before = exporter.scrape().await;

    // The lock lives as long as this session: keep it open while the test watches.
    let mut locker = lab.db.node("a").conn().await.unwrap();
    mysql_async::prelude::Queryable::query_drop(&mut locker, "FLUSH TABLES WITH READ LOCK").await.unwrap();
    let locked = Instant::now();
    let locked_metrics = exporter.scrape().await;
    let (mut most, mut worst) = (0, Vec::new());
    let mut samples = 0;
    while locked.elapsed() < HOLD {
        let rows = exporter_sessions(&lab, "a").await;
        samples += 1;
        if rows.len() > most {
            most = rows.len();
            worst = rows;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let during = exporter.scrape().await;
    let written_during = writes(&during) - writes(&locked_metrics);
    let failed_during = write_errors(&during) - write_errors(&before);
    let opened_during = sessions_opened(&during) - sessions_opened(&before);
    println!(
        "global read lock held {:.0} s: at most {most} exporter sessions on the primary ({samples} samples), \
         {opened_during} sessions opened, {failed_during} failed writes, {written_during} writes",
        HOLD.as_secs_f64()
    );
    for row in &worst {
        println!("  {row:?}");
    }

    mysql_async::prelude::Queryable::query_drop(&mut locker, "UNLOCK TABLES").await.unwrap();
    let unlocked = Instant::now();
    let resumed = wait_for(Duration::from_secs(10), || async {
        writes(&exporter.scrape().await) >= writes(&during) + 3.0
    })
    .await;
    println!("heartbeats resumed {:.2} s after UNLOCK TABLES", unlocked.elapsed().as_secs_f64());
    drop(locker);
    assert!(resumed, "heartbeat writes did not resume after UNLOCK TABLES; log:\n{}", exporter.log());
    assert!(
        written_during <= 1.0,
        "{written_during} heartbeats written under a global read lock: the lock did not block them"
    );
    assert!(failed_during >= 10.0, "the blocked writes were not reported as failed: {failed_during}");
    assert!(
        most <= MAX_SESSIONS,
        "{most} exporter sessions on the locked primary (want at most {MAX_SESSIONS}): {worst:?}\nlog:\n{}",
        exporter.log()
    );
    assert!(
        opened_during <= 1.0,
        "{opened_during} sessions opened while locked: sessions are being replaced"
    );
    // Once released, none of the blocked writes lingers.
    let settled =
        wait_for(Duration::from_secs(5), || async { exporter_sessions(&lab, "a").await.len() == 1 }).await;
    assert!(settled, "sessions left after the lock: {:?}", exporter_sessions(&lab, "a").await);
    assert!(!exporter.log().contains("panicked"));
}
