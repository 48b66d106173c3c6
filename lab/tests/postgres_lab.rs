//! Integration tests of the PostgreSQL lab against real servers: cascading replication,
//! kill/start, freeze/thaw, roles and passwords, promotion, cleanup.

use std::time::{Duration, Instant};

use rpo_lab::{PgLab, PgLabSpec};

fn cascade() -> PgLabSpec {
    PgLabSpec::new().primary("p").replica("r1", "p").replica("r2", "r1")
}

#[tokio::test]
async fn cascading_replica_receives_rows_from_the_primary() {
    let t0 = Instant::now();
    let lab = PgLab::start(cascade()).await.unwrap();
    eprintln!("3-node lab up in {:?} at {}", t0.elapsed(), lab.dir().display());

    let p = lab.node("p");
    assert_eq!(lab.primary().name(), "p");
    assert_eq!(p.superuser_dsn(), format!("host=127.0.0.1 port={} user=postgres dbname=postgres", p.port()));
    p.execute("CREATE TABLE t (id int primary key, v text); INSERT INTO t VALUES (1, 'hello')")
        .await
        .unwrap();
    lab.node("r2")
        .wait_for_value("SELECT v FROM t WHERE id = 1", "hello", Duration::from_secs(10))
        .await
        .unwrap();

    // Topology as the servers see it: r2 streams from r1, r1 from p, with slots.
    let r1_senders = lab
        .node("r1")
        .query_one_string("SELECT application_name || ':' || state FROM pg_stat_replication")
        .await
        .unwrap();
    assert_eq!(r1_senders.as_deref(), Some("r2:streaming"));
    let p_slot =
        p.query_one_string("SELECT slot_name || ':' || active FROM pg_replication_slots").await.unwrap();
    assert_eq!(p_slot.as_deref(), Some("r1:true"));
    assert_eq!(
        lab.node("r2").query_one_string("SELECT pg_is_in_recovery()").await.unwrap().as_deref(),
        Some("t")
    );
    // Loopback only.
    assert_eq!(p.query_one_string("SHOW listen_addresses").await.unwrap().as_deref(), Some("127.0.0.1"));

    let dir = lab.dir().to_path_buf();
    let pids: Vec<u32> = lab.nodes().iter().map(|n| n.pid().unwrap()).collect();
    lab.shutdown().await;
    assert!(!dir.exists(), "lab directory removed");
    for pid in pids {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        assert!(state.is_empty(), "postmaster {pid} is gone: {state}");
    }
}

#[tokio::test]
async fn killed_replica_restarts_and_catches_up() {
    let t0 = Instant::now();
    let lab = PgLab::start(PgLabSpec::new().primary("p").replica("r", "p")).await.unwrap();
    eprintln!("2-node lab up in {:?}", t0.elapsed());
    let (p, r) = (lab.node("p"), lab.node("r"));
    p.execute("CREATE TABLE t (id int)").await.unwrap();

    let old_pid = r.pid().unwrap();
    r.kill().unwrap();
    assert!(r.pid().is_none());
    assert!(r.client().await.is_err(), "killed replica refuses connections");
    p.execute("INSERT INTO t VALUES (42)").await.unwrap();

    let t0 = Instant::now();
    r.start().unwrap();
    r.wait_replicating().await.unwrap();
    eprintln!("replica restarted after kill and streaming in {:?}", t0.elapsed());
    assert_ne!(r.pid().unwrap(), old_pid);
    r.wait_for_value("SELECT count(*) FROM t WHERE id = 42", "1", Duration::from_secs(10)).await.unwrap();

    // A clean stop and start works too.
    r.stop().unwrap();
    assert!(r.pid().is_none());
    r.start().unwrap();
    r.wait_replicating().await.unwrap();

    // The replica reconnects by itself when its upstream comes back after a crash
    // (wal_retrieve_retry_interval = 1s).
    p.kill().unwrap();
    p.start().unwrap();
    let t0 = Instant::now();
    r.wait_replicating().await.unwrap();
    eprintln!("replica streaming again {:?} after its primary restarted", t0.elapsed());
    p.execute("INSERT INTO t VALUES (43)").await.unwrap();
    r.wait_for_value("SELECT count(*) FROM t WHERE id = 43", "1", Duration::from_secs(10)).await.unwrap();
}

#[tokio::test]
async fn frozen_node_hangs_queries_until_thawed() {
    let lab = PgLab::start(PgLabSpec::new().primary("p").replica("r", "p")).await.unwrap();
    let r = lab.node("r");
    let client = r.client().await.unwrap();
    client.simple_query("SELECT 1").await.unwrap();

    r.freeze().unwrap();
    let frozen = tokio::time::timeout(Duration::from_secs(1), client.simple_query("SELECT 1")).await;
    assert!(frozen.is_err(), "query to a frozen node must hang");
    let connect = tokio::time::timeout(Duration::from_secs(1), r.client()).await;
    assert!(connect.is_err(), "connecting to a frozen node must hang");

    r.thaw().unwrap();
    let thawed = tokio::time::timeout(Duration::from_secs(5), client.simple_query("SELECT 1")).await;
    assert!(thawed.is_ok(), "query answers after thaw");
    r.wait_replicating().await.unwrap();
    // Dropping the lab with a frozen node must still stop it.
    r.freeze().unwrap();
}

