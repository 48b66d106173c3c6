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
    let ca = pg_tls_on(p, p.node_dir()).await;
    let (wrong_ca, _, _) = make_certs(lab.dir.path(), "other");

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

/// Turns TLS on in a running PostgreSQL server with a certificate made for it;
/// returns the CA's file. New sessions may then negotiate TLS.
async fn pg_tls_on(p: &rpo_lab::PgNode, dir: &Path) -> PathBuf {
    let (ca, cert, key) = make_certs(dir, "pg");
    // The server key must belong to the server's account and be private.
    nix::unistd::chown(&key, Some(nix::unistd::User::from_name("postgres").unwrap().unwrap().uid), None)
        .unwrap();
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o600)).unwrap();
    // ALTER SYSTEM may not share a transaction: one statement at a time.
    for sql in [
        format!("ALTER SYSTEM SET ssl_cert_file = '{}'", cert.display()),
        format!("ALTER SYSTEM SET ssl_key_file = '{}'", key.display()),
        "ALTER SYSTEM SET ssl = on".to_owned(),
        "SELECT pg_reload_conf()".to_owned(),
    ] {
        p.execute(&sql).await.unwrap();
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert_eq!(p.query_one_string("SHOW ssl").await.unwrap().as_deref(), Some("on"), "{}", p.log_tail(20));
    ca
}

/// The exporter's sessions on a PostgreSQL server, as the server sees them:
/// (application_name, ssl, TLS version, cipher) for every backend whose
/// application name starts with `rpo-`.
async fn pg_sessions(p: &rpo_lab::PgNode) -> Vec<(String, bool, Option<String>, Option<String>)> {
    let client = p.client().await.unwrap();
    let rows = client
        .query(
            "SELECT a.application_name, s.ssl, s.version, s.cipher
               FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid)
              WHERE a.application_name LIKE 'rpo-%' ORDER BY 1",
            &[],
        )
        .await
        .unwrap();
    rows.iter().map(|r| (r.get(0), r.get(1), r.get(2), r.get(3))).collect()
}

/// A multi-writer cluster of `nodes` (YAML entries), heartbeats every second.
fn cluster(name: &str, nodes: &[String]) -> String {
    format!(
        "clusters:\n  - name: {name}\n    rpo: 30s\n    rto: 5m\n    write_mode: multi-writer\n    heartbeat: {{ interval: 1s, create_table: false }}\n    nodes:\n{}",
        nodes.concat()
    )
}

/// The log lines that mention `node`, none of which may carry the password.
fn node_log(exporter: &Exporter, node: &str) -> String {
    let log = exporter.log();
    assert!(!log.contains(PASSWORD), "the password leaked into the log:\n{log}");
    log.lines().filter(|l| l.contains(&format!("node={node} "))).collect::<Vec<_>>().join("\n")
}

/// libpq's `sslmode=prefer`, the default: TLS when the server offers it,
/// plaintext only when it refuses; `sslmode=require` never falls back.
#[tokio::test(flavor = "multi_thread")]
async fn postgres_prefer_asks_for_tls_first_and_require_never_falls_back() {
    let lab = Lab::start(PgLabSpec::new().primary("p")).await;
    let p = lab.pg.node("p");
    // `name`, reached with `dsn_extra` added to the lab's DSN, its sessions
    // named rpo-NAME on the server.
    let node = |name: &str, dsn_extra: &str| {
        lab.node_yaml("p")
            .replacen("name: p", &format!("name: {name}"), 1)
            .replace("dbname=postgres", &format!("dbname=postgres application_name=rpo-{name}{dsn_extra}"))
    };

    // A server without TLS (initdb's default): prefer connects in plaintext,
    // require is refused with a clear error.
    let exporter =
        Exporter::start(&cluster("lab", &[node("plain", ""), node("req", " sslmode=require")])).await;
    let tls_error = labels(&[("node", "req"), ("collector", "role"), ("reason", "tls")]);
    let ok = wait_for(Duration::from_secs(10), || async {
        let m = exporter.scrape().await;
        m.get("rpo_node_up", &labels(&[("node", "plain")])) == Some(1.0)
            && m.get("rpo_collector_errors_total", &tls_error).is_some()
    })
    .await;
    assert!(ok, "plaintext fallback or TLS refusal not seen; log:\n{}", exporter.log());
    assert_eq!(exporter.scrape().await.get("rpo_node_up", &labels(&[("node", "req")])), Some(0.0));
    let sessions = pg_sessions(p).await;
    println!("without TLS on the server: {sessions:?}");
    assert!(sessions.iter().any(|(app, ssl, _, _)| app == "rpo-plain" && !ssl), "{sessions:?}");
    assert!(!sessions.iter().any(|(app, _, _, _)| app == "rpo-req"), "{sessions:?}");
    let req_log = node_log(&exporter, "req");
    println!("req's log: {req_log}");
    assert!(req_log.contains("reason=tls ") && req_log.contains("server does not support TLS"), "{req_log}");
    drop(exporter);

    // The same server with TLS on: the default and an explicit prefer encrypt.
    pg_tls_on(p, p.node_dir()).await;
    let exporter =
        Exporter::start(&cluster("lab", &[node("dflt", ""), node("prefer", " sslmode=prefer")])).await;
    let ok = wait_for(Duration::from_secs(10), || async {
        let m = exporter.scrape().await;
        ["dflt", "prefer"]
            .iter()
            .all(|n| m.get("rpo_heartbeat_writes_total", &labels(&[("node", n)])).unwrap_or(0.0) >= 1.0)
    })
    .await;
    assert!(ok, "nodes not writing; log:\n{}", exporter.log());
    let sessions = pg_sessions(p).await;
    println!("with TLS on the server: {sessions:?}");
    for name in ["rpo-dflt", "rpo-prefer"] {
        let (_, ssl, version, cipher) =
            sessions.iter().find(|(app, ..)| app == name).unwrap_or_else(|| panic!("{name}: {sessions:?}"));
        assert!(*ssl, "{name} is not encrypted: {sessions:?}");
        assert!(version.as_deref().is_some_and(|v| v.starts_with("TLSv1.")), "{sessions:?}");
        assert!(cipher.is_some(), "{sessions:?}");
    }
}

