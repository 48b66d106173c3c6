//! Integration tests of the MariaDB lab against real servers: chained and multi-source GTID
//! replication, stopping replication threads, accounts and passwords over TCP, kill/start,
//! freeze/thaw, cleanup.

use std::time::{Duration, Instant};

use mysql_async::prelude::Queryable;
use rpo_lab::{MariaLab, MariaLabSpec};

/// Whether process `pid` still exists (zombies count as gone).
fn alive(pid: u32) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    match stat.rfind(')') {
        Some(i) => !matches!(stat[i + 1..].split_whitespace().next(), Some("Z" | "X")),
        None => false,
    }
}

#[tokio::test]
async fn chained_replica_receives_rows_from_the_primary() {
    let t0 = Instant::now();
    let lab = MariaLab::start(MariaLabSpec::new().primary("a").replica("b", &["a"]).replica("c", &["b"]))
        .await
        .unwrap();
    eprintln!(
        "MariaDB primary + replica + chained replica up in {:?} at {}",
        t0.elapsed(),
        lab.dir().display()
    );

    let (a, b, c) = (lab.node("a"), lab.node("b"), lab.node("c"));
    assert!(a.is_primary() && !b.is_primary() && !c.is_primary());
    assert_eq!([a.server_id(), b.server_id(), c.server_id()], [1, 2, 3]);
    assert_eq!(a.dsn("rpo"), format!("mysql://rpo@127.0.0.1:{}/", a.port()));
    lab.run_on_primaries(
        "CREATE DATABASE rpo; CREATE TABLE rpo.t (id INT PRIMARY KEY, v TEXT); INSERT INTO rpo.t VALUES (1, 'hello')",
    )
    .await
    .unwrap();
    // run_on_primaries waited for every replica: no polling needed.
    assert_eq!(
        c.query_one_string("SELECT v FROM rpo.t WHERE id = 1").await.unwrap().as_deref(),
        Some("hello")
    );
    a.exec("INSERT INTO rpo.t VALUES (2, NULL)").await.unwrap();
    c.wait_for_value("SELECT COUNT(*) FROM rpo.t", "2", Duration::from_secs(10)).await.unwrap();
    assert_eq!(c.query_one_string("SELECT v FROM rpo.t WHERE id = 2").await.unwrap(), None);

    for (node, ro) in [(a, "0"), (b, "1"), (c, "1")] {
        assert_eq!(
            node.query_one_string("SELECT @@read_only").await.unwrap().as_deref(),
            Some(ro),
            "{node:?}"
        );
        assert_eq!(
            node.query_one_string("SELECT @@bind_address").await.unwrap().as_deref(),
            Some("127.0.0.1")
        );
    }
    // The GTIDs come from a's domain, through b, to c.
    let a_pos = a.query_one_string("SELECT @@gtid_binlog_pos").await.unwrap().unwrap();
    assert!(a_pos.starts_with(&format!("{}-{}-", a.gtid_domain_id(), a.server_id())), "{a_pos}");
    c.wait_for_value("SELECT @@gtid_slave_pos", &a_pos, Duration::from_secs(10)).await.unwrap();
    // Topology as the servers see it.
    let c_status = c.replication_status().await.unwrap();
    assert_eq!(c_status.len(), 1);
    assert_eq!(c_status[0]["Master_Port"].as_deref(), Some(b.port().to_string().as_str()));
    assert_eq!(c_status[0]["Connection_name"].as_deref(), Some(""));
    assert_eq!(c_status[0]["Using_Gtid"].as_deref(), Some("Slave_Pos"));

    let dir = lab.dir().to_path_buf();
    let pids: Vec<u32> = lab.nodes().iter().map(|n| n.pid().unwrap()).collect();
    let t0 = Instant::now();
    lab.shutdown().await;
    eprintln!("3-node MariaDB lab shut down in {:?}", t0.elapsed());
    assert!(!dir.exists(), "lab directory removed");
    for pid in pids {
        assert!(!alive(pid), "mariadbd {pid} is gone");
    }
}

