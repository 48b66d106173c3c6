//! The metric vocabulary every part speaks: a family's descriptor ([`MetricDesc`],
//! declared with `desc!`), the shared label sets, the core families ([`CORE`]), and
//! the buffer a scrape's samples are collected in ([`Samples`]).
//!
//! Each family is described once, here or in its part's own table
//! (`engine::*::METRICS`, `health::METRICS`, `dns::METRICS`); `exposition::all`
//! lists them all, and docs/metrics.md is checked against that list. Imports
//! nothing of the crate: every part may use it, and the encoder lives above all
//! of them (`exposition`). Label values come from configuration or are bounded
//! enums; none is taken raw from a database.

use std::sync::Arc;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    Gauge,
    /// Registered without `_total`; the encoder adds it.
    Counter,
}

/// One metric family: its name, what it means, the labels it carries, and the
/// collector switch that turns it off (`None`: always emitted).
#[derive(Debug)]
pub struct MetricDesc {
    pub name: &'static str,
    pub help: &'static str,
    pub kind: MetricKind,
    pub labels: &'static [&'static str],
    pub switch: Option<Switch>,
}

impl MetricDesc {
    /// The name as it appears on sample lines.
    pub fn sample_name(&self) -> String {
        match self.kind {
            MetricKind::Gauge => self.name.to_owned(),
            MetricKind::Counter => format!("{}_total", self.name),
        }
    }
}

/// Label sets shared by many families.
pub const CLUSTER: &[&str] = &["db_cluster"];
pub const NODE: &[&str] = &["db_cluster", "node", "node_region"];
pub const PAIR: &[&str] = &["db_cluster", "source_node", "source_region", "replica_node", "replica_region"];

/// Declares one metric family: `desc!(ID, "name", Gauge|Counter, labels, "help")`,
/// and `desc!(…, "help", Switch)` for a family that `--no-collector.NAME` turns off.
macro_rules! desc {
    ($id:ident, $name:literal, $kind:ident, $labels:expr, $help:literal) => {
        pub static $id: $crate::metrics::MetricDesc = $crate::metrics::MetricDesc {
            name: $name,
            help: $help,
            kind: $crate::metrics::MetricKind::$kind,
            labels: $labels,
            switch: None,
        };
    };
    ($id:ident, $name:literal, $kind:ident, $labels:expr, $help:literal, $switch:ident) => {
        pub static $id: $crate::metrics::MetricDesc = $crate::metrics::MetricDesc {
            name: $name,
            help: $help,
            kind: $crate::metrics::MetricKind::$kind,
            labels: $labels,
            switch: Some($crate::metrics::Switch::$switch),
        };
    };
}
pub(crate) use desc;

/// The optional collectors, switched as the Go exporters switch theirs:
/// `--collector.NAME` / `--no-collector.NAME`. Each names the families it emits
/// (`MetricDesc::switch`); what the shipped dashboards and alerts read is on by
/// default, so every one is, and a large fleet turns off what it can spare.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Switch {
    /// The engines' native replication signals; off, the native query is not
    /// sent either.
    Replication,
    /// MySQL/MariaDB GTID positions, a part of `Replication`'s signals.
    Gtid,
    /// Each collector's last success and duration per node.
    CollectorStats,
    /// The heartbeat row status state set (one series per status and pair).
    RowStatus,
}

impl Switch {
    pub const ALL: [Switch; 4] =
        [Switch::Replication, Switch::Gtid, Switch::CollectorStats, Switch::RowStatus];

