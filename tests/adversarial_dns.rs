//! Adversarial suite, DNS: hostile servers written here answer the exporter's
//! queries over UDP and TCP with garbage, truncation and wrong IDs, next to a real
//! Knot and Unbound. Answers with the wrong ID or question, or that are not
//! responses, are ignored, never accepted (each carries the *expected* address,
//! so accepting one would show as a match); garbage is `malformed`; a truncated
//! answer is asked again over TCP, where the same hostility meets the same rules.
//! Prometheus's scrape stays under 1 s, nothing panics, each failure is logged
//! with its reason, and the real servers' readings measured before are kept.

mod support;

use hickory_net::proto::op::{Message, MessageType, OpCode};
use hickory_net::proto::rr::rdata::A;
use hickory_net::proto::rr::{RData, Record};
use rpo_lab::{Knot, Unbound, Zone};
use std::net::Ipv4Addr;
use std::time::Duration;
use support::adversarial::*;
use support::dns::*;
use support::*;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, UdpSocket};

/// What a hostile server does with each query.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Hostile {
    /// Random bytes.
    Garbage,
    /// The query's ID, then random bytes.
    GarbageWithId,
    /// A well-formed answer with the expected address, and the ID off by one.
    WrongId,
    /// First a wrong-ID answer with another address, then the right answer.
    WrongIdThenRight,
    /// The right ID, another question.
    WrongQuestion,
    /// The query sent back as it came: not a response.
    NotAResponse,
    /// UDP: truncated (TC, no answers). TCP: the right answer.
    TruncatedThenTcp,
    /// UDP: truncated. TCP: random bytes in a length-prefixed frame.
    TruncatedThenTcpGarbage,
    /// UDP: truncated. TCP: the expected answer with the wrong ID.
    TruncatedThenTcpWrongId,
    /// UDP: truncated. TCP: truncated again.
    TruncatedTwice,
    /// UDP: truncated. TCP: the connection closed at once.
    TruncatedThenTcpClosed,
    /// UDP: truncated. TCP: a frame announcing 65535 bytes that never come.
    TruncatedThenTcpStall,
}

use Hostile::*;

const ALL: [Hostile; 12] = [
    Garbage,
    GarbageWithId,
    WrongId,
    WrongIdThenRight,
    WrongQuestion,
    NotAResponse,
    TruncatedThenTcp,
    TruncatedThenTcpGarbage,
    TruncatedThenTcpWrongId,
    TruncatedTwice,
    TruncatedThenTcpClosed,
    TruncatedThenTcpStall,
];

impl Hostile {
    /// What the exporter must say: `Ok(matches)` or `Err(acceptable reasons)`.
    fn expected(self) -> Result<bool, &'static [&'static str]> {
        match self {
            Garbage | GarbageWithId => Err(&["malformed"]),
            WrongId | WrongQuestion | NotAResponse => Err(&["timeout"]),
            WrongIdThenRight | TruncatedThenTcp => Ok(true),
            TruncatedThenTcpGarbage | TruncatedTwice => Err(&["malformed"]),
            TruncatedThenTcpWrongId | TruncatedThenTcpStall => Err(&["timeout"]),
            TruncatedThenTcpClosed => Err(&["network"]),
        }
    }
}

fn noise(seed: u64, len: usize) -> Vec<u8> {
    let mut x = seed | 1;
    (0..len)
        .map(|_| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            x as u8
        })
        .collect()
}

/// A response to `query` carrying `ip`, with `id` and `truncated` as given.
fn answer(query: &Message, id: u16, ip: &str, truncated: bool) -> Vec<u8> {
    let mut m = Message::response(id, OpCode::Query);
    m.metadata.recursion_desired = query.metadata.recursion_desired;
    m.metadata.recursion_available = true;
    m.metadata.authoritative = true;
    m.metadata.truncation = truncated;
    m.queries = query.queries.clone();
    if !truncated {
        let name = query.queries[0].name().clone();
        m.answers = vec![Record::from_rdata(name, 3, RData::A(A(ip.parse::<Ipv4Addr>().unwrap())))];
    }
    m.to_vec().unwrap()
}