#[tokio::test]
async fn sql_thread_stops_and_starts_through_exec() {
    let t0 = Instant::now();
    let lab = MariaLab::start(MariaLabSpec::new().primary("a").replica("b", &["a"])).await.unwrap();
    eprintln!("MariaDB primary + replica up in {:?}", t0.elapsed());
    let (a, b) = (lab.node("a"), lab.node("b"));

    b.exec("STOP SLAVE SQL_THREAD").await.unwrap();
    let status = b.query_rows("SHOW SLAVE STATUS").await.unwrap();
    let get = |row: &[(String, Option<String>)], col: &str| {
        row.iter().find(|(c, _)| c == col).and_then(|(_, v)| v.clone())
    };
    assert_eq!(get(&status[0], "Slave_SQL_Running").as_deref(), Some("No"));
    assert_eq!(get(&status[0], "Slave_IO_Running").as_deref(), Some("Yes"));
    assert_eq!(get(&status[0], "Seconds_Behind_Master"), None, "NULL while the SQL thread is stopped");

    // Writes arrive (IO thread) but are not applied.
    a.exec("CREATE DATABASE rpo; CREATE TABLE rpo.t (id INT PRIMARY KEY); INSERT INTO rpo.t VALUES (1)")
        .await
        .unwrap();
    let err = lab.wait_replicated(Duration::from_millis(500)).await.unwrap_err();
    assert!(format!("{err:#}").contains("SQL No"), "{err:#}");
    assert_eq!(
        b.query_one_string("SELECT COUNT(*) FROM information_schema.schemata WHERE schema_name = 'rpo'")
            .await
            .unwrap()
            .as_deref(),
        Some("0")
    );

    b.exec("START SLAVE SQL_THREAD").await.unwrap();
    lab.wait_replicated(Duration::from_secs(10)).await.unwrap();
    assert_eq!(b.query_one_string("SELECT COUNT(*) FROM rpo.t").await.unwrap().as_deref(), Some("1"));
    b.wait_replication_running(Duration::from_secs(5)).await.unwrap();
}

#[tokio::test]
async fn multi_source_replica_receives_from_both_primaries() {
    let t0 = Instant::now();
    let lab = MariaLab::start(MariaLabSpec::new().primary("a").primary("a2").replica("m", &["a", "a2"]))
        .await
        .unwrap();
    eprintln!("MariaDB 2 primaries + multi-source replica up in {:?}", t0.elapsed());
    let (a, a2, m) = (lab.node("a"), lab.node("a2"), lab.node("m"));
    assert_ne!(a.gtid_domain_id(), a2.gtid_domain_id());
    assert_eq!(m.connection_name("a"), Some("a"));
    assert_eq!(m.connection_name("a2"), Some("a2"));

    lab.run_on_primaries(
        "CREATE DATABASE IF NOT EXISTS rpo; CREATE TABLE IF NOT EXISTS rpo.t (id INT PRIMARY KEY, src TEXT)",
    )
    .await
    .unwrap();
    a.exec("INSERT INTO rpo.t VALUES (1, 'a')").await.unwrap();
    a2.exec("INSERT INTO rpo.t VALUES (2, 'a2')").await.unwrap();
    lab.wait_replicated(Duration::from_secs(10)).await.unwrap();
    assert_eq!(
        m.query_one_string("SELECT GROUP_CONCAT(src ORDER BY id) FROM rpo.t").await.unwrap().as_deref(),
        Some("a,a2")
    );

    let status = m.replication_status().await.unwrap();
    let mut names: Vec<&str> = status.iter().map(|r| r["Connection_name"].as_deref().unwrap()).collect();
    names.sort();
    assert_eq!(names, ["a", "a2"]);
    for row in &status {
        let upstream = lab.node(row["Connection_name"].as_deref().unwrap());
        assert_eq!(row["Master_Port"].as_deref(), Some(upstream.port().to_string().as_str()));
        assert_eq!(row["Slave_IO_Running"].as_deref(), Some("Yes"));
        assert_eq!(row["Slave_SQL_Running"].as_deref(), Some("Yes"));
    }
    // Stopping one connection leaves the other applying.
    m.exec("STOP SLAVE 'a2' SQL_THREAD").await.unwrap();
    a.exec("INSERT INTO rpo.t VALUES (3, 'a')").await.unwrap();
    a2.exec("INSERT INTO rpo.t VALUES (4, 'a2')").await.unwrap();
    m.wait_for_value("SELECT COUNT(*) FROM rpo.t WHERE id = 3", "1", Duration::from_secs(10)).await.unwrap();
    assert_eq!(
        m.query_one_string("SELECT COUNT(*) FROM rpo.t WHERE id = 4").await.unwrap().as_deref(),
        Some("0")
    );
    m.exec("START SLAVE 'a2' SQL_THREAD").await.unwrap();
    lab.wait_replicated(Duration::from_secs(10)).await.unwrap();
    assert_eq!(m.query_one_string("SELECT COUNT(*) FROM rpo.t").await.unwrap().as_deref(), Some("4"));
}

