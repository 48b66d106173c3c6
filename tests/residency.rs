//! Data residency against real servers (issue #18): a PostgreSQL EU primary publishing
//! "aggregates" to a US node that subscribes (a), a MariaDB US replica with replication
//! filters (b), a physical replica in a forbidden region refused by `check-config` (c),
//! and a missing privilege read as unknown, never as compliant (d). Checks run every
//! second here (`residency.interval: 1s`); the violation must show within two intervals
//! and the shipped alert fire in a real Prometheus. Prints the timings.

mod support;

use rpo_exporter::endpoint::{Replication, TableMatch, Tables};
use rpo_lab::{MariaLabSpec, PgLabSpec, Prometheus, PrometheusOptions};
use std::time::{Duration, Instant};
use support::maria::MyLab;
use support::*;

const EU: &str = "eu-west-1";
const US: &str = "us-east-1";

fn pii_customers() -> TableMatch {
    TableMatch { schema: "pii".into(), tables: Tables::One("customers".into()) }
}

/// A node entry with its region and replication mode.
fn node(
    name: &str,
    region: &str,
    engine: &str,
    dsn: &str,
    password_file: &std::path::Path,
    mode: &str,
) -> String {
    format!(
        "      - name: {name}\n        region: {region}\n        engine: {engine}\n        dsn: \"{dsn}\"\n        password_file: {}\n        replication: {mode}\n",
        password_file.display()
    )
}

fn cluster(name: &str, rule: &str, nodes: &str) -> String {
    format!(
        "clusters:\n  - name: {name}\n    rpo: 30s\n    rto: 5m\n    write_mode: multi-writer\n    heartbeat: {{ interval: 1s, table: rpo.heartbeat, create_table: false }}\n    residency:\n      interval: 1s\n      timeout: 1s\n      rules:\n        - {{ name: pii-eu, {rule}, allowed_regions: [{EU}] }}\n    nodes:\n{nodes}"
    )
}

fn labels_of(cluster: &str, node: &str, extra: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    let mut l =
        vec![("db_cluster", cluster.to_owned()), ("rule", "pii-eu".to_owned()), ("node", node.to_owned())];
    l.extend(extra.iter().map(|(k, v)| (*k, (*v).to_owned())));
    l
}

/// Waits until `cond` holds on a scrape; the seconds it took.
async fn until(exporter: &Exporter, timeout: Duration, what: &str, cond: impl Fn(&Metrics) -> bool) -> f64 {
    let start = Instant::now();
    let ok = wait_for(timeout, || async { cond(&exporter.scrape().await) }).await;
    if !ok {
        let text = exporter.scrape_text().await;
        let lines: Vec<&str> = text.lines().filter(|l| l.starts_with("rpo_residency")).collect();
        panic!("{what}: not within {timeout:?}\n{}\n--- log ---\n{}", lines.join("\n"), exporter.log());
    }
    start.elapsed().as_secs_f64()
}

fn violation(m: &Metrics, cluster: &str, node: &str, reason: &str) -> Option<f64> {
    m.get("rpo_residency_violation", &labels_of(cluster, node, &[("reason", reason)]))
}

fn success(m: &Metrics, cluster: &str, node: &str) -> Option<f64> {
    m.get("rpo_residency_check_success", &labels_of(cluster, node, &[]))
}

/// Whether Prometheus has the residency alert firing for `node`.
async fn firing(prom: &Prometheus, node: &str) -> bool {
    // An unanswered alerts API is a failure, never "not firing".
    let alerts = prom.alerts().await.unwrap_or_else(|e| panic!("Prometheus alerts API: {e:#}"));
    alerts.as_array().into_iter().flatten().any(|a| {
        a["labels"]["alertname"] == "RPOResidencyViolation"
            && a["labels"]["node"] == node
            && a["state"] == "firing"
    })
}

