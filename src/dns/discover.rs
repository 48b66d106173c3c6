//! Finding a record's zone and the zone's authoritative servers.
//!
//! The zone is the closest enclosing name that owns an SOA record: a NODATA answer
//! names it in its authority section, an SOA answer owns it. Servers come from the
//! zone's NS records, each NS name resolved to IPv4 addresses through the record's
//! resolvers (glue in the additional section is used when present). Every step asks
//! the given servers in order until one answers. Discovery runs in the DNS loop's
//! round, rarely (see [`super::runner`]), never on a scrape.

use super::query::{exchange, normalise_name, Mode};
use crate::config::in_zone;
use hickory_net::proto::op::{Message, ResponseCode};
use hickory_net::proto::rr::{Name, RData, RecordType};
use std::collections::BTreeSet;
use std::net::{IpAddr, SocketAddr};
use std::time::Duration;

/// Why a zone or its servers could not be found.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DiscoveryError {
    #[error("no server to ask")]
    NoServer,
    #[error("{server} answered {code}")]
    Answered { server: SocketAddr, code: String },
    #[error("{server}: {failure}")]
    Failed { server: SocketAddr, failure: &'static str },
    #[error("{name:?} is not a domain name: {problem}")]
    BadName { name: String, problem: String },
    #[error("no SOA record found above {0}")]
    NoSoa(String),
    #[error("{0} has no NS records")]
    NoNs(String),
    #[error("none of {0}'s name servers resolves to an IPv4 address")]
    NoAddress(String),
}

fn name(text: &str) -> Result<Name, DiscoveryError> {
    Name::from_ascii(text)
        .map_err(|e| DiscoveryError::BadName { name: text.to_owned(), problem: e.to_string() })
}

/// Most authoritative servers taken from one zone's NS records.
pub const MAX_SERVERS: usize = 16;

/// Asks `servers` in order until one gives a NOERROR or NXDOMAIN answer.
async fn ask(
    servers: &[SocketAddr],
    mode: Mode,
    name: &Name,
    rtype: RecordType,
    timeout: Duration,
) -> Result<Message, DiscoveryError> {
    let mut last = DiscoveryError::NoServer;
    for &server in servers {
        match exchange(server, name, rtype, mode, timeout).await {
            Ok(m) if matches!(m.metadata.response_code, ResponseCode::NoError | ResponseCode::NXDomain) => {
                return Ok(m)
            }
            Ok(m) => last = DiscoveryError::Answered { server, code: m.metadata.response_code.to_string() },
            Err(f) => last = DiscoveryError::Failed { server, failure: f.as_str() },
        }
    }
    Err(last)
}

/// The zone holding `record` (normalised, with the trailing dot), asking `servers` in `mode`.
pub async fn zone_of(
    record: &str,
    servers: &[SocketAddr],
    mode: Mode,
    timeout: Duration,
) -> Result<String, DiscoveryError> {
    let mut candidate = name(record)?;
    loop {
        let m = ask(servers, mode, &candidate, RecordType::SOA, timeout).await?;
        let candidate_text = normalise_name(&candidate);
        let soa_owner = |records: &[hickory_net::proto::rr::Record]| {
            records.iter().find_map(|r| match r.data {
                RData::SOA(_) => Some(normalise_name(&r.name)),
                _ => None,
            })
        };
        if let Some(owner) = soa_owner(&m.answers).filter(|o| *o == candidate_text) {
            return Ok(owner);
        }
        // NODATA (or NXDOMAIN) without a CNAME in the way: the authority SOA names the zone.
        let cname = m.answers.iter().any(|r| matches!(r.data, RData::CNAME(_)));
        if !cname {
            if let Some(owner) = soa_owner(&m.authorities).filter(|o| in_zone(record, o)) {
                return Ok(owner);
            }
        }
        if candidate.num_labels() <= 1 {
            return Err(DiscoveryError::NoSoa(record.to_owned()));
        }
        candidate = candidate.base_name();
    }
}

/// The zone's authoritative servers on `port`, from its NS records resolved through `resolvers`.
pub async fn name_servers(
    zone: &str,
    resolvers: &[SocketAddr],
    port: u16,
    timeout: Duration,
) -> Result<Vec<SocketAddr>, DiscoveryError> {
    let zone_name = name(zone)?;
    let m = ask(resolvers, Mode::Recursive, &zone_name, RecordType::NS, timeout).await?;
    let ns_names: BTreeSet<Name> = m
        .answers
        .iter()
        .filter_map(|r| match &r.data {
            RData::NS(ns) => Some(ns.0.to_lowercase()),
            _ => None,
        })
        .collect();
    if ns_names.is_empty() {
        return Err(DiscoveryError::NoNs(zone.to_owned()));
    }
    let mut addresses = BTreeSet::new();
    for ns in &ns_names {
        let glue: Vec<IpAddr> = m
            .additionals
            .iter()
            .filter(|r| r.name.to_lowercase() == *ns)
            .filter_map(|r| match r.data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                _ => None,
            })
            .collect();
        if !glue.is_empty() {
            addresses.extend(glue);
            continue;
        }
        match ask(resolvers, Mode::Recursive, ns, RecordType::A, timeout).await {
            Ok(a) => addresses.extend(a.answers.iter().filter_map(|r| match r.data {
                RData::A(a) => Some(IpAddr::V4(a.0)),
                _ => None,
            })),
            Err(e) => tracing::debug!(zone, ns = %ns, error = %e, "Cannot resolve a name server"),
        }
    }
    if addresses.is_empty() {
        return Err(DiscoveryError::NoAddress(zone.to_owned()));
    }
    // Addresses become label values: keep a hostile or huge NS set bounded.
    Ok(addresses.into_iter().take(MAX_SERVERS).map(|ip| SocketAddr::new(ip, port)).collect())
}
