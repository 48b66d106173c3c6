//! DNS failures told apart, each with its own reason, while the healthy servers keep
//! their readings and scrapes stay fast: a resolver whose port is closed, one that
//! never answers, one whose upstream is dead (SERVFAIL), a name that does not exist
//! (NXDOMAIN) and a type the name does not have (NODATA).

mod support;

use rpo_lab::{free_dns_port, Knot, Unbound, Zone};
use std::net::UdpSocket;
use std::time::{Duration, Instant};
use support::dns::*;
use support::Exporter;

#[tokio::test(flavor = "multi_thread")]
async fn each_failure_has_its_reason_and_the_others_are_unaffected() {
    // big.lab.test. has 100 addresses: about 1.6 kB, more than a UDP answer may carry
    // (EDNS 1232 bytes), so it arrives truncated and is asked again over TCP.
    let mut zone = Zone::new(ZONE).record("www", "A", EUW1);
    for i in 0..100 {
        zone = zone.record("big", "A", &format!("192.0.2.{}", i + 1));
    }
    let knot = Knot::start(&zone).await.expect("start Knot");
    let good = Unbound::start(&[(ZONE, knot.port())], None).await.expect("start Unbound");
    // Forwards lab.test. to a port nobody listens on: it can only answer SERVFAIL.
    let stranded = Unbound::start(&[(ZONE, free_dns_port())], None).await.expect("start Unbound");
    // Nothing listens here: the kernel answers with ICMP port unreachable.
    let closed = format!("127.0.0.1:{}", free_dns_port());
    // Bound and never read: queries vanish without a trace, as into a black hole.
    let silent_socket = UdpSocket::bind(("127.0.0.1", free_dns_port())).unwrap();
    let silent = silent_socket.local_addr().unwrap().to_string();

    let all = [good.addr(), closed.clone(), silent.clone(), stranded.addr()];
    let auth = servers(&[knot.addr()]);
    let config = dns_only_config(&format!(
        "dns:\n  interval: 500ms\n  timeout: 400ms\n  records:\n\
         \x20   - {{ name: {RECORD}, type: A, active_region: eu-west-1, answers: {{ eu-west-1: {EUW1} }}, resolvers: {}, authoritative: {auth} }}\n\
         \x20   - {{ name: missing.lab.test., type: A, active_region: eu-west-1, answers: {{ eu-west-1: {EUW1} }}, resolvers: [ \"{}\" ], authoritative: {auth} }}\n\
         \x20   - {{ name: {RECORD}, type: AAAA, active_region: eu-west-1, answers: {{ eu-west-1: \"2001:db8::1\" }}, resolvers: [ \"{}\" ], authoritative: {auth} }}\n\
         \x20   - {{ name: big.lab.test., type: A, active_region: eu-west-1, answers: {{ eu-west-1: 192.0.2.1 }}, resolvers: [ \"{}\" ], authoritative: {auth} }}\n",
        servers(&all),
        good.addr(),
        good.addr(),
        good.addr()
    ));
    let exporter = Exporter::start(&config).await;
    let missing = |server: &str, mode: &str| srv("missing.lab.test.", "A", server, mode);
    let aaaa = |server: &str, mode: &str| srv(RECORD, "AAAA", server, mode);
    let expected: Vec<(Vec<(&'static str, String)>, &str)> = vec![
        (www(&closed, "recursive"), "network"),
        (www(&silent, "recursive"), "timeout"),
        (www(&stranded.addr(), "recursive"), "servfail"),
        (missing(&good.addr(), "recursive"), "nxdomain"),
        (missing(&knot.addr(), "authoritative"), "nxdomain"),
        (aaaa(&good.addr(), "recursive"), "nodata"),
        (aaaa(&knot.addr(), "authoritative"), "nodata"),
    ];

    let started = Instant::now();
    let m = wait_metrics(&exporter, Duration::from_secs(15), "every failure with its reason", |m| {
        expected.iter().all(|(labels, r)| reason(m, labels).as_deref() == Some(*r))
            && m.get("rpo_dns_answer_matches", &www(&good.addr(), "recursive")) == Some(1.0)
    })
    .await;
    for (labels, r) in &expected {
        assert_eq!(m.get("rpo_dns_query_success", labels), Some(0.0), "{labels:?}");
        assert_eq!(m.get("rpo_dns_answer_matches", labels), Some(0.0), "{labels:?} is {r}");
        assert_eq!(m.get("rpo_dns_answer_ttl_seconds", labels), None, "{labels:?}");
        println!(
            "{} {} via {} ({}): {r} in {:.1} ms",
            labels[0].1,
            labels[1].1,
            labels[2].1,
            labels[3].1,
            m.get("rpo_dns_query_duration_seconds", labels).unwrap() * 1e3
        );
    }
    // Exactly one reason at a time.
    for (labels, _) in &expected {
        let ones = m.find("rpo_dns_query_failure_reason", labels).iter().filter(|s| s.value == 1.0).count();
        assert_eq!(ones, 1, "{labels:?}");
    }

    // The healthy servers are unaffected: answered, quickly, with the expected answer.
    for labels in [www(&good.addr(), "recursive"), www(&knot.addr(), "authoritative")] {
        assert_eq!(m.get("rpo_dns_query_success", &labels), Some(1.0), "{labels:?}");
        assert_eq!(m.get("rpo_dns_answer_matches", &labels), Some(1.0), "{labels:?}");
        assert!(reason(&m, &labels).is_none());
        let took = m.get("rpo_dns_query_duration_seconds", &labels).unwrap();
        assert!(took < 0.1, "{labels:?} took {took} s");
    }
    // The truncated answers came whole over TCP: 100 addresses, not the one expected.
    // The zone's TTL is 3 s: the authoritative server says so, the resolver says what
    // is left of its cached copy (whole seconds, down to 0), never more.
    for (labels, ttls) in [
        (srv("big.lab.test.", "A", &good.addr(), "recursive"), 0.0..=3.0),
        (srv("big.lab.test.", "A", &knot.addr(), "authoritative"), 3.0..=3.0),
    ] {
        assert_eq!(m.get("rpo_dns_query_success", &labels), Some(1.0), "{labels:?} over TCP");
        assert_eq!(m.get("rpo_dns_answer_matches", &labels), Some(0.0), "{labels:?}");
        let ttl = m.get("rpo_dns_answer_ttl_seconds", &labels);
        assert!(ttl.is_some_and(|t| ttls.contains(&t)), "{labels:?}: TTL {ttl:?}, not in {ttls:?}");
    }
    let silent_took = m.get("rpo_dns_query_duration_seconds", &www(&silent, "recursive")).unwrap();
    assert!(
        (0.39..1.0).contains(&silent_took),
        "the silent resolver is given up on at the timeout: {silent_took}"
    );
    // One resolver of four serves the expected answer.
    assert_eq!(m.get("rpo_dns_propagation_ratio", &rec(RECORD, "A")), Some(0.25));
    assert!(
        m.get("rpo_dns_published_timestamp_seconds", &rec(RECORD, "A")).is_some(),
        "the authoritative server serves it"
    );

    // Scrapes stay fast while a third of the servers fail: time a few in a row.
    let mut slowest = Duration::ZERO;
    for _ in 0..20 {
        let t = Instant::now();
        scrape_fast(&exporter).await;
        slowest = slowest.max(t.elapsed());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    println!(
        "All reasons seen after {:.1} s; slowest of 20 scrapes: {slowest:?}",
        started.elapsed().as_secs_f64()
    );
    assert!(slowest < Duration::from_secs(1));
    let log = exporter.log();
    assert!(log.contains("DNS query failed"), "failures are logged: {log}");
    assert!(log.contains("Truncated answer over UDP; asking again over TCP"), "{log}");
    drop(silent_socket);
}
