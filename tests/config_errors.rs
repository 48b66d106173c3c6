//! One file per config mistake, each mapped to its exact error text (as
//! blackbox_exporter's config tests do), and `check-config`'s exit codes; bad
//! flags that must stop the exporter before it binds; and no secret in any
//! error, log line or response body that bad configs produce.

mod support;

use std::path::Path;
use std::process::Command;

const DIR: &str = "tests/testdata/config";

/// (file, the error after "FILE: ").
const CASES: &[(&str, &str)] = &[
    ("invalid-unknown-field.yml", "clusters[0].heartbeat.jitter: unknown field `jitter`, expected one of interval, timeout, connect_timeout, position_interval, table, create_table, sources, format, utc at line 5, column 32"),
    ("invalid-bad-duration.yml", "clusters[0].heartbeat.interval: invalid duration \"1 second please\": expected number at 9 (write it like 500ms, 10s or 5m)"),
    ("invalid-interval-out-of-range.yml", "clusters[0].heartbeat.interval: 2m is out of range: the interval must be between 100ms and 1m"),
    ("invalid-position-interval.yml", "clusters[0].heartbeat.position_interval: 600ms is out of range: it must be 0s (off) or between 10ms and half the interval (500ms)"),
    ("invalid-connect-timeout.yml", "clusters[0].heartbeat.connect_timeout: 500ms is out of range: it must be at least the timeout (2s) and at most 30s"),
    ("invalid-missing-password-file.yml", "clusters[0].nodes[0].password_file: cannot read password_file tests/testdata/config/no-such-file: No such file or directory (os error 2)"),
    ("invalid-duplicate-node.yml", "clusters[0].nodes[1].name: duplicate node name \"orders-use1\" in cluster \"orders\""),
    ("invalid-duplicate-cluster.yml", "clusters[1].name: duplicate cluster name \"orders\""),
    ("invalid-unknown-engine.yml", "clusters[0].nodes[0].engine: unknown engine \"oracle\": expected postgres or mysql (which covers MariaDB)"),
    ("invalid-password-in-dsn.yml", "clusters[0].nodes[0].dsn: the connection string contains a password; move it to password_file or password_env"),
    ("invalid-unset-password-env.yml", "clusters[0].nodes[0].password_env: environment variable RPO_TEST_UNSET_VARIABLE (password_env) is not set"),
    ("invalid-two-password-sources.yml", "clusters[0].nodes[0]: set either password_file or password_env, not both"),
    ("invalid-write-mode.yml", "clusters[0].write_mode: unknown write mode \"active-passive\": expected single-writer or multi-writer"),
    ("invalid-table-name.yml", "clusters[0].heartbeat.table: \"heartbeat\" is not of the form schema.table"),
    ("invalid-no-nodes.yml", "clusters[0].nodes: at least one node is required"),
    ("invalid-missing-rpo.yml", "clusters[0]: missing field `rpo` at line 4, column 5"),
    ("invalid-region-label.yml", "clusters[0].nodes[0].region: \"us east 1\" is not a valid name: use 1 to 64 characters from A-Z a-z 0-9 - _ . :"),
    ("invalid-pt-heartbeat-on-postgres.yml", "clusters[0].nodes[0].engine: heartbeat.format pt-heartbeat needs engine mysql, not postgres"),
    ("invalid-utc-without-pt-heartbeat.yml", "clusters[0].heartbeat.utc: only applies to format: pt-heartbeat"),
    ("invalid-heartbeat-format.yml", "clusters[0].heartbeat.format: unknown heartbeat format \"pt\": expected rpo or pt-heartbeat"),
    ("invalid-mysql-dsn.yml", "clusters[0].nodes[0].dsn: the connection URL contains a password; move it to password_file or password_env"),
    ("invalid-health-url-with-credentials.yml", "health.regions.us-east-1.probes[0].http: \"https://REDACTED@exa mple.com/healthz?token=REDACTED&region=REDACTED\" is not a URL: invalid international domain name"),
    ("invalid-health-bad-url.yml", "health.regions.us-east-1.probes[0].http: \"https://exa mple.com:x/healthz\" is not a URL: invalid international domain name"),
    ("invalid-health-timeout.yml", "health.regions.us-east-1.probes[0].timeout: 10s must be greater than 0 and at most the health interval (5s)"),
    ("invalid-health-quorum.yml", "health.regions.us-east-1.quorum: 3 is out of range: between 1 and the region's 2 probes"),
    ("invalid-health-tcp-address.yml", "health.regions.us-east-1.probes[0].tcp: \"10.0.0.9\" is not host:port"),
    ("invalid-tls-mode.yml", "clusters[0].nodes[0].tls.mode: unknown TLS mode \"verify-everything\": expected disable, prefer, require, verify-ca or verify-full"),
    ("invalid-tls-and-sslmode.yml", "clusters[0].nodes[0].dsn: sets TLS options too; configure TLS in tls: only"),
    ("invalid-tls-ca-file.yml", "clusters[0].nodes[0].tls.ca_file: cannot read tests/testdata/config/no-such-ca.pem: No such file or directory (os error 2)"),
    ("invalid-tls-prefer-mysql.yml", "clusters[0].nodes[0].tls.mode: prefer is not available for mysql: use disable, require, verify-ca or verify-full"),
    ("invalid-tls-ca-not-pem.yml", "clusters[0].nodes[0].tls.ca_file: tests/testdata/config/tls/not-pem.txt holds no certificate: expected PEM (-----BEGIN CERTIFICATE-----)"),
    ("invalid-tls-ca-truncated.yml", "clusters[0].nodes[0].tls.ca_file: tests/testdata/config/tls/truncated.pem is not valid PEM: a PEM section has no END line"),
    ("invalid-tls-ca-unreadable.yml", "clusters[0].nodes[1].tls.ca_file: cannot read tests/testdata/config/tls: Is a directory (os error 21)"),
    ("invalid-tls-cert-file-missing.yml", "clusters[0].nodes[0].tls.cert_file: cannot read tests/testdata/config/tls/no-such-cert.pem: No such file or directory (os error 2)"),
    ("invalid-tls-key-not-a-key.yml", "clusters[0].nodes[0].tls.key_file: tests/testdata/config/tls/client.pem holds no private key: expected PEM (-----BEGIN PRIVATE KEY-----, RSA PRIVATE KEY or EC PRIVATE KEY)"),
    ("invalid-tls-key-mismatch.yml", "clusters[0].nodes[0].tls.key_file: tests/testdata/config/tls/other-key.pem (cert_file tests/testdata/config/tls/client.pem): the key does not belong to the certificate of cert_file"),
    ("invalid-tls-key-mismatch-mysql.yml", "clusters[0].nodes[0].tls.key_file: tests/testdata/config/tls/other-key.pem (cert_file tests/testdata/config/tls/client.pem): the key does not belong to the certificate of cert_file"),
    ("invalid-tls-and-require-ssl.yml", "clusters[0].nodes[0].dsn: sets TLS options too; configure TLS in tls: only"),
    ("invalid-mysql-verify-without-require-ssl.yml", "clusters[0].nodes[0].dsn: verify_identity=true asks for TLS, but without require_ssl=true the driver would connect unencrypted: add require_ssl=true (or use a tls: block)"),
    ("invalid-yaml-syntax.yml", "clusters[0]: unclosed quote at line 3, column 10"),
    ("invalid-dns-resolver-address.yml", "dns.records[0].resolvers[1]: \"dns2.example.com:53\" is not a server address: write IP:port (e.g. 10.0.0.2:53 or [2001:db8::53]:53); host names are not resolved"),
    ("invalid-dns-answer-not-address.yml", "dns.records[0].answers.us-east-1: \"db-use1.example.com.\" is not an IPv4 address, as an A record's answer must be"),
    ("invalid-dns-follow-unknown-cluster.yml", "dns.records[0].follow_cluster: no cluster is named \"payments\" (clusters: orders)"),
    ("invalid-dns-answer-region-not-in-cluster.yml", "dns.records[0].answers.ap-south-1: no node of cluster \"orders\" is in region \"ap-south-1\" (its regions: us-east-1, eu-west-1)"),
    ("invalid-dns-record-type.yml", "dns.records[0].type: unsupported record type \"MX\": expected A, AAAA or CNAME"),
    ("invalid-dns-no-active-region.yml", "dns.records[0]: set follow_cluster (the active region follows that cluster's writable node) or active_region"),
    ("invalid-dns-active-region-without-answer.yml", "dns.records[0].active_region: \"eu-central-1\" has no answer (answers: eu-west-1, us-east-1)"),
    ("invalid-residency-filtered-postgres.yml", "clusters[0].nodes[1].replication: postgres has no filtered replication: a node that copies only some tables is a logical subscriber (replication: logical); expected physical, logical or none"),
    ("invalid-residency-no-node-in-regions.yml", "clusters[0].residency.rules[0].allowed_regions: no node of the cluster is in eu-west-1: the rule's tables could be held nowhere"),
    ("invalid-residency-pattern.yml", "clusters[0].residency.rules[0].pattern: \"pii\" is not of the form schema.table_pattern (a lower-case schema name, then a table name where % matches any run of characters)"),
    ("invalid-residency-physical-mysql.yml", "clusters[0].nodes[1].replication: node \"orders-use1\" in region us-east-1 is a full copy (replication: physical, the default): MySQL/MariaDB replication without replicate_* filters copies every table of its source, and a primary holds them all, so it would hold the tables of rule \"pii-eu\" (pii.customers), which may only be in eu-west-1; move the node to an allowed region, or, if it is a replica with replicate_* filters or an independent server, set replication: filtered or none (clusters[0].residency.rules[0])"),
    ("invalid-residency-physical-replica.yml", "clusters[0].nodes[1].replication: node \"orders-use1\" in region us-east-1 is a full copy (replication: physical, the default): PostgreSQL streaming (physical) replication copies every table of the primary, and a primary holds them all, so it would hold the tables of rule \"pii-eu\" (pii.customers), which may only be in eu-west-1; move the node to an allowed region, or, if it is a logical subscriber or an independent server, set replication: logical or none (clusters[0].residency.rules[0])"),
    ("invalid-residency-two-targets.yml", "clusters[0].residency.rules[0]: set exactly one of table, schema or pattern"),
    ("invalid-residency-unknown-region.yml", "clusters[0].residency.rules[0].allowed_regions[0]: unknown region \"eu-west1\": no node of the config is in it (nodes are in eu-west-1, us-east-1)"),
    ("invalid-dns-authoritative.yml", "dns.records[0].authoritative: \"auto\": expected discover or a list of servers (\"IP:port\")"),
    ("invalid-dns-timeout.yml", "dns.timeout: 10s is out of range: the timeout must be between 10ms and the interval (5s)"),
    ("invalid-dns-unknown-field.yml", "dns.records[0].ttl: unknown field `ttl`, expected one of name, type, answers, follow_cluster, active_region, resolvers, authoritative, discover_port, zone at line 15, column 7"),
];

