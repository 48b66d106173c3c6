//! Configuration: load one YAML file, validate it, hand out a [`Config`].
//!
//! Parsing happens in two steps (raw, then validated), as ripgrep does with its
//! arguments: [`raw`] mirrors the file and rejects unknown fields; [`validate`]
//! checks meaning (durations, ranges, duplicates, files that must exist) and builds
//! the types the rest of the exporter uses. Every error is a [`ConfigError`] naming
//! the file, the field path (`clusters[0].nodes[1].dsn`) and the problem. This is
//! the only module that knows YAML. It keeps no state.

mod dns;
mod health;
mod raw;
mod residency;
mod tls;

pub use dns::{in_zone, Active, Authoritative, Dns, Record, RecordType};
pub use health::{Health, Probe, Region, Target};
pub use residency::{Residency, Rule};

use crate::endpoint::{
    Endpoint, HeartbeatFormat, PasswordSource, Replication, Settings, TableName, ValueError,
};
use raw::{RawCluster, RawConfig, RawHeartbeat, RawNode};
use std::collections::{BTreeSet, HashSet};
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Heartbeat interval bounds from SPEC.md.
pub const MIN_INTERVAL: Duration = Duration::from_millis(100);
pub const MAX_INTERVAL: Duration = Duration::from_secs(60);
const MAX_TIMEOUT: Duration = Duration::from_secs(30);
const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
const MAX_LABEL_LEN: usize = 64;

/// A configuration problem: which file, where in it, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    pub file: PathBuf,
    /// Field path such as `clusters[0].heartbeat.interval`; empty for file-level problems.
    pub path: String,
    pub problem: String,
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.path.is_empty() {
            write!(f, "{}: {}", self.file.display(), self.problem)
        } else {
            write!(f, "{}: {}: {}", self.file.display(), self.path, self.problem)
        }
    }
}

impl std::error::Error for ConfigError {}

/// The validated configuration.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub clusters: Vec<Cluster>,
    pub health: Option<Health>,
    pub dns: Option<Dns>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    /// The `db_cluster` label value.
    pub name: String,
    pub rpo: Duration,
    pub rto: Duration,
    pub write_mode: WriteMode,
    pub heartbeat: Heartbeat,
    pub nodes: Vec<Node>,
    /// Which tables may hold rows in which regions (`residency:`).
    pub residency: Option<Residency>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WriteMode {
    SingleWriter,
    MultiWriter,
}

impl WriteMode {
    pub fn as_str(self) -> &'static str {
        match self {
            WriteMode::SingleWriter => "single-writer",
            WriteMode::MultiWriter => "multi-writer",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Heartbeat {
    pub interval: Duration,
    /// Deadline for one query.
    pub timeout: Duration,
    /// Deadline for opening a session: TCP, TLS, authentication, first statements.
    pub connect_timeout: Duration,
    /// How often a writable node's commit position is read between heartbeats;
    /// zero: never.
    pub position_interval: Duration,
    pub table: TableName,
    pub create_table: bool,
    pub sources: Sources,
    pub format: HeartbeatFormat,
}

impl Heartbeat {
    /// What a session on `node` does, for the engines.
    pub fn settings(&self, node: &Node) -> Settings {
        Settings {
            node: node.name.clone(),
            region: node.region.clone(),
            table: self.table.clone(),
            format: self.format,
            create_table: self.create_table,
            interval: self.interval,
            timeout: self.timeout,
            connect_timeout: self.connect_timeout,
        }
    }
}

/// Which heartbeat rows count as sources of (source → replica) pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sources {
    /// Only rows written by nodes listed in the cluster (the default for a cluster
    /// listing several nodes): anything else is counted as unknown.
    Listed,
    /// Any well-formed row (the default for a sidecar config listing one node, which
    /// cannot list the writers it reads).
    Any,
}

/// Whether `s` may be used as a label value taken from configuration or from a
/// heartbeat row: short, printable, no surprises in PromQL or logs.
pub fn is_label_safe(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= MAX_LABEL_LEN
        && s.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | ':'))
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    /// The `node` label value; also the name written into heartbeat rows.
    pub name: String,
    pub region: String,
    pub zone: Option<String>,
    /// How to reach it: what the engines connect with.
    pub endpoint: Endpoint,
    /// How it gets the cluster's data (`replication:`, physical by default).
    pub replication: Replication,
}

