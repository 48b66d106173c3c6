//! `--web.config.file` against the real binary with real TLS clients: basic auth
//! (right, wrong, missing, unknown user), client certificates (required, optional,
//! from the wrong CA), a plain-HTTP client on the TLS port, and the file (and the
//! certificate it names) changed while the exporter runs.
//!
//! Certificates come from CAs the tests make with rcgen; bcrypt hashes use cost 4
//! because the test binaries are unoptimised (cost 10 takes seconds there).

mod support;

use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::wait_for;

/// A CA that signs server and client certificates.
struct Ca {
    params: rcgen::CertificateParams,
    key: rcgen::KeyPair,
    pem: String,
}

impl Ca {
    fn new(name: &str) -> Ca {
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, name);
        let pem = params.self_signed(&key).unwrap().pem();
        Ca { params, key, pem }
    }

    /// A leaf for `sans` as (certificate PEM, key PEM).
    fn leaf(&self, sans: &[&str], client: bool) -> (String, String) {
        let issuer = rcgen::Issuer::from_params(&self.params, &self.key);
        let key = rcgen::KeyPair::generate().unwrap();
        let mut params =
            rcgen::CertificateParams::new(sans.iter().map(|s| (*s).to_owned()).collect::<Vec<_>>()).unwrap();
        params.extended_key_usages = vec![if client {
            rcgen::ExtendedKeyUsagePurpose::ClientAuth
        } else {
            rcgen::ExtendedKeyUsagePurpose::ServerAuth
        }];
        (params.signed_by(&key, &issuer).unwrap().pem(), key.serialize_pem())
    }
}

/// The exporter started with `--web.config.file`, watching a node nobody listens on.
struct Exporter {
    child: Child,
    port: u16,
    dir: tempfile::TempDir,
    log_path: PathBuf,
}

impl Exporter {
    /// Writes `files` (name, content) and `web.yml` into a fresh directory and starts
    /// the exporter; waits until the port accepts connections.
    fn start(files: &[(&str, &str)], web_yml: &str) -> Exporter {
        let dir = tempfile::tempdir().unwrap();
        for (name, content) in files {
            std::fs::write(dir.path().join(name), content).unwrap();
        }
        std::fs::write(dir.path().join("web.yml"), web_yml).unwrap();
        let config = format!(
            "clusters:\n  - name: c\n    rpo: 1m\n    rto: 1h\n    nodes:\n      - {{ name: n, region: r, engine: postgres, dsn: \"host=127.0.0.1 port={} user=u dbname=d\" }}\n",
            rpo_lab::free_port()
        );
        std::fs::write(dir.path().join("config.yml"), config).unwrap();
        let port = rpo_lab::free_port();
        let log_path = dir.path().join("exporter.log");
        let child = Command::new(env!("CARGO_BIN_EXE_rpo-exporter"))
            .arg("--config.file")
            .arg(dir.path().join("config.yml"))
            .arg("--web.config.file")
            .arg(dir.path().join("web.yml"))
            .args(["--web.listen-address", &format!("127.0.0.1:{port}"), "--log.level", "debug"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log_path).unwrap())
            .spawn()
            .expect("spawn rpo-exporter");
        let mut exporter = Exporter { child, port, dir, log_path };
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
            if let Some(status) = exporter.child.try_wait().unwrap() {
                panic!("exporter exited with {status}; log:\n{}", exporter.log());
            }
            assert!(Instant::now() < deadline, "exporter not listening; log:\n{}", exporter.log());
            std::thread::sleep(Duration::from_millis(50));
        }
        exporter
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log_path).unwrap_or_default()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn url(&self, scheme: &str, path: &str) -> String {
        format!("{scheme}://127.0.0.1:{}{path}", self.port)
    }

    /// Replaces a file the way editors and config managers do: write a new file,
    /// rename it over the old one.
    fn replace(&self, name: &str, content: &str) {
        let tmp = self.path(&format!(".{name}.tmp"));
        std::fs::write(&tmp, content).unwrap();
        std::fs::rename(&tmp, self.path(name)).unwrap();
    }

    fn assert_running(&mut self) {
        assert!(self.child.try_wait().unwrap().is_none(), "exporter exited; log:\n{}", self.log());
    }
}

