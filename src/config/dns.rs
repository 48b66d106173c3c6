//! The `dns:` section: failover records, the answer each region expects, which region
//! is active (fixed, or following a cluster's writable node), the resolvers to ask and
//! the authoritative servers to compare.
//!
//! Values are normalised here so the DNS collector compares like with like: addresses
//! in their canonical text form, names in lower case with the trailing dot. Only
//! syntax and references are checked; nothing is resolved.

use super::{Cluster, ConfigError, Ctx, WriteMode};
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawDns {
    #[serde(default)]
    pub interval: Option<String>,
    #[serde(default)]
    pub timeout: Option<String>,
    pub records: Vec<RawRecord>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRecord {
    pub name: String,
    #[serde(rename = "type")]
    pub record_type: String,
    pub answers: BTreeMap<String, RawAnswer>,
    #[serde(default)]
    pub follow_cluster: Option<String>,
    #[serde(default)]
    pub active_region: Option<String>,
    pub resolvers: Vec<String>,
    #[serde(default)]
    pub authoritative: Option<RawAuthoritative>,
    #[serde(default)]
    pub discover_port: Option<u16>,
    #[serde(default)]
    pub zone: Option<String>,
}

/// One value (`203.0.113.10`) or several (`[203.0.113.10, 203.0.113.11]`).
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawAnswer {
    One(String),
    Many(Vec<String>),
}

/// `discover`, or a list of servers.
#[derive(Debug, Deserialize)]
#[serde(untagged)]
pub enum RawAuthoritative {
    Keyword(String),
    List(Vec<String>),
}

/// DNS propagation checks.
#[derive(Debug, Clone, PartialEq)]
pub struct Dns {
    /// How often every record is checked.
    pub interval: Duration,
    /// Deadline for one query (UDP, and TCP after a truncated answer, together).
    pub timeout: Duration,
    pub records: Vec<Record>,
}

/// The record types a failover record may have.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum RecordType {
    A,
    Aaaa,
    Cname,
}

