//! `rpo-exporter drill` under a real HA manager: Patroni with etcd (Debian's), two
//! PostgreSQL nodes standing in for two regions, the drill watching both.
//!
//! (a) The replication link to the replica goes dark for 3 s under a steady write
//! load, then the primary's region dies (SIGKILL to Patroni and PostgreSQL):
//! Patroni promotes the replica (`maximum_lag_on_failover` raised) and the last
//! ~3 s are lost. The drill's data loss must match a ground-truth writer of the
//! test's own within 0.3 s, and its time to a writable primary Patroni's own
//! promotion timestamps within 1 s.
//!
//! (b) The primary is partitioned instead (replication, client, REST and DCS links
//! black-holed; the drill reaches every node directly): Patroni fences it, promotes
//! the synchronous standby, and the drill reports the fencing, the split-brain
//! window and, with `synchronous_mode`, no data lost.

mod support;

use rpo_lab::{PatroniLab, PatroniOptions};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::drill::Drill;
use support::{PASSWORD, ROLE};

fn unix(t: SystemTime) -> f64 {
    t.duration_since(UNIX_EPOCH).unwrap().as_secs_f64()
}

fn now() -> f64 {
    unix(SystemTime::now())
}

/// Starts a two-node Patroni lab with the drill's role and table.
async fn lab(options: PatroniOptions) -> PatroniLab {
    let lab = PatroniLab::start(options.nodes(2).timing(8, 1, 3))
        .await
        .expect("start the Patroni lab (run scripts/install-deps.sh?)");
    // The drill table, and an application table of the same shape for the probe writer.
    let mut drill_sql = String::new();
    for table in ["rpo.drill", "public.app_probe"] {
        drill_sql +=
            &rpo_exporter::engine::drill_schema_sql("postgres", &table.parse().unwrap(), ROLE, None).unwrap();
    }
    lab.create_role(ROLE, PASSWORD, &drill_sql).await.expect("create the drill's role and table");
    lab
}

/// A config with the cluster `patroni` (every node reached on its own port, not
/// through the lab's proxies) and its password file, in `dir`.
fn config(lab: &PatroniLab, dir: &std::path::Path, rpo: &str, rto: &str) -> String {
    let password_file = dir.join("password");
    std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
    let nodes: String = lab
        .nodes()
        .iter()
        .map(|n| {
            format!(
                "      - name: {}\n        region: {}\n        engine: postgres\n        dsn: \"{}\"\n        password_file: {}\n",
                n.name(),
                n.region(),
                n.direct_dsn(ROLE, "postgres"),
                password_file.display()
            )
        })
        .collect();
    format!(
        "clusters:\n  - name: patroni\n    rpo: {rpo}\n    rto: {rto}\n    heartbeat: {{ interval: 1s, timeout: 1s, connect_timeout: 2s, create_table: false }}\n    nodes:\n{nodes}"
    )
}

/// The test's own writer on the leader: a row with its client time every 20 ms,
/// each acknowledgement remembered, until the first failure.
struct Truth {
    acks: Arc<Mutex<Vec<(i64, i64)>>>,
    stop: Arc<AtomicBool>,
}

impl Truth {
    async fn start(lab: &PatroniLab, leader: &str) -> Truth {
        let node = lab.node(leader);
        node.execute("CREATE TABLE public.truth (seq bigint PRIMARY KEY, client_us bigint NOT NULL)")
            .await
            .unwrap();
        let client = node.client().await.unwrap();
        let (acks, stop) = (Arc::new(Mutex::new(Vec::new())), Arc::new(AtomicBool::new(false)));
        let (a, s) = (acks.clone(), stop.clone());
        tokio::spawn(async move {
            let insert = client.prepare("INSERT INTO public.truth VALUES ($1, $2)").await.unwrap();
            let mut every = tokio::time::interval(Duration::from_millis(20));
            for seq in 1i64.. {
                every.tick().await;
                if s.load(Ordering::Relaxed) {
                    return;
                }
                let client_us = (now() * 1e6) as i64;
                match tokio::time::timeout(
                    Duration::from_secs(1),
                    client.execute(&insert, &[&seq, &client_us]),
                )
                .await
                {
                    Ok(Ok(_)) => a.lock().unwrap().push((seq, client_us)),
                    _ => return,
                }
            }
        });
        Truth { acks, stop }
    }

    fn acknowledged(&self) -> Vec<(i64, i64)> {
        self.acks.lock().unwrap().clone()
    }
}

