//! TLS to the databases: PostgreSQL with sslmode up to verify-full and MariaDB
//! with a CA, against lab servers given certificates the test makes; a wrong CA
//! is refused with a clear error and a bounded `tls` reason.

mod support;

use rpo_lab::{MariaLabSpec, PgLabSpec};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;
use support::maria::MyLab;
use support::*;

/// A CA and a server certificate for 127.0.0.1 signed by it, written as PEM
/// files into `dir` (world-readable: the servers run as other accounts).
/// Returns (ca, cert, key).
fn make_certs(dir: &Path, name: &str) -> (PathBuf, PathBuf, PathBuf) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    ca_params.distinguished_name.push(rcgen::DnType::CommonName, format!("{name} test CA"));
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let key = rcgen::KeyPair::generate().unwrap();
    let leaf = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()])
        .unwrap()
        .signed_by(&key, &issuer)
        .unwrap();
    let write = |file: &str, text: String, mode: u32| {
        let path = dir.join(format!("{name}-{file}"));
        std::fs::write(&path, text).unwrap();
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(mode)).unwrap();
        path
    };
    (
        write("ca.pem", ca.pem(), 0o644),
        write("cert.pem", leaf.pem(), 0o644),
        write("key.pem", key.serialize_pem(), 0o644),
    )
}

fn tls_yaml(mode: &str, ca: &Path) -> String {
    format!("        tls: {{ mode: {mode}, ca_file: {} }}\n", ca.display())
}

#[tokio::test(flavor = "multi_thread")]
async fn postgres_verify_full_and_a_wrong_ca() {
    let lab = Lab::start(PgLabSpec::new().primary("p")).await;
    let p = lab.pg.node("p");
    let (ca, cert, key) = make_certs(p.node_dir(), "pg");
    let (wrong_ca, _, _) = make_certs(lab.dir.path(), "other");
    // The server key must belong to the server's account and be private.
    nix::unistd::chown(&key, Some(nix::unistd::User::from_name("postgres").unwrap().unwrap().uid), None)
        .unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    // ALTER SYSTEM may not share a transaction: one statement at a time.
    for sql in [
        format!("ALTER SYSTEM SET ssl_cert_file = '{}'", cert.display()),
        format!("ALTER SYSTEM SET ssl_key_file = '{}'", key.display()),
        "ALTER SYSTEM SET ssl = on".to_owned(),
    ] {
        p.execute(&sql).await.unwrap();
    }
    p.execute("SELECT pg_reload_conf()").await.unwrap();
    tokio::time::sleep(Duration::from_millis(500)).await;

    let node = |name: &str, dsn_host: &str, tls: String| {
        lab.node_yaml("p")
            .replacen("name: p", &format!("name: {name}"), 1)
            .replace("host=127.0.0.1", dsn_host)
            + &tls
    };
    let config = format!(
        "clusters:\n  - name: lab\n    rpo: 30s\n    rto: 5m\n    write_mode: multi-writer\n    heartbeat: {{ interval: 1s, create_table: false }}\n    nodes:\n{}{}{}{}",
        node("full", "host=127.0.0.1", tls_yaml("verify-full", &ca)),
        node("wrongca", "host=127.0.0.1", tls_yaml("verify-full", &wrong_ca)),
        // Connected by a name the certificate does not carry: verify-ca accepts
        // the chain, verify-full refuses the name.
        node("caonly", "host=localhost", tls_yaml("verify-ca", &ca)),
        node("badname", "host=localhost", tls_yaml("verify-full", &ca)),
    );
    let exporter = Exporter::start(&config).await;
    let up = |n: &str| labels(&[("node", n), ("collector", "role")]);
    let ok = wait_for(Duration::from_secs(10), || async {
        let m = exporter.scrape().await;
        m.get("rpo_node_up", &labels(&[("node", "full")])) == Some(1.0)
            && m.get("rpo_node_up", &labels(&[("node", "caonly")])) == Some(1.0)
            && m.get("rpo_collector_errors_total", &with(up("wrongca"), &[("reason", "tls")])).is_some()
            && m.get("rpo_collector_errors_total", &with(up("badname"), &[("reason", "tls")])).is_some()
    })
    .await;
    assert!(ok, "TLS outcomes not as expected; log:\n{}", exporter.log());
    let m = exporter.scrape().await;
    assert_eq!(m.get("rpo_node_up", &labels(&[("node", "wrongca")])), Some(0.0));
    // The exporter's sessions really are encrypted.
    let encrypted = p
        .query_one_string(
            "SELECT count(*) FROM pg_stat_ssl JOIN pg_stat_activity USING (pid)
             WHERE application_name = 'rpo-exporter' AND ssl",
        )
        .await
        .unwrap()
        .unwrap();
    assert!(encrypted.parse::<u32>().unwrap() >= 2, "encrypted exporter sessions: {encrypted}");
    let log = exporter.log();
    assert!(log.contains("UnknownIssuer") || log.contains("unknown issuer"), "{log}");
    assert!(log.contains("NotValidForName") || log.contains("not valid for name"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn mariadb_with_a_ca_and_a_wrong_ca() {
    let lab = MyLab::start(MariaLabSpec::new().primary("a")).await;
    let a = lab.db.node("a");
    let (ca, cert, key) = make_certs(a.node_dir(), "maria");
    let (wrong_ca, _, _) = make_certs(lab.dir.path(), "other");
    let mut conf = std::fs::read_to_string(a.config_file()).unwrap();
    conf +=
        &format!("ssl_ca = {}\nssl_cert = {}\nssl_key = {}\n", ca.display(), cert.display(), key.display());
    std::fs::write(a.config_file(), conf).unwrap();
    a.stop().unwrap();
    a.start().unwrap();
    assert_eq!(
        a.query_one_string("SELECT @@have_ssl").await.unwrap().as_deref(),
        Some("YES"),
        "{}",
        a.log_tail(20)
    );

    let node =
        |name: &str, tls: String| lab.node_yaml("a").replacen("name: a", &format!("name: {name}"), 1) + &tls;
    let config = format!(
        "clusters:\n  - name: maria\n    rpo: 30s\n    rto: 5m\n    write_mode: multi-writer\n    heartbeat: {{ interval: 1s, create_table: false }}\n    nodes:\n{}{}",
        node("full", tls_yaml("verify-full", &ca)),
        node("wrongca", tls_yaml("verify-full", &wrong_ca)),
    );
    let exporter = Exporter::start(&config).await;
    let ok = wait_for(Duration::from_secs(10), || async {
        let m = exporter.scrape().await;
        m.get("rpo_node_up", &labels(&[("node", "full")])) == Some(1.0)
            && m.get("rpo_collector_errors_total", &labels(&[("node", "wrongca"), ("reason", "tls")]))
                .is_some()
    })
    .await;
    assert!(ok, "TLS outcomes not as expected; log:\n{}", exporter.log());
    // The exporter's sessions completed TLS handshakes with the server.
    let finished = a
        .query_one_string(
            "SELECT VARIABLE_VALUE FROM information_schema.GLOBAL_STATUS WHERE VARIABLE_NAME = 'SSL_FINISHED_ACCEPTS'",
        )
        .await
        .unwrap()
        .unwrap_or_default();
    assert!(finished.parse::<u32>().unwrap_or(0) >= 1, "finished TLS handshakes: {finished:?}");
    assert!(
        exporter
            .scrape()
            .await
            .get("rpo_heartbeat_writes_total", &labels(&[("node", "full")]))
            .unwrap_or(0.0)
            >= 1.0
    );
}
