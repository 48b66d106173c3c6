//! One DNS question to one server, and what its answer means.
//!
//! Messages are built and parsed by hickory-proto; no DNS wire format is written by
//! hand. UDP goes through a *connected* socket, so a closed port shows as an ICMP
//! "connection refused" ([`Failure::Network`]) instead of an indistinguishable
//! timeout; a truncated UDP answer is asked again over TCP (RFC 1035 framing, one
//! connection per question). Over both, a reply with another ID or question, or
//! that is no response, is ignored ([`read_reply`]); one that does not parse is
//! [`Failure::Malformed`], not a timeout. The whole exchange, UDP and TCP together,
//! is bounded by one deadline. Each outcome is a
//! bounded [`Failure`] reason or an [`Answer`]: the record values (normalised like the
//! config's) and their TTL. Raw values stay here and in the state; they never become
//! label values.

use hickory_net::proto::op::{Edns, Message, MessageType, Query, ResponseCode};
use hickory_net::proto::rr::{Name, RData, RecordType};
use std::collections::BTreeSet;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpStream, UdpSocket};

/// The EDNS UDP payload size we advertise (the DNS flag day 2020 value).
const EDNS_PAYLOAD: u16 = 1232;

/// How a server is asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Mode {
    /// A recursive resolver: recursion desired; any answer counts.
    Recursive,
    /// An authoritative server: no recursion; only an answer with the AA flag counts.
    Authoritative,
}

impl Mode {
    pub const ALL: [Mode; 2] = [Mode::Recursive, Mode::Authoritative];

    pub fn as_str(self) -> &'static str {
        match self {
            Mode::Recursive => "recursive",
            Mode::Authoritative => "authoritative",
        }
    }
}

/// Why a query gave no usable answer: the `reason` label values.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Failure {
    /// No answer within the timeout (a server that drops or never reads queries).
    Timeout,
    /// The network refused: ICMP port or host unreachable, TCP connection refused or reset.
    Network,
    /// The server answered REFUSED (not allowed to ask it, or not its zone).
    Refused,
    /// The server answered SERVFAIL (a resolver that cannot reach the authoritative servers).
    Servfail,
    /// The name does not exist (NXDOMAIN).
    Nxdomain,
    /// The name exists but has no record of the asked type (NOERROR, empty answer).
    Nodata,
    /// An authoritative server answered without the AA flag (a lame delegation).
    NotAuthoritative,
    /// An answer that could not be parsed, or was still truncated over TCP.
    Malformed,
    /// Any other response code (FORMERR, NOTIMP, …).
    Other,
}

impl Failure {
    pub const ALL: [Failure; 9] = [
        Failure::Timeout,
        Failure::Network,
        Failure::Refused,
        Failure::Servfail,
        Failure::Nxdomain,
        Failure::Nodata,
        Failure::NotAuthoritative,
        Failure::Malformed,
        Failure::Other,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Failure::Timeout => "timeout",
            Failure::Network => "network",
            Failure::Refused => "refused",
            Failure::Servfail => "servfail",
            Failure::Nxdomain => "nxdomain",
            Failure::Nodata => "nodata",
            Failure::NotAuthoritative => "not_authoritative",
            Failure::Malformed => "malformed",
            Failure::Other => "other",
        }
    }

    fn from_rcode(rcode: ResponseCode) -> Option<Failure> {
        match rcode {
            ResponseCode::NoError => None,
            ResponseCode::NXDomain => Some(Failure::Nxdomain),
            ResponseCode::ServFail => Some(Failure::Servfail),
            ResponseCode::Refused => Some(Failure::Refused),
            _ => Some(Failure::Other),
        }
    }
}

/// A usable answer: the values of the asked type, normalised, and their TTL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Answer {
    pub values: BTreeSet<String>,
    /// The smallest TTL among the records (what a cache holds the set for).
    pub ttl: u32,
}

/// One query's outcome and how long it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome<T> {
    pub result: Result<T, Failure>,
    pub duration: Duration,
}

/// Sends `name`/`rtype` to `server` and returns the response message, UDP first and
/// TCP when the UDP answer is truncated, all within `timeout`.
pub async fn exchange(
    server: SocketAddr,
    name: &Name,
    rtype: RecordType,
    mode: Mode,
    timeout: Duration,
) -> Result<Message, Failure> {
    let mut message = Message::query();
    message.metadata.recursion_desired = mode == Mode::Recursive;
    message.add_query(Query::query(name.clone(), rtype));
    let mut edns = Edns::new();
    edns.set_max_payload(EDNS_PAYLOAD);
    message.set_edns(edns);
    let mut malformed = false;
    let result = tokio::time::timeout(timeout, async {
        let response = udp_exchange(server, &message, &mut malformed).await?;
        if !response.metadata.truncation {
            return Ok(response);
        }
        tracing::debug!(server = %server, name = %name, "Truncated answer over UDP; asking again over TCP");
        tcp_exchange(server, &message).await
    })
    .await;
    match result {
        Ok(r) => r,
        // Garbage is worth naming: a server that only ever sends it is not silent.
        Err(_) if malformed => Err(Failure::Malformed),
        Err(_) => Err(Failure::Timeout),
    }
}

