//! A scripted manual failover drill on MariaDB, timed by `rpo-exporter drill`:
//! the test does the lesson's steps in order (stop writes to the failed region,
//! promote the replica, shift traffic in DNS, warm the new region's caches) and
//! the drill's report must show each step, in the runbook's order, at the time
//! the test took it.

mod support;

use rpo_lab::{free_port, Knot, MariaLabSpec, Unbound, Zone};
use std::time::{Duration, Instant};
use support::dns::{servers, unix_now, EUW1, RECORD, USE1, ZONE};
use support::drill::Drill;
use support::maria::{self, MyLab};
use support::ROLE;

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_manual_failover_drill() {
    let wall = Instant::now();
    let drill_sql = rpo_exporter::engine::drill_schema_sql(
        "mysql",
        &"rpo.drill".parse().unwrap(),
        ROLE,
        Some("127.0.0.1"),
    )
    .unwrap();
    let lab = MyLab::start_with_sql(
        MariaLabSpec::new().primary("a").replica("b", &["a"]),
        &format!("{}{drill_sql}", maria::schema_sql()),
    )
    .await;
    assert_eq!((lab.region("a"), lab.region("b")), ("us-east-1", "eu-west-1"));
    // Traffic: www.lab.test. answers a's region, 1 s TTL, through two caching resolvers.
    let mut zone = Zone::new(ZONE).ttl(1).record("www", "A", USE1);
    let knot = Knot::start(&zone).await.expect("start Knot (run scripts/install-deps.sh?)");
    let mut resolvers = Vec::new();
    for _ in 0..2 {
        resolvers.push(Unbound::start(&[(ZONE, knot.port())], None).await.expect("start Unbound"));
    }
    let addrs: Vec<String> = resolvers.iter().map(Unbound::addr).collect();
    // The new region's application: it listens once its caches are warm.
    let app = free_port();
    let config = format!(
        "clusters:\n{}dns:\n  interval: 1s\n  timeout: 300ms\n  records:\n    - name: {RECORD}\n      type: A\n      follow_cluster: maria\n      answers: {{ us-east-1: {USE1}, eu-west-1: {EUW1} }}\n      resolvers: {}\n      authoritative: discover\n      discover_port: {}\nhealth:\n  interval: 1s\n  regions:\n    eu-west-1:\n      probes:\n        - {{ name: app, tcp: \"127.0.0.1:{app}\", timeout: 300ms }}\n",
        lab.cluster_yaml("maria", "single-writer", ""),
        servers(&addrs),
        knot.port()
    );
    let mut drill =
        Drill::start(&config, "maria", &["--drill.settle", "1s", "--drill.duration", "90s"]).await;
    drill.wait_acknowledged("maria", 20.0).await;

    // 1. Stop writes to the failed region; let the replica catch up.
    let stop = unix_now();
    lab.db.node("a").exec("SET GLOBAL read_only = ON").await.unwrap();
    lab.db.wait_replicated(Duration::from_secs(10)).await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    // 2. Promote the replica.
    let promote = unix_now();
    lab.db.node("b").exec("STOP SLAVE; RESET SLAVE ALL; SET GLOBAL read_only = OFF").await.unwrap();
    tokio::time::sleep(Duration::from_secs(1)).await;
    // 3. Shift traffic: the record answers the new region.
    let shift = unix_now();
    zone.set("www", "A", EUW1);
    knot.load(&zone).await.unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    // 4. Warm caches: the new region's application starts answering.
    let warm = unix_now();
    let _listener = std::net::TcpListener::bind(("127.0.0.1", app)).unwrap();

    let report = drill.finish(Duration::from_secs(30)).await;
    println!("{}", report.markdown);
    let j = &report.json;
    assert_eq!(j["end"], "complete", "{}", report.markdown);
    assert_eq!(j["old_primary"]["node"], "a");
    assert_eq!(j["new_primary"]["node"], "b");
    let t0 = j["first_failed_write"]["at"].as_f64().unwrap();
    let at = |name: &str| t0 + report.figure(name).unwrap_or_else(|| panic!("{name}: {}", report.markdown));
    // Each step where and when the test took it (the drill looks every 100 ms;
    // DNS and the probes every 250 ms, DNS answers cached for up to the 1 s TTL
    // and a second more of Unbound's whole-second clock).
    let near = |what: &str, got: f64, from: f64, to: f64| {
        assert!(
            got >= from - 0.05 && got <= to,
            "{what} at {:.3}, expected within [{:.3}, {:.3}] (t relative to stop)\n{}",
            got - stop,
            from - stop,
            to - stop,
            report.markdown
        );
    };
    near("first failed write", t0, stop, stop + 0.5);
    near("old primary fenced", at("old_primary_fenced_seconds"), stop, stop + 0.6);
    near("new primary writable", at("time_to_writable_seconds"), promote, promote + 0.6);
    near("writes resumed", at("writes_resumed_seconds"), promote, promote + 1.0);
    near("DNS on 80 %", at("dns_80_seconds"), shift, shift + 3.0);
    near("DNS on 100 %", at("dns_100_seconds"), shift, shift + 3.0);
    near("health probes pass", at("health_seconds"), warm, warm + 1.0);
    assert!(at("dns_80_seconds") <= at("dns_100_seconds"));
    // Writes stopped before the promotion: nothing lost.
    assert_eq!(report.figure("data_loss_seconds"), Some(0.0), "{}", report.markdown);
    assert_eq!(j["figures"]["data_loss_writes"], 0);
    assert_eq!(report.figure("split_brain_seconds"), Some(0.0));
    assert_eq!(j["verdicts"]["rpo"], "PASS");
    assert_eq!(j["verdicts"]["rto"], "PASS");
    // The RTO figure is the last recovery step: the health probes here.
    assert_eq!(report.figure("recovery_seconds"), report.figure("health_seconds"));
    // The timeline lists the runbook's steps in order, each step's events at
    // increasing times as the test took them.
    let steps: Vec<String> = report.timeline().iter().map(|s| s.0.clone()).collect();
    let mut sorted = steps.clone();
    sorted.sort();
    assert_eq!(steps, sorted);
    for step in ["1. stop", "2. promote", "3. shift", "4. warm", "5. resume"] {
        assert!(steps.iter().any(|s| s.starts_with(step)), "{step} missing: {steps:?}");
    }
    let ordered = [stop, promote, shift, warm];
    assert!(ordered.windows(2).all(|w| w[0] < w[1]));
    let measured =
        ["old_primary_fenced_seconds", "time_to_writable_seconds", "dns_100_seconds", "health_seconds"]
            .map(at);
    assert!(measured.windows(2).all(|w| w[0] <= w[1]), "steps out of order: {measured:?}");
    assert_eq!(report.stdout.trim(), report.markdown.trim(), "the drill prints its Markdown report");
    println!("mariadb drill test: {:.1} s wall", wall.elapsed().as_secs_f64());
}

