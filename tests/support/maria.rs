//! A MariaDB lab set up for the exporter: heartbeat table, a least-privilege
//! account with exactly the grants `rpo-exporter schema mysql` prints, its
//! password in a file, and config snippets.

use super::{PASSWORD, REGIONS, ROLE};
use rpo_lab::{MariaLab, MariaLabSpec};
use std::path::PathBuf;
use tempfile::TempDir;

pub struct MyLab {
    pub db: MariaLab,
    pub dir: TempDir,
    pub password_file: PathBuf,
    /// (node name, region) in lab order.
    pub nodes: Vec<(String, String)>,
}

/// What `rpo-exporter schema mysql --server mariadb-10.11 --host 127.0.0.1` prints
/// (the lab creates accounts as `'user'@'127.0.0.1'`).
pub fn schema_sql() -> String {
    rpo_exporter::engine::schema_sql(
        "mysql",
        &"rpo.heartbeat".parse().unwrap(),
        ROLE,
        Some("mariadb-10.11"),
        Some("127.0.0.1"),
    )
    .unwrap()
}

impl MyLab {
    pub async fn start(spec: MariaLabSpec) -> MyLab {
        MyLab::start_with_sql(spec, &schema_sql()).await
    }

    /// A lab whose exporter account gets only `setup_sql` (run as root on every primary).
    pub async fn start_with_sql(spec: MariaLabSpec, setup_sql: &str) -> MyLab {
        let db = MariaLab::start(spec).await.expect("start the MariaDB lab (run scripts/install-deps.sh?)");
        db.create_user(ROLE, PASSWORD, setup_sql).await.expect("create the exporter's account");
        let dir = tempfile::tempdir().unwrap();
        let password_file = dir.path().join("password");
        std::fs::write(&password_file, format!("{PASSWORD}\n")).unwrap();
        let nodes = db
            .nodes()
            .iter()
            .enumerate()
            .map(|(i, n)| (n.name().to_owned(), REGIONS[i % REGIONS.len()].to_owned()))
            .collect();
        MyLab { db, dir, password_file, nodes }
    }

    pub fn region(&self, node: &str) -> &str {
        &self.nodes.iter().find(|(n, _)| n == node).expect("node in lab").1
    }

    pub fn node_yaml(&self, node: &str) -> String {
        self.node_yaml_at(node, self.db.node(node).port())
    }

    /// One node entry of the config, reached on `port` (a `Wan` proxy).
    pub fn node_yaml_at(&self, node: &str, port: u16) -> String {
        let own = self.db.node(node).port();
        let dsn = self.db.node(node).dsn(ROLE).replace(&format!(":{own}/"), &format!(":{port}/"));
        format!(
            "      - name: {node}\n        region: {}\n        engine: mysql\n        dsn: \"{dsn}\"\n        password_file: {}\n",
            self.region(node),
            self.password_file.display()
        )
    }

    /// One cluster named `cluster` holding every lab node; `heartbeat` is the
    /// heartbeat block's extra fields (e.g. `format: pt-heartbeat`).
    pub fn cluster_yaml(&self, cluster: &str, write_mode: &str, heartbeat: &str) -> String {
        let nodes: String = self.nodes.iter().map(|(n, _)| self.node_yaml(n)).collect();
        format!(
            "  - name: {cluster}\n    rpo: 30s\n    rto: 5m\n    write_mode: {write_mode}\n    heartbeat: {{ interval: 1s, create_table: false{heartbeat} }}\n    nodes:\n{nodes}"
        )
    }

    pub fn config(&self) -> String {
        format!("clusters:\n{}", self.cluster_yaml("maria", "single-writer", ""))
    }

    pub fn pair(&self, source: &str, replica: &str) -> Vec<(&'static str, String)> {
        self.pair_in("maria", source, replica)
    }

    pub fn pair_in(&self, cluster: &str, source: &str, replica: &str) -> Vec<(&'static str, String)> {
        vec![
            ("db_cluster", cluster.into()),
            ("source_node", source.into()),
            ("source_region", self.region(source).into()),
            ("replica_node", replica.into()),
            ("replica_region", self.region(replica).into()),
        ]
    }

    pub fn node_labels(&self, node: &str) -> Vec<(&'static str, String)> {
        vec![("db_cluster", "maria".into()), ("node", node.into()), ("node_region", self.region(node).into())]
    }

    /// `STOP SLAVE …` style statement for `replica`'s connection to `upstream`.
    pub fn on_connection(&self, replica: &str, upstream: &str, verb: &str) -> String {
        let name = self.db.node(replica).connection_name(upstream).expect("replicates from upstream");
        format!("{verb} '{name}'")
    }
}
