//! Issue 17 (c): the exporter follows a real HA manager without a restart. One Patroni
//! cluster (three PostgreSQL nodes, one per region, etcd as DCS), the exporter reaching
//! every node through its client proxy 40 ms away (one way), heartbeats every second in
//! a single-writer cluster (written on whichever node is writable).
//!
//! 1. A switchover through Patroni's REST API: within two intervals of Patroni's answer
//!    the new primary writes heartbeats and its lag series exist, and the old primary's
//!    pairs are gone; the old primary then shows as a replica of the new one.
//! 2. The new primary's region is killed (Patroni and PostgreSQL): within two intervals
//!    of Patroni's leader change (its log line, to the millisecond) the promoted node's
//!    lag series exist and the killed node's pairs are gone; the killed node is down.

mod support;

use std::time::{Duration, Instant, SystemTime};

use rpo_lab::{PatroniLab, PatroniOptions};
use support::*;

const LAG: &str = "rpo_replication_lag_seconds";
const INTERVAL: Duration = Duration::from_secs(1);
const ONE_WAY: Duration = Duration::from_millis(40);
const CLUSTER: &str = "patroni";

/// Label sets of the cluster's nodes and pairs, regions from the lab.
struct Names<'a>(&'a PatroniLab);

impl Names<'_> {
    fn node(&self, node: &str) -> Vec<(&'static str, String)> {
        labels(&[("db_cluster", CLUSTER), ("node", node), ("node_region", self.0.node(node).region())])
    }

    fn pair(&self, source: &str, replica: &str) -> Vec<(&'static str, String)> {
        labels(&[
            ("db_cluster", CLUSTER),
            ("source_node", source),
            ("source_region", self.0.node(source).region()),
            ("replica_node", replica),
            ("replica_region", self.0.node(replica).region()),
        ])
    }
}