    /// The name in `--collector.NAME`.
    pub fn name(self) -> &'static str {
        match self {
            Switch::Replication => "replication",
            Switch::Gtid => "gtid",
            Switch::CollectorStats => "collector_stats",
            Switch::RowStatus => "row_status",
        }
    }

    /// Its environment variable, `RPO_EXPORTER_COLLECTOR_` and the name in capitals.
    pub fn env(self) -> &'static str {
        match self {
            Switch::Replication => "RPO_EXPORTER_COLLECTOR_REPLICATION",
            Switch::Gtid => "RPO_EXPORTER_COLLECTOR_GTID",
            Switch::CollectorStats => "RPO_EXPORTER_COLLECTOR_COLLECTOR_STATS",
            Switch::RowStatus => "RPO_EXPORTER_COLLECTOR_ROW_STATUS",
        }
    }

    /// What it emits, and what turning it off loses.
    pub fn help(self) -> &'static str {
        match self {
            Switch::Replication => "The engines' native replication signals (rpo_pg_*, rpo_mysql_*); off, their query is not sent and collector=\"replication\" is absent (the RPOReplicationStreamDown and RPOReplicationReplayPaused alerts and the native panels go blank).",
            Switch::Gtid => "MySQL/MariaDB GTID positions (rpo_mysql_replica_gtid_position, rpo_mysql_gtid_binlog_position; needs replication); off, the GTID panel goes blank.",
            Switch::CollectorStats => "Each collector's last success and duration per node (rpo_collector_success, rpo_collector_duration_seconds); off, two cluster-detail panels go blank (errors and ages stay).",
            Switch::RowStatus => "The heartbeat row status state set (rpo_heartbeat_row_status, one series per status and pair); off, the RPOClockSkew and RPOHeartbeatRowInvalid alerts cannot fire.",
        }
    }

    fn bit(self) -> u8 {
        1 << self as u8
    }
}

/// Which optional collectors are on: a plain value the command line builds and
/// the worker and the scrape read. Every one is on by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Switches(u8);

impl Default for Switches {
    fn default() -> Self {
        Switch::ALL.iter().fold(Switches::none(), |s, w| s.with(*w, true))
    }
}

impl Switches {
    /// Every optional collector off (`--collector.disable-defaults`).
    pub fn none() -> Switches {
        Switches(0)
    }

    pub fn with(self, switch: Switch, on: bool) -> Switches {
        Switches(if on { self.0 | switch.bit() } else { self.0 & !switch.bit() })
    }

    /// Whether `switch` is on; GTID positions also need the native query.
    pub fn enabled(self, switch: Switch) -> bool {
        let own = self.0 & switch.bit() != 0;
        match switch {
            Switch::Gtid => own && self.enabled(Switch::Replication),
            _ => own,
        }
    }

    /// Whether the family `desc` is emitted.
    pub fn emits(self, desc: &MetricDesc) -> bool {
        desc.switch.is_none_or(|s| self.enabled(s))
    }
}

desc!(TASK_RESTARTS, "rpo_exporter_task_restarts", Counter, &["task"], "Times a background loop (task: worker, dns, health, residency) crashed and was started again. Any increase is a bug worth reporting; the loop's readings resume after the restart.");
desc!(RELOAD_OK, "rpo_exporter_config_last_reload_successful", Gauge, &[], "1 if the last configuration reload (SIGHUP, POST /-/reload or a change of the config file) succeeded, 0 if it failed and the previous configuration kept running.");
desc!(
    RELOAD_AT,
    "rpo_exporter_config_last_reload_success_timestamp_seconds",
    Gauge,
    &[],
    "When the configuration was last loaded successfully (start or reload)."
);
desc!(WEB_RELOAD_OK, "rpo_exporter_web_config_last_reload_successful", Gauge, &[], "Only with --web.config.file: 1 if the web config (or a certificate, key or CA it names) last loaded successfully, 0 if its last change was refused and the previous web config is still served.");
desc!(
    WEB_RELOAD_AT,
    "rpo_exporter_web_config_last_reload_success_timestamp_seconds",
    Gauge,
    &[],
    "Only with --web.config.file: when the web config was last loaded successfully (start or change)."
);
desc!(
    BUILD_INFO,
    "rpo_exporter_build_info",
    Gauge,
    &["version", "revision", "rustc"],
    "Always 1; labels carry the exporter's version, the git revision it was built from (unknown when built without git) and the rustc version that built it."
);

/// The values of [`BUILD_INFO`]'s labels, fixed at compile time by build.rs.
pub const BUILD_LABELS: [&str; 3] =
    [env!("CARGO_PKG_VERSION"), env!("RPO_BUILD_REVISION"), env!("RPO_BUILD_RUSTC")];
