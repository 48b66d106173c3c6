//! Which (source → replica) pairs a replica has after one read of its heartbeat
//! rows, and what each says: the policy half of a worker's read, kept pure.
//!
//! [`decide`] takes plain data (the rows read, a snapshot of every node of the
//! cluster, the replica's previous pairs, the cluster's settings, the replica's
//! clock) and returns the new pairs with what is worth counting or logging. It
//! keeps no state and takes no lock: the worker copies each node's state out under
//! that node's lock, one at a time, calls it, logs its events and stores its pairs.
//! The lag arithmetic of each pair is [`crate::heartbeat`]'s.
//!
//! The rules, in the order they apply to a row:
//! - a row is named by its `node` column, or by the identity a listed node is
//!   known under (pt-heartbeat's server_id), else `server-<identity>`; the
//!   replica's own row is no pair;
//! - a row of a node the cluster does not list is counted as unlisted with
//!   `sources: listed`; with `sources: any` it is a pair when its name and region
//!   are label-safe and fewer than [`MAX_UNLISTED_SOURCES`] came before it, else
//!   it is counted as malformed;
//! - a row of a listed source that writes no more (reachable and read-only, or in
//!   a single-writer cluster any source while another node is the writer) is
//!   retired: no pair, but its exposure is the earliest end of the replica's data
//!   (the earlier-writers floor of a `missing` pair);
//! - a row whose identity differs from the one the replica expects reads
//!   `identity_mismatch`; a sequence below the previous one counts a regression;
//! - a live writer whose heartbeats this process writes, of which the replica
//!   shows no row at all, gets a `missing` pair ([`evaluate_missing`]).

use crate::config::{is_label_safe, Sources, WriteMode};
use crate::engine::HeartbeatRow;
use crate::heartbeat::{
    evaluate, evaluate_missing, ClockSample, PairInput, Reading, RowStatus, WriteHistory,
};
use std::collections::BTreeMap;

/// Most sources one replica may report that the config does not list.
pub const MAX_UNLISTED_SOURCES: usize = 32;
/// How long a clock sample of a source may serve to map its timestamps, seconds.
pub const CLOCK_SAMPLE_TTL: f64 = 600.0;

/// What one replica knows of one source.
#[derive(Debug, Clone, PartialEq)]
pub struct PairData {
    pub source_region: String,
    pub status: RowStatus,
    /// Lag and exposure at the read, when the row allowed a reading.
    pub reading: Option<Reading>,
    /// When the read happened (monotonic): exposure ages from here until a scrape.
    pub read_mono: f64,
    pub seen_written_us: Option<i64>,
    pub last_seq: Option<i64>,
    pub regressions: u64,
}

/// What the worker knows of one listed node, copied out of its state.
#[derive(Debug, Clone, Default)]
pub struct NodeView {
    pub name: String,
    pub region: String,
    /// Answered its last probe.
    pub up: bool,
    /// Accepted writes at its last answered probe.
    pub writable: Option<bool>,
    /// Identities under which its heartbeat rows may appear.
    pub aliases: Vec<String>,
    /// This process's writes on it.
    pub history: WriteHistory,
    /// Its clock at its last probe.
    pub clock: Option<ClockSample>,
}

impl NodeView {
    /// Up and accepting writes at its last probe.
    fn is_writer(&self) -> bool {
        self.up && self.writable == Some(true)
    }
}

/// Everything [`decide`] judges a read by.
#[derive(Debug, Clone)]
pub struct Input<'a> {
    /// The replica's name (its own row is no pair).
    pub replica: &'a str,
    /// The rows the replica showed.
    pub rows: &'a [HeartbeatRow],
    /// Every node of the cluster, the replica too, in config order.
    pub nodes: &'a [NodeView],
    /// The replica's pairs after its previous read.
    pub previous: &'a BTreeMap<String, PairData>,
    /// The identity the replica's rows of its sources should carry, if known.
    pub expected_identity: Option<&'a str>,
    pub write_mode: WriteMode,
    pub sources: Sources,
    /// Whether this process writes the cluster's heartbeats (so knows its writers' histories).
    pub writes: bool,
    /// The heartbeat interval, seconds.
    pub interval: f64,
    /// The replica's clock during the read; its `mono` is the read's instant.
    pub replica_clock: ClockSample,
}

/// Something the worker logs, in the order it happened.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    /// A source's sequence went backwards since the previous read.
    SequenceRegressed { source: String, from: i64, to: i64 },
    /// A source's row reads a status other than ok that it did not read before.
    StatusChanged { source: String, status: RowStatus },
}

/// The replica's new pairs and what else its read showed.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Outcome {
    pub pairs: BTreeMap<String, PairData>,
    /// Rows of unlisted sources ignored under `sources: listed`.
    pub unlisted: usize,
    /// Rows of unlisted sources refused under `sources: any`: a name or region that
    /// is no safe label value, or past [`MAX_UNLISTED_SOURCES`].
    pub malformed: usize,
    pub events: Vec<Event>,
}

/// The source node a row belongs to: its `node` column, or for tables that key
/// rows by server identity (pt-heartbeat's server_id) the listed node known under
/// that identity, else `server-<identity>`.
fn source_name(nodes: &[NodeView], row: &HeartbeatRow) -> Option<String> {
    if let Some(name) = &row.node {
        return Some(name.clone());
    }
    let identity = row.identity.as_ref()?;
    let listed = nodes.iter().find(|n| n.aliases.contains(identity));
    Some(listed.map_or_else(|| format!("server-{identity}"), |n| n.name.clone()))
}

