//! The `health:` section: per-region HTTP(S) and TCP probes, and how many of a
//! region's probes must pass for the region to count as healthy.

use super::{is_label_safe, ConfigError, Ctx};
use serde::Deserialize;
use std::collections::{BTreeMap, HashSet};
use std::path::PathBuf;
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHealth {
    #[serde(default)]
    pub interval: Option<String>,
    pub regions: BTreeMap<String, RawRegion>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRegion {
    #[serde(default)]
    pub quorum: Option<usize>,
    pub probes: Vec<RawProbe>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawProbe {
    pub name: String,
    #[serde(default)]
    pub http: Option<String>,
    #[serde(default)]
    pub tcp: Option<String>,
    #[serde(default)]
    pub timeout: Option<String>,
    #[serde(default)]
    pub expect_status: Option<Vec<u16>>,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub insecure_skip_verify: Option<bool>,
}

/// Region health probes.
#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    pub interval: Duration,
    pub regions: Vec<Region>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Region {
    /// The `probe_region` label value.
    pub name: String,
    /// Probes that must pass for the region to be healthy.
    pub quorum: usize,
    pub probes: Vec<Probe>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Probe {
    /// The `probe` label value, unique within its region.
    pub name: String,
    pub target: Target,
    pub timeout: Duration,
}

#[derive(Debug, Clone, PartialEq)]
pub enum Target {
    Http {
        url: reqwest::Url,
        /// Accepted status codes; empty means any 2xx.
        expect_status: Vec<u16>,
        /// Extra trust anchors (PEM), added to the system's.
        ca_file: Option<PathBuf>,
        insecure_skip_verify: bool,
    },
    /// `host:port`, resolved at each probe.
    Tcp { address: String },
}

/// What replaces a secret in a redacted URL.
const REDACTED: &str = "REDACTED";

/// A probe URL as it may be shown in an error or a log: the user and password,
/// every query value and the fragment replaced by `REDACTED`. Works on text that
/// does not parse as a URL too, since that is when an error quotes it.
pub fn redact_url(url: &str) -> String {
    let (scheme, rest) = match url.find("://") {
        Some(i) => url.split_at(i + 3),
        None => ("", url),
    };
    let (rest, fragment) = match rest.split_once('#') {
        Some((r, _)) => (r, format!("#{REDACTED}")),
        None => (rest, String::new()),
    };
    let (rest, query) = match rest.split_once('?') {
        Some((r, q)) => {
            let pairs: Vec<String> = q
                .split('&')
                .map(|pair| match pair.split_once('=') {
                    Some((k, _)) => format!("{k}={REDACTED}"),
                    None if pair.is_empty() => String::new(),
                    None => REDACTED.to_owned(),
                })
                .collect();
            (r, format!("?{}", pairs.join("&")))
        }
        None => (rest, String::new()),
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let authority = match authority.rfind('@') {
        Some(i) => format!("{REDACTED}@{}", &authority[i + 1..]),
        None => authority.to_owned(),
    };
    format!("{scheme}{authority}{path}{query}{fragment}")
}

const DEFAULT_HEALTH_INTERVAL: Duration = Duration::from_secs(5);
const DEFAULT_PROBE_TIMEOUT: Duration = Duration::from_secs(2);

pub(super) fn validate(ctx: &Ctx, path: &str, raw: RawHealth) -> Result<Health, ConfigError> {
    let interval = match &raw.interval {
        Some(v) => ctx.duration(&format!("{path}.interval"), v)?,
        None => DEFAULT_HEALTH_INTERVAL,
    };
    if interval < Duration::from_millis(100) {
        return Err(ctx.err(format!("{path}.interval"), "must be at least 100ms"));
    }
    if raw.regions.is_empty() {
        return Err(ctx.err(format!("{path}.regions"), "at least one region is required"));
    }
    let mut regions = Vec::with_capacity(raw.regions.len());
    for (name, rr) in raw.regions {
        let rpath = format!("{path}.regions.{name}");
        let name = ctx.label(&rpath, &name)?;
        if rr.probes.is_empty() {
            return Err(ctx.err(format!("{rpath}.probes"), "at least one probe is required"));
        }
        let mut names = HashSet::new();
        let mut probes = Vec::with_capacity(rr.probes.len());
        for (i, rp) in rr.probes.into_iter().enumerate() {
            let ppath = format!("{rpath}.probes[{i}]");
            let probe = validate_probe(ctx, &ppath, rp, interval)?;
            if !names.insert(probe.name.clone()) {
                return Err(ctx.err(
                    format!("{ppath}.name"),
                    format!("duplicate probe name {:?} in region {name:?}", probe.name),
                ));
            }
            probes.push(probe);
        }
        let quorum = rr.quorum.unwrap_or(probes.len());
        if quorum == 0 || quorum > probes.len() {
            return Err(ctx.err(
                format!("{rpath}.quorum"),
                format!("{quorum} is out of range: between 1 and the region's {} probes", probes.len()),
            ));
        }
        regions.push(Region { name, quorum, probes });
    }
    Ok(Health { interval, regions })
}

fn validate_probe(ctx: &Ctx, path: &str, rp: RawProbe, interval: Duration) -> Result<Probe, ConfigError> {
    let name = ctx.label(&format!("{path}.name"), &rp.name)?;
    let timeout = match &rp.timeout {
        Some(v) => ctx.duration(&format!("{path}.timeout"), v)?,
        None => DEFAULT_PROBE_TIMEOUT.min(interval),
    };
    if timeout.is_zero() || timeout > interval {
        return Err(ctx.err(
            format!("{path}.timeout"),
            format!(
                "{} must be greater than 0 and at most the health interval ({})",
                humantime::format_duration(timeout),
                humantime::format_duration(interval)
            ),
        ));
    }
    let target = match (rp.http, rp.tcp) {
        (Some(_), Some(_)) | (None, None) => {
            return Err(ctx.err(path, "set exactly one of http or tcp"));
        }
        (Some(url), None) => {
            // The URL may carry credentials (user:password@, ?token=): errors show it redacted.
            let shown = redact_url(&url);
            let parsed = reqwest::Url::parse(&url)
                .map_err(|e| ctx.err(format!("{path}.http"), format!("{shown:?} is not a URL: {e}")))?;
            if !matches!(parsed.scheme(), "http" | "https") || parsed.host_str().is_none() {
                return Err(ctx.err(
                    format!("{path}.http"),
                    format!("{shown:?} is not an http:// or https:// URL with a host"),
                ));
            }
            let expect_status = rp.expect_status.unwrap_or_default();
            if let Some(bad) = expect_status.iter().find(|s| !(100..=599).contains(*s)) {
                return Err(
                    ctx.err(format!("{path}.expect_status"), format!("{bad} is not an HTTP status code"))
                );
            }
            if let Some(ca) = &rp.ca_file {
                std::fs::metadata(ca).map_err(|e| {
                    ctx.err(format!("{path}.ca_file"), format!("cannot read {}: {e}", ca.display()))
                })?;
            }
            Target::Http {
                url: parsed,
                expect_status,
                ca_file: rp.ca_file,
                insecure_skip_verify: rp.insecure_skip_verify.unwrap_or(false),
            }
        }
        (None, Some(address)) => {
            let valid = address
                .rsplit_once(':')
                .is_some_and(|(host, port)| !host.is_empty() && port.parse::<u16>().is_ok_and(|p| p > 0));
            if !valid {
                return Err(ctx.err(format!("{path}.tcp"), format!("{address:?} is not host:port")));
            }
            for field in ["expect_status", "ca_file", "insecure_skip_verify"] {
                let set = match field {
                    "expect_status" => rp.expect_status.is_some(),
                    "ca_file" => rp.ca_file.is_some(),
                    _ => rp.insecure_skip_verify.is_some(),
                };
                if set {
                    return Err(ctx.err(format!("{path}.{field}"), "only applies to http probes"));
                }
            }
            Target::Tcp { address }
        }
    };
    debug_assert!(is_label_safe(&name));
    Ok(Probe { name, target, timeout })
}

#[cfg(test)]
mod tests {
    use super::redact_url;

    #[test]
    fn urls_lose_their_secrets() {
        for (url, want) in [
            ("https://api.example.com/healthz", "https://api.example.com/healthz"),
            (
                "https://user:pw@api.example.com:8443/h?token=abc&x=1#frag",
                "https://REDACTED@api.example.com:8443/h?token=REDACTED&x=REDACTED#REDACTED",
            ),
            ("https://user:p@ss@exa mple.com:x/healthz", "https://REDACTED@exa mple.com:x/healthz"),
            ("user:pw@host/x?secret", "REDACTED@host/x?REDACTED"),
            ("http://h?t=a/b@c", "http://h?t=REDACTED"),
        ] {
            assert_eq!(redact_url(url), want, "{url}");
        }
    }
}