/// Something the configuration allows but that will likely not work as meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigWarning {
    /// Field path such as `clusters[0].heartbeat.timeout`.
    pub path: String,
    pub problem: String,
}

/// The round trip between the farthest pair of cloud regions: what the heartbeat
/// settings of a cluster whose nodes span regions must allow for.
pub const CROSS_REGION_RTT: Duration = Duration::from_millis(300);

impl Config {
    /// Settings too tight for the distance between a cluster's regions. A tick is
    /// one round trip to each node, the server may give up on a statement at half the
    /// timeout, and opening a session takes about five round trips; an exporter
    /// watching a cluster that spans regions is at least one region away from
    /// some of its nodes.
    pub fn warnings(&self) -> Vec<ConfigWarning> {
        let rtt = CROSS_REGION_RTT;
        let fmt = |d: Duration| humantime::format_duration(d).to_string();
        let mut out = Vec::new();
        for (i, c) in self.clusters.iter().enumerate() {
            let regions: HashSet<&str> = c.nodes.iter().map(|n| n.region.as_str()).collect();
            if regions.len() < 2 {
                continue;
            }
            let path = format!("clusters[{i}].heartbeat");
            let why = format!(
                "the cluster's nodes are in {} regions, and a round trip between regions can take {}",
                regions.len(),
                fmt(rtt)
            );
            let hb = &c.heartbeat;
            for (field, value, needed, effect) in [
                (
                    "timeout",
                    hb.timeout,
                    rtt * 2,
                    "a slow statement's answer would come too late and the node would read as down",
                ),
                ("interval", hb.interval, rtt * 4 / 3, "heartbeats would come late"),
                ("connect_timeout", hb.connect_timeout, rtt * 7, "opening a session would time out"),
            ] {
                if value < needed {
                    out.push(ConfigWarning {
                        path: format!("{path}.{field}"),
                        problem: format!(
                            "{} is too short: {why}, so {effect}; raise it to at least {}",
                            fmt(value),
                            fmt(needed)
                        ),
                    });
                }
            }
        }
        out
    }

    /// Reads and validates a config file.
    pub fn load(file: &Path) -> Result<Config, ConfigError> {
        Config::parse(file, &read_file(file)?)
    }

    /// Parses and validates config text; `file` is only used in errors.
    pub fn parse(file: &Path, text: &str) -> Result<Config, ConfigError> {
        let raw: RawConfig = parse_yaml(file, text)?;
        validate(file, raw)
    }

    pub fn cluster(&self, name: &str) -> Option<&Cluster> {
        self.clusters.iter().find(|c| c.name == name)
    }
}

/// Reads a file for [`parse_yaml`]; an unreadable file is a [`ConfigError`] too.
pub(crate) fn read_file(file: &Path) -> Result<String, ConfigError> {
    std::fs::read_to_string(file).map_err(|e| ConfigError {
        file: file.to_owned(),
        path: String::new(),
        problem: format!("cannot read the file: {e}"),
    })
}

/// Deserializes YAML into `T`, reporting the field path and position of the
/// first problem. Shared by every file the exporter reads (config, web config).
pub(crate) fn parse_yaml<T: serde::de::DeserializeOwned>(file: &Path, text: &str) -> Result<T, ConfigError> {
    let mut options = serde_saphyr::Options::default();
    // The snippet is drawn over several lines; our errors are one line with the path.
    options.with_snippet = false;
    let mut path = String::new();
    let result = serde_saphyr::with_deserializer_from_str_with_options(text, options, |de| {
        serde_path_to_error::deserialize::<_, T>(de).map_err(|e| {
            path = e.path().to_string();
            e.into_inner()
        })
    });
    result.map_err(|e| {
        let mut problem = e.to_string();
        // Most parser messages already say where; add it when one does not.
        if let Some(loc) = e.location().filter(|l| l.line() > 0 && !problem.contains(" at line ")) {
            problem = format!("{problem} at line {}, column {}", loc.line(), loc.column());
        }
        ConfigError { file: file.to_owned(), path: if path == "." { String::new() } else { path }, problem }
    })
}

