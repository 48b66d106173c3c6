//! rpo-exporter: how much data each region would lose if a database primary failed
//! now, measured with heartbeats and exported for Prometheus.
//!
//! See ARCHITECTURE.md for the map. In short: [`load`] reads the file through
//! [`config`] and has each node's [`engine`] check its [`endpoint`], [`exporter`]
//! starts one [`worker`] per node, workers talk to databases only through
//! [`engine`] and store results in [`store`] (the node store, held by the live
//! state's root, [`state`]), and [`server`] renders them
//! through [`exposition`] on each scrape; [`metrics`] is the vocabulary of metric
//! families every part declares its own in. [`heartbeat`] holds the lag arithmetic, [`pairs`]
//! the policy of which (source → replica) pairs a read makes. [`dns`] and [`health`] are
//! probe subsystems: each implements [`probe::Subsystem`] and has one line in
//! [`state::PROBES`].

pub mod cli;
pub mod config;
pub mod dns;
pub mod drill;
pub mod endpoint;
pub mod engine;
pub mod exporter;
pub mod exposition;
pub mod health;
pub mod heartbeat;
pub mod load;
pub mod metrics;
pub mod pairs;
pub mod probe;
pub mod process;
pub mod residency;
pub mod server;
pub mod state;
pub mod store;
pub mod supervise;
pub mod webconfig;
pub mod worker;

/// An error and its causes on one line (`outer: inner: root`), for logs: drivers
/// wrap the useful part (refused, certificate unknown) several layers down.
pub(crate) fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