/// A hostile server on one port, UDP and TCP; returns `IP:port`.
async fn hostile_server(mode: Hostile) -> String {
    let (udp, tcp) = loop {
        let udp = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let port = udp.local_addr().unwrap().port();
        if let Ok(tcp) = TcpListener::bind(("127.0.0.1", port)).await {
            break (udp, tcp);
        }
    };
    let addr = udp.local_addr().unwrap().to_string();
    tokio::spawn(async move {
        let mut buf = vec![0u8; 4096];
        let mut n_query = 0u64;
        while let Ok((n, peer)) = udp.recv_from(&mut buf).await {
            n_query += 1;
            let Ok(query) = Message::from_vec(&buf[..n]) else { continue };
            let id = query.metadata.id;
            let mut replies = Vec::new();
            match mode {
                Garbage => replies.push(noise(n_query, 64)),
                GarbageWithId => {
                    let mut g = id.to_be_bytes().to_vec();
                    g.extend(noise(n_query, 40));
                    replies.push(g);
                }
                WrongId => replies.push(answer(&query, id.wrapping_add(1), EUW1, false)),
                WrongIdThenRight => {
                    replies.push(answer(&query, id.wrapping_add(1), USE1, false));
                    replies.push(answer(&query, id, EUW1, false));
                }
                WrongQuestion => {
                    let mut other = query.clone();
                    other.queries[0].set_name("evil.lab.test.".parse().unwrap());
                    replies.push(answer(&other, id, EUW1, false));
                }
                NotAResponse => {
                    let mut echo = query.clone();
                    echo.metadata.message_type = MessageType::Query;
                    replies.push(echo.to_vec().unwrap());
                }
                _ => replies.push(answer(&query, id, EUW1, true)),
            }
            for r in replies {
                let _ = udp.send_to(&r, peer).await;
            }
        }
    });
    tokio::spawn(async move {
        while let Ok((mut stream, _)) = tcp.accept().await {
            tokio::spawn(async move {
                if mode == TruncatedThenTcpClosed {
                    return;
                }
                let mut len = [0u8; 2];
                if stream.read_exact(&mut len).await.is_err() {
                    return;
                }
                let mut buf = vec![0u8; u16::from_be_bytes(len) as usize];
                if stream.read_exact(&mut buf).await.is_err() {
                    return;
                }
                let Ok(query) = Message::from_vec(&buf) else { return };
                let id = query.metadata.id;
                let reply = match mode {
                    TruncatedThenTcpGarbage => noise(u64::from(id), 100),
                    TruncatedThenTcpWrongId => answer(&query, id.wrapping_add(1), EUW1, false),
                    TruncatedTwice => answer(&query, id, EUW1, true),
                    TruncatedThenTcpStall => {
                        let _ = stream.write_all(&[0xff, 0xff, 0x12, 0x34]).await;
                        tokio::time::sleep(Duration::from_secs(30)).await;
                        return;
                    }
                    _ => answer(&query, id, EUW1, false),
                };
                let mut frame = (reply.len() as u16).to_be_bytes().to_vec();
                frame.extend(reply);
                let _ = stream.write_all(&frame).await;
                // Keep the connection open a while: a client must not need the close.
                tokio::time::sleep(Duration::from_secs(2)).await;
            });
        }
    });
    addr
}

/// The DNS section under one cluster whose node (on `node_port`, where nothing
/// listens) stays the same across reloads, so its state and series carry over.
fn dns_config(node_port: u16, resolvers: &[String], knot: &str) -> String {
    let cluster = format!(
        "clusters:\n  - name: c\n    rpo: 1m\n    rto: 1h\n    nodes:\n      - {{ name: n, region: us-east-1, engine: postgres, dsn: \"host=127.0.0.1 port={node_port} user=u dbname=d\" }}\n"
    );
    cluster
        + &format!(
            "dns:\n  interval: 500ms\n  timeout: 400ms\n  records:\n\
         \x20   - {{ name: {RECORD}, type: A, active_region: eu-west-1, answers: {{ eu-west-1: {EUW1} }}, resolvers: {}, authoritative: {} }}\n",
        servers(resolvers),
            servers(&[knot.to_owned()])
        )
}