desc!(
    CLUSTER_INFO,
    "rpo_cluster_info",
    Gauge,
    &["db_cluster", "write_mode"],
    "Always 1; write_mode is single-writer (more than one writable node is split brain) or multi-writer."
);
desc!(
    OBJECTIVE,
    "rpo_objective_seconds",
    Gauge,
    CLUSTER,
    "The cluster's recovery point objective (rpo): the most data, in seconds of writes, a failover may lose."
);
desc!(
    RTO_OBJECTIVE,
    "rpo_rto_objective_seconds",
    Gauge,
    CLUSTER,
    "The cluster's recovery time objective (rto)."
);
desc!(
    HEARTBEAT_INTERVAL,
    "rpo_heartbeat_interval_seconds",
    Gauge,
    CLUSTER,
    "The configured heartbeat interval."
);
desc!(WRITABLE_NODES, "rpo_cluster_writable_nodes", Gauge, CLUSTER, "Nodes of the cluster that are up and accept writes; above 1 in a single-writer cluster is split brain, 0 means nobody can write.");
desc!(ROLE_CHANGES, "rpo_node_role_changes", Counter, NODE, "Times the node's discovered role changed (writable ↔ read-only): promotions, demotions, read_only toggles.");
desc!(
    ROLE_CHANGED,
    "rpo_node_role_last_change_timestamp_seconds",
    Gauge,
    NODE,
    "When the node's role last changed (exporter host clock); absent until it first changes."
);
desc!(NODE_UP, "rpo_node_up", Gauge, NODE, "1 if the node answered its last role probe, else 0.");
desc!(SESSIONS_OPENED, "rpo_node_sessions_opened", Counter, NODE, "Database sessions the exporter opened to the node. One in a steady state; steady growth is reconnect churn (a flapping link, a server closing sessions, or repeated timeouts).");
desc!(
    NODE_WRITABLE,
    "rpo_node_writable",
    Gauge,
    NODE,
    "1 if the node accepts writes (a primary), 0 if read-only; absent while the node is down."
);
desc!(
    CLOCK_OFFSET,
    "rpo_node_clock_offset_seconds",
    Gauge,
    NODE,
    "The node's database clock minus the exporter host's clock, estimated from the midpoint of a round trip."
);
desc!(
    CLOCK_RTT,
    "rpo_node_round_trip_seconds",
    Gauge,
    NODE,
    "Duration of the last role probe round trip; half of it bounds the clock offset's error."
);
desc!(
    COLLECTOR_SUCCESS,
    "rpo_collector_success",
    Gauge,
    &["db_cluster", "node", "node_region", "collector"],
    "1 if the collector's last run on the node succeeded, else 0.",
    CollectorStats
);
desc!(
    COLLECTOR_DURATION,
    "rpo_collector_duration_seconds",
    Gauge,
    &["db_cluster", "node", "node_region", "collector"],
    "Duration of the collector's last run on the node: from sending its request (with the rest of its tick, in one round trip) to its answer.",
    CollectorStats
);
desc!(
    MEASUREMENT_AGE,
    "rpo_measurement_age_seconds",
    Gauge,
    &["db_cluster", "node", "node_region", "collector"],
    "Seconds since the collector last succeeded on the node, at scrape time; absent until its first success."
);
desc!(COLLECTOR_ERRORS, "rpo_collector_errors", Counter, &["db_cluster", "node", "node_region", "collector", "reason"], "Failed collector runs by bounded reason (connect, auth, tls, timeout, permission, missing_table, read_only, query).");
desc!(HB_WRITES, "rpo_heartbeat_writes", Counter, NODE, "Heartbeats this exporter wrote on the node.");
desc!(HB_WRITER, "rpo_heartbeat_writer", Gauge, NODE, "1 if this exporter writes the node's heartbeats, 0 if another exporter holds the node's write lease and writes them (two exporters watching one cluster: one writes, the other reads). Absent until the exporter first tries to write on the node.");
desc!(
    HB_WRITTEN,
    "rpo_heartbeat_written_timestamp_seconds",
    Gauge,
    NODE,
    "Database-clock time of the last heartbeat this exporter wrote on the node."
);
desc!(
    HB_SEQUENCE,
    "rpo_heartbeat_sequence",
    Gauge,
    NODE,
    "Sequence number of the last heartbeat this exporter wrote on the node."
);
desc!(LAG, "rpo_replication_lag_seconds", Gauge, PAIR, "Age of the oldest heartbeat written on the source that is not yet visible on the replica (0 when the replica has every heartbeat written so far). Absent while the replica cannot be read or its row is invalid.");
desc!(EXPOSURE, "rpo_data_loss_exposure_seconds", Gauge, PAIR, "Age of the newest source heartbeat visible on the replica, aged to the scrape: the writes a failover to this replica would lose now, an upper bound. Absent while the replica cannot be read or its row is invalid.");
desc!(
    SEEN,
    "rpo_heartbeat_seen_timestamp_seconds",
    Gauge,
    PAIR,
    "Source database-clock time of the newest source heartbeat visible on the replica."
);
desc!(ROW_STATUS, "rpo_heartbeat_row_status", Gauge, &["db_cluster", "source_node", "source_region", "replica_node", "replica_region", "status"], "1 for the current status of the source's heartbeat row as read on the replica (ok, null_timestamp, invalid_timestamp, invalid_sequence, future_timestamp, identity_mismatch, missing), 0 for the others.", RowStatus);
desc!(EXPOSURE_SOURCE, "rpo_exposure_source_info", Gauge, &["db_cluster", "source_node", "source_region", "replica_node", "replica_region", "source"], "Always 1, for the bound that gave the pair's data-loss exposure: source heartbeat (the newest source heartbeat visible on the replica) or commit_timestamp (on a PostgreSQL physical replica of the sole writer, the last source transaction it replayed, pg_last_xact_replay_timestamp(); tighter while the source has write traffic). Absent with the exposure.", RowStatus);
desc!(LAG_SOURCE, "rpo_lag_source_info", Gauge, &["db_cluster", "source_node", "source_region", "replica_node", "replica_region", "source"], "Always 1, for the bound that gave the pair's replication lag: source heartbeat (the oldest source heartbeat not visible on the replica), commit_timestamp (PostgreSQL with track_commit_timestamp: a source commit sampled between heartbeats that the replica has not replayed) or gtid_position (MariaDB: a source GTID position sampled between heartbeats beyond the replica's executed one); the sampled bounds are within one sample period of the truth while the source has write traffic. Absent with the lag.", RowStatus);
desc!(SEQ_REGRESSIONS, "rpo_heartbeat_sequence_regressions", Counter, PAIR, "Times the source's heartbeat sequence went backwards as read on the replica (table recreated, or a foreign writer).");
desc!(UNKNOWN_ROWS, "rpo_heartbeat_unknown_rows", Gauge, &["db_cluster", "replica_node", "replica_region", "reason"], "Heartbeat rows on the replica that are no pair's source: reason unlisted_source (a writer not in the config) or malformed (a name unfit to be a label, or too many sources).");