/// Gives a MariaDB server a certificate and restarts it with TLS on; with
/// `performance_schema` on too, so the test can see each session's cipher.
fn maria_tls_on(a: &rpo_lab::MariaNode, dir: &Path) -> PathBuf {
    let (ca, cert, key) = make_certs(dir, "maria");
    let mut conf = std::fs::read_to_string(a.config_file()).unwrap();
    conf += &format!(
        "ssl_ca = {}\nssl_cert = {}\nssl_key = {}\nperformance_schema = ON\n",
        ca.display(),
        cert.display(),
        key.display()
    );
    std::fs::write(a.config_file(), conf).unwrap();
    a.stop().unwrap();
    a.start().unwrap();
    ca
}

/// The TLS cipher of each of the exporter's sessions on a MariaDB server, as the
/// server sees it (`Ssl_cipher` per thread; empty for a plaintext session).
async fn maria_ciphers(a: &rpo_lab::MariaNode) -> Vec<Option<String>> {
    let rows = a
        .query_rows(&format!(
            "SELECT s.VARIABLE_VALUE AS cipher
               FROM performance_schema.threads t
               JOIN performance_schema.status_by_thread s USING (THREAD_ID)
              WHERE t.PROCESSLIST_USER = '{ROLE}' AND s.VARIABLE_NAME = 'Ssl_cipher'"
        ))
        .await
        .unwrap();
    rows.into_iter().map(|r| r.into_iter().next().and_then(|(_, v)| v)).collect()
}

/// A MySQL URL that asks for TLS gets it without a `tls:` block, and is refused,
/// clearly, by a server without TLS: never a silent plaintext session.
#[tokio::test(flavor = "multi_thread")]
async fn mariadb_url_require_ssl_is_kept_and_never_falls_back() {
    let lab = MyLab::start(MariaLabSpec::new().primary("a")).await;
    let a = lab.db.node("a");
    let url_tls = |name: &str| {
        lab.node_yaml("a").replacen("name: a", &format!("name: {name}"), 1).replacen(
            "/\"",
            "/?require_ssl=true&verify_ca=false\"",
            1,
        )
    };
    assert!(url_tls("x").contains("?require_ssl=true&verify_ca=false\""), "{}", url_tls("x"));

    // A server without TLS (no certificate configured): a clear, bounded error.
    assert_eq!(a.query_one_string("SELECT @@have_ssl").await.unwrap().as_deref(), Some("DISABLED"));
    let exporter = Exporter::start(&cluster("maria", &[url_tls("req")])).await;
    let tls_error = labels(&[("node", "req"), ("collector", "role"), ("reason", "tls")]);
    let refused = wait_for(Duration::from_secs(10), || async {
        exporter.scrape().await.get("rpo_collector_errors_total", &tls_error).is_some()
    })
    .await;
    assert!(refused, "TLS refusal not seen; log:\n{}", exporter.log());
    let m = exporter.scrape().await;
    assert_eq!(m.get("rpo_node_up", &labels(&[("node", "req")])), Some(0.0));
    assert_eq!(m.get("rpo_heartbeat_writes_total", &labels(&[("node", "req")])).unwrap_or(0.0), 0.0);
    let req_log = node_log(&exporter, "req");
    println!("req's log: {req_log}");
    assert!(req_log.contains("reason=tls ") && req_log.contains("does not offer TLS"), "{req_log}");
    drop(exporter);

    // The same server with TLS on: the URL's require_ssl=true is kept.
    maria_tls_on(a, a.node_dir());
    assert_eq!(a.query_one_string("SELECT @@have_ssl").await.unwrap().as_deref(), Some("YES"));
    let exporter = Exporter::start(&cluster("maria", &[url_tls("url")])).await;
    let ok = wait_for(Duration::from_secs(10), || async {
        exporter.scrape().await.get("rpo_heartbeat_writes_total", &labels(&[("node", "url")])).unwrap_or(0.0)
            >= 1.0
    })
    .await;
    assert!(ok, "node not writing; log:\n{}", exporter.log());
    let ciphers = maria_ciphers(a).await;
    println!("the exporter's sessions' Ssl_cipher: {ciphers:?}");
    assert!(!ciphers.is_empty(), "no session of the exporter's account found");
    assert!(ciphers.iter().all(|c| c.as_deref().is_some_and(|c| !c.is_empty())), "{ciphers:?}");
}