/// Scrapes every 50 ms until `cond` holds; returns the wall-clock time of the first
/// scrape where it did. Panics with the exporter's log after `limit`.
async fn first_seen(
    exporter: &Exporter,
    what: &str,
    limit: Duration,
    cond: impl Fn(&Metrics) -> bool,
) -> SystemTime {
    let deadline = Instant::now() + limit;
    loop {
        let at = SystemTime::now();
        if cond(&exporter.scrape().await) {
            return at;
        }
        assert!(Instant::now() < deadline, "{what}: not within {limit:?}; log:\n{}", exporter.log());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// Seconds from `from` to `to` (negative when `to` is earlier).
fn secs(from: SystemTime, to: SystemTime) -> f64 {
    match to.duration_since(from) {
        Ok(d) => d.as_secs_f64(),
        Err(e) => -e.duration().as_secs_f64(),
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn exporter_follows_patroni_switchover_and_failover() {
    let started = Instant::now();
    let lab = PatroniLab::start(PatroniOptions::default().nodes(3))
        .await
        .expect("start the Patroni lab (run scripts/install-deps.sh?)");
    println!("Patroni cluster of 3 ready in {:.2} s", lab.bootstrap_time().as_secs_f64());
    let schema =
        rpo_exporter::engine::schema_sql("postgres", &"rpo.heartbeat".parse().unwrap(), ROLE, None, None)
            .unwrap();
    lab.create_role(ROLE, PASSWORD, &schema).await.unwrap();
    let secrets = tempfile::tempdir().unwrap();
    let password_file = secrets.path().join("password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
    let mut nodes = String::new();
    for node in lab.nodes() {
        node.client_proxy().set_delay(ONE_WAY);
        nodes += &format!(
            "      - name: {}\n        region: {}\n        engine: postgres\n        dsn: \"{}\"\n        password_file: {}\n",
            node.name(),
            node.region(),
            node.dsn(ROLE, "postgres"),
            password_file.display()
        );
    }
    let exporter = Exporter::start(&format!(
        "clusters:\n  - name: {CLUSTER}\n    rpo: 30s\n    rto: 5m\n    write_mode: single-writer\n    heartbeat: {{ interval: 1s, create_table: false }}\n    nodes:\n{nodes}"
    ))
    .await;
    let names = Names(&lab);
    let two_intervals = 2.0 * INTERVAL.as_secs_f64();
    for replica in ["pg2", "pg3"] {
        wait_for_pair(&exporter, &names.pair("pg1", replica)).await;
    }

    // 1. Switchover pg1 → pg2.
    let (asked, done) = lab.switchover("pg2").await.unwrap();
    let (patroni_at, _) = lab.wait_leader_logged("pg2", asked, Duration::from_secs(10)).await.unwrap();
    let limit = Duration::from_secs(20);
    let writable = first_seen(&exporter, "pg2 writable", limit, |m| {
        m.get("rpo_node_writable", &names.node("pg2")) == Some(1.0)
            && m.get("rpo_heartbeat_writes_total", &names.node("pg2")).is_some_and(|w| w >= 1.0)
    })
    .await;
    let new_pair =
        first_seen(&exporter, "pg2 → pg3 lag", limit, |m| m.get(LAG, &names.pair("pg2", "pg3")).is_some())
            .await;
    let old_gone = first_seen(&exporter, "pg1's pairs gone", limit, |m| {
        ["pg2", "pg3"].iter().all(|r| m.get(LAG, &names.pair("pg1", r)).is_none())
            && m.get("rpo_node_writable", &names.node("pg1")) != Some(1.0)
    })
    .await;
    let old_replica = first_seen(&exporter, "pg1 a replica of pg2", Duration::from_secs(40), |m| {
        m.get("rpo_node_writable", &names.node("pg1")) == Some(0.0)
            && m.get(LAG, &names.pair("pg2", "pg1")).is_some()
    })
    .await;
    println!(
        "switchover: Patroni answered {:.2} s after the request (pg2 took the key at +{:.2} s); from the answer: \
         pg2 writable with heartbeats {:+.2} s, pg2 → pg3 lag {:+.2} s, pg1's pairs gone {:+.2} s, \
         pg1 back as a replica of pg2 {:+.2} s; pg2 → pg3 lag {:.2} s after pg2 took the key",
        secs(asked, done),
        secs(asked, patroni_at),
        secs(done, writable),
        secs(done, new_pair),
        secs(done, old_gone),
        secs(done, old_replica),
        secs(patroni_at, new_pair),
    );
    for (what, at) in [("pg2 → pg3 lag", new_pair), ("pg1's pairs gone", old_gone)] {
        assert!(
            secs(done, at) <= two_intervals,
            "switchover: {what} {:.2} s after Patroni's answer",
            secs(done, at)
        );
    }
    let m = exporter.scrape().await;
    assert_eq!(m.get("rpo_cluster_writable_nodes", &labels(&[("db_cluster", CLUSTER)])), Some(1.0));
    for node in ["pg1", "pg2"] {
        assert!(m.get("rpo_node_role_changes_total", &names.node(node)) >= Some(1.0), "{node} changed role");
    }

    // 2. The region of pg2, the leader now, dies.
    let killed_at = lab.kill_region("pg2").unwrap();
    let down = first_seen(&exporter, "pg2 down", Duration::from_secs(10), |m| {
        m.get("rpo_node_up", &names.node("pg2")) == Some(0.0)
    })
    .await;
    let new = lab.wait_leader_change("pg2", Duration::from_secs(60)).await.unwrap();
    let other = if new == "pg1" { "pg3" } else { "pg1" };
    let (patroni_at, message) =
        lab.wait_leader_logged(&new, killed_at, Duration::from_secs(10)).await.unwrap();
    let new_pair =
        first_seen(&exporter, "new primary's lag", limit, |m| m.get(LAG, &names.pair(&new, other)).is_some())
            .await;
    let old_gone = first_seen(&exporter, "pg2's pairs gone", limit, |m| {
        m.get(LAG, &names.pair("pg2", other)).is_none()
            && m.get(LAG, &names.pair("pg2", &new)).is_none()
            && m.get("rpo_node_writable", &names.node(&new)) == Some(1.0)
    })
    .await;
    println!(
        "failover: pg2 down in the exporter {:.2} s after the kill; Patroni promoted {new} ({message:?}) {:.2} s after \
         the kill; from Patroni's leader change: {new} → {other} lag {:+.2} s, pg2's pairs gone {:+.2} s",
        secs(killed_at, down),
        secs(killed_at, patroni_at),
        secs(patroni_at, new_pair),
        secs(patroni_at, old_gone),
    );
    for (what, at) in [("new primary's lag", new_pair), ("pg2's pairs gone", old_gone)] {
        assert!(
            secs(patroni_at, at) <= two_intervals,
            "failover: {what} {:.2} s after Patroni's leader change",
            secs(patroni_at, at)
        );
    }
    let m = exporter.scrape().await;
    let pg2 = names.node("pg2");
    assert_eq!(m.get("rpo_node_up", &pg2), Some(0.0), "the killed node is down");
    assert_eq!(m.get("rpo_node_writable", &pg2), None, "a down node has no role");
    assert_eq!(m.get("rpo_cluster_writable_nodes", &labels(&[("db_cluster", CLUSTER)])), Some(1.0));
    assert!(m.get(LAG, &names.pair(&new, "pg2")).is_none(), "no lag is read from a dead replica");
    println!("test wall time {:.1} s", started.elapsed().as_secs_f64());
}