/// (a) and (d): PostgreSQL logical replication from an EU primary to a US subscriber.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_publication_of_pii_to_a_us_subscriber_is_a_violation() {
    let started = Instant::now();
    let grants = rpo_exporter::engine::residency_grants(
        "postgres",
        &[pii_customers()],
        &[Replication::Logical],
        ROLE,
        None,
    )
    .unwrap();
    let schema =
        rpo_exporter::engine::schema_sql("postgres", &"rpo.heartbeat".parse().unwrap(), ROLE, None, None)
            .unwrap();
    let tables = "CREATE SCHEMA pii; CREATE TABLE pii.customers (id int PRIMARY KEY, email text);
                  CREATE TABLE public.daily_totals (day date PRIMARY KEY, total bigint);";
    let setup = format!("{tables}\n{schema}\n{grants}");
    let (eu, us) = tokio::join!(
        Lab::start_with_sql(PgLabSpec::new().primary("eu"), &setup),
        Lab::start_with_sql(PgLabSpec::new().primary("us"), &setup)
    );
    let (eu_pg, us_pg) = (eu.pg.node("eu"), us.pg.node("us"));
    // Logical decoding on the EU primary.
    eu_pg.execute("ALTER SYSTEM SET wal_level = logical").await.unwrap();
    eu_pg.stop().unwrap();
    eu_pg.start().unwrap();
    eu_pg
        .execute(
            "INSERT INTO pii.customers VALUES (1, 'ana@example.eu'), (2, 'jo@example.eu');
             INSERT INTO public.daily_totals VALUES ('2026-11-29', 42);
             CREATE PUBLICATION aggregates FOR TABLE public.daily_totals",
        )
        .await
        .unwrap();
    us_pg
        .execute(&format!(
            "CREATE SUBSCRIPTION aggs CONNECTION 'host=127.0.0.1 port={} user=postgres dbname=postgres' PUBLICATION aggregates",
            eu_pg.port()
        ))
        .await
        .unwrap();
    us_pg
        .wait_for_value("SELECT count(*) FROM public.daily_totals", "1", Duration::from_secs(20))
        .await
        .unwrap();
    let dsn = |port: u16| format!("host=127.0.0.1 port={port} user={ROLE} dbname=postgres");
    let config = cluster(
        "shop",
        "table: pii.customers",
        &(node("eu", EU, "postgres", &dsn(eu_pg.port()), &eu.password_file, "physical")
            + &node("us", US, "postgres", &dsn(us_pg.port()), &us.password_file, "logical")),
    );
    let exporter = Exporter::start(&config).await;
    let prom = Prometheus::start_with(
        &rule_files().into_iter().fold(
            PrometheusOptions::new(std::slice::from_ref(&exporter.addr))
                .scrape_interval(Duration::from_secs(1))
                .evaluation_interval(Duration::from_secs(1)),
            |o, f| o.rule_file(f),
        ),
    )
    .await
    .expect("start Prometheus with the shipped rules");

    // Only aggregates cross: compliant, and checked.
    until(&exporter, Duration::from_secs(20), "a compliant first check", |m| {
        success(m, "shop", "us") == Some(1.0)
            && ["rows_present", "subscription", "publication"]
                .iter()
                .all(|r| violation(m, "shop", "us", r) == Some(0.0))
    })
    .await;
    let m = exporter.scrape().await;
    assert!(m.find("rpo_residency_check_success", &labels_of("shop", "eu", &[])).is_empty(), "eu is allowed");
    assert!(m.get("rpo_residency_last_check_timestamp_seconds", &labels_of("shop", "us", &[])).is_some());
    // Prometheus scrapes the compliant readings, and no residency alert is active.
    prom.wait_for(
        r#"rpo_residency_violation{node="us",reason="publication"} == 0"#,
        Duration::from_secs(30),
        |r| r.as_array().is_some_and(|a| a.len() == 1),
    )
    .await
    .unwrap_or_else(|e| panic!("{e:#}\n{}", prom.log_tail(20)));
    assert!(!firing(&prom, "us").await, "{}", prom.alerts().await.unwrap_or_default());
    println!("setup {:.1} s; aggregates only: compliant", started.elapsed().as_secs_f64());

    // Someone adds the PII table to the publication, and the subscription is refreshed.
    eu_pg.execute("ALTER PUBLICATION aggregates ADD TABLE pii.customers").await.unwrap();
    let added = Instant::now();
    let added_wall = std::time::SystemTime::now();
    let to_publication = until(&exporter, Duration::from_secs(10), "the publication violation", |m| {
        violation(m, "shop", "us", "publication") == Some(1.0)
    })
    .await;
    us_pg.execute("ALTER SUBSCRIPTION aggs REFRESH PUBLICATION").await.unwrap();
    let refreshed = Instant::now();
    let to_subscription = until(&exporter, Duration::from_secs(10), "the subscription violation", |m| {
        violation(m, "shop", "us", "subscription") == Some(1.0)
    })
    .await;
    let to_rows = until(&exporter, Duration::from_secs(30), "rows of pii.customers in us-east-1", |m| {
        violation(m, "shop", "us", "rows_present") == Some(1.0)
    })
    .await;
    let rows_after_refresh = refreshed.elapsed().as_secs_f64();
    let ok = wait_for(Duration::from_secs(30), || firing(&prom, "us")).await;
    assert!(
        ok,
        "RPOResidencyViolation not firing: {}\n{}",
        prom.alerts().await.unwrap_or_default(),
        prom.log_tail(20)
    );
    let to_alert = added.elapsed().as_secs_f64();
    let alerts = prom.alerts().await.unwrap();
    let alert = alerts
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["labels"]["alertname"] == "RPOResidencyViolation" && a["labels"]["node"] == "us")
        .unwrap()
        .clone();
    assert_eq!(alert["labels"]["node_region"], US, "{alert}");
    assert_eq!(alert["labels"]["rule"], "pii-eu", "{alert}");
    assert!(alert["annotations"]["runbook_url"]
        .as_str()
        .is_some_and(|u| u.ends_with("/residency-violation.md")));
    let text = exporter.scrape_text().await;
    println!("metric lines while violated:");
    for line in text.lines().filter(|l| l.starts_with("rpo_residency") && l.contains("node=\"us\"")) {
        println!("  {line}");
    }
    println!("alert: {alert}");
    println!("publication change -> publication violation on /metrics: {to_publication:.1} s");
    println!(
        "refresh -> subscription violation: {to_subscription:.1} s; refresh -> rows_present: {rows_after_refresh:.1} s ({to_rows:.1} s after the subscription violation)"
    );
    // When Prometheus first saw the violation (the alert has no `for`, so it fired then).
    let active = alert["activeAt"]
        .as_str()
        .and_then(|t| humantime::parse_rfc3339(t).ok())
        .and_then(|t| t.duration_since(added_wall).ok())
        .map_or(f64::NAN, |d| d.as_secs_f64());
    println!("publication change -> RPOResidencyViolation active (activeAt) in Prometheus: {active:.1} s; seen firing by this test's poll: {to_alert:.1} s");
    assert!(
        to_publication <= 2.5,
        "publication violation after {to_publication:.1} s: more than two intervals"
    );
    assert!(to_subscription <= 2.5, "subscription violation after {to_subscription:.1} s");

    // Taken out again, and the copy emptied: it clears.
    eu_pg.execute("ALTER PUBLICATION aggregates DROP TABLE pii.customers").await.unwrap();
    us_pg.execute("ALTER SUBSCRIPTION aggs REFRESH PUBLICATION").await.unwrap();
    us_pg.execute("TRUNCATE pii.customers").await.unwrap();
    let removed = Instant::now();
    let to_clear = until(&exporter, Duration::from_secs(10), "the violation clears", |m| {
        success(m, "shop", "us") == Some(1.0)
            && ["rows_present", "subscription", "publication"]
                .iter()
                .all(|r| violation(m, "shop", "us", r) == Some(0.0))
    })
    .await;
    let ok = wait_for(Duration::from_secs(30), || async { !firing(&prom, "us").await }).await;
    assert!(ok, "RPOResidencyViolation still firing: {}", prom.alerts().await.unwrap_or_default());
    let to_resolve = removed.elapsed().as_secs_f64();
    println!("removal + truncate -> compliant on /metrics: {to_clear:.1} s; alert gone: {to_resolve:.1} s");
    assert!(to_clear <= 3.0, "cleared after {to_clear:.1} s");

    // (d) A missing privilege is unknown, never compliant: with SELECT revoked, a row
    // in the US copy cannot be seen, and the check says so.
    us_pg.execute(&format!("REVOKE SELECT ON pii.customers FROM {ROLE}")).await.unwrap();
    us_pg.execute("INSERT INTO pii.customers VALUES (3, 'local@example.com')").await.unwrap();
    let to_unknown = until(&exporter, Duration::from_secs(10), "an unknown check", |m| {
        success(m, "shop", "us") == Some(0.0) && violation(m, "shop", "us", "rows_present").is_none()
    })
    .await;
    let m = exporter.scrape().await;
    assert_eq!(violation(&m, "shop", "us", "subscription"), Some(0.0), "what could be checked still is");
    assert!(exporter.log().contains("permission denied"), "the log says why:\n{}", exporter.log());
    println!("revoke -> rpo_residency_check_success 0 (rows_present absent): {to_unknown:.1} s");
    println!("whole test {:.1} s", started.elapsed().as_secs_f64());
}

