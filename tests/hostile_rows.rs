//! Hostile heartbeat rows and hand-made tables, on real PostgreSQL and MariaDB
//! primaries with a replica each. A row whose time or sequence is no usable
//! number (±infinity, PostgreSQL's farthest dates, a date before 2000, a NaN or
//! 128-bit sequence, a zero date) marks its own pair with its own
//! `rpo_heartbeat_row_status`; every other pair keeps its lag and exposure, and
//! the exporter neither panics nor loses the read. Tables whose `seq` has another
//! integer type work; one whose `written_at` is no time is refused by name.

mod support;

use rpo_lab::MariaLabSpec;
use std::time::Duration;
use support::maria::{self, MyLab};
use support::*;

const LAG: &str = "rpo_replication_lag_seconds";
const EXPOSURE: &str = "rpo_data_loss_exposure_seconds";
const STATUS: &str = "rpo_heartbeat_row_status";
const STATUSES: &[&str] = &[
    "ok",
    "null_timestamp",
    "invalid_timestamp",
    "invalid_sequence",
    "future_timestamp",
    "identity_mismatch",
    "missing",
];

/// Listed nodes that are down (nothing listens on `port`), in `region`: their rows
/// are live sources in a multi-writer cluster, read on every replica.
fn ghosts(names: &[&str], engine: &str, port: u16, password_file: &std::path::Path) -> String {
    let dsn = |_: &str| match engine {
        "postgres" => format!("host=127.0.0.1 port={port} user={ROLE} dbname=postgres"),
        _ => format!("mysql://{ROLE}@127.0.0.1:{port}/"),
    };
    names
        .iter()
        .map(|name| {
            format!(
                "      - name: {name}\n        region: sa-east-1\n        engine: {engine}\n        dsn: \"{}\"\n        password_file: {}\n",
                dsn(name),
                password_file.display()
            )
        })
        .collect()
}

/// The pair `source → replica` of `cluster`, the source being a ghost in sa-east-1.
fn ghost_pair(cluster: &str, source: &str, replica: &str, region: &str) -> Vec<(&'static str, String)> {
    vec![
        ("db_cluster", cluster.to_owned()),
        ("source_node", source.to_owned()),
        ("source_region", "sa-east-1".to_owned()),
        ("replica_node", replica.to_owned()),
        ("replica_region", region.to_owned()),
    ]
}

