//! A cluster's `residency:` block: which tables may hold rows in which regions,
//! and how often the exporter checks that they do not elsewhere.
//!
//! Validation here knows regions and nodes only; what an engine's replication
//! copies (a PostgreSQL streaming replica copies every table) is the engines'
//! knowledge, checked when the config is loaded (the `load` module).

use super::{ConfigError, Ctx, Node};
use crate::endpoint::{is_identifier, TableMatch, TableName, Tables, ValueError};
use serde::Deserialize;
use std::collections::{BTreeSet, HashSet};
use std::time::Duration;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawResidency {
    #[serde(default)]
    pub interval: Option<String>,
    #[serde(default)]
    pub timeout: Option<String>,
    pub rules: Vec<RawRule>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawRule {
    pub name: String,
    #[serde(default)]
    pub table: Option<String>,
    #[serde(default)]
    pub schema: Option<String>,
    #[serde(default)]
    pub pattern: Option<String>,
    pub allowed_regions: Vec<String>,
}

/// A cluster's residency rules.
#[derive(Debug, Clone, PartialEq)]
pub struct Residency {
    /// How often every node outside a rule's regions is checked.
    pub interval: Duration,
    /// Deadline for one node's whole check (connect included).
    pub timeout: Duration,
    pub rules: Vec<Rule>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Rule {
    /// The `rule` label value.
    pub name: String,
    pub tables: TableMatch,
    pub allowed_regions: Vec<String>,
}

impl Rule {
    pub fn allows(&self, region: &str) -> bool {
        self.allowed_regions.iter().any(|r| r == region)
    }
}

const DEFAULT_INTERVAL: Duration = Duration::from_secs(60);
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);

/// Validates a cluster's block; `nodes` are the cluster's, `known` every region a
/// node of the config is in (a region nothing runs in is most likely a typo). A
/// cluster of one node (a sidecar's config) may name regions it has no node in.
pub(super) fn validate(
    ctx: &Ctx,
    path: &str,
    raw: RawResidency,
    nodes: &[Node],
    known: &BTreeSet<String>,
) -> Result<Residency, ConfigError> {
    let interval = match &raw.interval {
        Some(v) => ctx.duration(&format!("{path}.interval"), v)?,
        None => DEFAULT_INTERVAL,
    };
    if interval < Duration::from_millis(100) {
        return Err(ctx.err(format!("{path}.interval"), "must be at least 100ms"));
    }
    let timeout = match &raw.timeout {
        Some(v) => ctx.duration(&format!("{path}.timeout"), v)?,
        None => DEFAULT_TIMEOUT.min(interval),
    };
    if timeout.is_zero() || timeout > interval {
        return Err(ctx.err(
            format!("{path}.timeout"),
            format!(
                "{} must be greater than 0 and at most the residency interval ({})",
                humantime::format_duration(timeout),
                humantime::format_duration(interval)
            ),
        ));
    }
    if raw.rules.is_empty() {
        return Err(ctx.err(format!("{path}.rules"), "at least one rule is required"));
    }
    let mut names = HashSet::new();
    let mut rules = Vec::with_capacity(raw.rules.len());
    for (i, rr) in raw.rules.into_iter().enumerate() {
        let rpath = format!("{path}.rules[{i}]");
        let name = ctx.label(&format!("{rpath}.name"), &rr.name)?;
        if !names.insert(name.clone()) {
            return Err(ctx.err(format!("{rpath}.name"), format!("duplicate rule name {name:?}")));
        }
        let tables = match (rr.table, rr.schema, rr.pattern) {
            (Some(t), None, None) => {
                let t: TableName = t.parse().map_err(|e: ValueError| ctx.err(format!("{rpath}.table"), e))?;
                TableMatch { schema: t.schema, tables: Tables::One(t.table) }
            }
            (None, Some(s), None) => {
                if !is_identifier(&s) {
                    return Err(ctx.err(
                        format!("{rpath}.schema"),
                        format!(
                            "{s:?} must be a lower-case identifier ([a-z_][a-z0-9_]*, at most 63 characters)"
                        ),
                    ));
                }
                TableMatch { schema: s, tables: Tables::All }
            }
            (None, None, Some(p)) => {
                let valid = p.split_once('.').filter(|(s, t)| {
                    is_identifier(s)
                        && !t.is_empty()
                        && t.len() <= 63
                        && t.chars().all(|c| matches!(c, 'a'..='z' | '0'..='9' | '_' | '%'))
                });
                let Some((schema, table)) = valid else {
                    return Err(ctx.err(
                        format!("{rpath}.pattern"),
                        format!("{p:?} is not of the form schema.table_pattern (a lower-case schema name, then a table name where % matches any run of characters)"),
                    ));
                };
                TableMatch { schema: schema.to_owned(), tables: Tables::Like(table.to_owned()) }
            }
            _ => return Err(ctx.err(rpath, "set exactly one of table, schema or pattern")),
        };
        if rr.allowed_regions.is_empty() {
            return Err(ctx.err(format!("{rpath}.allowed_regions"), "at least one region is required"));
        }
        // A sidecar's config lists its one node: the allowed regions are elsewhere
        // by design, so neither check below can apply to it.
        let sidecar = nodes.len() == 1;
        for (j, region) in rr.allowed_regions.iter().enumerate() {
            ctx.label(&format!("{rpath}.allowed_regions[{j}]"), region)?;
            if !sidecar && !known.contains(region) {
                let list: Vec<&str> = known.iter().map(String::as_str).collect();
                return Err(ctx.err(
                    format!("{rpath}.allowed_regions[{j}]"),
                    format!(
                        "unknown region {region:?}: no node of the config is in it (nodes are in {})",
                        list.join(", ")
                    ),
                ));
            }
        }
        let rule = Rule { name, tables, allowed_regions: rr.allowed_regions };
        if !sidecar && !nodes.iter().any(|n| rule.allows(&n.region)) {
            return Err(ctx.err(
                format!("{rpath}.allowed_regions"),
                format!(
                    "no node of the cluster is in {}: the rule's tables could be held nowhere",
                    rule.allowed_regions.join(", ")
                ),
            ));
        }
        rules.push(rule);
    }
    Ok(Residency { interval, timeout, rules })
}