/// One datagram out, the first matching datagram back. Replies with the wrong ID or
/// question are ignored (and remembered in `malformed` if they did not even parse).
async fn udp_exchange(server: SocketAddr, query: &Message, malformed: &mut bool) -> Result<Message, Failure> {
    let bytes = query.to_vec().map_err(|_| Failure::Malformed)?;
    let local: SocketAddr = match server {
        SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
        SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
    };
    let socket = UdpSocket::bind(local).await.map_err(|_| Failure::Network)?;
    socket.connect(server).await.map_err(|_| Failure::Network)?;
    socket.send(&bytes).await.map_err(|_| Failure::Network)?;
    let mut buf = vec![0u8; 65535];
    loop {
        let n = socket.recv(&mut buf).await.map_err(|_| Failure::Network)?;
        match read_reply(query, &buf[..n]) {
            Reply::Answer(m) => return Ok(m),
            Reply::Ignored => continue,
            // Anyone may send a datagram to our port: keep waiting for the real one.
            Reply::Garbage => *malformed = true,
        }
    }
}

/// What one received message is to the query it may answer.
#[derive(Debug)]
pub enum Reply {
    /// Parsed, and answers the query (same ID and question, a response).
    Answer(Message),
    /// Parsed, but answers something else: ignored, never accepted.
    Ignored,
    /// Does not parse as a DNS message.
    Garbage,
}

/// Judges the bytes of one UDP datagram or TCP frame against `query`.
pub fn read_reply(query: &Message, bytes: &[u8]) -> Reply {
    match Message::from_vec(bytes) {
        Ok(m) if answers(query, &m) => Reply::Answer(m),
        Ok(_) => Reply::Ignored,
        Err(_) => Reply::Garbage,
    }
}

/// The question again over TCP, each message framed by its length (RFC 1035
/// 4.2.2). Frames that answer something else are skipped; one that does not
/// parse, or an answer still truncated, is `Malformed`; a refused, reset or
/// closed connection is `Network`.
async fn tcp_exchange(server: SocketAddr, query: &Message) -> Result<Message, Failure> {
    let bytes = query.to_vec().map_err(|_| Failure::Malformed)?;
    let len = u16::try_from(bytes.len()).map_err(|_| Failure::Malformed)?;
    let mut frame = len.to_be_bytes().to_vec();
    frame.extend_from_slice(&bytes);
    let mut stream = TcpStream::connect(server).await.map_err(|_| Failure::Network)?;
    stream.write_all(&frame).await.map_err(|_| Failure::Network)?;
    loop {
        let mut len = [0u8; 2];
        stream.read_exact(&mut len).await.map_err(|_| Failure::Network)?;
        let mut buf = vec![0u8; usize::from(u16::from_be_bytes(len))];
        stream.read_exact(&mut buf).await.map_err(|_| Failure::Network)?;
        match read_reply(query, &buf) {
            Reply::Answer(m) if m.metadata.truncation => return Err(Failure::Malformed),
            Reply::Answer(m) => return Ok(m),
            Reply::Ignored => continue,
            // A connection is the server's alone: garbage on it is its answer.
            Reply::Garbage => return Err(Failure::Malformed),
        }
    }
}

/// Whether `response` answers `query`: same ID, a response, the same question.
fn answers(query: &Message, response: &Message) -> bool {
    response.metadata.id == query.metadata.id
        && response.metadata.message_type == MessageType::Response
        && response.queries == query.queries
}

/// Asks `server` for `name`/`rtype` and judges the answer.
pub async fn query_record(
    server: SocketAddr,
    name: &Name,
    rtype: RecordType,
    mode: Mode,
    timeout: Duration,
) -> Outcome<Answer> {
    let start = Instant::now();
    let result = match exchange(server, name, rtype, mode, timeout).await {
        Ok(m) => judge(&m, name, rtype, mode),
        Err(f) => Err(f),
    };
    Outcome { result, duration: start.elapsed() }
}

/// Asks an authoritative `server` for `zone`'s SOA and returns its serial.
pub async fn query_serial(server: SocketAddr, zone: &Name, timeout: Duration) -> Outcome<u32> {
    let start = Instant::now();
    let result = match exchange(server, zone, RecordType::SOA, Mode::Authoritative, timeout).await {
        Ok(m) => judge_rcode(&m, Mode::Authoritative).and_then(|()| {
            m.answers
                .iter()
                .find_map(|r| match &r.data {
                    RData::SOA(soa) if r.name.eq_case_insensitive(zone) => Some(soa.serial),
                    _ => None,
                })
                .ok_or(Failure::Nodata)
        }),
        Err(f) => Err(f),
    };
    Outcome { result, duration: start.elapsed() }
}