// The exporter's own process, as client_golang's process collector names and
// describes it (read from /proc at scrape time by `process`): the same series as
// every Go exporter's, so dashboards and alerts made for those work unchanged.
desc!(PROCESS_CPU, "process_cpu_seconds", Counter, &[], "Total user and system CPU time spent in seconds.");
desc!(PROCESS_RSS, "process_resident_memory_bytes", Gauge, &[], "Resident memory size in bytes.");
desc!(PROCESS_VMS, "process_virtual_memory_bytes", Gauge, &[], "Virtual memory size in bytes.");
desc!(PROCESS_OPEN_FDS, "process_open_fds", Gauge, &[], "Number of open file descriptors.");
desc!(PROCESS_MAX_FDS, "process_max_fds", Gauge, &[], "Maximum number of open file descriptors.");
desc!(
    PROCESS_START,
    "process_start_time_seconds",
    Gauge,
    &[],
    "Start time of the process since unix epoch in seconds."
);

/// The `process_*` families (the only ones without the `rpo_` prefix), in
/// exposition order, after every other family.
pub static PROCESS: &[&MetricDesc] =
    &[&PROCESS_CPU, &PROCESS_OPEN_FDS, &PROCESS_MAX_FDS, &PROCESS_VMS, &PROCESS_RSS, &PROCESS_START];