#[tokio::test]
async fn created_user_logs_in_over_tcp_with_its_password_only() {
    let lab = MariaLab::start(MariaLabSpec::new().primary("a").replica("b", &["a"])).await.unwrap();
    lab.run_on_primaries(
        "CREATE DATABASE rpo; CREATE TABLE rpo.heartbeat (id INT PRIMARY KEY, ts DATETIME(6))",
    )
    .await
    .unwrap();
    lab.create_user(
        "rpo_writer",
        "s3cret'pw",
        "GRANT SELECT, INSERT, UPDATE ON rpo.* TO 'rpo_writer'@'127.0.0.1'",
    )
    .await
    .unwrap();
    // Only the hash went to the servers.
    let hash = lab
        .node("b")
        .query_one_string("SELECT authentication_string FROM mysql.user WHERE user = 'rpo_writer'")
        .await
        .unwrap()
        .unwrap();
    assert!(hash.starts_with('*') && hash.len() == 41, "{hash}");

    for node in lab.nodes() {
        let url = format!("{}?prefer_socket=false", node.dsn("rpo_writer"));
        let base = mysql_async::Opts::from_url(&url).unwrap();
        let with_pw = mysql_async::OptsBuilder::from_opts(base.clone()).pass(Some("s3cret'pw"));
        let mut conn = mysql_async::Conn::new(with_pw).await.unwrap();
        let who: Option<String> = conn.query_first("SELECT CURRENT_USER()").await.unwrap();
        assert_eq!(who.as_deref(), Some("rpo_writer@127.0.0.1"));
        if node.is_primary() {
            conn.query_drop("INSERT INTO rpo.heartbeat VALUES (1, NOW(6))").await.unwrap();
        } else {
            // read_only holds for an account without SUPER.
            let err = conn.query_drop("INSERT INTO rpo.heartbeat VALUES (2, NOW(6))").await.unwrap_err();
            assert!(err.to_string().contains("read-only"), "{err}");
        }
        conn.disconnect().await.unwrap();

        let err = mysql_async::Conn::new(base).await.map(|_| ()).unwrap_err();
        assert!(err.to_string().contains("Access denied"), "{err}");
        let wrong = mysql_async::OptsBuilder::from_opts(mysql_async::Opts::from_url(&url).unwrap())
            .pass(Some("nope"));
        assert!(mysql_async::Conn::new(wrong).await.is_err());
    }
    // The default dsn (prefer_socket on) works too: the switch to the socket fails for an
    // account that only exists @127.0.0.1, so the client stays on TCP.
    let opts = mysql_async::OptsBuilder::from_opts(
        mysql_async::Opts::from_url(&lab.node("a").dsn("rpo_writer")).unwrap(),
    )
    .pass(Some("s3cret'pw"));
    let mut conn = mysql_async::Conn::new(opts).await.unwrap();
    let who: Option<String> = conn.query_first("SELECT CURRENT_USER()").await.unwrap();
    assert_eq!(who.as_deref(), Some("rpo_writer@127.0.0.1"));
    conn.disconnect().await.unwrap();
}