/// Collects the context for errors while walking the raw config.
pub(crate) struct Ctx<'a> {
    file: &'a Path,
}

impl Ctx<'_> {
    pub(crate) fn err(&self, path: impl Into<String>, problem: impl fmt::Display) -> ConfigError {
        ConfigError { file: self.file.to_owned(), path: path.into(), problem: problem.to_string() }
    }

    pub(crate) fn duration(&self, path: &str, value: &str) -> Result<Duration, ConfigError> {
        humantime::parse_duration(value.trim()).map_err(|e| {
            self.err(path, format!("invalid duration {value:?}: {e} (write it like 500ms, 10s or 5m)"))
        })
    }

    pub(crate) fn label(&self, path: &str, value: &str) -> Result<String, ConfigError> {
        if is_label_safe(value) {
            Ok(value.to_owned())
        } else {
            Err(self.err(
                path,
                format!(
                    "{value:?} is not a valid name: use 1 to {MAX_LABEL_LEN} characters from A-Z a-z 0-9 - _ . :"
                ),
            ))
        }
    }
}

fn validate(file: &Path, raw: RawConfig) -> Result<Config, ConfigError> {
    let ctx = Ctx { file };
    if raw.clusters.is_empty() {
        return Err(ctx.err("clusters", "at least one cluster is required"));
    }
    let mut names = HashSet::new();
    let mut clusters = Vec::with_capacity(raw.clusters.len());
    let mut residencies = Vec::with_capacity(raw.clusters.len());
    for (i, mut rc) in raw.clusters.into_iter().enumerate() {
        let path = format!("clusters[{i}]");
        residencies.push(rc.residency.take());
        let cluster = validate_cluster(&ctx, &path, rc)?;
        if !names.insert(cluster.name.clone()) {
            return Err(ctx.err(format!("{path}.name"), format!("duplicate cluster name {:?}", cluster.name)));
        }
        clusters.push(cluster);
    }
    // A rule's regions must be regions some node of the config is in: a region
    // nothing runs in is most likely a typo, and would silently allow nothing.
    let known: BTreeSet<String> =
        clusters.iter().flat_map(|c| c.nodes.iter().map(|n| n.region.clone())).collect();
    for (i, (cluster, raw)) in clusters.iter_mut().zip(residencies).enumerate() {
        if let Some(raw) = raw {
            let path = format!("clusters[{i}].residency");
            cluster.residency = Some(residency::validate(&ctx, &path, raw, &cluster.nodes, &known)?);
        }
    }
    let health = raw.health.map(|h| health::validate(&ctx, "health", h)).transpose()?;
    let dns = raw.dns.map(|d| dns::validate(&ctx, "dns", d, &clusters)).transpose()?;
    Ok(Config { clusters, health, dns })
}

fn validate_cluster(ctx: &Ctx, path: &str, rc: RawCluster) -> Result<Cluster, ConfigError> {
    let name = ctx.label(&format!("{path}.name"), &rc.name)?;
    let rpo = ctx.duration(&format!("{path}.rpo"), &rc.rpo)?;
    let rto = ctx.duration(&format!("{path}.rto"), &rc.rto)?;
    for (field, d) in [("rpo", rpo), ("rto", rto)] {
        if d.is_zero() {
            return Err(ctx.err(format!("{path}.{field}"), "must be greater than 0"));
        }
    }
    let write_mode = match rc.write_mode.as_deref() {
        None | Some("single-writer") => WriteMode::SingleWriter,
        Some("multi-writer") => WriteMode::MultiWriter,
        Some(other) => {
            return Err(ctx.err(
                format!("{path}.write_mode"),
                format!("unknown write mode {other:?}: expected single-writer or multi-writer"),
            ))
        }
    };
    if rc.nodes.is_empty() {
        return Err(ctx.err(format!("{path}.nodes"), "at least one node is required"));
    }
    let heartbeat = validate_heartbeat(
        ctx,
        &format!("{path}.heartbeat"),
        rc.heartbeat.unwrap_or_default(),
        rc.nodes.len(),
    )?;
    let mut node_names = HashSet::new();
    let mut nodes = Vec::with_capacity(rc.nodes.len());
    for (j, rn) in rc.nodes.into_iter().enumerate() {
        let npath = format!("{path}.nodes[{j}]");
        let node = validate_node(ctx, &npath, rn)?;
        if !node_names.insert(node.name.clone()) {
            return Err(ctx.err(
                format!("{npath}.name"),
                format!("duplicate node name {:?} in cluster {name:?}", node.name),
            ));
        }
        nodes.push(node);
    }
    Ok(Cluster { name, rpo, rto, write_mode, heartbeat, nodes, residency: None })
}

