//! Database setup as an operator meets it: the heartbeat table missing (a clear
//! error naming the statements to run), then created by the exporter itself when
//! the config and the account's privileges allow.

mod support;

use std::time::Duration;
use support::*;

#[tokio::test(flavor = "multi_thread")]
async fn missing_table_names_the_ddl_then_create_table_creates_it() {
    // The role may log in and read the statistics views, nothing more.
    let lab = Lab::start_with_sql(spec_primary_replica(), &format!("GRANT pg_monitor TO {ROLE};")).await;
    let mut exporter = Exporter::start(&lab.config_with("1s", false, "")).await;
    let write_missing =
        with(lab.node_labels("p"), &[("collector", "heartbeat_write"), ("reason", "missing_table")]);
    let read_missing =
        with(lab.node_labels("r1"), &[("collector", "heartbeat_read"), ("reason", "missing_table")]);
    let ok = wait_for(Duration::from_secs(10), || async {
        let m = exporter.scrape().await;
        m.get("rpo_collector_errors_total", &write_missing).is_some_and(|n| n >= 2.0)
            && m.get("rpo_collector_errors_total", &read_missing).is_some_and(|n| n >= 2.0)
    })
    .await;
    assert!(ok, "missing table not reported; log:\n{}", exporter.log());
    let log = exporter.log();
    assert!(
        log.contains("heartbeat table rpo.heartbeat does not exist and heartbeat.create_table is false; run the statements printed by `rpo-exporter schema postgres --table rpo.heartbeat`"),
        "{log}"
    );
    let m = exporter.scrape().await;
    assert_eq!(m.get("rpo_node_up", &lab.node_labels("p")), Some(1.0), "a missing table is no outage");
    assert!(m.find("rpo_replication_lag_seconds", &[]).is_empty());
    assert!(exporter.terminate().success());

    // create_table: true without the privilege to create: the same advice.
    let mut exporter = Exporter::start(&lab.config_with("1s", true, "")).await;
    let ok = wait_for(Duration::from_secs(10), || async {
        exporter.log().contains("cannot create heartbeat table rpo.heartbeat: ERROR 42501")
    })
    .await;
    assert!(ok, "{}", exporter.log());
    assert!(exporter.log().contains("rpo-exporter schema postgres --table rpo.heartbeat"));
    assert!(exporter.terminate().success());

    // Given CREATE on the database, the exporter makes the table and measures.
    lab.pg.node("p").execute(&format!("GRANT CREATE ON DATABASE postgres TO {ROLE}")).await.unwrap();
    let exporter = Exporter::start(&lab.config_with("1s", true, "")).await;
    let pair = lab.pair("p", "r1");
    let ok = wait_for(Duration::from_secs(15), || async {
        exporter.scrape().await.get("rpo_replication_lag_seconds", &pair).is_some_and(|l| l < 0.5)
    })
    .await;
    assert!(ok, "no lag after creating the table; log:\n{}", exporter.log());
    assert!(exporter.log().contains("Created heartbeat table"));
}
