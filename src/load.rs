//! Loading a config file: the config's own validation, then each node's engine
//! checks its endpoint (engine name, DSN, TLS material, heartbeat format).
//!
//! What startup, a reload and `check-config` all call, so the three refuse the
//! same files with the same [`ConfigError`] (file, field path, problem). The
//! config and the engines do not import each other; this is where they meet.
//! Keeps no state.

use crate::config::{Cluster, Config, ConfigError};
use crate::endpoint::Replication;
use crate::engine;
use std::path::Path;

/// Reads, validates and checks a config file.
pub fn file(path: &Path) -> Result<Config, ConfigError> {
    check(path, Config::load(path)?)
}

/// Parses, validates and checks config text; `file` is only used in errors.
pub fn text(file: &Path, text: &str) -> Result<Config, ConfigError> {
    check(file, Config::parse(file, text)?)
}

/// The engines' checks of every node, in the file's order.
fn check(file: &Path, config: Config) -> Result<Config, ConfigError> {
    for (i, cluster) in config.clusters.iter().enumerate() {
        for (j, node) in cluster.nodes.iter().enumerate() {
            engine::check(&node.endpoint, cluster.heartbeat.format).map_err(|e| ConfigError {
                file: file.to_owned(),
                path: format!("clusters[{i}].nodes[{j}].{}", e.field.as_str()),
                problem: e.problem,
            })?;
            engine::check_replication(&node.endpoint, node.replication).map_err(|e| ConfigError {
                file: file.to_owned(),
                path: format!("clusters[{i}].nodes[{j}].{}", e.field.as_str()),
                problem: e.problem,
            })?;
        }
        check_residency(file, i, cluster)?;
    }
    Ok(config)
}

/// Refuses a node outside a residency rule's regions whose replication copies
/// every table there (the engine says which ways do, and why).
fn check_residency(file: &Path, i: usize, cluster: &Cluster) -> Result<(), ConfigError> {
    let Some(residency) = &cluster.residency else { return Ok(()) };
    for (k, rule) in residency.rules.iter().enumerate() {
        for (j, node) in cluster.nodes.iter().enumerate() {
            if rule.allows(&node.region) {
                continue;
            }
            if let Some(why) = engine::copies_everything(&node.endpoint.engine, node.replication) {
                // The ways this node's engine can hold only some tables.
                let other: Vec<Replication> = Replication::ALL
                    .into_iter()
                    .filter(|m| {
                        engine::copies_everything(&node.endpoint.engine, *m).is_none()
                            && engine::check_replication(&node.endpoint, *m).is_ok()
                    })
                    .collect();
                let what: Vec<&str> = other.iter().map(|m| describe(*m)).collect();
                let values: Vec<&str> = other.iter().map(|m| m.as_str()).collect();
                return Err(ConfigError {
                    file: file.to_owned(),
                    path: format!("clusters[{i}].nodes[{j}].replication"),
                    problem: format!(
                        "node {:?} in region {} is a full copy (replication: {}, the default): {why}, so it would hold the tables of rule {:?} ({}), which may only be in {}; move the node to an allowed region, or, if it is {}, set replication: {} (clusters[{i}].residency.rules[{k}])",
                        node.name,
                        node.region,
                        node.replication.as_str(),
                        rule.name,
                        rule.tables,
                        rule.allowed_regions.join(", "),
                        what.join(" or "),
                        values.join(" or "),
                    ),
                });
            }
        }
    }
    Ok(())
}

/// A replication mode in words, for the error above.
fn describe(mode: Replication) -> &'static str {
    match mode {
        Replication::Physical => "a full copy",
        Replication::Logical => "a logical subscriber",
        Replication::Filtered => "a replica with replicate_* filters",
        Replication::None => "an independent server",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(text: &str) -> Result<Config, String> {
        super::text(Path::new("t.yml"), text).map_err(|e| e.to_string())
    }

    const NODE: &str = "clusters:
  - name: orders
    rpo: 5m
    rto: 30m
    heartbeat: { format: FORMAT }
    nodes:
      - { name: a, region: r1, engine: ENGINE, dsn: \"DSN\" }
";

    fn node(engine: &str, dsn: &str, format: &str) -> String {
        NODE.replace("ENGINE", engine).replace("DSN", dsn).replace("FORMAT", format)
    }

    #[test]
    fn engines_check_their_nodes_with_the_field_path() {
        assert!(load(&node("postgres", "host=h user=u dbname=x", "rpo")).is_ok());
        assert!(load(&node("mysql", "mysql://u@h:3306/x", "pt-heartbeat")).is_ok());
        assert_eq!(
            load(&node("oracle", "x", "rpo")).unwrap_err(),
            "t.yml: clusters[0].nodes[0].engine: unknown engine \"oracle\": expected postgres or mysql (which covers MariaDB)"
        );
        assert_eq!(
            load(&node("postgres", "host=h user=u password=p", "rpo")).unwrap_err(),
            "t.yml: clusters[0].nodes[0].dsn: the connection string contains a password; move it to password_file or password_env"
        );
        assert_eq!(
            load(&node("postgres", "host=h user=u", "pt-heartbeat")).unwrap_err(),
            "t.yml: clusters[0].nodes[0].engine: heartbeat.format pt-heartbeat needs engine mysql, not postgres"
        );
    }
}
