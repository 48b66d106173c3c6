//! Loading a config file: the config's own validation, then each node's engine
//! checks its endpoint (engine name, DSN, TLS material, heartbeat format).
//!
//! What startup, a reload and `check-config` all call, so the three refuse the
//! same files with the same [`ConfigError`] (file, field path, problem). The
//! config and the engines do not import each other; this is where they meet.
//! Keeps no state.

use crate::config::{Config, ConfigError};
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
        }
    }
    Ok(config)
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