/// The shortest `heartbeat.position_interval`.
const MIN_POSITION_INTERVAL: Duration = Duration::from_millis(10);

/// A tenth of the interval, never under 50 ms (at the shortest interval, 100 ms,
/// one sample between two heartbeats).
pub fn default_position_interval(interval: Duration) -> Duration {
    (interval / 10).max(Duration::from_millis(50))
}

fn validate_heartbeat(
    ctx: &Ctx,
    path: &str,
    rh: RawHeartbeat,
    node_count: usize,
) -> Result<Heartbeat, ConfigError> {
    let interval = match &rh.interval {
        Some(v) => ctx.duration(&format!("{path}.interval"), v)?,
        None => Duration::from_secs(1),
    };
    if !(MIN_INTERVAL..=MAX_INTERVAL).contains(&interval) {
        return Err(ctx.err(
            format!("{path}.interval"),
            format!(
                "{} is out of range: the interval must be between 100ms and 1m",
                humantime::format_duration(interval)
            ),
        ));
    }
    // By default one round trip may take three quarters of an interval, so a hung
    // node is declared down within two intervals of its last answer, but never
    // less than 750ms: a cross-region round trip plus a busy server must fit.
    let timeout = match &rh.timeout {
        Some(v) => ctx.duration(&format!("{path}.timeout"), v)?,
        None => interval.mul_f64(0.75).max(Duration::from_millis(750)),
    };
    if timeout < Duration::from_millis(10) || timeout > MAX_TIMEOUT {
        return Err(ctx.err(format!("{path}.timeout"), "must be between 10ms and 30s"));
    }
    // Opening a session takes several round trips (TCP, TLS, SCRAM or native
    // auth) and CPU on both sides: across regions, or with hundreds of sessions
    // opening at once, that is well beyond one query's deadline. A connect cut
    // short is wasted work that a retry repeats, so it gets its own, longer one.
    let connect_timeout = match &rh.connect_timeout {
        Some(v) => ctx.duration(&format!("{path}.connect_timeout"), v)?,
        None => timeout.max(DEFAULT_CONNECT_TIMEOUT),
    };
    if connect_timeout < timeout || connect_timeout > MAX_TIMEOUT {
        return Err(ctx.err(
            format!("{path}.connect_timeout"),
            format!(
                "{} is out of range: it must be at least the timeout ({}) and at most 30s",
                humantime::format_duration(connect_timeout),
                humantime::format_duration(timeout)
            ),
        ));
    }
    // Sampling a writable node's commit position a few times per interval places
    // a replica's lag within one sample period of the truth under write traffic
    // (the heartbeats alone: within one interval). One read-only statement each.
    let position_interval = match &rh.position_interval {
        Some(v) => ctx.duration(&format!("{path}.position_interval"), v)?,
        None => default_position_interval(interval),
    };
    if !position_interval.is_zero()
        && (position_interval < MIN_POSITION_INTERVAL || position_interval > interval / 2)
    {
        return Err(ctx.err(
            format!("{path}.position_interval"),
            format!(
                "{} is out of range: it must be 0s (off) or between 10ms and half the interval ({})",
                humantime::format_duration(position_interval),
                humantime::format_duration(interval / 2)
            ),
        ));
    }
    let table = match &rh.table {
        Some(t) => t.parse().map_err(|e: ValueError| ctx.err(format!("{path}.table"), e))?,
        None => TableName { schema: "rpo".into(), table: "heartbeat".into() },
    };
    let sources = match rh.sources.as_deref() {
        None if node_count == 1 => Sources::Any,
        None | Some("listed") => Sources::Listed,
        Some("any") => Sources::Any,
        Some(other) => {
            return Err(ctx
                .err(format!("{path}.sources"), format!("unknown value {other:?}: expected listed or any")))
        }
    };
    let format = match (rh.format.as_deref(), rh.utc) {
        (None | Some("rpo"), None) => HeartbeatFormat::Rpo,
        (None | Some("rpo"), Some(_)) => {
            return Err(ctx.err(format!("{path}.utc"), "only applies to format: pt-heartbeat"))
        }
        (Some("pt-heartbeat"), utc) => HeartbeatFormat::PtHeartbeat { utc: utc.unwrap_or(false) },
        (Some(other), _) => {
            return Err(ctx.err(
                format!("{path}.format"),
                format!("unknown heartbeat format {other:?}: expected rpo or pt-heartbeat"),
            ))
        }
    };
    Ok(Heartbeat {
        interval,
        timeout,
        connect_timeout,
        position_interval,
        table,
        create_table: rh.create_table.unwrap_or(true),
        sources,
        format,
    })
}

