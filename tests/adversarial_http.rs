//! Adversarial suite, HTTP side: a running exporter on a real PostgreSQL pair
//! under a scrape flood (500 concurrent clients), slowloris (200 connections
//! dribbling a byte a second), oversized or malformed requests, and more
//! connections than the server's limit. In each case
//! Prometheus's own scrape (a separate client, measured) stays under 1 s, nothing
//! panics, the hostile client gets a clear answer or is cut off by a named limit,
//! and every series measured before the attack is still there.

mod support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use support::adversarial::*;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const FLOOD_CLIENTS: usize = 500;
const FLOOD_FOR: Duration = Duration::from_secs(6);
const SLOW_CLIENTS: usize = 200;
/// The server's header read timeout (src/server.rs), and the slack we allow on it.
const HEADER_READ_TIMEOUT: Duration = Duration::from_secs(10);
const SLACK: Duration = Duration::from_secs(3);

#[tokio::test(flavor = "multi_thread")]
async fn http_attacks_never_slow_prometheus_or_lose_a_series() {
    let (lab, exporter) = lab_and_exporter(spec_primary_replica(), "1s").await;
    wait_for_pair(&exporter, &lab.pair("p", "r1")).await;
    let (baseline, _) = prometheus_scrape(&exporter.addr).await.unwrap();
    assert!(baseline.get("rpo_objective_seconds", &[("db_cluster", "lab".into())]).is_some());

    flood(&exporter, &baseline).await;
    slowloris(&exporter, &baseline).await;
    malformed(&exporter, &baseline).await;
    over_the_connection_limit(&exporter, &baseline).await;
    assert_no_panic(&exporter);
}

/// The server's connection limit (src/server.rs).
const MAX_CONNECTIONS: usize = 768;

