//! Region health probes against real local servers: HTTP, HTTPS with a
//! certificate close to expiry (from a CA the test makes), a closed port, and a
//! server that accepts connections but never answers.

mod support;

use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// Answers each HTTP/1.1 request on `stream` with 200 for /healthz and 503
/// otherwise, then closes. A test fixture, not a web server.
async fn answer<S: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin>(mut stream: S) {
    let mut buf = Vec::new();
    let mut chunk = [0u8; 1024];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => return,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    let ok = buf.starts_with(b"GET /healthz ");
    let status = if ok { "200 OK" } else { "503 Service Unavailable" };
    let _ = stream
        .write_all(
            format!("HTTP/1.1 {status}\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok").as_bytes(),
        )
        .await;
    let _ = stream.shutdown().await;
}

async fn http_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            tokio::spawn(answer(s));
        }
    });
    port
}

/// An HTTPS server whose certificate (for 127.0.0.1, signed by a fresh CA)
/// expires in three days. Returns its port, the CA's PEM and the expiry.
async fn https_server() -> (u16, String, i64) {
    let ca_key = rcgen::KeyPair::generate().unwrap();
    let mut ca_params = rcgen::CertificateParams::new(Vec::<String>::new()).unwrap();
    ca_params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let ca = ca_params.self_signed(&ca_key).unwrap();
    let issuer = rcgen::Issuer::from_params(&ca_params, &ca_key);
    let leaf_key = rcgen::KeyPair::generate().unwrap();
    let mut leaf_params = rcgen::CertificateParams::new(vec!["127.0.0.1".to_owned()]).unwrap();
    let expiry = time::OffsetDateTime::now_utc() + time::Duration::days(3);
    let expiry = expiry.replace_nanosecond(0).unwrap();
    leaf_params.not_after = expiry;
    let leaf = leaf_params.signed_by(&leaf_key, &issuer).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::try_from(leaf_key.serialize_der()).unwrap();
    let config =
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(vec![leaf.der().clone()], key)
            .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        while let Ok((s, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(tls) = acceptor.accept(s).await {
                    answer(tls).await;
                }
            });
        }
    });
    (port, ca.pem(), expiry.unix_timestamp())
}

/// Accepts connections and holds them without ever answering.
async fn silent_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((s, _)) = listener.accept().await {
            held.push(s);
        }
    });
    port
}

#[tokio::test(flavor = "multi_thread")]
async fn each_probe_reports_its_own_state_and_regions_roll_up() {
    let http = http_server().await;
    let (https, ca_pem, expiry) = https_server().await;
    let silent = silent_server().await;
    let closed = rpo_lab::free_port();
    let dir = tempfile::tempdir().unwrap();
    let ca_file = dir.path().join("ca.pem");
    std::fs::write(&ca_file, ca_pem).unwrap();
    let ca = ca_file.display();
    let config = format!(
        "clusters:
  - name: c
    rpo: 1m
    rto: 1h
    nodes:
      - {{ name: n, region: us-east-1, engine: postgres, dsn: \"host=127.0.0.1 port={closed} user=u dbname=d\" }}
health:
  interval: 1s
  regions:
    us-east-1:
      probes:
        - {{ name: api, http: \"http://127.0.0.1:{http}/healthz\", timeout: 500ms }}
        - {{ name: api-tls, http: \"https://127.0.0.1:{https}/healthz\", ca_file: {ca}, timeout: 500ms }}
        - {{ name: lb, tcp: \"127.0.0.1:{http}\", timeout: 500ms }}
    eu-west-1:
      quorum: 1
      probes:
        - {{ name: closed, tcp: \"127.0.0.1:{closed}\", timeout: 500ms }}
        - {{ name: hang, http: \"http://127.0.0.1:{silent}/healthz\", timeout: 800ms }}
        - {{ name: down, http: \"http://127.0.0.1:{http}/down\", timeout: 500ms }}
        - {{ name: lb, tcp: \"127.0.0.1:{http}\", timeout: 500ms }}
    ap-southeast-1:
      probes:
        - {{ name: untrusted, http: \"https://127.0.0.1:{https}/healthz\", timeout: 500ms }}
"
    );
    let exporter = Exporter::start(&config).await;
    let probe = |region: &str, name: &str| labels(&[("probe_region", region), ("probe", name)]);
    let region = |r: &str| labels(&[("probe_region", r)]);
    let ok = wait_for(Duration::from_secs(10), || async {
        let m = exporter.scrape().await;
        ["us-east-1", "eu-west-1", "ap-southeast-1"]
            .iter()
            .all(|r| m.get("rpo_region_healthy", &region(r)).is_some())
    })
    .await;
    assert!(ok, "regions never rolled up; log:\n{}", exporter.log());

    let mut slowest = 0f64;
    for _ in 0..8 {
        let t = Instant::now();
        let m = exporter.scrape().await;
        slowest = slowest.max(t.elapsed().as_secs_f64());
        let status = |r: &str, p: &str| {
            rpo_exporter::health::ProbeStatus::ALL
                .iter()
                .find(|s| {
                    m.get("rpo_probe_status", &with(probe(r, p), &[("status", s.as_str())])) == Some(1.0)
                })
                .map(|s| s.as_str())
        };
        assert_eq!(status("us-east-1", "api"), Some("ok"));
        assert_eq!(status("us-east-1", "api-tls"), Some("ok"));
        assert_eq!(status("us-east-1", "lb"), Some("ok"));
        assert_eq!(status("eu-west-1", "closed"), Some("refused"));
        assert_eq!(status("eu-west-1", "hang"), Some("timeout"));
        assert_eq!(status("eu-west-1", "down"), Some("bad_status"));
        assert_eq!(status("ap-southeast-1", "untrusted"), Some("tls"));
        assert_eq!(m.get("rpo_probe_http_status_code", &probe("eu-west-1", "down")), Some(503.0));
        assert_eq!(m.get("rpo_probe_http_status_code", &probe("us-east-1", "api")), Some(200.0));
        let hang = m.get("rpo_probe_duration_seconds", &probe("eu-west-1", "hang")).unwrap();
        assert!((0.79..1.0).contains(&hang), "the hanging probe is cut at its 800ms timeout, took {hang}");
        let cert =
            m.get("rpo_probe_tls_cert_expiry_timestamp_seconds", &probe("us-east-1", "api-tls")).unwrap();
        assert_eq!(cert, expiry as f64, "the leaf's notAfter");
        assert_eq!(m.get("rpo_region_healthy", &region("us-east-1")), Some(1.0));
        assert_eq!(m.get("rpo_region_probes_passing", &region("eu-west-1")), Some(1.0));
        assert_eq!(m.get("rpo_region_healthy", &region("eu-west-1")), Some(1.0), "quorum 1 of 4");
        assert_eq!(m.get("rpo_region_healthy", &region("ap-southeast-1")), Some(0.0));
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    let now = SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs() as i64;
    println!(
        "health probes: slowest scrape {:.1} ms; certificate expires in {:.1} days",
        slowest * 1e3,
        (expiry - now) as f64 / 86400.0
    );
    assert!(slowest < 1.0);
    let m = exporter.scrape().await;
    let timeouts =
        m.get("rpo_probe_failures_total", &with(probe("eu-west-1", "hang"), &[("reason", "timeout")]));
    assert!(timeouts.is_some_and(|n| n >= 2.0), "failures counted by reason: {timeouts:?}");
    assert!(exporter.log().contains("Probe failed"), "{}", exporter.log());
}