/// A split brain, then Ctrl-C before any write failed: the drill reports the time
/// two nodes were writable, and ends at once with a partial report (no failure,
/// verdicts unknown), having served its metrics and written both tables (the drill
/// table and the probe table). The tables are made with the statements
/// `rpo-exporter schema mysql --drill-table` prints.
#[tokio::test(flavor = "multi_thread")]
async fn a_split_brain_then_ctrl_c_gives_a_partial_report() {
    let mut sql = maria::schema_sql();
    for table in ["rpo.drill", "rpo.app_probe"] {
        let out = std::process::Command::new(env!("CARGO_BIN_EXE_rpo-exporter"))
            .args(["schema", "mysql", "--drill-table", table, "--role", ROLE, "--host", "127.0.0.1"])
            .output()
            .unwrap();
        assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
        sql += &String::from_utf8(out.stdout).unwrap();
    }
    let lab = MyLab::start_with_sql(MariaLabSpec::new().primary("a").replica("b", &["a"]), &sql).await;
    let config = format!("clusters:\n{}", lab.cluster_yaml("maria", "single-writer", ""));
    let mut drill = Drill::start(&config, "maria", &["--drill.probe-table", "rpo.app_probe"]).await;
    drill.wait_acknowledged("maria", 10.0).await;
    let m = drill.scrape().await;
    let node = |n: &str| {
        vec![
            ("db_cluster", "maria".to_owned()),
            ("node", n.to_owned()),
            ("node_region", lab.region(n).to_owned()),
        ]
    };
    assert_eq!(m.get("rpo_drill_node_writable", &node("a")), Some(1.0));
    assert_eq!(m.get("rpo_drill_node_writable", &node("b")), Some(0.0));
    assert_eq!(m.get("rpo_drill_writable_nodes", &[("db_cluster", "maria".to_owned())]), Some(1.0));
    let probe = [
        ("db_cluster", "maria".to_owned()),
        ("writer", "probe".to_owned()),
        ("outcome", "acknowledged".to_owned()),
    ];
    assert!(m.get("rpo_drill_writes_total", &probe).unwrap_or(0.0) >= 1.0, "the probe writer writes");
    // The replica takes writes too for about a second (nobody writes to it).
    let cluster = [("db_cluster", "maria".to_owned())];
    lab.db.node("b").exec("SET GLOBAL read_only = OFF").await.unwrap();
    let two = Instant::now();
    let ok = support::wait_for(Duration::from_secs(5), || async {
        drill.scrape().await.get("rpo_drill_writable_nodes", &cluster) == Some(2.0)
    })
    .await;
    assert!(ok, "two writable nodes not seen; log:\n{}", drill.log());
    tokio::time::sleep(Duration::from_secs(1).saturating_sub(two.elapsed())).await;
    lab.db.node("b").exec("SET GLOBAL read_only = ON").await.unwrap();
    let split = two.elapsed().as_secs_f64();
    let ok = support::wait_for(Duration::from_secs(5), || async {
        drill.scrape().await.get("rpo_drill_writable_nodes", &cluster) == Some(1.0)
    })
    .await;
    assert!(ok, "b not seen read-only again");
    let started = Instant::now();
    drill.interrupt();
    let report = drill.finish(Duration::from_secs(10)).await;
    assert!(started.elapsed() < Duration::from_secs(5), "Ctrl-C took {:?}", started.elapsed());
    let j = &report.json;
    assert_eq!(j["end"], "interrupted");
    assert_eq!(j["first_failed_write"], serde_json::Value::Null);
    assert_eq!(j["verdicts"]["rpo"], "UNKNOWN");
    assert_eq!(j["verdicts"]["rto"], "UNKNOWN");
    assert!(report.markdown.contains("No write failed"), "{}", report.markdown);
    let seen = report.figure("split_brain_seconds").unwrap();
    println!("split brain: {split:.3} s by the test's clock, {seen:.3} s by the drill's");
    assert!((seen - split).abs() <= 0.4, "drill saw {seen:.3} s of split brain, the test made {split:.3} s");
    assert!(report.markdown.contains("Two nodes were writable between"), "{}", report.markdown);
    // The rows are really there, on the primary and replicated.
    let rows = lab.db.node("a").query_one_string("SELECT COUNT(*) FROM rpo.drill").await.unwrap().unwrap();
    assert!(rows.parse::<u64>().unwrap() >= 10, "{rows} drill rows");
    let probe_rows =
        lab.db.node("a").query_one_string("SELECT COUNT(*) FROM rpo.app_probe").await.unwrap().unwrap();
    assert!(probe_rows.parse::<u64>().unwrap() >= 1, "{probe_rows} probe rows");
}
