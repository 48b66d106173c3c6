//! Integration test of the Patroni lab against real Patroni, etcd and PostgreSQL: a
//! two-node cluster bootstraps with a leader and a streaming replica, routed through the
//! lab's proxies; killing the leader's region gets the replica promoted by Patroni, and
//! the region rejoins as a replica; a switchover, then a partition of the leader.

use std::time::{Duration, Instant, SystemTime};

use rpo_lab::{PatroniLab, PatroniOptions};

#[tokio::test]
async fn killing_the_leaders_region_promotes_the_replica() {
    let lab = PatroniLab::start(PatroniOptions::default()).await.unwrap();
    eprintln!("2-node Patroni cluster ready in {:?} at {}", lab.bootstrap_time(), lab.dir().display());

    // pg1 bootstrapped and leads; pg2 streams from it through pg1's replication proxy.
    assert_eq!(lab.leader().await.unwrap(), "pg1");
    let (pg1, pg2) = (lab.node("pg1"), lab.node("pg2"));
    assert_eq!((pg1.region(), pg2.region()), ("us-east-1", "eu-west-1"));
    assert!(pg1.is_writable().await.unwrap());
    assert!(!pg2.is_writable().await.unwrap());
    // Patroni may restart pg2's WAL receiver right after the lab is ready (the row is
    // then gone for a moment, as CI saw once): the upstream of the next streaming one.
    let deadline = Instant::now() + Duration::from_secs(30);
    let upstream = loop {
        let sql = "SELECT sender_port FROM pg_stat_wal_receiver WHERE status = 'streaming'";
        let port = pg2.query_one_string(sql).await.unwrap();
        if port.is_some() || Instant::now() >= deadline {
            break port;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(upstream, Some(pg1.replication_port().to_string()));
    assert!(
        pg1.dcs_proxy().open() > 0 && pg2.dcs_proxy().open() > 0,
        "Patroni reaches etcd through its proxy"
    );
    let (status, cluster) = pg2.rest_get("/cluster").await.unwrap();
    assert_eq!(status, 200, "{cluster}");
    assert_eq!(cluster["members"].as_array().map(Vec::len), Some(2), "{cluster}");

    // A role through the client proxy, replicated to pg2.
    lab.create_role("app", "app-secret", "CREATE TABLE t (v int); GRANT INSERT, SELECT ON t TO app")
        .await
        .unwrap();
    assert_eq!(
        pg2.query_one_string("SELECT count(*) FROM pg_roles WHERE rolname = 'app'").await.unwrap().as_deref(),
        Some("1")
    );
    assert!(pg1.dsn("app", "postgres").contains(&format!("port={}", pg1.client_port())));

    // The region of the leader dies: Patroni AND PostgreSQL.
    let killed_at = lab.kill_region("pg1").unwrap();
    let t0 = Instant::now();
    assert!(!pg1.is_running() && pg1.postmaster_pid().is_none() && pg1.patroni_pid().is_none());
    let new = lab.wait_leader_change("pg1", Duration::from_secs(60)).await.unwrap();
    let key_seen = t0.elapsed();
    assert_eq!(new, "pg2");
    lab.wait_writable("pg2", Duration::from_secs(30)).await.unwrap();
    let writable = t0.elapsed();
    let (took_over, message) =
        lab.wait_leader_logged("pg2", killed_at, Duration::from_secs(10)).await.unwrap();
    assert_eq!(pg2.leader_changes().last().map(|l| l.0), Some(took_over));
    let since_kill = took_over.duration_since(killed_at).unwrap();
    eprintln!(
        "failover: leader key moved after {key_seen:?}, pg2 writable after {writable:?}; \
         Patroni logged {message:?} {since_kill:?} after the kill"
    );
    assert!(since_kill < Duration::from_secs(30), "{since_kill:?}");
    pg2.execute("INSERT INTO t VALUES (1)").await.unwrap();

    // Patroni's history has the new timeline, stamped by pg2's promotion.
    let deadline = Instant::now() + Duration::from_secs(15);
    let history = loop {
        let history = lab.history().await.unwrap();
        if !history.is_empty() || Instant::now() > deadline {
            break history;
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    let (timeline, leader, promoted) = history.last().cloned().expect("a history line");
    let after_kill = promoted.duration_since(killed_at).unwrap_or_default();
    eprintln!("history: timeline {timeline} → {leader}, promoted {after_kill:?} after the kill");
    assert_eq!((timeline, leader.as_str()), (1, "pg2"));
    assert!(promoted <= SystemTime::now());

    // The region comes back: pg1 rejoins as a replica of pg2 (pg_rewind or a new clone).
    let t1 = Instant::now();
    lab.start_region("pg1").unwrap();
    lab.wait_ready(Duration::from_secs(60)).await.unwrap();
    assert!(pg1.is_running() && !pg1.is_writable().await.unwrap());
    assert_eq!(lab.leader().await.unwrap(), "pg2");
    eprintln!("pg1 back as a streaming replica {:?} after its restart", t1.elapsed());

    let dir = lab.dir().to_path_buf();
    lab.shutdown().await;
    assert!(!dir.exists(), "lab directory removed");
}

#[tokio::test]
async fn switchover_then_partition_of_the_leader() {
    let lab = PatroniLab::start(PatroniOptions::default()).await.unwrap();
    let (pg1, pg2) = (lab.node("pg1"), lab.node("pg2"));

    // A switchover through Patroni's REST API: pg2 leads, pg1 follows it.
    let (asked, done) = lab.switchover("pg2").await.unwrap();
    assert_eq!(lab.leader().await.unwrap(), "pg2");
    let (took_over, message) = lab.wait_leader_logged("pg2", asked, Duration::from_secs(10)).await.unwrap();
    eprintln!(
        "switchover answered after {:?}; pg2 logged {message:?} {:?} after the request",
        done.duration_since(asked).unwrap(),
        took_over.duration_since(asked).unwrap_or_default()
    );
    lab.wait_ready(Duration::from_secs(60)).await.unwrap();
    assert!(pg2.is_writable().await.unwrap() && !pg1.is_writable().await.unwrap());

    // Partition the leader: it loses etcd and demotes itself (fencing); pg1 takes over.
    let t0 = Instant::now();
    lab.partition("pg2", true);
    let deadline = Instant::now() + Duration::from_secs(30);
    // Demoting, it refuses connections ("shutting down") until its walsenders finish.
    while pg2.is_writable().await.unwrap_or(false) {
        assert!(Instant::now() < deadline, "pg2 still writable\n{}", pg2.log_tail(30));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let fenced = t0.elapsed();
    let new = lab.wait_leader_change("pg2", Duration::from_secs(60)).await.unwrap();
    assert_eq!(new, "pg1");
    lab.wait_writable("pg1", Duration::from_secs(30)).await.unwrap();
    eprintln!("partition: pg2 read-only (fenced) after {fenced:?}, pg1 writable after {:?}", t0.elapsed());

    // Healed, pg2 rejoins as a replica of pg1.
    lab.partition("pg2", false);
    lab.wait_ready(Duration::from_secs(60)).await.unwrap();
    eprintln!("healed: pg2 streams again {:?} after the partition began", t0.elapsed());
    lab.shutdown().await;
}