/// Families every build emits, in exposition order.
pub static CORE: &[&MetricDesc] = &[
    &BUILD_INFO,
    &RELOAD_OK,
    &RELOAD_AT,
    &TASK_RESTARTS,
    &WEB_RELOAD_OK,
    &WEB_RELOAD_AT,
    &CLUSTER_INFO,
    &OBJECTIVE,
    &RTO_OBJECTIVE,
    &HEARTBEAT_INTERVAL,
    &WRITABLE_NODES,
    &NODE_UP,
    &SESSIONS_OPENED,
    &ROLE_CHANGES,
    &ROLE_CHANGED,
    &NODE_WRITABLE,
    &CLOCK_OFFSET,
    &CLOCK_RTT,
    &COLLECTOR_SUCCESS,
    &COLLECTOR_DURATION,
    &MEASUREMENT_AGE,
    &COLLECTOR_ERRORS,
    &HB_WRITES,
    &HB_WRITER,
    &HB_WRITTEN,
    &HB_SEQUENCE,
    &LAG,
    &EXPOSURE,
    &SEEN,
    &ROW_STATUS,
    &EXPOSURE_SOURCE,
    &LAG_SOURCE,
    &SEQ_REGRESSIONS,
    &UNKNOWN_ROWS,
];

/// One owned sample, for results a worker keeps between scrapes (an engine's
/// native signals): the label values in the order of its family's `labels`.
#[derive(Debug, Clone)]
pub struct Sample {
    pub desc: &'static MetricDesc,
    pub values: Vec<String>,
    pub value: f64,
}

/// The samples of one family for one scrape, already encoded: one line per
/// sample, `name{label="value",…} value`, as both text formats write it (a
/// counter's sample name ends in `_total`; label values escaped; values as Go's
/// parser reads them). Encoding at push time lets a part that keeps a series'
/// labels encoded ([`label_block`]) hand them over with one copy.
#[derive(Debug, Clone)]
pub struct Family {
    desc: &'static MetricDesc,
    lines: String,
}

impl Family {
    /// The encoded sample lines, each ending in a newline.
    pub fn lines(&self) -> &str {
        &self.lines
    }

    /// The (name, value) label pairs and the value of each sample, read back from
    /// the lines (for tests; panics on a line whose labels are not the family's).
    #[cfg(test)]
    pub fn samples(&self) -> impl Iterator<Item = (impl Iterator<Item = (&'static str, String)>, f64)> + '_ {
        self.lines.lines().map(|line| {
            let (head, value) = line.rsplit_once(' ').expect("a value");
            let mut rest = head.split_once('{').map_or("", |(_, r)| r);
            let mut labels = Vec::new();
            for name in self.desc.labels {
                rest = rest.trim_start_matches(',').strip_prefix(*name).expect("label name");
                rest = rest.strip_prefix("=\"").expect("opening quote");
                let (mut v, mut chars) = (String::new(), rest.char_indices());
                let mut end = rest.len();
                while let Some((i, c)) = chars.next() {
                    match c {
                        '\\' => match chars.next() {
                            Some((_, 'n')) => v.push('\n'),
                            Some((_, other)) => v.push(other),
                            None => break,
                        },
                        '"' => {
                            end = i + 1;
                            break;
                        }
                        c => v.push(c),
                    }
                }
                rest = &rest[end..];
                labels.push((*name, v));
            }
            assert!(
                rest == "}" || self.desc.labels.is_empty(),
                "{line}: labels other than {:?}",
                self.desc.labels
            );
            let value = match value {
                "NaN" => f64::NAN,
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v.parse().expect("a number"),
            };
            (labels.into_iter(), value)
        })
    }
}

/// Collects the samples of one scrape, grouped by family.
#[derive(Debug, Default, Clone)]
pub struct Samples {
    /// In order of first push; a scrape has a few dozen families, so finding
    /// one by address is a short scan.
    families: Vec<Family>,
    /// Parts encoded earlier and kept by their owner (a node's unchanged
    /// samples), shown by reference: the encoder copies their lines once, into
    /// the scrape's body ([`Samples::for_each_family`]).
    shared: Vec<Arc<Samples>>,
}

impl Samples {
    /// Adds a sample; `labels` are the values of `desc.labels`, in order.
    pub fn push(&mut self, desc: &'static MetricDesc, labels: &[&str], value: f64) {
        self.push_values(desc, labels.iter().copied(), value);
    }

    /// Adds a sample whose label set is already encoded: `block` is what
    /// [`label_block`] made of the values of `desc.labels`.
    pub fn push_block(&mut self, desc: &'static MetricDesc, block: &str, value: f64) {
        let family = self.family(desc);
        push_name(&mut family.lines, desc);
        family.lines.push_str(block);
        push_line_end(&mut family.lines, value);
    }

    /// Adds every sample of `other` (lines encoded earlier), family by family,
    /// after the ones already here.
    pub fn append(&mut self, other: &Samples) {
        other.for_each_family(|desc, lines| self.family(desc).lines.push_str(lines));
    }

    /// Adds every sample of `part` by reference, without copying its lines:
    /// [`Samples::for_each_family`] shows them after this collection's own. Kept
    /// until [`Samples::clear`].
    pub fn append_shared(&mut self, part: Arc<Samples>) {
        self.shared.push(part);
    }

    /// Calls `f` with each family's encoded lines: this collection's own, then
    /// each shared part's, in order; a family may come several times (once per
    /// part), never with no lines.
    pub fn for_each_family<'a>(&'a self, mut f: impl FnMut(&'static MetricDesc, &'a str)) {
        self.for_each_family_dyn(&mut f);
    }

    fn for_each_family_dyn<'a>(&'a self, f: &mut dyn FnMut(&'static MetricDesc, &'a str)) {
        for family in self.families.iter().filter(|family| !family.lines.is_empty()) {
            f(family.desc, &family.lines);
        }
        for part in &self.shared {
            part.for_each_family_dyn(f);
        }
    }

