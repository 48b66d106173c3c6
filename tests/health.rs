//! Region health probes against real local servers (tests/support/probes.rs):
//! HTTP, HTTPS with a certificate close to expiry (from a CA the test makes), a
//! closed port, and a server that accepts connections but never answers.

mod support;

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};
use support::probes::{http_server, https_server, silent_server};
use support::*;

#[tokio::test(flavor = "multi_thread")]
async fn each_probe_reports_its_own_state_and_regions_roll_up() {
    let http = http_server().await;
    let tls = https_server(3).await;
    let (https, ca_pem, expiry) = (tls.port, tls.ca_pem, tls.expiry);
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
        // Rounds end every interval (1 s) plus the slowest probe (800 ms): a
        // loop that stopped would show here by its age.
        let age = m.get("rpo_probe_round_age_seconds", &[]).expect("the round's age");
        assert!((0.0..1.9).contains(&age), "round age {age}");
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