impl RecordType {
    pub fn as_str(self) -> &'static str {
        match self {
            RecordType::A => "A",
            RecordType::Aaaa => "AAAA",
            RecordType::Cname => "CNAME",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Record {
    /// Fully qualified, lower case, with the trailing dot: the `record` label value.
    pub name: String,
    pub record_type: RecordType,
    /// Region → the normalised values its answer holds (a set: order does not matter).
    pub answers: BTreeMap<String, Vec<String>>,
    pub active: Active,
    /// Recursive resolvers, asked with recursion desired.
    pub resolvers: Vec<SocketAddr>,
    pub authoritative: Authoritative,
    /// The zone holding the record (lower case, trailing dot); found from SOA answers when unset.
    pub zone: Option<String>,
}

/// How the region whose answer is expected is chosen.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Active {
    /// The region of the followed cluster's writable node.
    FollowCluster(String),
    /// A fixed region.
    Region(String),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Authoritative {
    /// From the zone's NS records, resolved through the record's resolvers; the
    /// servers are asked on `port`.
    Discover {
        port: u16,
    },
    List(Vec<SocketAddr>),
}

const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
const MIN_INTERVAL: Duration = Duration::from_millis(100);
const MAX_INTERVAL: Duration = Duration::from_secs(600);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
const MIN_TIMEOUT: Duration = Duration::from_millis(10);
/// Most values one region's answer may hold.
const MAX_VALUES: usize = 32;

pub(super) fn validate(ctx: &Ctx, path: &str, raw: RawDns, clusters: &[Cluster]) -> Result<Dns, ConfigError> {
    let interval = match &raw.interval {
        Some(v) => ctx.duration(&format!("{path}.interval"), v)?,
        None => DEFAULT_INTERVAL,
    };
    if !(MIN_INTERVAL..=MAX_INTERVAL).contains(&interval) {
        return Err(ctx.err(
            format!("{path}.interval"),
            format!(
                "{} is out of range: the interval must be between 100ms and 10m",
                humantime::format_duration(interval)
            ),
        ));
    }
    let timeout = match &raw.timeout {
        Some(v) => ctx.duration(&format!("{path}.timeout"), v)?,
        None => DEFAULT_TIMEOUT.min(interval),
    };
    if timeout < MIN_TIMEOUT || timeout > interval {
        return Err(ctx.err(
            format!("{path}.timeout"),
            format!(
                "{} is out of range: the timeout must be between 10ms and the interval ({})",
                humantime::format_duration(timeout),
                humantime::format_duration(interval)
            ),
        ));
    }
    if raw.records.is_empty() {
        return Err(ctx.err(format!("{path}.records"), "at least one record is required"));
    }
    let mut seen = HashSet::new();
    let mut records = Vec::with_capacity(raw.records.len());
    for (i, rr) in raw.records.into_iter().enumerate() {
        let rpath = format!("{path}.records[{i}]");
        let record = validate_record(ctx, &rpath, rr, clusters)?;
        if !seen.insert((record.name.clone(), record.record_type)) {
            return Err(ctx.err(
                format!("{rpath}.name"),
                format!("duplicate record {} {}", record.name, record.record_type.as_str()),
            ));
        }
        records.push(record);
    }
    Ok(Dns { interval, timeout, records })
}

fn validate_record(
    ctx: &Ctx,
    path: &str,
    rr: RawRecord,
    clusters: &[Cluster],
) -> Result<Record, ConfigError> {
    let name = domain_name(&rr.name).map_err(|e| ctx.err(format!("{path}.name"), e))?;
    let record_type = match rr.record_type.to_ascii_uppercase().as_str() {
        "A" => RecordType::A,
        "AAAA" => RecordType::Aaaa,
        "CNAME" => RecordType::Cname,
        _ => {
            return Err(ctx.err(
                format!("{path}.type"),
                format!("unsupported record type {:?}: expected A, AAAA or CNAME", rr.record_type),
            ))
        }
    };
    if rr.answers.is_empty() {
        return Err(ctx.err(format!("{path}.answers"), "at least one region's answer is required"));
    }
    let mut answers = BTreeMap::new();
    for (region, raw_answer) in rr.answers {
        let apath = format!("{path}.answers.{region}");
        let region = ctx.label(&apath, &region)?;
        let values = match raw_answer {
            RawAnswer::One(v) => vec![v],
            RawAnswer::Many(v) => v,
        };
        if values.is_empty() || values.len() > MAX_VALUES {
            return Err(ctx.err(&apath, format!("give 1 to {MAX_VALUES} values")));
        }
        let mut normalised = Vec::with_capacity(values.len());
        for v in &values {
            let value = answer_value(record_type, v).map_err(|e| ctx.err(&apath, e))?;
            if normalised.contains(&value) {
                return Err(ctx.err(&apath, format!("{v:?} is listed twice")));
            }
            normalised.push(value);
        }
        if record_type == RecordType::Cname && normalised.len() > 1 {
            return Err(ctx.err(&apath, "a CNAME answer holds exactly one name"));
        }
        normalised.sort();
        answers.insert(region, normalised);
    }
    let active = match (rr.follow_cluster, rr.active_region) {
        (Some(_), Some(_)) => {
            return Err(ctx.err(path, "set either follow_cluster or active_region, not both"))
        }
        (None, None) => return Err(ctx.err(
            path,
            "set follow_cluster (the active region follows that cluster's writable node) or active_region",
        )),
        (Some(cluster), None) => {
            let fpath = format!("{path}.follow_cluster");
            let Some(c) = clusters.iter().find(|c| c.name == cluster) else {
                let known: Vec<&str> = clusters.iter().map(|c| c.name.as_str()).collect();
                return Err(ctx.err(
                    fpath,
                    format!("no cluster is named {cluster:?} (clusters: {})", known.join(", ")),
                ));
            };
            if c.write_mode == WriteMode::MultiWriter {
                return Err(ctx.err(
                    fpath,
                    format!("cluster {cluster:?} is multi-writer: it has no single active region to follow"),
                ));
            }
            for region in answers.keys() {
                if !c.nodes.iter().any(|n| &n.region == region) {
                    let regions: Vec<&str> = c.nodes.iter().map(|n| n.region.as_str()).collect();
                    return Err(ctx.err(
                        format!("{path}.answers.{region}"),
                        format!(
                            "no node of cluster {cluster:?} is in region {region:?} (its regions: {})",
                            regions.join(", ")
                        ),
                    ));
                }
            }
            Active::FollowCluster(cluster)
        }
        (None, Some(region)) => {
            if !answers.contains_key(&region) {
                let known: Vec<&str> = answers.keys().map(String::as_str).collect();
                return Err(ctx.err(
                    format!("{path}.active_region"),
                    format!("{region:?} has no answer (answers: {})", known.join(", ")),
                ));
            }
            Active::Region(region)
        }
    };
    if rr.resolvers.is_empty() {
        return Err(ctx.err(format!("{path}.resolvers"), "at least one resolver is required"));
    }
    let resolvers = server_list(ctx, &format!("{path}.resolvers"), &rr.resolvers)?;
    let authoritative = match rr.authoritative {
        None => Authoritative::Discover { port: rr.discover_port.unwrap_or(53) },
        Some(RawAuthoritative::Keyword(k)) if k == "discover" => {
            Authoritative::Discover { port: rr.discover_port.unwrap_or(53) }
        }
        Some(RawAuthoritative::Keyword(k)) => {
            return Err(ctx.err(
                format!("{path}.authoritative"),
                format!("{k:?}: expected discover or a list of servers (\"IP:port\")"),
            ))
        }
        Some(RawAuthoritative::List(list)) => {
            if rr.discover_port.is_some() {
                return Err(
                    ctx.err(format!("{path}.discover_port"), "only applies to authoritative: discover")
                );
            }
            if list.is_empty() {
                return Err(
                    ctx.err(format!("{path}.authoritative"), "list at least one server, or write discover")
                );
            }
            Authoritative::List(server_list(ctx, &format!("{path}.authoritative"), &list)?)
        }
    };
    if let Authoritative::Discover { port: 0 } = authoritative {
        return Err(ctx.err(format!("{path}.discover_port"), "must be between 1 and 65535"));
    }
    let zone = match &rr.zone {
        None => None,
        Some(z) => {
            let zone = domain_name(z).map_err(|e| ctx.err(format!("{path}.zone"), e))?;
            if !in_zone(&name, &zone) {
                return Err(ctx.err(format!("{path}.zone"), format!("{name} is not in zone {zone}")));
            }
            Some(zone)
        }
    };
    Ok(Record { name, record_type, answers, active, resolvers, authoritative, zone })
}

fn server_list(ctx: &Ctx, path: &str, list: &[String]) -> Result<Vec<SocketAddr>, ConfigError> {
    let mut out = Vec::with_capacity(list.len());
    for (j, s) in list.iter().enumerate() {
        let addr = server_address(s).map_err(|e| ctx.err(format!("{path}[{j}]"), e))?;
        if out.contains(&addr) {
            return Err(ctx.err(format!("{path}[{j}]"), format!("{addr} is listed twice")));
        }
        out.push(addr);
    }
    Ok(out)
}

/// A value of the `dns:` section that is not what its field takes.
#[derive(Debug, thiserror::Error)]
enum ValueProblem {
    #[error("{0:?} is not a server address: write IP:port (e.g. 10.0.0.2:53 or [2001:db8::53]:53); host names are not resolved")]
    NotServerAddress(String),
    #[error("{0:?} is not a server address: the IP and the port must not be 0")]
    ZeroAddress(String),
    #[error("{0:?} is not an IPv4 address, as an A record's answer must be")]
    NotIpv4(String),
    #[error("{0:?} is not an IPv6 address, as an AAAA record's answer must be")]
    NotIpv6(String),
    #[error("{0:?} is not a domain name (labels of 1 to 63 letters, digits, - or _, separated by dots)")]
    NotDomainName(String),
    #[error("{0}, as a CNAME record's answer must be")]
    NotCnameTarget(Box<ValueProblem>),
}

/// `IP:port`, `[IPv6]:port`, or a bare IP (port 53).
fn server_address(s: &str) -> Result<SocketAddr, ValueProblem> {
    let s = s.trim();
    let addr = if let Ok(addr) = s.parse::<SocketAddr>() {
        addr
    } else if let Ok(ip) = s.parse::<IpAddr>() {
        SocketAddr::new(ip, 53)
    } else {
        return Err(ValueProblem::NotServerAddress(s.to_owned()));
    };
    if addr.port() == 0 || addr.ip().is_unspecified() {
        return Err(ValueProblem::ZeroAddress(s.to_owned()));
    }
    Ok(addr)
}

fn answer_value(record_type: RecordType, v: &str) -> Result<String, ValueProblem> {
    let v = v.trim();
    match record_type {
        RecordType::A => {
            v.parse::<Ipv4Addr>().map(|ip| ip.to_string()).map_err(|_| ValueProblem::NotIpv4(v.to_owned()))
        }
        RecordType::Aaaa => {
            v.parse::<Ipv6Addr>().map(|ip| ip.to_string()).map_err(|_| ValueProblem::NotIpv6(v.to_owned()))
        }
        RecordType::Cname => domain_name(v).map_err(|e| ValueProblem::NotCnameTarget(Box::new(e))),
    }
}

/// A domain name in lower case with the trailing dot; the label value of a record.
fn domain_name(s: &str) -> Result<String, ValueProblem> {
    let trimmed = s.trim();
    let name = trimmed.strip_suffix('.').unwrap_or(trimmed).to_ascii_lowercase();
    let valid_label = |l: &str| {
        !l.is_empty()
            && l.len() <= 63
            && l.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
            && !l.starts_with('-')
            && !l.ends_with('-')
    };
    if name.is_empty() || name.len() > 253 || !name.split('.').all(valid_label) {
        return Err(ValueProblem::NotDomainName(trimmed.to_owned()));
    }
    Ok(format!("{name}."))
}

/// Whether `name` is `zone` or below it (both normalised).
pub fn in_zone(name: &str, zone: &str) -> bool {
    name == zone || name.ends_with(&format!(".{zone}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_are_normalised() {
        assert_eq!(domain_name("DB.Example.COM").unwrap(), "db.example.com.");
        assert_eq!(domain_name("db.example.com.").unwrap(), "db.example.com.");
        assert!(domain_name("db..example.com").is_err());
        assert!(domain_name("-db.example.com").is_err());
        assert!(domain_name("").is_err());
        assert_eq!(answer_value(RecordType::Aaaa, "2001:DB8:0::1").unwrap(), "2001:db8::1");
        assert!(answer_value(RecordType::A, "2001:db8::1").is_err());
        assert_eq!(answer_value(RecordType::Cname, "Lb.Example.com").unwrap(), "lb.example.com.");
        assert_eq!(server_address("10.0.0.2").unwrap(), "10.0.0.2:53".parse().unwrap());
        assert_eq!(server_address("[2001:db8::53]:5353").unwrap(), "[2001:db8::53]:5353".parse().unwrap());
        assert!(server_address("dns.example.com:53").is_err());
        assert!(server_address("10.0.0.2:0").is_err());
        assert!(in_zone("db.example.com.", "example.com."));
        assert!(in_zone("example.com.", "example.com."));
        assert!(!in_zone("db.badexample.com.", "example.com."));
    }
}