    /// Copies the shared parts' lines in, family by family, so that
    /// [`Samples::get`] and [`Samples::take`] see every sample.
    pub fn flatten(&mut self) {
        for part in std::mem::take(&mut self.shared) {
            self.append(&part);
        }
    }

    /// Adds samples a worker kept.
    pub fn extend(&mut self, samples: &[Sample]) {
        for s in samples {
            self.push_values(s.desc, s.values.iter().map(String::as_str), s.value);
        }
    }

    fn push_values<'a>(
        &mut self,
        desc: &'static MetricDesc,
        labels: impl Iterator<Item = &'a str>,
        value: f64,
    ) {
        let family = self.family(desc);
        push_name(&mut family.lines, desc);
        // Exactly one value per label name, whatever the caller passed, so one
        // wrong call can never mislabel a sample.
        let mut values = labels.take(desc.labels.len());
        let mut n = 0;
        for (i, name) in desc.labels.iter().enumerate() {
            let value = values.next();
            n += usize::from(value.is_some());
            push_label(&mut family.lines, i == 0, name, value.unwrap_or(""));
        }
        debug_assert_eq!(n, desc.labels.len(), "label values of {}", desc.name);
        if !desc.labels.is_empty() {
            family.lines.push('}');
        }
        push_line_end(&mut family.lines, value);
    }

    fn family(&mut self, desc: &'static MetricDesc) -> &mut Family {
        let i = match self.families.iter().position(|f| std::ptr::eq(f.desc, desc)) {
            Some(i) => i,
            None => {
                self.families.push(Family { desc, lines: String::new() });
                self.families.len() - 1
            }
        };
        &mut self.families[i]
    }

    /// The family of `desc`, if anything was pushed to it (here: the shared
    /// parts' lines count only after [`Samples::flatten`]).
    pub fn get(&self, desc: &'static MetricDesc) -> Option<&Family> {
        self.families.iter().find(|f| std::ptr::eq(f.desc, desc))
    }

    /// Empties every family but keeps its buffer, so the next scrape collected
    /// here writes into memory of the right size (no growing, no page faults),
    /// and lets the shared parts go.
    pub fn clear(&mut self) {
        for f in &mut self.families {
            f.lines.clear();
        }
        self.shared.clear();
    }

    /// Removes the family of `desc` (as [`Samples::get`] sees it).
    pub fn take(&mut self, desc: &'static MetricDesc) -> Option<Family> {
        let i = self.families.iter().position(|f| std::ptr::eq(f.desc, desc))?;
        Some(self.families.swap_remove(i))
    }
}