#[tokio::test(flavor = "multi_thread")]
async fn hostile_dns_answers_are_ignored_or_named_never_accepted() {
    let knot = Knot::start(&Zone::new(ZONE).record("www", "A", EUW1)).await.expect("start Knot");
    let unbound = Unbound::start(&[(ZONE, knot.port())], None).await.expect("start Unbound");
    let node_port = rpo_lab::free_port();
    let exporter = Exporter::start(&dns_config(node_port, &[unbound.addr()], &knot.addr())).await;
    let good = [www(&unbound.addr(), "recursive"), www(&knot.addr(), "authoritative")];
    let before = wait_metrics(&exporter, Duration::from_secs(10), "the real servers answer", |m| {
        good.iter().all(|l| m.get("rpo_dns_answer_matches", l) == Some(1.0))
    })
    .await;

    let mut hostile = Vec::new();
    for mode in ALL {
        hostile.push((mode, hostile_server(mode).await));
    }
    let mut resolvers = vec![unbound.addr()];
    resolvers.extend(hostile.iter().map(|(_, a)| a.clone()));
    let scraper = Scraper::start(&exporter, Duration::from_millis(200));
    exporter.reload(&dns_config(node_port, &resolvers, &knot.addr())).await;
    let settled = |m: &Metrics| {
        hostile.iter().all(|(mode, addr)| {
            let l = www(addr, "recursive");
            match mode.expected() {
                Ok(matches) => {
                    m.get("rpo_dns_query_success", &l) == Some(1.0)
                        && m.get("rpo_dns_answer_matches", &l) == Some(f64::from(u8::from(matches)))
                }
                Err(reasons) => reason(m, &l).is_some_and(|r| reasons.contains(&r.as_str())),
            }
        })
    };
    let ok = wait_for(Duration::from_secs(10), || async { settled(&exporter.scrape().await) }).await;
    tokio::time::sleep(Duration::from_secs(3)).await;
    let scrapes = scraper.finish().await;
    let slowest = scrapes.assert_fast("hostile DNS", &exporter);
    let m = exporter.scrape().await;
    for (mode, addr) in &hostile {
        let l = www(addr, "recursive");
        println!(
            "hostile DNS, {mode:?}: success {:?}, matches {:?}, reason {:?}, took {:.0} ms",
            m.get("rpo_dns_query_success", &l),
            m.get("rpo_dns_answer_matches", &l),
            reason(&m, &l),
            m.get("rpo_dns_query_duration_seconds", &l).unwrap_or(f64::NAN) * 1e3
        );
    }
    assert!(ok, "hostile answers not judged as expected; log:\n{}", tail(&exporter));
    // A wrong-ID or wrong-question answer carried the expected address: had it
    // been accepted, some scrape would show a match.
    for m in scrapes.metrics() {
        for (mode, addr) in &hostile {
            if mode.expected().is_err() {
                assert_ne!(
                    m.get("rpo_dns_answer_matches", &www(addr, "recursive")),
                    Some(1.0),
                    "{mode:?}: a hostile answer was accepted"
                );
            }
        }
        for l in &good {
            assert_eq!(m.get("rpo_dns_answer_matches", l), Some(1.0), "{l:?} lost its answer");
        }
        assert_kept("hostile DNS", &before, m, volatile);
    }
    println!("hostile DNS: {} scrapes, slowest {slowest:?}", scrapes.count());
    assert_logged(&exporter, &["DNS query failed", "malformed"]);
    assert_logged(&exporter, &["DNS query failed", "timeout"]);
    assert_logged(&exporter, &["Truncated answer over UDP; asking again over TCP"]);
    assert_no_panic(&exporter);
}
