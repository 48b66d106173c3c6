//! The config file as written: serde structs that mirror the YAML one to one.
//!
//! Nothing here is checked beyond what serde checks (types, unknown fields); the
//! parent module turns a [`RawConfig`] into a validated [`super::Config`]. Durations
//! stay strings here so that a bad one is reported with its field path by the
//! validator, in words an operator recognises.

use serde::Deserialize;
use std::path::PathBuf;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawConfig {
    pub clusters: Vec<RawCluster>,
    #[serde(default)]
    pub health: Option<super::health::RawHealth>,
    #[serde(default)]
    pub dns: Option<super::dns::RawDns>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawCluster {
    pub name: String,
    pub rpo: String,
    pub rto: String,
    #[serde(default)]
    pub write_mode: Option<String>,
    #[serde(default)]
    pub heartbeat: Option<RawHeartbeat>,
    pub nodes: Vec<RawNode>,
    #[serde(default)]
    pub residency: Option<super::residency::RawResidency>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawHeartbeat {
    #[serde(default)]
    pub interval: Option<String>,
    #[serde(default)]
    pub timeout: Option<String>,
    #[serde(default)]
    pub connect_timeout: Option<String>,
    #[serde(default)]
    pub position_interval: Option<String>,
    #[serde(default)]
    pub table: Option<String>,
    #[serde(default)]
    pub create_table: Option<bool>,
    #[serde(default)]
    pub sources: Option<String>,
    #[serde(default)]
    pub format: Option<String>,
    #[serde(default)]
    pub utc: Option<bool>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawNode {
    pub name: String,
    pub region: String,
    #[serde(default)]
    pub zone: Option<String>,
    pub engine: String,
    pub dsn: String,
    #[serde(default)]
    pub password_file: Option<PathBuf>,
    #[serde(default)]
    pub password_env: Option<String>,
    #[serde(default)]
    pub tls: Option<RawTls>,
    #[serde(default)]
    pub replication: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RawTls {
    pub mode: String,
    #[serde(default)]
    pub ca_file: Option<PathBuf>,
    #[serde(default)]
    pub cert_file: Option<PathBuf>,
    #[serde(default)]
    pub key_file: Option<PathBuf>,
}