/// A label set encoded once, to be reused by [`Samples::push_block`]:
/// `{name="value",…}` for `names` and `values` in order (empty without labels).
pub fn label_block(names: &[&str], values: &[&str]) -> String {
    let mut out = String::new();
    for (i, (name, value)) in names.iter().zip(values).enumerate() {
        push_label(&mut out, i == 0, name, value);
    }
    if !names.is_empty() {
        out.push('}');
    }
    out
}

/// `{name="value"` (the first label) or `,name="value"`.
fn push_label(out: &mut String, first: bool, name: &str, value: &str) {
    out.push(if first { '{' } else { ',' });
    out.push_str(name);
    out.push_str("=\"");
    escape(out, value, true);
    out.push('"');
}

/// The sample name: a counter's ends in `_total`.
fn push_name(out: &mut String, desc: &MetricDesc) {
    out.push_str(desc.name);
    if desc.kind == MetricKind::Counter {
        out.push_str("_total");
    }
}

fn push_line_end(out: &mut String, value: f64) {
    out.push(' ');
    push_value(out, value);
    out.push('\n');
}

/// A HELP text or (`quotes`) a label value, escaped as the text format requires
/// (OpenMetrics escapes quotes in both).
pub fn escape(out: &mut String, text: &str, quotes: bool) {
    if !text.bytes().any(|b| matches!(b, b'\\' | b'\n' | b'"')) {
        out.push_str(text);
        return;
    }
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quotes => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

/// A sample value as Go's parser reads it: the shortest decimal that reads back
/// the same, `NaN`, `+Inf` or `-Inf`.
pub fn push_value(out: &mut String, value: f64) {
    use std::fmt::Write;
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else if value.fract() == 0.0 && value.abs() < 1e15 && !(value == 0.0 && value.is_sign_negative()) {
        // Most values are whole (0/1 flags, counters, sequence numbers): the
        // integer's digits are the same and several times cheaper to find.
        let _ = write!(out, "{}", value as i64);
    } else {
        // Writing to a String cannot fail.
        let _ = write!(out, "{value}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lines(samples: &mut Samples, desc: &'static MetricDesc) -> Vec<String> {
        let family = samples.take(desc).expect("family present");
        family
            .samples()
            .map(|(labels, v)| {
                let l: Vec<String> = labels.map(|(k, v)| format!("{k}={v}")).collect();
                format!("{} {v}", l.join(","))
            })
            .collect()
    }

    #[test]
    fn interleaved_pushes_keep_each_samples_labels() {
        let mut s = Samples::default();
        s.push(&NODE_UP, &["c", "n1", "r1"], 1.0);
        s.push(&OBJECTIVE, &["c"], 300.0);
        s.push(&NODE_UP, &["c", "", "r2"], 0.0);
        s.extend(&[Sample {
            desc: &NODE_UP,
            values: vec!["d".into(), "n3".into(), "r3".into()],
            value: 1.0,
        }]);
        assert_eq!(
            lines(&mut s, &NODE_UP),
            [
                "db_cluster=c,node=n1,node_region=r1 1",
                "db_cluster=c,node=,node_region=r2 0",
                "db_cluster=d,node=n3,node_region=r3 1"
            ]
        );
        assert_eq!(lines(&mut s, &OBJECTIVE), ["db_cluster=c 300"]);
        assert!(s.take(&NODE_UP).is_none());
    }

    #[test]
    #[cfg(not(debug_assertions))]
    fn a_wrong_label_count_cannot_shift_later_samples() {
        let mut s = Samples::default();
        s.push(&OBJECTIVE, &["a", "extra"], 1.0);
        s.push(&OBJECTIVE, &[], 2.0);
        s.push(&OBJECTIVE, &["c"], 3.0);
        assert_eq!(lines(&mut s, &OBJECTIVE), ["db_cluster=a 1", "db_cluster= 2", "db_cluster=c 3"]);
    }
}