fn validate_node(ctx: &Ctx, path: &str, rn: RawNode) -> Result<Node, ConfigError> {
    let name = ctx.label(&format!("{path}.name"), &rn.name)?;
    let region = ctx.label(&format!("{path}.region"), &rn.region)?;
    let zone = match &rn.zone {
        Some(z) => Some(ctx.label(&format!("{path}.zone"), z)?),
        None => None,
    };
    let password = match (rn.password_file, rn.password_env) {
        (Some(_), Some(_)) => {
            return Err(ctx.err(path, "set either password_file or password_env, not both"));
        }
        (Some(f), None) => PasswordSource::File(f),
        // A value that cannot be a variable's name may be the password itself,
        // written in the wrong field: say so without echoing it.
        (None, Some(v))
            if v.is_empty()
                || v.starts_with(|c: char| c.is_ascii_digit())
                || !v.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') =>
        {
            return Err(ctx.err(
                format!("{path}.password_env"),
                "is not an environment variable name (letters, digits and _); the value is not shown in case it is the password itself",
            ));
        }
        (None, Some(v)) => PasswordSource::Env(v),
        (None, None) => PasswordSource::None,
    };
    password.read().map_err(|e| ctx.err(format!("{path}.{}", password.field()), e))?;
    let tls = rn.tls.map(|rt| tls::validate(ctx, &format!("{path}.tls"), rt)).transpose()?;
    // Which modes fit the node's engine, the engines say (the `load` module).
    let replication = match rn.replication.as_deref() {
        None => Replication::default(),
        Some(v) => Replication::ALL.into_iter().find(|r| r.as_str() == v).ok_or_else(|| {
            ctx.err(
                format!("{path}.replication"),
                format!("unknown replication {v:?}: expected physical, logical, filtered or none"),
            )
        })?,
    };
    // Which engines exist, and what each accepts (the name, the DSN, the TLS
    // settings), the engines say when the config is loaded: the `load` module.
    Ok(Node {
        name,
        region,
        zone,
        endpoint: Endpoint { engine: rn.engine, dsn: rn.dsn, password, tls },
        replication,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(Path::new("t.yml"), text).map_err(|e| e.to_string())
    }

    const GOOD: &str = r#"
clusters:
  - name: orders
    rpo: 5m
    rto: 30m
    heartbeat: { interval: 500ms, table: rpo.hb }
    nodes:
      - { name: a, region: us-east-1, engine: postgres, dsn: "host=127.0.0.1 port=5432 user=rpo dbname=x" }
      - { name: b, region: eu-west-1, engine: postgres, dsn: "postgres://rpo@127.0.0.1:5433/x" }
"#;

    #[test]
    fn good_config_gets_defaults() {
        let c = parse(GOOD).unwrap();
        let cl = &c.clusters[0];
        assert_eq!(cl.rpo, Duration::from_secs(300));
        assert_eq!(cl.write_mode, WriteMode::SingleWriter);
        assert_eq!(cl.heartbeat.interval, Duration::from_millis(500));
        assert_eq!(cl.heartbeat.timeout, Duration::from_millis(750));
        assert_eq!(cl.heartbeat.connect_timeout, Duration::from_secs(5));
        assert_eq!(cl.heartbeat.table.to_string(), "rpo.hb");
        assert!(cl.heartbeat.create_table);
        assert_eq!(cl.heartbeat.sources, Sources::Listed);
        assert_eq!(cl.nodes[1].region, "eu-west-1");
    }

    #[test]
    fn sidecar_defaults_to_any_source() {
        let one = GOOD.replace("      - { name: b, region: eu-west-1, engine: postgres, dsn: \"postgres://rpo@127.0.0.1:5433/x\" }\n", "");
        assert_eq!(parse(&one).unwrap().clusters[0].heartbeat.sources, Sources::Any);
    }

    fn check(replace: (&str, &str), expected: &str) {
        assert!(GOOD.contains(replace.0), "{}", replace.0);
        let text = GOOD.replacen(replace.0, replace.1, 1);
        assert_eq!(parse(&text).unwrap_err(), expected);
    }

    #[test]
    fn residency_rules_get_defaults_and_sidecars_may_name_other_regions() {
        let with_rule = |nodes: &str| {
            format!(
                "clusters:\n  - name: shop\n    rpo: 5m\n    rto: 30m\n    residency:\n      rules:\n        - {{ name: pii-eu, pattern: \"pii.cust%\", allowed_regions: [eu-west-1] }}\n    nodes:\n{nodes}"
            )
        };
        let eu = "      - { name: a, region: eu-west-1, engine: postgres, dsn: \"host=h user=u\" }\n";
        let us = "      - { name: b, region: us-east-1, engine: postgres, dsn: \"host=h user=u\", replication: logical }\n";
        let c = parse(&with_rule(&format!("{eu}{us}"))).unwrap();
        let r = c.clusters[0].residency.as_ref().unwrap();
        assert_eq!((r.interval, r.timeout), (Duration::from_secs(60), Duration::from_secs(10)));
        assert_eq!(r.rules[0].tables.to_string(), "pii.cust%");
        assert!(r.rules[0].allows("eu-west-1") && !r.rules[0].allows("us-east-1"));
        assert_eq!(c.clusters[0].nodes[0].replication, Replication::Physical);
        assert_eq!(c.clusters[0].nodes[1].replication, Replication::Logical);
        // A sidecar beside the US node lists only it: eu-west-1 is elsewhere by design.
        assert!(parse(&with_rule(us)).is_ok());
        assert_eq!(
            parse(&with_rule(&format!("{eu}{us}").replace("logical", "streaming"))).unwrap_err(),
            "t.yml: clusters[0].nodes[1].replication: unknown replication \"streaming\": expected physical, logical, filtered or none"
        );
    }

    #[test]
    fn semantic_errors_name_the_field() {
        check(("interval: 500ms", "interval: 50ms"), "t.yml: clusters[0].heartbeat.interval: 50ms is out of range: the interval must be between 100ms and 1m");
        check(("rpo: 5m", "rpo: 0s"), "t.yml: clusters[0].rpo: must be greater than 0");
        check(
            ("name: b,", "name: a,"),
            "t.yml: clusters[0].nodes[1].name: duplicate node name \"a\" in cluster \"orders\"",
        );
        check(
            ("table: rpo.hb", "table: hb"),
            "t.yml: clusters[0].heartbeat.table: \"hb\" is not of the form schema.table",
        );
        check(("name: a,", "name: \"a b\","), "t.yml: clusters[0].nodes[0].name: \"a b\" is not a valid name: use 1 to 64 characters from A-Z a-z 0-9 - _ . :");
    }
}