impl Drop for Truth {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
    }
}

/// Patroni's promotion time of `leader` from its REST `/history` (when PostgreSQL
/// wrote the new timeline), waiting for Patroni to publish it.
async fn history_stamp(lab: &PatroniLab, leader: &str) -> f64 {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        if let Ok(h) = lab.history().await {
            if let Some((_, _, at)) = h.iter().rev().find(|(_, l, _)| l == leader) {
                return unix(*at);
            }
        }
        assert!(Instant::now() < deadline, "Patroni's /history never listed {leader}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_kill_the_region_after_the_link_went_dark() {
    let wall = Instant::now();
    let lab = lab(PatroniOptions::default().synchronous_mode(false).maximum_lag_on_failover(64 << 20)).await;
    let old = lab.leader().await.unwrap();
    let dir = tempfile::tempdir().unwrap();
    let mut drill = Drill::start(
        &config(&lab, dir.path(), "1s", "30s"),
        "patroni",
        &["--drill.settle", "1s", "--drill.duration", "120s", "--drill.probe-table", "public.app_probe"],
    )
    .await;
    let truth = Truth::start(&lab, &old).await;
    drill.wait_acknowledged("patroni", 20.0).await;
    assert!(truth.acknowledged().len() >= 50, "the ground-truth writer is not writing");

    // The replication link to the replica goes dark (the replica streams from the
    // leader's replication proxy); 3 s later the primary's region dies.
    lab.node(&old).replication_proxy().set_blackhole(true);
    let dark = now();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let killed = unix(lab.kill_region(&old).unwrap());
    let new = lab.wait_leader_change(&old, Duration::from_secs(60)).await.unwrap();
    lab.wait_writable(&new, Duration::from_secs(30)).await.unwrap();
    let report = drill.finish(Duration::from_secs(60)).await;

    // Ground truth: the newest row the old primary acknowledged against the newest
    // the new primary holds.
    let acks = truth.acknowledged();
    let (last_seq, last_us) = *acks.last().unwrap();
    let present = lab
        .node(&new)
        .query_one_string("SELECT seq || ' ' || client_us FROM public.truth ORDER BY seq DESC LIMIT 1")
        .await
        .unwrap()
        .expect("the new primary holds the rows from before the link went dark");
    let (present_seq, present_us) = present.split_once(' ').unwrap();
    let (present_seq, present_us): (i64, i64) = (present_seq.parse().unwrap(), present_us.parse().unwrap());
    let truth_loss = (last_us - present_us) as f64 / 1e6;
    let truth_writes = acks.iter().filter(|(s, _)| *s > present_seq).count();

    // Patroni's own timestamps of the promotion.
    let history = history_stamp(&lab, &new).await;
    let logged = unix(lab.node(&new).leader_changes().last().expect("Patroni logged its promotion").0);

    let j = &report.json;
    let t0 = j["first_failed_write"]["at"].as_f64().unwrap();
    let loss = report.figure("data_loss_seconds").expect("data loss measured");
    let writable = report.figure("time_to_writable_seconds").expect("writable measured");
    println!("{}", report.markdown);
    println!("## Ground truth (test (a): link dark 3 s, then the region killed)\n");
    println!("| | Drill | Ground truth / Patroni |\n|---|---|---|");
    println!(
        "| Data lost | {loss:.3} s ({} writes of 100 ms) | {truth_loss:.3} s ({truth_writes} writes of 20 ms: last acknowledged seq {last_seq}, newest on {new} seq {present_seq}) |",
        j["figures"]["data_loss_writes"]
    );
    println!(
        "| New primary writable | t0 + {writable:.3} s = {} | Patroni /history (timeline written) t0 + {:.3} s = {}; Patroni log \"promoted self to leader\" t0 + {:.3} s = {} |",
        rpo_exporter::drill::report::utc(t0 + writable),
        history - t0,
        rpo_exporter::drill::report::utc(history),
        logged - t0,
        rpo_exporter::drill::report::utc(logged)
    );
    println!(
        "| Link dark / region killed | | t0 {:+.3} s / t0 {:+.3} s (t0 = first failed drill write, {}) |",
        dark - t0,
        killed - t0,
        rpo_exporter::drill::report::utc(t0)
    );
    println!("\ndrill_patroni (a): {:.1} s wall", wall.elapsed().as_secs_f64());

    assert_eq!(j["old_primary"]["node"], old.as_str());
    assert_eq!(j["new_primary"]["node"], new.as_str());
    assert!(truth_loss > 2.0, "the link was dark 3 s: the ground truth lost only {truth_loss:.3} s");
    assert!((loss - truth_loss).abs() <= 0.3, "drill {loss:.3} s vs ground truth {truth_loss:.3} s");
    assert!(j["figures"]["data_loss_writes"].as_u64().unwrap() >= 20);
    // The independent probe writer, over its own connections, saw the same loss.
    let probe = j["probe_table"]["data_loss_seconds"].as_f64().expect("the probe writer's data loss");
    assert!((probe - truth_loss).abs() <= 0.3, "probe writer {probe:.3} s vs ground truth {truth_loss:.3} s");
    assert!(
        (t0 + writable - history).abs() <= 1.0,
        "drill writable at t0 + {writable:.3} s, Patroni promoted at t0 + {:.3} s",
        history - t0
    );
    assert!((t0 + writable - logged).abs() <= 1.0);
    assert!((t0 - killed).abs() <= 1.0, "the first failed write came {:.3} s after the kill", t0 - killed);
    assert!(report.figure("old_primary_unreachable_seconds").is_some(), "the dead region seen unreachable");
    assert_eq!(j["verdicts"]["rpo"], "FAIL", "3 s lost against a 1 s RPO");
    assert_eq!(j["verdicts"]["rto"], "PASS");
    assert_eq!(j["figures"]["dns_configured"], false);
    assert_eq!(report.figure("split_brain_seconds"), Some(0.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn b_partition_with_synchronous_replication_loses_nothing() {
    let wall = Instant::now();
    let lab = lab(PatroniOptions::default().synchronous_mode(true)).await;
    let old = lab.leader().await.unwrap();
    // The synchronous standby is named before the partition.
    let deadline = Instant::now() + Duration::from_secs(20);
    while lab
        .node(&old)
        .query_one_string("SHOW synchronous_standby_names")
        .await
        .unwrap()
        .unwrap_or_default()
        .is_empty()
    {
        assert!(Instant::now() < deadline, "Patroni named no synchronous standby");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut drill = Drill::start(
        &config(&lab, dir.path(), "1s", "30s"),
        "patroni",
        &["--drill.settle", "2s", "--drill.duration", "120s"],
    )
    .await;
    drill.wait_acknowledged("patroni", 20.0).await;

    let partitioned = now();
    lab.partition(&old, true);
    let new = lab.wait_leader_change(&old, Duration::from_secs(60)).await.unwrap();
    lab.wait_writable(&new, Duration::from_secs(30)).await.unwrap();
    let report = drill.finish(Duration::from_secs(60)).await;
    lab.partition(&old, false);
    let j = &report.json;
    let t0 = j["first_failed_write"]["at"].as_f64().unwrap();
    println!("{}", report.markdown);
    println!(
        "drill_patroni (b): partitioned at t0 {:+.3} s; {:.1} s wall",
        partitioned - t0,
        wall.elapsed().as_secs_f64()
    );
    assert_eq!(j["old_primary"]["node"], old.as_str());
    assert_eq!(j["new_primary"]["node"], new.as_str());
    // The first write the partition held back (waiting for the synchronous standby).
    assert!(
        (t0 - partitioned).abs() <= 1.5,
        "first failed write {:.3} s after the partition",
        t0 - partitioned
    );
    // The old primary fenced itself (read-only, or refusing connections while it demotes).
    let fenced = report.figure("old_primary_fenced_seconds");
    let gone = report.figure("old_primary_unreachable_seconds");
    let fenced_at =
        fenced.into_iter().chain(gone).reduce(f64::min).expect("the old primary's fencing observed");
    let writable = report.figure("time_to_writable_seconds").unwrap();
    assert!(fenced_at < writable, "fenced at {fenced_at:.3} s, new primary writable at {writable:.3} s");
    let split = report.figure("split_brain_seconds").expect("the split-brain window is reported");
    assert!(split <= 0.5, "Patroni fences before it promotes; the drill saw {split:.3} s of split brain");
    // Synchronous replication: every acknowledged write survived.
    assert_eq!(report.figure("data_loss_seconds"), Some(0.0), "{}", report.markdown);
    assert_eq!(j["figures"]["data_loss_writes"], 0);
    assert_eq!(j["verdicts"]["rpo"], "PASS");
}