#[tokio::test]
async fn non_superusers_need_their_password() {
    let lab = PgLab::start(PgLabSpec::new().primary("p").replica("r", "p")).await.unwrap();
    lab.create_role("reader", "s3cret-'quoted", "CREATE TABLE hb (x int); GRANT SELECT ON hb TO reader;")
        .await
        .unwrap();
    for node in lab.nodes() {
        let base = node.dsn("reader");
        let without = tokio_postgres::connect(&base, tokio_postgres::NoTls).await;
        assert!(without.is_err(), "{}: login without password must fail", node.name());
        let wrong = tokio_postgres::connect(&format!("{base} password=nope"), tokio_postgres::NoTls).await;
        assert!(wrong.is_err(), "{}: wrong password must fail", node.name());
        let mut config: tokio_postgres::Config = base.parse().unwrap();
        config.password("s3cret-'quoted");
        let (client, conn) = config.connect(tokio_postgres::NoTls).await.unwrap();
        tokio::spawn(conn);
        let n: i64 = client.query_one("SELECT count(*) FROM hb", &[]).await.unwrap().get(0);
        assert_eq!(n, 0);
    }
    // The server never saw the password itself.
    for node in lab.nodes() {
        let log = std::fs::read_to_string(node.log_file()).unwrap();
        assert!(!log.contains("s3cret"), "{} log leaks the password", node.name());
    }
    let stored = lab
        .primary()
        .query_one_string("SELECT rolpassword FROM pg_authid WHERE rolname = 'reader'")
        .await
        .unwrap()
        .unwrap();
    assert!(stored.starts_with("SCRAM-SHA-256$"));
}

#[tokio::test]
async fn promoted_replica_accepts_writes() {
    let lab = PgLab::start(PgLabSpec::new().primary("p").replica("r", "p")).await.unwrap();
    lab.run_sql_script("p", "CREATE TABLE t (id int); INSERT INTO t VALUES (1);").await.unwrap();
    lab.wait_replayed(Duration::from_secs(10)).await.unwrap();
    let r = lab.node("r");
    assert!(r.execute("INSERT INTO t VALUES (2)").await.is_err(), "standby is read-only");
    lab.node("p").stop().unwrap();
    r.promote().await.unwrap();
    r.execute("INSERT INTO t VALUES (2)").await.unwrap();
    assert_eq!(r.query_one_string("SELECT count(*) FROM t").await.unwrap().as_deref(), Some("2"));
}

#[tokio::test]
async fn bad_specs_are_rejected() {
    for spec in [
        PgLabSpec::new(),
        PgLabSpec::new().replica("r", "p"),
        PgLabSpec::new().primary("p").replica("r", "nope"),
        PgLabSpec::new().primary("p").primary("q"),
        PgLabSpec::new().primary("p").replica("p", "p"),
        PgLabSpec::new().primary("bad name"),
    ] {
        let err = PgLab::start(spec.clone()).await.unwrap_err();
        eprintln!("{spec:?}: {err}");
    }
}

/// A panicking test still stops its servers (Drop runs during unwinding).
#[tokio::test]
async fn servers_stop_when_a_test_panics() {
    let lab = PgLab::start(PgLabSpec::new().primary("p")).await.unwrap();
    let pid = lab.primary().pid().unwrap();
    let dir = lab.dir().to_path_buf();
    let panicked = std::thread::spawn(move || {
        let _lab = lab;
        panic!("deliberate");
    })
    .join();
    assert!(panicked.is_err());
    assert!(!dir.exists());
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    assert!(state.is_empty(), "postmaster {pid} still there: {state}");
}

/// Runs in a child process (see `servers_stop_when_the_test_process_is_killed`): starts a
/// lab, reports it on stdout and waits to be SIGKILLed.
#[tokio::test]
#[ignore = "helper: run by servers_stop_when_the_test_process_is_killed"]
async fn helper_hold_a_lab_until_killed() {
    if std::env::var_os("RPO_LAB_HOLD").is_none() {
        return;
    }
    let lab = PgLab::start(PgLabSpec::new().primary("p").replica("r", "p")).await.unwrap();
    lab.node("r").freeze().unwrap(); // cleanup must cope with frozen servers too
    let pids: Vec<String> = lab.nodes().iter().map(|n| n.pid().unwrap().to_string()).collect();
    println!("LAB {} {}", lab.dir().display(), pids.join(","));
    tokio::time::sleep(Duration::from_secs(120)).await;
}

/// A test process killed with SIGKILL runs no destructor: the lab's watchdog must stop
/// the servers and remove the directory.
#[test]
fn servers_stop_when_the_test_process_is_killed() {
    use std::io::BufRead;
    let mut child = std::process::Command::new(std::env::current_exe().unwrap())
        .args(["--exact", "helper_hold_a_lab_until_killed", "--ignored", "--nocapture"])
        .env("RPO_LAB_HOLD", "1")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    let line = stdout
        .lines()
        .map_while(Result::ok)
        .find(|l| l.starts_with("LAB "))
        .expect("helper reported its lab");
    let mut parts = line.split_whitespace().skip(1);
    let dir = std::path::PathBuf::from(parts.next().unwrap());
    let pids: Vec<u32> = parts.next().unwrap().split(',').map(|p| p.parse().unwrap()).collect();
    assert!(dir.exists());

    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let alive = |pid: u32| {
        std::fs::read_to_string(format!("/proc/{pid}/stat"))
            .map(|s| !s.rsplit(')').next().unwrap_or("").trim_start().starts_with('Z'))
            .unwrap_or(false)
    };
    let deadline = Instant::now() + Duration::from_secs(15);
    while (dir.exists() || pids.iter().any(|&p| alive(p))) && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(!dir.exists(), "watchdog removed {}", dir.display());
    for pid in pids {
        assert!(!alive(pid), "postmaster {pid} survived its test process");
    }
}
