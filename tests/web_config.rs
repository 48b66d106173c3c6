//! `--web.config.file` against the real binary with real TLS clients: basic auth
//! (right, wrong, missing, unknown user), client certificates (required, optional,
//! from the wrong CA), a plain-HTTP client on the TLS port, and the file (and the
//! certificate it names) changed while the exporter runs.
//!
//! Certificates come from CAs the tests make with rcgen; bcrypt hashes use cost 4
//! because the test binaries are unoptimised (cost 10 takes seconds there).

mod support;

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};
use support::{wait_for, Metrics};

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
        Exporter::start_with(files, web_yml, &[])
    }

    /// As [`Exporter::start`], with more flags.
    fn start_with(files: &[(&str, &str)], web_yml: &str, flags: &[&str]) -> Exporter {
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
            .args(flags)
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

#[tokio::test(flavor = "multi_thread")]
async fn every_listen_address_serves_with_the_same_tls_and_authentication() {
    let ca = Ca::new("test server CA");
    let (cert, key) = ca.leaf(&["127.0.0.1", "::1", "127.0.0.2"], false);
    let web = format!(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  prometheus: {}\n",
        bcrypt_hash("pw")
    );
    let more = [format!("[::1]:{}", rpo_lab::free_port()), format!("127.0.0.2:{}", rpo_lab::free_port())];
    let exporter = Exporter::start_with(
        &[("server.crt", &cert), ("server.key", &key)],
        &web,
        &["--web.listen-address", &more[0], "--web.listen-address", &more[1]],
    );
    let https = client(&ca.pem, None);
    let plain = reqwest::Client::builder().timeout(Duration::from_secs(5)).build().unwrap();
    let first = format!("127.0.0.1:{}", exporter.port);
    for addr in [first.as_str(), &more[0], &more[1]] {
        let metrics = format!("https://{addr}/metrics");
        assert_eq!(status(https.get(&metrics).basic_auth("prometheus", Some("pw"))).await, Ok(200), "{addr}");
        assert_eq!(status(https.get(&metrics).basic_auth("prometheus", Some("no"))).await, Ok(401), "{addr}");
        assert_eq!(status(plain.get(format!("http://{addr}/metrics"))).await, Ok(400), "{addr}");
    }
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

/// A response reduced to what the tests compare: status (or the error), Retry-After, body.
async fn answer(request: reqwest::RequestBuilder) -> (Result<u16, String>, Option<String>, String) {
    match request.send().await {
        Err(e) => (Err(format!("{e:?}")), None, String::new()),
        Ok(r) => {
            let status = r.status().as_u16();
            let retry = r.headers().get("retry-after").map(|v| v.to_str().unwrap_or_default().to_owned());
            (Ok(status), retry, r.text().await.unwrap_or_default())
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn reload_needs_the_lifecycle_flag_the_same_authentication_and_is_rate_limited() {
    let server_ca = Ca::new("server CA");
    let client_ca = Ca::new("client CA");
    let (cert, key) = server_ca.leaf(&["127.0.0.1"], false);
    let id = client_ca.leaf(&["prometheus.example"], true);
    let files =
        [("server.crt", cert.as_str()), ("server.key", key.as_str()), ("clients.crt", &client_ca.pem)];
    let web = format!(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\n  client_auth_type: RequireAndVerifyClientCert\n  client_ca_file: clients.crt\nbasic_auth_users:\n  prometheus: {}\n",
        bcrypt_hash("pw")
    );
    let with_cert = client(&server_ca.pem, Some((&id.0, &id.1)));

    // Without --web.enable-lifecycle: 403 as Prometheus answers, even to the right
    // credentials; SIGHUP stays the way to reload.
    let mut off = Exporter::start(&files, &web);
    let (status, _, body) =
        answer(with_cert.post(off.url("https", "/-/reload")).basic_auth("prometheus", Some("pw"))).await;
    assert_eq!(status, Ok(403), "{body}");
    assert!(body.starts_with("Lifecycle API is not enabled."), "{body}");
    assert!(body.contains("--web.enable-lifecycle") && body.contains("SIGHUP"), "{body}");
    let (status, _, _) = answer(with_cert.put(off.url("https", "/-/reload"))).await;
    assert_eq!(status, Ok(401), "authentication comes first");
    off.assert_running();

    let mut on = Exporter::start_with(&files, &web, &["--web.enable-lifecycle"]);
    let reload = on.url("https", "/-/reload");
    // The same authentication as /metrics: a client certificate, then basic auth.
    let no_cert =
        answer(client(&server_ca.pem, None).post(&reload).basic_auth("prometheus", Some("pw"))).await;
    assert!(no_cert.0.is_err(), "no client certificate must be refused, got {no_cert:?}");
    assert_eq!(answer(with_cert.post(&reload)).await.0, Ok(401));
    assert_eq!(answer(with_cert.post(&reload).basic_auth("prometheus", Some("nope"))).await.0, Ok(401));
    let ok = answer(with_cert.post(&reload).basic_auth("prometheus", Some("pw"))).await;
    assert_eq!(ok.0, Ok(200), "{ok:?}\nlog:\n{}", on.log());

    // Rate-limited: a client looping on /-/reload gets 429s with Retry-After.
    let mut statuses = Vec::new();
    let mut refused = None;
    for _ in 0..6 {
        let a = answer(with_cert.put(&reload).basic_auth("prometheus", Some("pw"))).await;
        statuses.push(a.0.clone());
        if a.0 == Ok(429) && refused.is_none() {
            refused = Some(a);
        }
    }
    println!("six reloads in a row: {statuses:?}");
    let (_, retry, body) = refused.unwrap_or_else(|| panic!("no 429 among {statuses:?}"));
    assert!(body.contains("Too many reload requests"), "{body}");
    assert_eq!(retry.as_deref(), Some("1"));
    assert!(statuses.iter().filter(|s| **s == Ok(200)).count() <= 3, "{statuses:?}");
    // A second later it reloads again.
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(answer(with_cert.post(&reload).basic_auth("prometheus", Some("pw"))).await.0, Ok(200));
    assert!(on.log().contains("Reload request refused: too many reloads"), "log:\n{}", on.log());
    on.assert_running();
}

#[tokio::test(flavor = "multi_thread")]
async fn web_config_files_that_appear_later_are_picked_up_and_reported() {
    const OK: &str = "rpo_exporter_web_config_last_reload_successful";
    const AT: &str = "rpo_exporter_web_config_last_reload_success_timestamp_seconds";
    let ca = Ca::new("server CA");
    let (cert, key) = ca.leaf(&["127.0.0.1"], false);
    let next_ca = Ca::new("next server CA");
    let (next_cert, next_key) = next_ca.leaf(&["127.0.0.1"], false);
    let hash = bcrypt_hash("pw");
    let web = |c: &str, k: &str| {
        format!("tls_server_config:\n  cert_file: {c}\n  key_file: {k}\nbasic_auth_users:\n  prometheus: {hash}\n")
    };
    let mut exporter =
        Exporter::start(&[("server.crt", &cert), ("server.key", &key)], &web("server.crt", "server.key"));
    let metrics = exporter.url("https", "/metrics");
    let old = client(&ca.pem, None);
    let scrape = |c: reqwest::Client| {
        let metrics = metrics.clone();
        async move {
            let r = c.get(&metrics).basic_auth("prometheus", Some("pw")).send().await.ok()?;
            if r.status() != 200 {
                return None;
            }
            Some(Metrics::parse(&r.text().await.ok()?))
        }
    };
    let m = scrape(old.clone()).await.unwrap_or_else(|| panic!("scrape failed; log:\n{}", exporter.log()));
    assert_eq!(m.get(OK, &[]), Some(1.0), "loaded at start");
    let started = m.get(AT, &[]).unwrap();

    // The web config now names a certificate and key that do not exist yet: it
    // is refused, the previous one is still served, and the metric says so.
    exporter.replace("web.yml", &web("next.crt", "next.key"));
    let m = scrape(old.clone())
        .await
        .unwrap_or_else(|| panic!("old certificate not served; log:\n{}", exporter.log()));
    assert_eq!(m.get(OK, &[]), Some(0.0), "log:\n{}", exporter.log());
    assert_eq!(m.get(AT, &[]), Some(started));
    let log = exporter.log();
    assert!(log.contains("Web config reload failed") && log.contains("next.crt"), "log:\n{log}");

    // They appear (the key first, as a cert manager may write them): the web
    // config is read again without anyone touching web.yml.
    tokio::time::sleep(Duration::from_millis(20)).await;
    exporter.replace("next.key", &next_key);
    assert!(scrape(old.clone()).await.is_some(), "still the old certificate while next.crt is missing");
    exporter.replace("next.crt", &next_cert);
    let next = client(&next_ca.pem, None);
    let deadline = Instant::now() + Duration::from_secs(5);
    let mut last = scrape(next.clone()).await;
    while !last.as_ref().is_some_and(|m| m.get(OK, &[]) == Some(1.0)) {
        assert!(
            Instant::now() < deadline,
            "the new certificate was not picked up ({last:?}); log:\n{}",
            exporter.log()
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        last = scrape(next.clone()).await;
    }
    assert!(last.unwrap().get(AT, &[]).unwrap() > started);
    exporter.assert_running();
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_of_wrong_passwords_does_not_delay_prometheus() {
    const FLOODERS: usize = 48;
    const FLOOD: Duration = Duration::from_secs(12);
    let ca = Ca::new("server CA");
    let (cert, key) = ca.leaf(&["127.0.0.1"], false);
    let web = format!(
        "tls_server_config:\n  cert_file: server.crt\n  key_file: server.key\nbasic_auth_users:\n  prometheus: {}\n",
        bcrypt_hash("right")
    );
    let mut exporter = Exporter::start(&[("server.crt", &cert), ("server.key", &key)], &web);
    let metrics = exporter.url("https", "/metrics");
    // Prometheus: one kept-alive connection, already scraping before the attack.
    let prometheus = reqwest::Client::builder()
        .use_rustls_tls()
        .tls_built_in_root_certs(false)
        .add_root_certificate(reqwest::Certificate::from_pem(ca.pem.as_bytes()).unwrap())
        .timeout(Duration::from_secs(10))
        .build()
        .unwrap();
    for _ in 0..3 {
        assert_eq!(status(prometheus.get(&metrics).basic_auth("prometheus", Some("right"))).await, Ok(200));
    }
    // What a scrape takes on this machine as it is now, without the attack: the
    // delay the flood may add is measured from there.
    let mut calm = Duration::ZERO;
    for _ in 0..40 {
        let t = Instant::now();
        assert_eq!(status(prometheus.get(&metrics).basic_auth("prometheus", Some("right"))).await, Ok(200));
        calm = calm.max(t.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // The attack: clients sending a new wrong password with every request, on a
    // thread and runtime of their own (as if from another host), so that what is
    // timed below is the exporter and not this process's scheduler.
    let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let attack = {
        let (stop, metrics, ca) = (stop.clone(), metrics.clone(), ca.pem.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async move {
                let mut attackers = tokio::task::JoinSet::new();
                for a in 0..FLOODERS {
                    let c = reqwest::Client::builder()
                        .use_rustls_tls()
                        .tls_built_in_root_certs(false)
                        .add_root_certificate(reqwest::Certificate::from_pem(ca.as_bytes()).unwrap())
                        .timeout(Duration::from_secs(30))
                        .build()
                        .unwrap();
                    let (stop, metrics) = (stop.clone(), metrics.clone());
                    attackers.spawn(async move {
                        let mut answers: BTreeMap<String, usize> = BTreeMap::new();
                        let mut n = 0u64;
                        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                            n += 1;
                            let wrong = format!("wrong-{a}-{n}");
                            let got = status(c.get(&metrics).basic_auth("prometheus", Some(&wrong))).await;
                            *answers.entry(format!("{got:?}")).or_default() += 1;
                        }
                        answers
                    });
                }
                let mut answers: BTreeMap<String, usize> = BTreeMap::new();
                for one in attackers.join_all().await {
                    for (k, v) in one {
                        *answers.entry(k).or_default() += v;
                    }
                }
                answers
            })
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;

    // Meanwhile Prometheus scrapes every 50 ms and times each scrape.
    let mut took = Vec::new();
    let start = Instant::now();
    while start.elapsed() < FLOOD {
        let t = Instant::now();
        let s = status(prometheus.get(&metrics).basic_auth("prometheus", Some("right"))).await;
        took.push(t.elapsed());
        assert_eq!(s, Ok(200), "Prometheus refused during the flood; log tail:\n{}", tail(&exporter.log()));
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let answers = tokio::task::spawn_blocking(move || attack.join().unwrap()).await.unwrap();
    took.sort();
    let p50 = took[took.len() / 2];
    let p99 = took[took.len() * 99 / 100];
    let max = *took.last().unwrap();
    println!(
        "{FLOODERS} clients with wrong passwords for {FLOOD:?}: their answers {answers:?}; \
         {} authenticated scrapes: p50 {p50:?}, p99 {p99:?}, max {max:?} (without the flood: max {calm:?})",
        took.len()
    );
    assert!(answers.get("Ok(401)").copied().unwrap_or(0) > 0, "the flood was checked: {answers:?}");
    assert!(
        max < calm + Duration::from_millis(100),
        "the flood delayed a scrape by more than 100 ms: {max:?} against {calm:?} without it (p50 {p50:?})"
    );
    exporter.assert_running();
}

fn tail(log: &str) -> String {
    let lines: Vec<&str> = log.lines().collect();
    lines[lines.len().saturating_sub(30)..].join("\n")
}