fn judge_rcode(m: &Message, mode: Mode) -> Result<(), Failure> {
    if let Some(f) = Failure::from_rcode(m.metadata.response_code) {
        return Err(f);
    }
    if mode == Mode::Authoritative && !m.metadata.authoritative {
        return Err(Failure::NotAuthoritative);
    }
    Ok(())
}

/// The answer's values of the asked type. For A and AAAA every address in the answer
/// section counts (a resolver puts a CNAME chain's target addresses there); for CNAME
/// only the record owned by the name asked.
pub fn judge(m: &Message, name: &Name, rtype: RecordType, mode: Mode) -> Result<Answer, Failure> {
    judge_rcode(m, mode)?;
    let mut values = BTreeSet::new();
    let mut ttl = u32::MAX;
    for r in &m.answers {
        let value = match (&r.data, rtype) {
            (RData::A(a), RecordType::A) => a.0.to_string(),
            (RData::AAAA(a), RecordType::AAAA) => a.0.to_string(),
            (RData::CNAME(c), RecordType::CNAME) if r.name.eq_case_insensitive(name) => normalise_name(&c.0),
            _ => continue,
        };
        values.insert(value);
        ttl = ttl.min(r.ttl);
    }
    if values.is_empty() {
        return Err(Failure::Nodata);
    }
    Ok(Answer { values, ttl })
}

/// A name as the config writes it: lower case, trailing dot.
pub fn normalise_name(n: &Name) -> String {
    let mut s = n.to_lowercase().to_ascii();
    if !s.ends_with('.') {
        s.push('.');
    }
    s
}

trait EqCaseInsensitive {
    fn eq_case_insensitive(&self, other: &Name) -> bool;
}

impl EqCaseInsensitive for Name {
    fn eq_case_insensitive(&self, other: &Name) -> bool {
        normalise_name(self) == normalise_name(other)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use hickory_net::proto::op::Message;
    use hickory_net::proto::rr::rdata::{A, CNAME};
    use hickory_net::proto::rr::Record;

    fn name(s: &str) -> Name {
        Name::from_ascii(s).unwrap()
    }

    fn response(rcode: ResponseCode, aa: bool, answers: Vec<Record>) -> Message {
        let mut m = Message::response(1, hickory_net::proto::op::OpCode::Query);
        m.metadata.response_code = rcode;
        m.metadata.authoritative = aa;
        m.answers = answers;
        m
    }

    fn a(owner: &str, ttl: u32, ip: [u8; 4]) -> Record {
        Record::from_rdata(name(owner), ttl, RData::A(A::from(Ipv4Addr::from(ip))))
    }

    #[test]
    fn judging_answers() {
        let www = name("www.lab.test.");
        let check = |m: &Message, rtype, mode| judge(m, &www, rtype, mode);
        let two = response(
            ResponseCode::NoError,
            true,
            vec![a("www.lab.test.", 3, [192, 0, 2, 10]), a("www.lab.test.", 2, [192, 0, 2, 11])],
        );
        let got = check(&two, RecordType::A, Mode::Authoritative).unwrap();
        assert_eq!(got.values, ["192.0.2.10".to_owned(), "192.0.2.11".to_owned()].into());
        assert_eq!(got.ttl, 2);
        let cached = response(ResponseCode::NoError, false, vec![a("www.lab.test.", 3, [192, 0, 2, 10])]);
        assert!(check(&cached, RecordType::A, Mode::Recursive).is_ok());
        assert_eq!(check(&cached, RecordType::A, Mode::Authoritative), Err(Failure::NotAuthoritative));
        assert_eq!(check(&cached, RecordType::AAAA, Mode::Recursive), Err(Failure::Nodata));
        for (rcode, failure) in [
            (ResponseCode::NXDomain, Failure::Nxdomain),
            (ResponseCode::ServFail, Failure::Servfail),
            (ResponseCode::Refused, Failure::Refused),
            (ResponseCode::FormErr, Failure::Other),
        ] {
            assert_eq!(check(&response(rcode, true, vec![]), RecordType::A, Mode::Recursive), Err(failure));
        }
        let chain = response(
            ResponseCode::NoError,
            false,
            vec![
                Record::from_rdata(name("WWW.lab.test."), 60, RData::CNAME(CNAME(name("LB.Lab.Test.")))),
                a("lb.lab.test.", 30, [198, 51, 100, 20]),
            ],
        );
        assert_eq!(
            check(&chain, RecordType::CNAME, Mode::Recursive).unwrap().values,
            ["lb.lab.test.".to_owned()].into()
        );
        let addresses = check(&chain, RecordType::A, Mode::Recursive).unwrap();
        assert_eq!((addresses.values, addresses.ttl), (["198.51.100.20".to_owned()].into(), 30));
    }
}