/// A `tls:` file that turns bad is refused by a reload, which keeps the running
/// config (and its sessions) and says so; `check-config` refuses it the same way.
#[tokio::test(flavor = "multi_thread")]
async fn a_reload_refuses_a_ca_file_that_is_not_pem() {
    let lab = Lab::start(PgLabSpec::new().primary("p")).await;
    let p = lab.pg.node("p");
    let server_ca = pg_tls_on(p, p.node_dir()).await;
    // The CA file the config names, which the test will spoil.
    let ca = lab.dir.path().join("db-ca.pem");
    std::fs::copy(&server_ca, &ca).unwrap();
    let config = cluster("lab", &[lab.node_yaml("p") + &tls_yaml("verify-full", &ca)]);
    let exporter = Exporter::start(&config).await;
    let writes = || async {
        exporter.scrape().await.get("rpo_heartbeat_writes_total", &labels(&[("node", "p")])).unwrap_or(0.0)
    };
    assert!(
        wait_for(Duration::from_secs(10), || async { writes().await >= 1.0 }).await,
        "{}",
        exporter.log()
    );

    std::fs::write(&ca, "-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n")
        .unwrap();
    let problem = format!(
        "clusters[0].nodes[0].tls.ca_file: {} is not valid PEM: a PEM section is not valid base64",
        ca.display()
    );
    let resp =
        reqwest::Client::new().post(format!("http://{}/-/reload", exporter.addr)).send().await.unwrap();
    let status = resp.status();
    let body = resp.text().await.unwrap();
    println!("reload answered {status}: {body}");
    assert_eq!(status, 500, "{body}");
    assert!(body.contains(&problem), "{body}");
    let m = exporter.scrape().await;
    assert_eq!(m.get("rpo_exporter_config_last_reload_successful", &labels(&[])), Some(0.0));
    let log = exporter.log();
    assert!(log.contains("Configuration reload failed; the previous configuration keeps running"), "{log}");
    assert!(log.contains(&problem), "{log}");
    // The running config keeps measuring over its encrypted session.
    let before = writes().await;
    assert!(wait_for(Duration::from_secs(5), || async { writes().await >= before + 2.0 }).await, "{log}");
    assert!(pg_sessions_ssl(p, "rpo-exporter").await.iter().all(|ssl| *ssl));

    let check = std::process::Command::new(env!("CARGO_BIN_EXE_rpo-exporter"))
        .arg("check-config")
        .arg(exporter.dir.path().join("config.yml"))
        .output()
        .unwrap();
    assert_eq!(check.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&check.stderr);
    assert!(stderr.contains(&problem), "{stderr}");

    // Repaired, the same file reloads.
    std::fs::copy(&server_ca, &ca).unwrap();
    exporter.reload(&config).await;
    let m = exporter.scrape().await;
    assert_eq!(m.get("rpo_exporter_config_last_reload_successful", &labels(&[])), Some(1.0));
}

/// Whether each backend named `application_name` is encrypted.
async fn pg_sessions_ssl(p: &rpo_lab::PgNode, application_name: &str) -> Vec<bool> {
    let client = p.client().await.unwrap();
    let rows = client
        .query(
            "SELECT s.ssl FROM pg_stat_activity a JOIN pg_stat_ssl s USING (pid) WHERE a.application_name = $1",
            &[&application_name],
        )
        .await
        .unwrap();
    assert!(!rows.is_empty(), "no session named {application_name}");
    rows.iter().map(|r| r.get(0)).collect()
}