/// Turns every row the replica shows into a (source → replica) pair, and gives
/// every live writer whose row it does not show at all a pair of its own that says
/// so. See the module's documentation for the rules.
pub fn decide(input: &Input) -> Outcome {
    let Input { replica, nodes, previous, replica_clock, interval, .. } = *input;
    let single_writer = input.write_mode == WriteMode::SingleWriter;
    let writable_now: Vec<&str> = nodes.iter().filter(|n| n.is_writer()).map(|n| n.name.as_str()).collect();
    let mut out = Outcome::default();
    let mut unlisted_sources = 0;
    let mut shown = Vec::new();
    // The newest heartbeat of an earlier writer this node holds: its data ends
    // there, so a live writer it shows nothing of has lost at least that much.
    let mut earlier_writers_floor: Option<f64> = None;
    for row in input.rows {
        let Some(name) = source_name(nodes, row) else { continue };
        if name == replica {
            continue;
        }
        shown.push(name.clone());
        let listed = nodes.iter().find(|n| n.name == name);
        let source_region = match (listed, input.sources) {
            (Some(src), _) => src.region.clone(),
            (None, Sources::Listed) => {
                out.unlisted += 1;
                continue;
            }
            (None, Sources::Any) => {
                let region = row.region.clone().unwrap_or_default();
                if !is_label_safe(&name)
                    || !is_label_safe(&region)
                    || unlisted_sources >= MAX_UNLISTED_SOURCES
                {
                    out.malformed += 1;
                    continue;
                }
                unlisted_sources += 1;
                region
            }
        };
        // What this process knows of the source: its writes, its clock, its role.
        let reading = evaluate(&PairInput {
            seq: row.seq,
            written_us: row.written_us,
            replica_clock,
            history: listed.map(|s| &s.history),
            source_clock: listed
                .and_then(|s| s.clock)
                .filter(|c| replica_clock.mono - c.mono < CLOCK_SAMPLE_TTL),
            interval,
        });
        // A reachable source that no longer takes writes (a demoted primary), or
        // in a single-writer cluster any source while another node is the
        // writable one (a failed-over primary), wrote its row in the past: that
        // row measures nothing now.
        let retired = listed.is_some_and(|src| {
            let demoted = src.up && src.writable == Some(false);
            let superseded = single_writer && !src.is_writer() && writable_now.iter().any(|n| *n != name);
            demoted || superseded
        });
        if retired {
            if let Reading::Ok { exposure, .. } = reading {
                earlier_writers_floor =
                    Some(earlier_writers_floor.map_or(exposure, |f: f64| f.min(exposure)));
            }
            continue;
        }
        let identity_ok = match (input.expected_identity, &row.identity) {
            (Some(expected), Some(seen)) => expected == seen,
            _ => true,
        };
        let status = if identity_ok { reading.status() } else { RowStatus::IdentityMismatch };
        let prev = previous.get(&name);
        let mut regressions = prev.map_or(0, |p| p.regressions);
        if let (Some(last), Some(seq)) = (prev.and_then(|p| p.last_seq), row.seq.get()) {
            if seq < last {
                regressions += 1;
                out.events.push(Event::SequenceRegressed { source: name.clone(), from: last, to: seq });
            }
        }
        status_change(&mut out.events, &name, status, prev);
        let reading = match (status, reading) {
            (RowStatus::Ok, r @ Reading::Ok { .. }) => Some(r),
            _ => None,
        };
        let pair = PairData {
            source_region,
            status,
            reading,
            read_mono: replica_clock.mono,
            // Only a time that is a date: an invalid one is no timestamp to export.
            seen_written_us: row.written_us.get().filter(|_| status != RowStatus::InvalidTimestamp),
            last_seq: row.seq.get().or(prev.and_then(|p| p.last_seq)),
            regressions,
        };
        out.pairs.insert(name, pair);
    }
    // A live writer whose heartbeats this process writes, and of which this
    // node shows no row at all: a replica a failover left following a dead
    // primary, or one that never received the row. It has a pair that grows
    // from the first heartbeat it is missing; it never vanishes.
    if input.writes {
        for src in nodes {
            if src.name == replica || shown.contains(&src.name) || !writable_now.contains(&src.name.as_str())
            {
                continue;
            }
            let floor = if single_writer { earlier_writers_floor } else { None };
            let Some(reading) = evaluate_missing(&src.history, replica_clock.mono, floor) else {
                continue;
            };
            let prev = previous.get(&src.name);
            status_change(&mut out.events, &src.name, RowStatus::Missing, prev);
            let pair = PairData {
                source_region: src.region.clone(),
                status: RowStatus::Missing,
                reading: Some(reading),
                read_mono: replica_clock.mono,
                seen_written_us: None,
                last_seq: prev.and_then(|p| p.last_seq),
                regressions: prev.map_or(0, |p| p.regressions),
            };
            out.pairs.insert(src.name.clone(), pair);
        }
    }
    out
}

/// A status other than ok that the pair did not have before is worth a line.
fn status_change(events: &mut Vec<Event>, source: &str, status: RowStatus, prev: Option<&PairData>) {
    if status != RowStatus::Ok && prev.map(|p| p.status) != Some(status) {
        events.push(Event::StatusChanged { source: source.to_string(), status });
    }
}