/// (b) MariaDB: a US replica whose filters stop `pii.%` holds no violation; without
/// the filter, it does.
#[tokio::test(flavor = "multi_thread")]
async fn mariadb_replica_filters_decide_the_violation() {
    let started = Instant::now();
    let target = TableMatch { schema: "pii".into(), tables: Tables::All };
    let grants = rpo_exporter::engine::residency_grants(
        "mysql",
        &[target],
        &[Replication::Filtered],
        ROLE,
        Some("127.0.0.1"),
    )
    .unwrap();
    let lab = MyLab::start_with_sql(
        MariaLabSpec::new().primary("eu").replica("us", &["eu"]),
        &(support::maria::schema_sql() + &grants),
    )
    .await;
    let (eu_db, us_db) = (lab.db.node("eu"), lab.db.node("us"));
    us_db.exec("STOP SLAVE; SET GLOBAL replicate_wild_ignore_table = 'pii.%'; START SLAVE").await.unwrap();
    lab.db
        .run_on_primaries(
            "CREATE DATABASE pii; CREATE TABLE pii.customers (id int PRIMARY KEY, email text);
             INSERT INTO pii.customers VALUES (1, 'ana@example.eu')",
        )
        .await
        .unwrap();
    let has_table = us_db
        .query_one_string("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = 'pii'")
        .await
        .unwrap();
    assert_eq!(has_table.as_deref(), Some("0"), "the filter kept pii.customers off the replica");
    let dsn = |n: &rpo_lab::MariaNode| n.dsn(ROLE);
    let config = cluster(
        "maria",
        "schema: pii",
        &(node("eu", EU, "mysql", &dsn(eu_db), &lab.password_file, "physical")
            + &node("us", US, "mysql", &dsn(us_db), &lab.password_file, "filtered")),
    );
    let exporter = Exporter::start(&config).await;
    until(&exporter, Duration::from_secs(20), "a compliant check of the filtered replica", |m| {
        success(m, "maria", "us") == Some(1.0)
            && violation(m, "maria", "us", "replication_filter") == Some(0.0)
            && violation(m, "maria", "us", "rows_present") == Some(0.0)
    })
    .await;
    println!("setup {:.1} s; filtered replica: compliant", started.elapsed().as_secs_f64());

    us_db.exec("STOP SLAVE; SET GLOBAL replicate_wild_ignore_table = ''; START SLAVE").await.unwrap();
    let to_violation = until(&exporter, Duration::from_secs(10), "the filter violation", |m| {
        violation(m, "maria", "us", "replication_filter") == Some(1.0)
    })
    .await;
    println!("filter dropped -> replication_filter violation: {to_violation:.1} s");

    // (d) on MariaDB: without its database-wide SELECT the account could be shown only
    // some of pii's tables, so the rows check is unknown, not "no rows".
    lab.db.run_on_primaries(&format!("REVOKE SELECT ON pii.* FROM '{ROLE}'@'127.0.0.1'")).await.unwrap();
    let to_unknown = until(&exporter, Duration::from_secs(10), "an unknown check", |m| {
        success(m, "maria", "us") == Some(0.0) && violation(m, "maria", "us", "rows_present").is_none()
    })
    .await;
    assert_eq!(violation(&exporter.scrape().await, "maria", "us", "replication_filter"), Some(1.0));
    println!("revoke -> rpo_residency_check_success 0 (rows_present absent): {to_unknown:.1} s");
    // Within two check intervals (2 s), plus 1 s for the scrape and this loaded machine.
    assert!(to_violation <= 3.0, "after {to_violation:.1} s: more than two intervals");
    println!("whole test {:.1} s", started.elapsed().as_secs_f64());
}