#[tokio::test]
async fn replica_survives_kill_and_freeze() {
    let lab = MariaLab::start(MariaLabSpec::new().primary("a").replica("b", &["a"])).await.unwrap();
    let (a, b) = (lab.node("a"), lab.node("b"));
    lab.run_on_primaries("CREATE DATABASE rpo; CREATE TABLE rpo.t (id INT PRIMARY KEY)").await.unwrap();

    // kill -9, write meanwhile, start: it catches up.
    let old_pid = b.pid().unwrap();
    b.kill().unwrap();
    assert_eq!(b.pid(), None);
    assert!(!alive(old_pid));
    assert!(b.query_one_string("SELECT 1").await.is_err());
    a.exec("INSERT INTO rpo.t VALUES (1)").await.unwrap();
    let t0 = Instant::now();
    b.start().unwrap();
    eprintln!("killed replica restarted in {:?}", t0.elapsed());
    assert_ne!(b.pid(), Some(old_pid));
    lab.wait_replicated(Duration::from_secs(10)).await.unwrap();
    b.wait_replication_running(Duration::from_secs(10)).await.unwrap();
    assert_eq!(b.query_one_string("SELECT COUNT(*) FROM rpo.t").await.unwrap().as_deref(), Some("1"));

    // Clean stop and start.
    b.stop().unwrap();
    assert_eq!(b.pid(), None);
    a.exec("INSERT INTO rpo.t VALUES (2)").await.unwrap();
    b.start().unwrap();
    lab.wait_replicated(Duration::from_secs(10)).await.unwrap();

    // Frozen: a client with a 1 s timeout gets nothing; thawed, it works again.
    b.freeze().unwrap();
    let frozen = tokio::time::timeout(Duration::from_secs(1), b.query_one_string("SELECT 1")).await;
    assert!(frozen.is_err(), "a frozen server must not answer: {frozen:?}");
    let tcp = format!("{}?prefer_socket=false", b.dsn("root"));
    let frozen_tcp = tokio::time::timeout(Duration::from_secs(1), mysql_async::Conn::from_url(&tcp)).await;
    assert!(frozen_tcp.is_err(), "nor over TCP");
    a.exec("INSERT INTO rpo.t VALUES (3)").await.unwrap();
    b.thaw().unwrap();
    let answer = tokio::time::timeout(Duration::from_secs(1), b.query_one_string("SELECT 1")).await;
    assert_eq!(answer.unwrap().unwrap().as_deref(), Some("1"));
    lab.wait_replicated(Duration::from_secs(10)).await.unwrap();
    assert_eq!(b.query_one_string("SELECT COUNT(*) FROM rpo.t").await.unwrap().as_deref(), Some("3"));

    // A primary restart: the replica reconnects by itself (MASTER_CONNECT_RETRY=1).
    a.kill().unwrap();
    a.start().unwrap();
    a.exec("INSERT INTO rpo.t VALUES (4)").await.unwrap();
    lab.wait_replicated(Duration::from_secs(15)).await.unwrap();
    b.wait_replication_running(Duration::from_secs(10)).await.unwrap();
}

#[tokio::test]
async fn no_server_survives_drop() {
    let lab = MariaLab::start(MariaLabSpec::new().primary("a").replica("b", &["a"])).await.unwrap();
    let pids: Vec<u32> = lab.nodes().iter().map(|n| n.pid().unwrap()).collect();
    let dir = lab.dir().to_path_buf();
    lab.node("b").freeze().unwrap(); // Drop must thaw it first.
    let t0 = Instant::now();
    drop(lab);
    eprintln!("2-node MariaDB lab (one frozen) dropped in {:?}", t0.elapsed());
    for pid in pids {
        assert!(!alive(pid), "mariadbd {pid} survived the lab");
    }
    assert!(!dir.exists());
}

#[tokio::test]
async fn bad_specs_are_refused() {
    let no_primary = MariaLab::start(MariaLabSpec::new().replica("b", &["a"])).await.unwrap_err();
    assert!(format!("{no_primary:#}").contains("no primary"), "{no_primary:#}");
    let forward = MariaLab::start(MariaLabSpec::new().primary("a").replica("b", &["c"])).await.unwrap_err();
    assert!(format!("{forward:#}").contains("declared before"), "{forward:#}");
}

#[tokio::test]
async fn start_up_times() {
    // The first lab of a process also initialises the template data directory.
    let specs = [
        ("primary + replica", MariaLabSpec::new().primary("a").replica("b", &["a"])),
        (
            "primary + replica + chained replica",
            MariaLabSpec::new().primary("a").replica("b", &["a"]).replica("c", &["b"]),
        ),
    ];
    for round in 0..2 {
        for (what, spec) in &specs {
            let t0 = Instant::now();
            let lab = MariaLab::start(spec.clone()).await.unwrap();
            let up = t0.elapsed();
            let t0 = Instant::now();
            lab.shutdown().await;
            eprintln!("round {round}: MariaDB {what} up in {up:?}, down in {:?}", t0.elapsed());
            assert!(up < Duration::from_secs(20));
        }
    }
}