impl Drop for Exporter {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A TLS client trusting `ca` (and only it), presenting `identity` if given. No
/// connection pooling: every request is a new connection, as a reload test needs.
fn client(ca: &str, identity: Option<(&str, &str)>) -> reqwest::Client {
    let mut builder = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
        .pool_max_idle_per_host(0)
        .timeout(Duration::from_secs(5));
    if let Some((cert, key)) = identity {
        builder = builder.identity(reqwest::Identity::from_pem(format!("{cert}{key}").as_bytes()).unwrap());
    }
    builder.build().unwrap()
}

fn bcrypt_hash(password: &str) -> String {
    bcrypt::hash(password, 4).unwrap()
}

/// The status code, or the error when the request did not get an answer.
async fn status(request: reqwest::RequestBuilder) -> Result<u16, String> {
    request.send().await.map(|r| r.status().as_u16()).map_err(|e| format!("{e:?}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn tls_and_basic_auth_with_reload_without_restart() {
    let ca = Ca::new("test server CA");
    let (cert, key) = ca.leaf(&["127.0.0.1"], false);
    let web = |hash: &str| {
        format!(
            "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  prometheus: {hash}\nhttp_server_config:\n  headers:\n    X-Content-Type-Options: nosniff\n"
        )
    };
    let mut exporter =
        Exporter::start(&[("server.crt", &cert), ("server.key", &key)], &web(&bcrypt_hash("first")));
    let https = client(&ca.pem, None);
    let metrics = exporter.url("https", "/metrics");

    // The right password reads the metrics; the configured header is on the answer.
    let r = https.get(&metrics).basic_auth("prometheus", Some("first")).send().await.unwrap();
    assert_eq!(r.status(), 200, "log:\n{}", exporter.log());
    assert_eq!(r.headers()["x-content-type-options"], "nosniff");
    assert!(r.text().await.unwrap().contains("rpo_exporter_build_info"));
    // Twice: the second answer comes from the bcrypt cache and must agree.
    assert_eq!(status(https.get(&metrics).basic_auth("prometheus", Some("first"))).await, Ok(200));

    // Wrong password, unknown user, no credentials: 401 with a Basic challenge.
    for request in [
        https.get(&metrics).basic_auth("prometheus", Some("wrong")),
        https.get(&metrics).basic_auth("someone", Some("first")),
        https.get(&metrics),
        https.get(exporter.url("https", "/-/healthy")),
    ] {
        let r = request.send().await.unwrap();
        assert_eq!(r.status(), 401);
        let challenge = r.headers()["www-authenticate"].to_str().unwrap().to_owned();
        assert!(challenge.starts_with("Basic "), "{challenge}");
    }

    // Plain HTTP on the TLS port: a clear 400, and the exporter goes on serving TLS.
    let plain = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let r = plain.get(exporter.url("http", "/metrics")).send().await.unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("HTTP request to an HTTPS server"));
    // A client that connects and closes without a word changes nothing either.
    drop(std::net::TcpStream::connect(("127.0.0.1", exporter.port)).unwrap());
    assert_eq!(status(https.get(&metrics).basic_auth("prometheus", Some("first"))).await, Ok(200));

    // A new password in the file works at once, without a restart; the old one stops.
    let pid = exporter.child.id();
    exporter.replace("web.yml", &web(&bcrypt_hash("second")));
    assert_eq!(status(https.get(&metrics).basic_auth("prometheus", Some("second"))).await, Ok(200));
    assert_eq!(status(https.get(&metrics).basic_auth("prometheus", Some("first"))).await, Ok(401));
    assert_eq!(exporter.child.id(), pid);
    assert!(exporter.log().contains("Web config reloaded"), "log:\n{}", exporter.log());

    // A broken file keeps the last good config and says why in the log.
    exporter.replace("web.yml", "basic_auth_users:\n  prometheus: not-a-hash\n");
    assert_eq!(status(https.get(&metrics).basic_auth("prometheus", Some("second"))).await, Ok(200));
    let log = exporter.log();
    assert!(
        log.contains("Web config reload failed")
            && log.contains("basic_auth_users.prometheus: is not a bcrypt hash"),
        "log:\n{log}"
    );
    // So does a file that would switch TLS off.
    exporter.replace("web.yml", &format!("basic_auth_users:\n  prometheus: {}\n", bcrypt_hash("third")));
    assert_eq!(status(https.get(&metrics).basic_auth("prometheus", Some("second"))).await, Ok(200));
    assert!(exporter.log().contains("switching TLS on or off needs a restart"), "log:\n{}", exporter.log());

    // A renewed certificate (here from another CA) is served to new connections
    // without a restart, once the web config is good again.
    exporter.replace("web.yml", &web(&bcrypt_hash("second")));
    let ca2 = Ca::new("renewed server CA");
    let (cert2, key2) = ca2.leaf(&["127.0.0.1"], false);
    exporter.replace("server.key", &key2);
    exporter.replace("server.crt", &cert2);
    let renewed = client(&ca2.pem, None);
    let ok = wait_for(Duration::from_secs(5), || async {
        status(renewed.get(&metrics).basic_auth("prometheus", Some("second"))).await == Ok(200)
    })
    .await;
    assert!(ok, "renewed certificate not served; log:\n{}", exporter.log());
    assert!(status(https.get(&metrics).basic_auth("prometheus", Some("second"))).await.is_err());
    exporter.assert_running();
}

#[tokio::test(flavor = "multi_thread")]
async fn client_certificates_required_or_optional() {
    let server_ca = Ca::new("server CA");
    let client_ca = Ca::new("client CA");
    let other_ca = Ca::new("someone else's CA");
    let (cert, key) = server_ca.leaf(&["127.0.0.1"], false);
    let good = client_ca.leaf(&["prometheus.example"], true);
    let stranger = other_ca.leaf(&["prometheus.example"], true);
    let files =
        [("server.crt", cert.as_str()), ("server.key", key.as_str()), ("clients.crt", &client_ca.pem)];
    let web = |mode: &str| {
        format!("tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: {mode}\n  client_ca_file: clients.crt\n  min_version: TLS12\n")
    };

    let mut required = Exporter::start(&files, &web("RequireAndVerifyClientCert"));
    let metrics = required.url("https", "/metrics");
    let with_cert = client(&server_ca.pem, Some((&good.0, &good.1)));
    assert_eq!(status(with_cert.get(&metrics)).await, Ok(200), "log:\n{}", required.log());
    let without = status(client(&server_ca.pem, None).get(&metrics)).await;
    assert!(without.is_err(), "no client certificate must be refused, got {without:?}");
    let wrong = status(client(&server_ca.pem, Some((&stranger.0, &stranger.1))).get(&metrics)).await;
    assert!(wrong.is_err(), "a certificate from another CA must be refused, got {wrong:?}");
    assert!(required.log().contains("TLS handshake failed"), "log:\n{}", required.log());
    // Refused handshakes leave the server serving.
    assert_eq!(status(with_cert.get(&metrics)).await, Ok(200));
    required.assert_running();

    let mut optional = Exporter::start(&files, &web("VerifyClientCertIfGiven"));
    let metrics = optional.url("https", "/metrics");
    assert_eq!(status(client(&server_ca.pem, None).get(&metrics)).await, Ok(200));
    assert_eq!(status(client(&server_ca.pem, Some((&good.0, &good.1))).get(&metrics)).await, Ok(200));
    let wrong = status(client(&server_ca.pem, Some((&stranger.0, &stranger.1))).get(&metrics)).await;
    assert!(wrong.is_err(), "a certificate that is given is verified, got {wrong:?}");
    optional.assert_running();
}

#[tokio::test(flavor = "multi_thread")]
async fn basic_auth_over_plain_http() {
    let exporter = Exporter::start(&[], &format!("basic_auth_users:\n  prometheus: {}\n", bcrypt_hash("pw")));
    let http = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let metrics = exporter.url("http", "/metrics");
    assert_eq!(status(http.get(&metrics).basic_auth("prometheus", Some("pw"))).await, Ok(200));
    assert_eq!(status(http.get(&metrics).basic_auth("prometheus", Some("nope"))).await, Ok(401));
    assert!(!exporter.log().contains("nope"), "a password reached the log:\n{}", exporter.log());
}

#[test]
fn an_invalid_web_config_stops_startup_with_the_file_and_field() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("config.yml");
    std::fs::write(
        &config,
        "clusters:\n  - name: c\n    rpo: 1m\n    rto: 1h\n    nodes:\n      - { name: n, region: r, engine: postgres, dsn: \"host=127.0.0.1 port=1 user=u dbname=d\" }\n",
    )
    .unwrap();
    let web = dir.path().join("web.yml");
    std::fs::write(&web, "tls_server_config:\n  cert_file: missing.crt\n  key_file: missing.key\n").unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_rpo-exporter"))
        .arg("--config.file")
        .arg(&config)
        .arg("--web.config.file")
        .arg(&web)
        .args(["--web.listen-address", &format!("127.0.0.1:{}", rpo_lab::free_port())])
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    let want = format!(
        "{}: tls_server_config.cert_file: cannot read {}",
        web.display(),
        dir.path().join("missing.crt").display()
    );
    assert!(stderr.contains("Invalid web configuration") && stderr.contains(&want), "{stderr}");
}