/// More idle connections than the limit: the next one is told 503 at once (not
/// left hanging), the overload is logged, and as soon as they close Prometheus
/// is served again. While they hold every slot, Prometheus is refused too:
/// the limit protects the process's descriptors, and each slot is held for
/// at most the header read timeout.
async fn over_the_connection_limit(exporter: &Exporter, baseline: &Metrics) {
    let mut idle = Vec::new();
    for _ in 0..MAX_CONNECTIONS + 20 {
        idle.push(TcpStream::connect(&exporter.addr).await.expect("connect"));
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    let start = Instant::now();
    let answer = answer_to(&exporter.addr, b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n").await;
    let took = start.elapsed();
    assert!(answer.starts_with("HTTP/1.1 503"), "over the limit: {answer}");
    assert!(took < SCRAPE_BUDGET, "the refusal took {took:?}");
    assert_logged(exporter, &["Too many open HTTP connections"]);
    drop(idle);
    let start = Instant::now();
    let served =
        wait_for(Duration::from_secs(3), || async { prometheus_scrape(&exporter.addr).await.is_ok() }).await;
    let back = start.elapsed();
    assert!(served, "Prometheus not served after the idle connections closed; log:\n{}", tail(exporter));
    let (m, took) = prometheus_scrape(&exporter.addr).await.unwrap();
    assert!(took < SCRAPE_BUDGET, "scrape after the overload took {took:?}");
    assert_kept("over the connection limit", baseline, &m, volatile);
    println!(
        "{} idle connections (limit {MAX_CONNECTIONS}): the next one answered {answer:?}; Prometheus served again {back:?} after they closed",
        MAX_CONNECTIONS + 20
    );
}

/// One HTTP/1.1 keep-alive client: requests `/metrics` again and again until
/// `until`; returns (answers, slowest answer). Panics on anything but a 200.
async fn flood_client(addr: String, until: Instant) -> (usize, Duration) {
    let mut stream = TcpStream::connect(&addr).await.expect("connect");
    let (mut answers, mut slowest) = (0, Duration::ZERO);
    let mut buf = Vec::with_capacity(64 * 1024);
    while Instant::now() < until {
        let start = Instant::now();
        stream.write_all(b"GET /metrics HTTP/1.1\r\nHost: flood\r\n\r\n").await.expect("send");
        buf.clear();
        let (head_end, length) = loop {
            let mut chunk = [0u8; 16 * 1024];
            let n = stream.read(&mut chunk).await.expect("read");
            assert!(n > 0, "the server closed a flood client's connection");
            buf.extend_from_slice(&chunk[..n]);
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                let head = String::from_utf8_lossy(&buf[..end]).to_lowercase();
                assert!(head.starts_with("http/1.1 200"), "flood answer: {head}");
                let length = head
                    .lines()
                    .find_map(|l| l.strip_prefix("content-length:"))
                    .map(|v| v.trim().parse::<usize>().unwrap())
                    .expect("content-length");
                break (end + 4, length);
            }
        };
        while buf.len() < head_end + length {
            let mut chunk = [0u8; 16 * 1024];
            let n = stream.read(&mut chunk).await.expect("read body");
            assert!(n > 0, "connection closed mid-body");
            buf.extend_from_slice(&chunk[..n]);
        }
        answers += 1;
        slowest = slowest.max(start.elapsed());
    }
    (answers, slowest)
}

async fn flood(exporter: &Exporter, baseline: &Metrics) {
    let scraper = Scraper::start(exporter, Duration::from_millis(100));
    let until = Instant::now() + FLOOD_FOR;
    let clients: Vec<_> =
        (0..FLOOD_CLIENTS).map(|_| tokio::spawn(flood_client(exporter.addr.clone(), until))).collect();
    let (mut answers, mut slowest) = (0, Duration::ZERO);
    for c in clients {
        let (n, s) = c.await.expect("flood client");
        answers += n;
        slowest = slowest.max(s);
    }
    let scrapes = scraper.finish().await;
    let prometheus = scrapes.assert_fast("scrape flood", exporter);
    for m in scrapes.metrics() {
        assert_kept("scrape flood", baseline, m, volatile);
    }
    println!(
        "scrape flood: {FLOOD_CLIENTS} clients, {answers} answers in {FLOOD_FOR:?} ({:.0}/s), slowest flood answer {slowest:?}; \
         Prometheus: {} scrapes, slowest {prometheus:?}",
        answers as f64 / FLOOD_FOR.as_secs_f64(),
        scrapes.count()
    );
    assert!(answers >= FLOOD_CLIENTS, "every flood client was answered");
}

/// Sends `head` a byte a second; returns how long the server kept the
/// connection open (it stops at 3 × the header timeout if the server never
/// closes it).
async fn dribble(addr: String, head: &'static [u8], opened: Arc<AtomicUsize>) -> Duration {
    let mut stream = TcpStream::connect(&addr).await.expect("connect");
    opened.fetch_add(1, Ordering::SeqCst);
    let start = Instant::now();
    let mut i = 0;
    let mut buf = [0u8; 1024];
    while start.elapsed() < HEADER_READ_TIMEOUT * 3 {
        if stream.write_all(&head[i % head.len()..i % head.len() + 1]).await.is_err() {
            return start.elapsed();
        }
        i += 1;
        // A second of listening: the server may close (or answer 408) meanwhile.
        match tokio::time::timeout(Duration::from_secs(1), stream.read(&mut buf)).await {
            Err(_) => {}
            Ok(Ok(n)) if n > 0 => {}
            Ok(_) => return start.elapsed(),
        }
    }
    start.elapsed()
}

async fn slowloris(exporter: &Exporter, baseline: &Metrics) {
    let scraper = Scraper::start(exporter, Duration::from_millis(200));
    let opened = Arc::new(AtomicUsize::new(0));
    // Most dribble an HTTP/1.1 request head that never ends; some an HTTP/2
    // preface (the server must wait for it whole before it knows the protocol).
    let heads: [&'static [u8]; 2] = [
        b"GET /metrics HTTP/1.1\r\nHost: slow\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa",
        b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r",
    ];
    let clients: Vec<_> = (0..SLOW_CLIENTS)
        .map(|i| {
            tokio::spawn(dribble(exporter.addr.clone(), heads[usize::from(i % 10 == 0)], opened.clone()))
        })
        .collect();
    let mut held = Vec::new();
    for c in clients {
        held.push(c.await.expect("slow client"));
    }
    let scrapes = scraper.finish().await;
    let prometheus = scrapes.assert_fast("slowloris", exporter);
    for m in scrapes.metrics() {
        assert_kept("slowloris", baseline, m, volatile);
    }
    let longest = held.iter().max().unwrap();
    let shortest = held.iter().min().unwrap();
    println!(
        "slowloris: {} connections a byte a second, cut by the server after {shortest:?}..{longest:?}; \
         Prometheus: {} scrapes, slowest {prometheus:?}",
        opened.load(Ordering::SeqCst),
        scrapes.count()
    );
    assert_eq!(opened.load(Ordering::SeqCst), SLOW_CLIENTS);
    assert!(
        *longest <= HEADER_READ_TIMEOUT + SLACK,
        "a dribbling connection was held {longest:?}: the header read timeout does not cut it"
    );
    assert_logged(exporter, &["request headers not received within the header read timeout"]);
}

/// Sends `request` on a new connection and returns what the server answered
/// (its first line, or how the connection ended) within 5 s.
async fn answer_to(addr: &str, request: &[u8]) -> String {
    let mut stream = TcpStream::connect(addr).await.expect("connect");
    // A server may answer and close before it read everything: a failed write
    // is then no failure of the test.
    let _ = stream.write_all(request).await;
    let mut got = Vec::new();
    let read = tokio::time::timeout(Duration::from_secs(5), async {
        let mut buf = [0u8; 4096];
        loop {
            match stream.read(&mut buf).await {
                Ok(0) | Err(_) => break,
                Ok(n) => got.extend_from_slice(&buf[..n]),
            }
            if got.windows(2).any(|w| w == b"\r\n") {
                break;
            }
        }
    })
    .await;
    if read.is_err() && got.is_empty() {
        return "no answer within 5 s, connection still open".into();
    }
    if got.is_empty() {
        return "closed without an answer".into();
    }
    let text = String::from_utf8_lossy(&got);
    if text.starts_with("HTTP/") {
        text.lines().next().unwrap().to_owned()
    } else {
        format!("{} bytes of another protocol", got.len())
    }
}

async fn malformed(exporter: &Exporter, baseline: &Metrics) {
    let huge_header =
        format!("GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: {}\r\n\r\n", "a".repeat(256 * 1024));
    let many_headers = format!(
        "GET /metrics HTTP/1.1\r\nHost: x\r\n{}\r\n",
        (0..500).map(|i| format!("X-H{i}: v\r\n")).collect::<String>()
    );
    let huge_uri = format!("GET /metrics?{} HTTP/1.1\r\nHost: x\r\n\r\n", "q".repeat(256 * 1024));
    let mut garbage = vec![0u8; 8192];
    let mut seed = 0x2545_f491_4f6c_dd1du64;
    for b in &mut garbage {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        *b = seed as u8;
    }
    let mut h2_garbage = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n".to_vec();
    h2_garbage.extend_from_slice(&garbage[..512]);
    let endless_chunked = format!(
        "POST /metrics HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffff\r\n{}",
        "z".repeat(1024)
    );
    // (what, request, acceptable answers: a status line prefix or "closed")
    let cases: Vec<(&str, Vec<u8>, &[&str])> = vec![
        ("256 KiB header", huge_header.into_bytes(), &["HTTP/1.1 431"]),
        ("500 headers", many_headers.into_bytes(), &["HTTP/1.1 431"]),
        ("256 KiB URI", huge_uri.into_bytes(), &["HTTP/1.1 431", "HTTP/1.1 414"]),
        ("8 KiB of random bytes", garbage.clone(), &["HTTP/1.1 400"]),
        (
            "bad HTTP version",
            b"GET /metrics HTTP/7.3\r\nHost: x\r\n\r\n".to_vec(),
            &["HTTP/1.1 400", "HTTP/1.1 505"],
        ),
        ("no version at all", b"GET /metrics\r\n\r\n".to_vec(), &["HTTP/1.1 400"]),
        (
            "NUL in the request line",
            b"GET /met\0rics HTTP/1.1\r\nHost: x\r\n\r\n".to_vec(),
            &["HTTP/1.1 400"],
        ),
        ("header without a colon", b"GET /metrics HTTP/1.1\r\nHost x\r\n\r\n".to_vec(), &["HTTP/1.1 400"]),
        ("HTTP/2 preface, then garbage", h2_garbage, &["bytes of another protocol", "closed"]),
        ("an endless chunked body", endless_chunked.into_bytes(), &["HTTP/1.1 405"]),
    ];
    for (what, request, expected) in cases {
        let answer = answer_to(&exporter.addr, &request).await;
        let (m, took) = prometheus_scrape(&exporter.addr)
            .await
            .unwrap_or_else(|e| panic!("{what}: Prometheus's scrape failed: {e}\nlog:\n{}", tail(exporter)));
        println!("malformed request, {what}: {answer}; Prometheus's scrape right after took {took:?}");
        assert!(
            expected.iter().any(|e| answer.starts_with(e) || answer.contains(e)),
            "{what}: answered {answer:?}, expected one of {expected:?}"
        );
        assert!(took < SCRAPE_BUDGET, "{what}: Prometheus's scrape took {took:?}");
        assert_kept(what, baseline, &m, volatile);
    }
}
