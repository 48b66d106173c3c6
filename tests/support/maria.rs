//! A MariaDB lab set up for the exporter: heartbeat table, a least-privilege
//! account with exactly the grants `rpo-exporter schema mysql` prints, its
//! password in a file, and config snippets.

use super::{node_entry, node_labels_in, node_regions, pair_labels, password_dir, region_of, PASSWORD, ROLE};
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
        let (dir, password_file) = password_dir();
        let nodes = node_regions(db.nodes().iter().map(|n| n.name()));
        MyLab { db, dir, password_file, nodes }
    }

    pub fn region(&self, node: &str) -> &str {
        region_of(&self.nodes, node)
    }

    pub fn node_yaml(&self, node: &str) -> String {
        self.node_yaml_at(node, self.db.node(node).port())
    }

    /// One node entry of the config, reached on `port` (a `Wan` proxy).
    pub fn node_yaml_at(&self, node: &str, port: u16) -> String {
        let own = self.db.node(node).port();
        let dsn = self.db.node(node).dsn(ROLE).replace(&format!(":{own}/"), &format!(":{port}/"));
        node_entry(node, self.region(node), "mysql", &dsn, &self.password_file)
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
        pair_labels(&self.nodes, cluster, source, replica)
    }

    pub fn node_labels(&self, node: &str) -> Vec<(&'static str, String)> {
        node_labels_in(&self.nodes, "maria", node)
    }

    /// `STOP SLAVE …` style statement for `replica`'s connection to `upstream`.
    pub fn on_connection(&self, replica: &str, upstream: &str, verb: &str) -> String {
        let name = self.db.node(replica).connection_name(upstream).expect("replicates from upstream");
        format!("{verb} '{name}'")
    }
}