fn exporter() -> Command {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_rpo-exporter"));
    cmd.current_dir(env!("CARGO_MANIFEST_DIR")).env("RPO_TEST_PASSWORD", "from-the-environment");
    cmd
}

#[test]
fn every_mistake_has_its_exact_error() {
    std::env::set_current_dir(env!("CARGO_MANIFEST_DIR")).unwrap();
    std::env::set_var("RPO_TEST_PASSWORD", "from-the-environment");
    let mut failures = Vec::new();
    for (file, expected) in CASES {
        let path = Path::new(DIR).join(file);
        match rpo_exporter::load::file(&path) {
            Ok(_) => failures.push(format!("{file}: accepted")),
            Err(e) => {
                let want = format!("{}: {expected}", path.display());
                if e.to_string() != want {
                    failures.push(format!("{file}:\n  got  {e}\n  want {want}"));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn every_invalid_file_is_covered() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join(DIR);
    for entry in std::fs::read_dir(dir).unwrap() {
        let name = entry.unwrap().file_name().into_string().unwrap();
        if name.starts_with("invalid-") {
            assert!(CASES.iter().any(|(f, _)| *f == name), "{name} has no expected error in CASES");
        }
    }
}

#[test]
fn check_config_exit_codes() {
    let ok = exporter().args(["check-config", "tests/testdata/config/valid.yml"]).output().unwrap();
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stderr));
    assert!(String::from_utf8_lossy(&ok.stdout).contains("valid (2 clusters, 3 nodes)"));

    let bad =
        exporter().args(["check-config", "tests/testdata/config/invalid-bad-duration.yml"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr
            .starts_with("tests/testdata/config/invalid-bad-duration.yml: clusters[0].heartbeat.interval: "),
        "{stderr}"
    );

    let missing = exporter().args(["check-config", "tests/testdata/config/nope.yml"]).output().unwrap();
    assert_eq!(missing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("cannot read the file"));

    let usage = exporter().args(["check-config"]).output().unwrap();
    assert_eq!(usage.status.code(), Some(2), "clap's usage error");
}

#[test]
fn check_config_warns_when_settings_are_too_tight_for_the_regions() {
    let file = "tests/testdata/config/warn-too-tight-for-regions.yml";
    let out = exporter().args(["check-config", file]).output().unwrap();
    assert_eq!(out.status.code(), Some(0), "warnings do not fail the check");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let why = "the cluster's nodes are in 2 regions, and a round trip between regions can take 300ms";
    let expected = [
        format!("warning: {file}: clusters[0].heartbeat.timeout: 300ms is too short: {why}, so a slow statement's answer would come too late and the node would read as down; raise it to at least 600ms"),
        format!("warning: {file}: clusters[0].heartbeat.interval: 250ms is too short: {why}, so heartbeats would come late; raise it to at least 400ms"),
        format!("warning: {file}: clusters[0].heartbeat.connect_timeout: 1s is too short: {why}, so opening a session would time out; raise it to at least 2s 100ms"),
    ];
    assert_eq!(stderr.lines().collect::<Vec<_>>(), expected.iter().map(String::as_str).collect::<Vec<_>>());
    // The shipped example and the valid test config draw no warning.
    let ok = exporter().args(["check-config", "tests/testdata/config/valid.yml"]).output().unwrap();
    assert_eq!(String::from_utf8_lossy(&ok.stderr), "");
}

#[test]
fn a_password_in_a_dsn_is_never_echoed() {
    let out = exporter()
        .args(["check-config", "tests/testdata/config/invalid-password-in-dsn.yml"])
        .output()
        .unwrap();
    let all = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(!all.contains("hunter2"), "{all}");
}

#[test]
fn schema_prints_ddl_and_grants() {
    let out = exporter().args(["schema", "postgres", "--table", "ops.hb", "--role", "mon"]).output().unwrap();
    assert!(out.status.success());
    let sql = String::from_utf8(out.stdout).unwrap();
    assert!(sql.contains("CREATE TABLE IF NOT EXISTS ops.hb ("), "{sql}");
    assert!(sql.contains("GRANT SELECT, INSERT, UPDATE ON ops.hb TO mon;"), "{sql}");
    let bad = exporter().args(["schema", "postgres", "--table", "x;drop"]).output().unwrap();
    assert_eq!(bad.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&bad.stderr).contains("schema.table"));
    let engine = exporter().args(["schema", "oracle"]).output().unwrap();
    assert_eq!(engine.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&engine.stderr).contains("unknown engine \"oracle\""));
}

#[test]
fn tls_files_are_read_and_checked_at_load() {
    std::env::set_current_dir(env!("CARGO_MANIFEST_DIR")).unwrap();
    let file = "tests/testdata/config/valid-tls.yml";
    let config = rpo_exporter::load::file(Path::new(file)).unwrap();
    let key = std::fs::read_to_string("tests/testdata/config/tls/client-key.pem").unwrap();
    for node in &config.clusters[0].nodes {
        let tls = node.endpoint.tls.as_ref().unwrap();
        let (cert, key_pem) = tls.client_pem.as_ref().expect("the client certificate, loaded");
        assert!(cert.starts_with(b"-----BEGIN CERTIFICATE-----"));
        assert_eq!(&key_pem[..], key.as_bytes());
        // The key never shows in a debug print of the config.
        let printed = format!("{tls:?}");
        let body = key.lines().nth(1).unwrap();
        assert!(!printed.contains(body) && printed.contains("redacted"), "{printed}");
    }
    let ok = exporter().args(["check-config", file]).output().unwrap();
    assert_eq!(ok.status.code(), Some(0), "{}", String::from_utf8_lossy(&ok.stderr));
    let bad = exporter()
        .args(["check-config", "tests/testdata/config/invalid-tls-key-mismatch.yml"])
        .output()
        .unwrap();
    assert_eq!(bad.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&bad.stderr);
    assert!(
        stderr.contains("clusters[0].nodes[0].tls.key_file: tests/testdata/config/tls/other-key.pem"),
        "{stderr}"
    );
    let other_key = std::fs::read_to_string("tests/testdata/config/tls/other-key.pem").unwrap();
    assert!(!stderr.contains(other_key.lines().nth(1).unwrap()), "{stderr}");
}

/// Runs the binary to completion (at most 10 s); (exit code, stdout + stderr).
fn run_to_exit(mut cmd: Command) -> (Option<i32>, String) {
    let mut child =
        cmd.stdout(std::process::Stdio::piped()).stderr(std::process::Stdio::piped()).spawn().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while child.try_wait().unwrap().is_none() {
        if std::time::Instant::now() > deadline {
            let _ = child.kill();
            let out = child.wait_with_output().unwrap();
            panic!("still running after 10s: {}", String::from_utf8_lossy(&out.stderr));
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let out = child.wait_with_output().unwrap();
    let text = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    (out.status.code(), text)
}

#[test]
fn bad_telemetry_paths_stop_the_exporter_before_it_binds() {
    // The port is taken: an exporter that got as far as binding would fail on
    // that instead, so the message proves the flag was checked first.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let cases: &[(&str, &str)] = &[
        ("/", "is one of the exporter's own endpoints"),
        ("/-/reload", "is one of the exporter's own endpoints"),
        ("/-/healthy", "is one of the exporter's own endpoints"),
        ("/-/ready", "is one of the exporter's own endpoints"),
        ("/-/metrics", "must not be under /-/"),
        ("metrics", "must start with /"),
        ("", "must start with /"),
        ("/metrics/{id}", "'{' is not allowed"),
        ("/metrics/*rest", "'*' is not allowed"),
        ("/metrics?x=1", "'?' is not allowed"),
        ("//metrics", "must not contain an empty segment"),
    ];
    let mut wrong = Vec::new();
    for (path, why) in cases {
        let mut cmd = exporter();
        cmd.args(["--config.file", "tests/testdata/config/valid.yml", "--web.listen-address", &addr])
            .arg(format!("--web.telemetry-path={path}"));
        let (code, out) = run_to_exit(cmd);
        // The error is a quoted logfmt value: its own quotes come escaped.
        let out = out.replace("\\\"", "\"");
        let named = format!("--web.telemetry-path {path:?}");
        let ok = code == Some(1)
            && out.contains("Invalid flag")
            && out.contains(&named)
            && out.contains(why)
            && !out.contains("panicked")
            && !out.contains("cannot listen");
        if !ok {
            wrong.push(format!("{path:?}: exit {code:?}; want 1, {named:?} and {why:?}:\n{out}"));
        }
    }
    // Good ones still start (they fail on the taken port, after the check).
    for path in ["/metrics", "/probe/metrics", "/metrics/"] {
        let mut cmd = exporter();
        cmd.args(["--config.file", "tests/testdata/config/valid.yml", "--web.listen-address", &addr])
            .arg(format!("--web.telemetry-path={path}"));
        let (code, out) = run_to_exit(cmd);
        if code != Some(1) || !out.contains("cannot listen") {
            wrong.push(format!("{path:?} was refused: {out}"));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    drop(taken);
}

/// Secrets the bad configs below carry; none may appear in what the exporter says.
const TOKEN: &str = "tok-UNMISTAKABLE-5d2a";
const URL_USER: &str = "probe-user-UNMISTAKABLE";

fn leaks(what: &str, text: &str) -> Vec<String> {
    [support::PASSWORD, TOKEN, URL_USER]
        .iter()
        .filter(|secret| text.contains(*secret))
        .map(|secret| format!("{what} contains {secret:?}:\n{text}"))
        .collect()
}

/// (what, config) pairs: bad configs that hold the test secrets in every place a
/// secret can hide — DSN passwords (key=value, URL, malformed), URL userinfo and
/// query tokens in probes, a password where a variable name goes, the secret on
/// a line YAML cannot parse, and a password file next to an unrelated mistake.
fn bad_configs(password_file: &std::path::Path) -> Vec<(&'static str, String)> {
    let pw = support::PASSWORD;
    let pf = password_file.display();
    let node = |extra: &str| {
        format!("clusters:\n  - name: c\n    rpo: 1m\n    rto: 1h\n    nodes:\n      - {{ name: n, region: r, engine: postgres, {extra} }}\n")
    };
    let probe = |url: &str, more: &str| {
        format!(
            "{}health:\n  interval: 5s\n  regions:\n    r:\n      probes:\n        - {{ name: api, http: \"{url}\"{more} }}\n",
            node(&format!("dsn: \"host=127.0.0.1 port=1 user=u dbname=d\", password_file: {pf}"))
        )
    };
    vec![
        (
            "postgres key=value password",
            node(&format!("dsn: \"host=127.0.0.1 port=1 user=u password={pw} dbname=d\"")),
        ),
        ("postgres URL password", node(&format!("dsn: \"postgres://u:{pw}@127.0.0.1:1/d\""))),
        (
            "postgres key=value, bad port",
            node(&format!("dsn: \"host=127.0.0.1 port=notaport user=u password={pw}\"")),
        ),
        ("postgres URL, bad port", node(&format!("dsn: \"postgres://u:{pw}@127.0.0.1:notaport/d\""))),
        ("postgres unterminated quote", node(&format!("dsn: \"host=127.0.0.1 user=u password='{pw}\""))),
        (
            "mysql URL password",
            node(&format!("engine: mysql, dsn: \"mysql://u:{pw}@127.0.0.1:3306/d\""))
                .replace("engine: postgres, ", ""),
        ),
        (
            "mysql URL, bad port",
            node(&format!("engine: mysql, dsn: \"mysql://u:{pw}@127.0.0.1:notaport/d\""))
                .replace("engine: postgres, ", ""),
        ),
        (
            "mysql URL query password",
            node(&format!("engine: mysql, dsn: \"mysql://u@127.0.0.1:3306/d?password={pw}\""))
                .replace("engine: postgres, ", ""),
        ),
        (
            "probe URL that does not parse",
            probe(&format!("https://{URL_USER}:{pw}@exa mple.com/h?token={TOKEN}"), ""),
        ),
        (
            "probe URL of another scheme",
            probe(&format!("ftp://{URL_USER}:{pw}@example.com/h?token={TOKEN}"), ""),
        ),
        ("probe URL without a host", probe(&format!("https://{URL_USER}:{pw}@/h?token={TOKEN}"), "")),
        (
            "probe URL, bad timeout",
            probe(&format!("https://{URL_USER}:{pw}@example.com/h?token={TOKEN}"), ", timeout: 1h"),
        ),
        (
            "probe URL, bad status",
            probe(&format!("https://{URL_USER}:{pw}@example.com/h?token={TOKEN}"), ", expect_status: [999]"),
        ),
        (
            "password in password_env",
            node(&format!("dsn: \"host=127.0.0.1 user=u\", password_env: \"{pw}\"")),
        ),
        (
            "password as an unknown field",
            node(&format!("dsn: \"host=127.0.0.1 user=u\", password: \"{pw}\"")),
        ),
        (
            "password_file of the wrong type",
            node(&format!("dsn: \"host=127.0.0.1 user=u\", password_file: [\"{pw}\"]")),
        ),
        ("secret on a line YAML cannot parse", node(&format!("dsn: \"host=127.0.0.1 user=u password={pw}"))),
        (
            "password file beside a bad duration",
            node(&format!("dsn: \"host=127.0.0.1 port=1 user=u dbname=d\", password_file: {pf}"))
                .replace("rpo: 1m", "rpo: soon"),
        ),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn no_secret_in_any_error_log_or_response_body() {
    let dir = tempfile::tempdir().unwrap();
    let password_file = dir.path().join("password");
    std::fs::write(&password_file, format!("{}\n", support::PASSWORD)).unwrap();
    let configs = bad_configs(&password_file);
    let mut problems = Vec::new();

    // A running exporter whose config holds a probe with every kind of secret
    // (failing against a closed port, so it logs), reloaded with each bad config.
    let closed = rpo_lab::free_port();
    let good = format!(
        "clusters:\n  - name: c\n    rpo: 1m\n    rto: 1h\n    nodes:\n      - {{ name: n, region: r, engine: postgres, dsn: \"host=127.0.0.1 port={closed} user=u dbname=d\", password_file: {} }}\nhealth:\n  interval: 1s\n  regions:\n    r:\n      probes:\n        - {{ name: api, http: \"http://{URL_USER}:{}@127.0.0.1:{closed}/h?token={TOKEN}\", timeout: 500ms }}\n",
        password_file.display(),
        support::PASSWORD
    );
    let running = support::Exporter::start(&good).await;
    let client = reqwest::Client::new();
    let reload = format!("http://{}/-/reload", running.addr);

    for (what, config) in &configs {
        let file = dir.path().join("bad.yml");
        std::fs::write(&file, config).unwrap();

        let mut check = exporter();
        check.arg("check-config").arg(&file);
        let (code, out) = run_to_exit(check);
        if code != Some(1) {
            problems.push(format!("{what}: check-config exit {code:?}: {out}"));
        }
        problems.extend(leaks(&format!("{what}: check-config"), &out));

        let mut start = exporter();
        start.arg("--config.file").arg(&file).args([
            "--web.listen-address",
            &format!("127.0.0.1:{}", rpo_lab::free_port()),
            "--log.level",
            "debug",
        ]);
        let (code, out) = run_to_exit(start);
        if code != Some(1) {
            problems.push(format!("{what}: startup exit {code:?}: {out}"));
        }
        problems.extend(leaks(&format!("{what}: startup"), &out));

        running.rewrite_config(config);
        let (status, body) = loop {
            let r = client.post(&reload).send().await.unwrap();
            if r.status() != 429 {
                break (r.status(), r.text().await.unwrap());
            }
            tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        };
        if status != 500 {
            problems.push(format!("{what}: /-/reload answered {status}: {body}"));
        }
        problems.extend(leaks(&format!("{what}: /-/reload body"), &body));
    }
    // The probe has failed (and logged) by now; the log and /metrics stay clean.
    let failed = support::wait_for(std::time::Duration::from_secs(5), || async {
        running.log().contains("Probe failed")
    })
    .await;
    assert!(failed, "the probe never failed; log:\n{}", running.log());
    problems.extend(leaks("/metrics", &running.scrape_text().await));
    problems.extend(leaks("the running exporter's log", &running.log()));
    println!("{} bad configs checked via check-config, startup and /-/reload", configs.len());
    assert!(problems.is_empty(), "{}", problems.join("\n\n"));
}