/// Waits until every `(pair, status)` reads 1 for that status and 0 for the
/// others, without lag or exposure unless ok, and every pair of `healthy` has its
/// lag; then checks that nothing negative was read and nothing panicked.
async fn expect_statuses(
    exporter: &Exporter,
    want: &[(Vec<(&'static str, String)>, &str)],
    healthy: &[Vec<(&'static str, String)>],
) {
    let matches = |m: &Metrics| {
        let mut wrong = Vec::new();
        for (pair, status) in want {
            for s in STATUSES {
                let v = m.get(STATUS, &with(pair.clone(), &[("status", s)]));
                if v != Some(f64::from(u8::from(s == status))) {
                    wrong.push(format!("{} {s}={v:?} (want {status})", pair[1].1));
                }
            }
            if *status != "ok" && (m.get(LAG, pair).is_some() || m.get(EXPOSURE, pair).is_some()) {
                wrong.push(format!("{}: lag or exposure from an unusable row", pair[1].1));
            }
        }
        for pair in healthy {
            if m.get(LAG, pair).is_none() || m.get(EXPOSURE, pair).is_none() {
                wrong.push(format!("{pair:?} lost its lag"));
            }
        }
        wrong
    };
    let last = std::cell::RefCell::new(Vec::new());
    let ok = wait_for(Duration::from_secs(15), || async {
        let wrong = matches(&exporter.scrape().await);
        let done = wrong.is_empty();
        *last.borrow_mut() = wrong;
        done
    })
    .await;
    assert!(ok, "{:#?}\nlog:\n{}", last.borrow(), exporter.log());
    // And it stays so: a few more reads, each scrape complete.
    for _ in 0..3 {
        tokio::time::sleep(Duration::from_millis(700)).await;
        let m = exporter.scrape().await;
        assert_eq!(matches(&m), Vec::<String>::new());
        for s in m.samples.iter().filter(|s| s.name == LAG || s.name == EXPOSURE) {
            assert!(s.value >= 0.0 && s.value < 60.0, "implausible reading {s:?}");
        }
    }
    let m = exporter.scrape().await;
    for (pair, status) in want {
        println!("  {} → {status}", pair[1].1);
    }
    for pair in healthy {
        println!("  {} → {}: lag {:?}", pair[1].1, pair[3].1, m.get(LAG, pair));
    }
    assert!(!exporter.log().contains("panicked"), "{}", exporter.log());
}

/// A PostgreSQL lab (p → r1) and an exporter that lists `ghost_names` as
/// down writers of a multi-writer cluster; `table_sql` runs as superuser on p
/// before the exporter starts.
async fn pg_lab_with_ghosts(ghost_names: &[&str], table_sql: &str) -> (Lab, Exporter) {
    let lab = Lab::start(spec_primary_replica()).await;
    if !table_sql.is_empty() {
        lab.pg.node("p").execute(table_sql).await.unwrap();
    }
    let ghosts = ghosts(ghost_names, "postgres", rpo_lab::free_port(), &lab.password_file);
    let config =
        lab.config("1s", &ghosts).replace("    rto: 5m\n", "    rto: 5m\n    write_mode: multi-writer\n");
    let exporter = Exporter::start(&config).await;
    (lab, exporter)
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_unusable_times_mark_only_their_own_pair() {
    let names = ["ghost-inf", "ghost-neg-inf", "ghost-farthest", "ghost-bc", "ghost-1900", "ghost-3000"];
    let (lab, exporter) = pg_lab_with_ghosts(&names, "").await;
    let real = lab.pair("p", "r1");
    wait_for_pair(&exporter, &real).await;
    let p = lab.pg.node("p");
    let sysid =
        p.query_one_string("SELECT system_identifier::text FROM pg_control_system()").await.unwrap().unwrap();
    p.execute(&format!(
        "INSERT INTO rpo.heartbeat VALUES
           ('ghost-inf',      'sa-east-1', 1, 'infinity',                       '{sysid}'),
           ('ghost-neg-inf',  'sa-east-1', 1, '-infinity',                      '{sysid}'),
           ('ghost-farthest', 'sa-east-1', 1, '294276-12-31 23:59:59.999999+00', '{sysid}'),
           ('ghost-bc',       'sa-east-1', 1, '4713-01-01 00:00:00+00 BC',       '{sysid}'),
           ('ghost-1900',     'sa-east-1', 1, '1900-01-01 00:00:00+00',          '{sysid}'),
           ('ghost-3000',     'sa-east-1', 1, '3000-01-01 00:00:00+00',          '{sysid}')"
    ))
    .await
    .unwrap();
    let r1 = lab.region("r1").to_owned();
    let pair = |name: &str| ghost_pair("lab", name, "r1", &r1);
    println!("postgres, hostile written_at:");
    expect_statuses(
        &exporter,
        &[
            (pair("ghost-inf"), "invalid_timestamp"),
            (pair("ghost-neg-inf"), "invalid_timestamp"),
            (pair("ghost-farthest"), "invalid_timestamp"),
            (pair("ghost-bc"), "invalid_timestamp"),
            (pair("ghost-1900"), "invalid_timestamp"),
            (pair("ghost-3000"), "invalid_timestamp"),
        ],
        &[real],
    )
    .await;
    // An unusable time is no timestamp to export.
    let m = exporter.scrape().await;
    assert_eq!(m.get("rpo_heartbeat_seen_timestamp_seconds", &pair("ghost-inf")), None);
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_numeric_sequences_mark_only_their_own_pair() {
    // A hand-made table whose seq is numeric: the exporter's own writes go on,
    // and a sequence that is no 64-bit integer marks only its row.
    let names = ["ghost-nan", "ghost-huge", "ghost-half", "ghost-fine"];
    let (lab, exporter) =
        pg_lab_with_ghosts(&names, "ALTER TABLE rpo.heartbeat ALTER COLUMN seq TYPE numeric").await;
    let real = lab.pair("p", "r1");
    wait_for_pair(&exporter, &real).await;
    let p = lab.pg.node("p");
    let sysid =
        p.query_one_string("SELECT system_identifier::text FROM pg_control_system()").await.unwrap().unwrap();
    p.execute(&format!(
        "INSERT INTO rpo.heartbeat VALUES
           ('ghost-nan',  'sa-east-1', 'NaN',  now(), '{sysid}'),
           ('ghost-huge', 'sa-east-1', 1e30,   now(), '{sysid}'),
           ('ghost-half', 'sa-east-1', 1.5,    now(), '{sysid}'),
           ('ghost-fine', 'sa-east-1', 7.000,  now(), '{sysid}')"
    ))
    .await
    .unwrap();
    let r1 = lab.region("r1").to_owned();
    let pair = |name: &str| ghost_pair("lab", name, "r1", &r1);
    println!("postgres, numeric seq:");
    expect_statuses(
        &exporter,
        &[
            (pair("ghost-nan"), "invalid_sequence"),
            (pair("ghost-huge"), "invalid_sequence"),
            (pair("ghost-half"), "invalid_sequence"),
            (pair("ghost-fine"), "ok"),
        ],
        &[real],
    )
    .await;
    let m = exporter.scrape().await;
    let writes = m.get("rpo_heartbeat_writes_total", &lab.node_labels("p")).unwrap();
    assert!(writes >= 3.0, "the writer stopped on a numeric seq: {writes} writes");
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_narrow_sequence_columns_work() {
    // Hand-made tables with an int4, then an int2 sequence: the writer and the
    // readers work as with bigint, and nothing panics.
    for ty in ["int4", "int2"] {
        let (lab, exporter) =
            pg_lab_with_ghosts(&[], &format!("ALTER TABLE rpo.heartbeat ALTER COLUMN seq TYPE {ty}")).await;
        let real = lab.pair("p", "r1");
        wait_for_pair(&exporter, &real).await;
        tokio::time::sleep(Duration::from_secs(2)).await;
        let m = exporter.scrape().await;
        let p = lab.node_labels("p");
        let seq = m.get("rpo_heartbeat_sequence", &p).expect("sequence of the last write");
        let lag = m.get(LAG, &real).expect("p → r1 lag");
        println!("postgres, {ty} seq: p → r1 lag {lag:.3} s after {seq} heartbeats");
        assert!(seq >= 3.0 && lag < 1.0, "seq {seq} lag {lag}");
        assert_eq!(m.get(STATUS, &with(real, &[("status", "ok")])), Some(1.0));
        let errors = m.find("rpo_collector_errors_total", &with(p, &[("collector", "heartbeat_write")]));
        assert!(errors.iter().all(|s| s.value == 0.0), "{errors:?}\nlog:\n{}", exporter.log());
        assert!(!exporter.log().contains("panicked"), "{}", exporter.log());
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_a_written_at_that_is_no_time_is_refused_by_name() {
    // NaN fits a double precision column; the exporter reads only timestamps
    // and says so, instead of failing on a function it cannot find.
    let (lab, exporter) = pg_lab_with_ghosts(
        &[],
        "ALTER TABLE rpo.heartbeat ALTER COLUMN written_at TYPE double precision USING 'NaN'",
    )
    .await;
    let r1 = lab.node_labels("r1");
    let errors = with(r1, &[("collector", "heartbeat_read"), ("reason", "query")]);
    let ok = wait_for(Duration::from_secs(10), || async {
        exporter.scrape().await.get("rpo_collector_errors_total", &errors).is_some_and(|n| n >= 1.0)
    })
    .await;
    assert!(ok, "no read error; log:\n{}", exporter.log());
    let log = exporter.log();
    let line = log.lines().find(|l| l.contains("column written_at is float8")).unwrap_or_else(|| {
        panic!("the error does not name the column and its type; log:\n{log}");
    });
    println!("postgres, double precision written_at: {line}");
    // The writer says the same, not that a function is missing.
    let p = with(lab.node_labels("p"), &[("collector", "heartbeat_write"), ("reason", "query")]);
    assert!(exporter.scrape().await.get("rpo_collector_errors_total", &p).is_some_and(|n| n >= 1.0));
    assert!(
        log.lines()
            .any(|l| l.contains("collector=heartbeat_write ") && l.contains("column written_at is float8")),
        "{log}"
    );
    assert!(!log.contains("panicked") && !log.contains(PASSWORD), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_hostile_rows_mark_only_their_own_pair() {
    // Cluster `maria` on our table, whose seq a DBA made BIGINT UNSIGNED; cluster
    // `ts` on a hand-made table with an INT seq and a TIMESTAMP written_at.
    let setup = format!(
        "{}
         ALTER TABLE rpo.heartbeat MODIFY seq BIGINT UNSIGNED NOT NULL;
         CREATE TABLE rpo.heartbeat_ts (
           node VARCHAR(64) NOT NULL PRIMARY KEY, region VARCHAR(64) NOT NULL, seq INT NOT NULL,
           written_at TIMESTAMP(6) NOT NULL DEFAULT '2000-01-01 00:00:00', identity VARCHAR(64) NOT NULL);
         GRANT SELECT, INSERT, UPDATE ON rpo.heartbeat_ts TO '{ROLE}'@'127.0.0.1';",
        maria::schema_sql()
    );
    let lab = MyLab::start_with_sql(MariaLabSpec::new().primary("a").replica("b", &["a"]), &setup).await;
    let port = rpo_lab::free_port();
    let main_ghosts = ["ghost-2100", "ghost-1900", "ghost-zero", "ghost-unsigned"];
    let config = format!(
        "clusters:\n{}{}{}{}",
        lab.cluster_yaml("maria", "multi-writer", ""),
        ghosts(&main_ghosts, "mysql", port, &lab.password_file),
        lab.cluster_yaml("ts", "multi-writer", ", table: rpo.heartbeat_ts"),
        ghosts(&["ghost-ts-zero"], "mysql", port, &lab.password_file),
    );
    let exporter = Exporter::start(&config).await;
    let (real, real_ts) = (lab.pair("a", "b"), lab.pair_in("ts", "a", "b"));
    wait_for_pair(&exporter, &real).await;
    wait_for_pair(&exporter, &real_ts).await;
    // As root on the primary, so that they replicate; the zero dates need a
    // non-strict mode (a TIMESTAMP past 2038 is stored as the zero date).
    lab.db
        .node("a")
        .exec(
            "SET SESSION sql_mode = '';
             INSERT INTO rpo.heartbeat VALUES
               ('ghost-2100',     'sa-east-1', 1, '2100-01-01 00:00:00', 'x'),
               ('ghost-1900',     'sa-east-1', 1, '1900-01-01 00:00:00', 'x'),
               ('ghost-zero',     'sa-east-1', 1, '0000-00-00 00:00:00', 'x'),
               ('ghost-unsigned', 'sa-east-1', 18446744073709551615, UTC_TIMESTAMP(6), 'x');
             INSERT INTO rpo.heartbeat_ts VALUES ('ghost-ts-zero', 'sa-east-1', 1, '2100-01-01 00:00:00', 'x');",
        )
        .await
        .unwrap();
    let b = lab.region("b").to_owned();
    let pair = |cluster: &str, name: &str| ghost_pair(cluster, name, "b", &b);
    println!("mariadb, hostile rows:");
    expect_statuses(
        &exporter,
        &[
            (pair("maria", "ghost-2100"), "invalid_timestamp"),
            (pair("maria", "ghost-1900"), "invalid_timestamp"),
            (pair("maria", "ghost-zero"), "invalid_timestamp"),
            (pair("maria", "ghost-unsigned"), "invalid_sequence"),
            (pair("ts", "ghost-ts-zero"), "invalid_timestamp"),
        ],
        &[real, real_ts],
    )
    .await;
    let m = exporter.scrape().await;
    for cluster in ["maria", "ts"] {
        let a = vec![
            ("db_cluster", cluster.to_owned()),
            ("node", "a".to_owned()),
            ("node_region", lab.region("a").to_owned()),
        ];
        let writes = m.get("rpo_heartbeat_writes_total", &a).unwrap_or(0.0);
        assert!(writes >= 3.0, "{cluster}: {writes} writes");
    }
}
