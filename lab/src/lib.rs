//! `rpo-lab`: real local servers for rpo-exporter's tests and demo.
//!
//! - [`free_port`] — free loopback ports, unique across parallel tests and processes.
//! - [`PgLab`] — a PostgreSQL primary with streaming (and cascading) replicas, with the
//!   failure injections tests need: stop, kill, freeze/thaw, promote.
//! - [`MariaLab`] — MariaDB primaries and GTID replicas (chained, multi-source), with the
//!   same failure injections. Both are a generic [`Lab`] of [`Node`]s; what differs per
//!   engine is an [`Engine`] ([`Postgres`], [`Mariadb`]).
//! - [`PatroniLab`] — a PostgreSQL cluster under a real HA manager: Patroni nodes (one per
//!   region) with etcd as their DCS, every link (replication, DCS, clients, REST) through a
//!   [`Proxy`]; kill a region, partition a node, switch over, read Patroni's own times.
//! - [`Prometheus`] — a Prometheus server scraping given targets, with query helpers.
//! - [`Alertmanager`] — an Alertmanager with a given config, for Prometheus to notify.
//! - [`Knot`] and [`Unbound`] — an authoritative DNS server serving a [`Zone`] the test
//!   rewrites, and caching resolvers forwarding to it.
//! - [`Proxy`] — a TCP proxy simulating WAN distance and network faults (the machines have
//!   no netem): one-way delay, black hole, reset of every open connection.
//! - [`Watchdog`] — cleans up (e.g. kills a spawned exporter) if the process dies.
//!
//! Everything listens on 127.0.0.1 only and lives in temporary directories. Dropping a lab
//! or a Prometheus stops its servers (also when a test panics); if the process dies
//! without unwinding, a watchdog process stops them and removes the directories.
//! Server programs come from Debian packages: `scripts/install-deps.sh` installs them, and
//! [`find_program`] finds them (and names the package of one that is missing).

mod alertmanager;
mod cluster;
mod dns;
mod httpd;
mod mariadb;
mod patroni;
mod ports;
mod postgres;
mod process;
mod programs;
mod prometheus;
mod proxy;
mod server;

pub use alertmanager::{alertmanager_bin, Alertmanager};
pub use cluster::Lab;
pub use dns::{free_dns_port, Knot, Unbound, Zone};
pub use mariadb::{MariaLab, MariaLabSpec, MariaNode, Mariadb};
pub use patroni::{PatroniLab, PatroniNode, PatroniOptions};
pub use ports::free_port;
pub use postgres::{pg_bindir, PgLab, PgLabSpec, PgNode, Postgres};
pub use process::Watchdog;
pub use programs::find_program;
pub use prometheus::{prometheus_bin, Prometheus, PrometheusOptions};
pub use proxy::Proxy;
pub use server::{Engine, Node};