/// (c) A physical PostgreSQL replica in a forbidden region: `check-config` refuses the
/// file, naming the node, its region and why.
#[test]
fn check_config_refuses_a_physical_replica_in_a_forbidden_region() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("config.yml");
    let nodes = "      - { name: orders-euw1, region: eu-west-1, engine: postgres, dsn: \"host=10.1.0.5 user=rpo dbname=orders\" }\n      - { name: orders-use1, region: us-east-1, engine: postgres, dsn: \"host=10.0.0.5 user=rpo dbname=orders\" }\n";
    std::fs::write(&file, cluster("orders", "table: pii.customers", nodes)).unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rpo-exporter"))
        .arg("check-config")
        .arg(&file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    println!("{stderr}");
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(
        stderr.contains("clusters[0].nodes[1].replication: node \"orders-use1\" in region us-east-1"),
        "{stderr}"
    );
    assert!(stderr.contains("PostgreSQL streaming (physical) replication copies every table"), "{stderr}");
    // Said to be a subscriber, the same node is accepted.
    std::fs::write(
        &file,
        cluster(
            "orders",
            "table: pii.customers",
            &nodes.replace("dbname=orders\" }\n", "dbname=orders\", replication: logical }\n"),
        ),
    )
    .unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rpo-exporter"))
        .arg("check-config")
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    // `schema` prints the grants those checks need on the PostgreSQL nodes, after the
    // heartbeat's, and nothing about other tables.
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_rpo-exporter"))
        .args(["schema", "postgres", "--config.file"])
        .arg(&file)
        .output()
        .unwrap();
    let sql = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let (heartbeat, residency) = sql.split_once("-- Residency checks").expect("a residency section");
    assert!(heartbeat.contains("GRANT SELECT, INSERT, UPDATE ON rpo.heartbeat TO rpo_exporter;"), "{sql}");
    let grants: Vec<&str> = residency.lines().filter(|l| l.starts_with("GRANT")).collect();
    assert_eq!(
        grants,
        ["GRANT USAGE ON SCHEMA pii TO rpo_exporter;", "GRANT SELECT ON pii.customers TO rpo_exporter;"],
        "{sql}"
    );
    println!("{residency}");
}
