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
//!   shows no row at all, gets a `missing` pair ([`evaluate_missing`]);
//! - an `ok` pair's exposure is tightened with the replica's last replayed commit
//!   ([`refine_exposure`]) only in a single-writer cluster whose source and replica
//!   are both full copies (`replication: physical`), while the source answers its
//!   probes: then the replica replays the source's own WAL stream, and the commit
//!   time is on the source's clock, whose fresh sample places it;
//! - an `ok` pair's lag is tightened with the source's sampled commit positions
//!   ([`refine_lag`]) under the same conditions (the replica applies the sole
//!   writer's stream, so its applied position is on the source's scale), while
//!   the source is the writer: its positions describe the stream the replica
//!   applies.

use crate::config::{is_label_safe, Sources, WriteMode};
use crate::engine::HeartbeatRow;
use crate::heartbeat::{
    evaluate, evaluate_missing, refine_exposure, refine_lag, ClockSample, CommitPosition, ExposureSource,
    LagSource, PairInput, PositionHistory, Reading, ReplayedCommit, RowStatus, WriteHistory,
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
    /// Which bound gave the reading's exposure.
    pub exposure_source: ExposureSource,
    /// Which bound gave the reading's lag.
    pub lag_source: LagSource,
    /// The replica's applied position before the reading (or at the position
    /// read that carried it), when known: unchanged later, nothing was applied
    /// since.
    pub applied: Option<CommitPosition>,
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
    /// Its commit positions, sampled between heartbeats while writable.
    pub positions: PositionHistory,
    /// Its clock at its last probe.
    pub clock: Option<ClockSample>,
    /// A full copy (`replication: physical`): a primary, or a streaming replica.
    pub physical: bool,
}

impl NodeView {
    /// Up and accepting writes at its last probe.
    pub fn is_writer(&self) -> bool {
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
    /// The replica's last replayed commit, read in the same tick as the rows.
    pub replayed: Option<ReplayedCommit>,
    /// The replica's applied position, read in the same tick, after the rows.
    pub replica_position: Option<CommitPosition>,
    /// The same, read in the same tick before the rows (its probe).
    pub applied_before: Option<CommitPosition>,
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
    // The replica replays one WAL stream, the sole writer's: its last replayed
    // commit bounds what it lacks of that writer (see the module's rules).
    let replica_physical = nodes.iter().any(|n| n.name == replica && n.physical);
    let replayed = input.replayed.filter(|_| single_writer && replica_physical);
    let replica_position = input.replica_position.as_ref().filter(|_| single_writer && replica_physical);
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
        let (reading, exposure_source, lag_source) = match (status, reading) {
            (RowStatus::Ok, r @ Reading::Ok { .. }) => {
                // Only while the source answers its probes: a clock sample from
                // this tick or the last few places its commit time.
                let source_clock = listed
                    .filter(|s| s.physical && s.is_writer())
                    .and_then(|s| s.clock)
                    .filter(|c| replica_clock.mono - c.mono <= 2.0 * interval + 1.0);
                let (r, source) = refine_exposure(r, replica_clock.mono, replayed, source_clock);
                let (r, lag_source) = match listed.filter(|s| s.physical && s.is_writer()) {
                    Some(src) => refine_lag(r, replica_clock.mono, replica_position, &src.positions),
                    None => (r, LagSource::Heartbeat),
                };
                (Some(r), source, lag_source)
            }
            _ => (None, ExposureSource::Heartbeat, LagSource::Heartbeat),
        };
        let pair = PairData {
            source_region,
            status,
            reading,
            exposure_source,
            lag_source,
            applied: input.applied_before.clone(),
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
                exposure_source: ExposureSource::Heartbeat,
                lag_source: LagSource::Heartbeat,
                applied: None,
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

/// What a replica's position read between two reads of its heartbeat rows
/// brings to its pairs ([`advance`]).
#[derive(Debug, Clone)]
pub struct Advance<'a> {
    pub replica: &'a str,
    /// Every node of the cluster, the replica too, in config order.
    pub nodes: &'a [NodeView],
    pub write_mode: WriteMode,
    /// The heartbeat interval, seconds.
    pub interval: f64,
    /// The replica's applied position, read at `at_mono` (the read's midpoint).
    pub applied: &'a CommitPosition,
    pub at_mono: f64,
    /// The same read as a replayed commit (PostgreSQL), observed by its end.
    pub replayed: Option<ReplayedCommit>,
}

/// Carries the replica's `ok` pairs of the sole, physical writer from their
/// last reading to the instant of a position read, under the conditions of the
/// module's rules for refining: exposure aged to that instant (what a scrape
/// would show) and tightened with the replayed commit; lag from the source's
/// sampled positions against the replica's applied one ([`refine_lag`]), and
/// while the replica applied nothing since the pair's last reading, at least
/// that reading's lag aged to the instant (whatever it lacked then it still
/// lacks: after a restart in a stall that is the `exposure − interval` floor,
/// where the new process's positions reach back only to its start); else 0 when
/// no sample is ahead of it (a lower bound: whatever the source committed after
/// its newest sample is unknown). So between two ticks, the lag a scrape shows
/// is at most one position read old. Pairs of other sources, and any pair of a
/// multi-writer cluster or of a replica that is no full copy, keep their
/// reading.
pub fn advance(pairs: &mut BTreeMap<String, PairData>, input: &Advance) {
    let replica_physical = input.nodes.iter().any(|n| n.name == input.replica && n.physical);
    if input.write_mode != WriteMode::SingleWriter || !replica_physical {
        return;
    }
    let t = input.at_mono;
    for (name, pair) in pairs.iter_mut() {
        let (RowStatus::Ok, Some(Reading::Ok { lag, exposure, basis })) = (pair.status, pair.reading) else {
            continue;
        };
        let Some(src) = input.nodes.iter().find(|n| n.name == *name && n.physical && n.is_writer()) else {
            continue;
        };
        if src.positions.is_empty() || t < pair.read_mono {
            continue;
        }
        let elapsed = t - pair.read_mono;
        let still = pair.applied.as_ref() == Some(input.applied);
        // Lag 0 lacked nothing: there is nothing to carry.
        let carried = if still && lag > 0.0 { lag + elapsed } else { 0.0 };
        let aged = Reading::Ok { lag: carried, exposure: exposure + elapsed, basis };
        let source_clock = src.clock.filter(|c| t - c.mono <= 2.0 * input.interval + 1.0);
        let (r, exposure_source) = match refine_exposure(aged, t, input.replayed, source_clock) {
            // Unrefined, the aged exposure keeps the bound it came from.
            (r, ExposureSource::Heartbeat) => (r, pair.exposure_source),
            refined => refined,
        };
        let (r, lag_source) = refine_lag(r, t, Some(input.applied), &src.positions);
        // A carried lag keeps the bound it came from.
        let lag_source =
            if still && lag_source == LagSource::Heartbeat { pair.lag_source } else { lag_source };
        pair.reading = Some(r);
        pair.applied = Some(input.applied.clone());
        pair.exposure_source = exposure_source;
        pair.lag_source = lag_source;
        pair.read_mono = t;
    }
}

/// A status other than ok that the pair did not have before is worth a line.
fn status_change(events: &mut Vec<Event>, source: &str, status: RowStatus, prev: Option<&PairData>) {
    if status != RowStatus::Ok && prev.map(|p| p.status) != Some(status) {
        events.push(Event::StatusChanged { source: source.to_string(), status });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::heartbeat::{Field, WriteRecord};
    use std::fmt::Write;

    /// Database clocks here read monotonic time plus this (November 2023).
    const T0: f64 = 1_700_000_000.0;
    /// The replica's read happens at this monotonic instant.
    const READ: f64 = 100.0;

    fn us(at: f64) -> i64 {
        ((T0 + at) * 1e6) as i64
    }

    fn view(name: &str, up: bool, writable: bool, writes: &[(i64, f64)]) -> NodeView {
        let mut history = WriteHistory::default();
        for &(seq, mono) in writes {
            history.push(WriteRecord { seq, mono, db_us: us(mono) });
        }
        NodeView {
            name: name.into(),
            region: format!("{name}-region"),
            up,
            writable: Some(writable),
            aliases: vec![format!("id-{name}")],
            history,
            positions: PositionHistory::default(),
            clock: up.then(|| ClockSample { db_us: us(99.0), mono: 99.0, rtt: 0.0 }),
            physical: true,
        }
    }

    /// Up and writable, with these writes (seq, monotonic instant) made by this process.
    fn writer(name: &str, writes: &[(i64, f64)]) -> NodeView {
        view(name, true, true, writes)
    }

    /// Up and read-only.
    fn reader(name: &str, writes: &[(i64, f64)]) -> NodeView {
        view(name, true, false, writes)
    }

    /// Not answering; writable at its last answered probe.
    fn down(name: &str, writes: &[(i64, f64)]) -> NodeView {
        view(name, false, true, writes)
    }

    /// A row of `node` with sequence `seq` written at monotonic instant `at`.
    fn row(node: &str, seq: i64, at: f64) -> HeartbeatRow {
        HeartbeatRow {
            node: Some(node.into()),
            region: Some("far".into()),
            seq: Field::Int(seq),
            written_us: Field::Int(us(at)),
            identity: None,
        }
    }

    fn prev(status: RowStatus, last_seq: i64, regressions: u64) -> PairData {
        PairData {
            source_region: "p-region".into(),
            status,
            reading: None,
            exposure_source: ExposureSource::Heartbeat,
            lag_source: LagSource::Heartbeat,
            applied: None,
            read_mono: READ - 1.0,
            seen_written_us: None,
            last_seq: Some(last_seq),
            regressions,
        }
    }

    /// One read of replica `r` and what the worker knows around it; by default a
    /// single-writer cluster of listed sources whose heartbeats this process writes.
    struct Case {
        nodes: Vec<NodeView>,
        rows: Vec<HeartbeatRow>,
        previous: BTreeMap<String, PairData>,
        expected_identity: Option<&'static str>,
        write_mode: WriteMode,
        sources: Sources,
        writes: bool,
        replayed: Option<ReplayedCommit>,
        replica_position: Option<CommitPosition>,
    }

    impl Case {
        fn new(nodes: Vec<NodeView>, rows: Vec<HeartbeatRow>) -> Case {
            let mut all = vec![reader("r", &[])];
            all.extend(nodes);
            Case {
                nodes: all,
                rows,
                previous: BTreeMap::new(),
                expected_identity: None,
                write_mode: WriteMode::SingleWriter,
                sources: Sources::Listed,
                writes: true,
                replayed: None,
                replica_position: None,
            }
        }
        fn multi_writer(self) -> Case {
            Case { write_mode: WriteMode::MultiWriter, ..self }
        }
        fn any(self) -> Case {
            Case { sources: Sources::Any, ..self }
        }
        fn foreign(self) -> Case {
            Case { writes: false, ..self }
        }
        fn expect_identity(self, identity: &'static str) -> Case {
            Case { expected_identity: Some(identity), ..self }
        }
        fn previous(mut self, source: &str, pair: PairData) -> Case {
            self.previous.insert(source.into(), pair);
            self
        }

        fn decide(&self) -> Outcome {
            decide(&Input {
                replica: "r",
                rows: &self.rows,
                nodes: &self.nodes,
                previous: &self.previous,
                expected_identity: self.expected_identity,
                write_mode: self.write_mode,
                sources: self.sources,
                writes: self.writes,
                interval: 1.0,
                replica_clock: ClockSample { db_us: us(READ), mono: READ, rtt: 0.0 },
                replayed: self.replayed,
                replica_position: self.replica_position.clone(),
                applied_before: None,
            })
        }
    }

    /// The outcome as lines: counts, one line per pair, one per event.
    fn render(o: &Outcome) -> String {
        let mut s = format!("unlisted {} malformed {}\n", o.unlisted, o.malformed);
        for (name, p) in &o.pairs {
            write!(s, "{name} ({}) {}", p.source_region, p.status.as_str()).unwrap();
            if let Some(Reading::Ok { lag, exposure, basis }) = p.reading {
                write!(s, " lag {lag:.3} exposure {exposure:.3} {basis:?}").unwrap();
            }
            if p.exposure_source == ExposureSource::CommitTimestamp {
                s.push_str(" by commit");
            }
            if p.lag_source != LagSource::Heartbeat {
                write!(s, " lag by {}", p.lag_source.as_str()).unwrap();
            }
            if let Some(seen) = p.seen_written_us {
                write!(s, " seen {:.3}", seen as f64 / 1e6 - T0).unwrap();
            }
            if let Some(seq) = p.last_seq {
                write!(s, " seq {seq}").unwrap();
            }
            if p.regressions > 0 {
                write!(s, " regressions {}", p.regressions).unwrap();
            }
            s.push('\n');
        }
        for e in &o.events {
            match e {
                Event::SequenceRegressed { source, from, to } => writeln!(s, "! {source} seq {from} -> {to}"),
                Event::StatusChanged { source, status } => writeln!(s, "! {source} {}", status.as_str()),
            }
            .unwrap();
        }
        s
    }

    fn check(case: Case, expected: &str) {
        let expected: String =
            expected.lines().map(|l| format!("{}\n", l.trim())).filter(|l| l != "\n").collect();
        assert_eq!(render(&case.decide()), expected);
    }

    const P: &[(i64, f64)] = &[(1, 97.0), (2, 98.0), (3, 99.0)];

    #[test]
    fn the_replayed_commit_tightens_only_a_physical_single_writer_pair() {
        // The replica shows seq 1 (97) and replayed a commit of 99.8 on p's clock.
        let replayed = Some(ReplayedCommit { commit_us: us(99.8), observed_mono: READ + 0.01 });
        let case = |nodes| Case { replayed, ..Case::new(nodes, vec![row("p", 1, 97.0)]) };
        check(
            case(vec![writer("p", P)]),
            "unlisted 0 malformed 0
             p (p-region) ok lag 2.000 exposure 2.000 Monotonic by commit seen 97.000 seq 1",
        );
        // Lag stays the heartbeats'; without lag in the way the bound is 0.2 s, and
        // 0.5 ms of drift for p's clock sample, 1.01 s older than the observation.
        let caught_up = Case { replayed, ..Case::new(vec![writer("p", P)], vec![row("p", 3, 99.0)]) };
        check(
            caught_up,
            "unlisted 0 malformed 0
             p (p-region) ok lag 0.000 exposure 0.201 Monotonic by commit seen 99.000 seq 3",
        );
        let heartbeat_only = "unlisted 0 malformed 0
             p (p-region) ok lag 2.000 exposure 3.000 Monotonic seen 97.000 seq 1";
        // Multi-writer: the replica's commits may be another writer's.
        check(case(vec![writer("p", P)]).multi_writer(), heartbeat_only);
        // A logical subscriber (or a source that is one) replays no source WAL.
        let mut c = case(vec![writer("p", P)]);
        c.nodes[0].physical = false;
        check(c, heartbeat_only);
        let mut c = case(vec![writer("p", P)]);
        c.nodes[1].physical = false;
        check(c, heartbeat_only);
        // A source that does not answer: no fresh clock sample to place the commit.
        let mut c = case(vec![writer("p", P)]);
        c.nodes[1].clock = Some(ClockSample { db_us: us(90.0), mono: 90.0, rtt: 0.0 });
        check(c, heartbeat_only);
        check(
            case(vec![down("p", P)]),
            "unlisted 0 malformed 0
             p (p-region) ok lag 2.000 exposure 3.000 Monotonic seen 97.000 seq 1",
        );
        // A stranded replica (no row of the live writer, its commits an older
        // primary's): the missing pair keeps its heartbeat bounds.
        let stranded =
            Case { replayed, ..Case::new(vec![down("old", &[]), writer("p", P)], vec![row("old", 5, 90.0)]) };
        check(
            stranded,
            "unlisted 0 malformed 0
             p (p-region) missing lag 3.000 exposure 10.000 Monotonic
             ! p missing",
        );
    }

    #[test]
    fn sampled_positions_tighten_lag_only_of_the_sole_physical_writer() {
        use crate::heartbeat::PositionSample;
        // The replica shows seq 1 (97) and applied GTID 0-…-40; p was at 41 by 97.3.
        let mut positions = PositionHistory::default();
        for (seq, by) in [(40, 97.1), (41, 97.3), (45, 98.1)] {
            positions.push(PositionSample { position: CommitPosition::Gtid(vec![(0, seq)]), by_mono: by });
        }
        let case = |nodes: Vec<NodeView>| {
            let mut c = Case::new(nodes, vec![row("p", 1, 97.0)]);
            c.replica_position = Some(CommitPosition::Gtid(vec![(0, 40)]));
            c.nodes[1].positions = positions.clone();
            c
        };
        check(
            case(vec![writer("p", P)]),
            "unlisted 0 malformed 0
             p (p-region) ok lag 2.700 exposure 3.000 Monotonic lag by gtid_position seen 97.000 seq 1",
        );
        let heartbeat_only = "unlisted 0 malformed 0
             p (p-region) ok lag 2.000 exposure 3.000 Monotonic seen 97.000 seq 1";
        check(case(vec![writer("p", P)]).multi_writer(), heartbeat_only);
        let mut c = case(vec![writer("p", P)]);
        c.nodes[0].physical = false;
        check(c, heartbeat_only);
        // A source that is no longer the writer: its positions describe no stream
        // the replica applies now.
        check(
            case(vec![down("p", P)]),
            "unlisted 0 malformed 0
             p (p-region) ok lag 2.000 exposure 3.000 Monotonic seen 97.000 seq 1",
        );
        // Caught up with every sample: the heartbeats' lag.
        let mut c = case(vec![writer("p", P)]);
        c.replica_position = Some(CommitPosition::Gtid(vec![(0, 45)]));
        check(c, heartbeat_only);
    }

    #[test]
    fn a_position_read_carries_the_pairs_to_its_instant() {
        use crate::heartbeat::PositionSample;
        // After the read at 100 (lag 2, exposure 3), p committed GTID 41 by 97.3 and
        // 45 by 98.1; the replica reads its applied position at 100.4.
        let mut nodes = vec![reader("r", &[]), writer("p", P)];
        for (seq, by) in [(40, 97.1), (41, 97.3), (45, 98.1)] {
            nodes[1]
                .positions
                .push(PositionSample { position: CommitPosition::Gtid(vec![(0, seq)]), by_mono: by });
        }
        let decided = Case::new(nodes[1..].to_vec(), vec![row("p", 1, 97.0)]).decide().pairs;
        let run = |nodes: &[NodeView], mode, applied: Vec<(u32, u64)>| {
            let mut pairs = decided.clone();
            let applied = CommitPosition::Gtid(applied);
            let input = Advance {
                replica: "r",
                nodes,
                write_mode: mode,
                interval: 1.0,
                applied: &applied,
                at_mono: READ + 0.4,
                replayed: None,
            };
            advance(&mut pairs, &input);
            let p = &pairs["p"];
            let Some(Reading::Ok { lag, exposure, .. }) = p.reading else { panic!("{p:?}") };
            (format!("{lag:.3} {exposure:.3} {}", p.lag_source.as_str()), p.read_mono)
        };
        // Still at 40: lag from 41's sample, exposure aged to the read.
        assert_eq!(
            run(&nodes, WriteMode::SingleWriter, vec![(0, 40)]),
            ("3.100 3.400 gtid_position".into(), READ + 0.4)
        );
        // Caught up with every sample: nothing known to be missing.
        assert_eq!(run(&nodes, WriteMode::SingleWriter, vec![(0, 45)]).0, "0.000 3.400 heartbeat");
        // Nothing applied since the reading: what it lacked then it still lacks.
        let mut decided = decided.clone();
        decided.get_mut("p").unwrap().applied = Some(CommitPosition::Gtid(vec![(0, 45)]));
        let mut pairs = decided.clone();
        let still = CommitPosition::Gtid(vec![(0, 45)]);
        let input = Advance {
            replica: "r",
            nodes: &nodes,
            write_mode: WriteMode::SingleWriter,
            interval: 1.0,
            applied: &still,
            at_mono: READ + 0.4,
            replayed: None,
        };
        advance(&mut pairs, &input);
        let Some(Reading::Ok { lag, exposure, .. }) = pairs["p"].reading else { panic!("{:?}", pairs["p"]) };
        assert_eq!((format!("{lag:.3}"), format!("{exposure:.3}")), ("2.400".into(), "3.400".into()));
        // Multi-writer, or a source that is no longer the writer: the reading stays.
        let unchanged = ("2.000 3.000 heartbeat".to_string(), READ);
        assert_eq!(run(&nodes, WriteMode::MultiWriter, vec![(0, 40)]), unchanged);
        let mut stale = nodes.clone();
        stale[1].up = false;
        assert_eq!(run(&stale, WriteMode::SingleWriter, vec![(0, 40)]), unchanged);
        let mut no_positions = nodes.clone();
        no_positions[1].positions = PositionHistory::default();
        assert_eq!(run(&no_positions, WriteMode::SingleWriter, vec![(0, 40)]), unchanged);
    }

    #[test]
    fn listed_source_is_a_pair() {
        // Seq 2 seen at 100: the next write (seq 3, at 99) is the oldest unseen.
        check(
            Case::new(vec![writer("p", P)], vec![row("p", 2, 98.0), row("r", 7, 99.0)]),
            "unlisted 0 malformed 0
             p (p-region) ok lag 1.000 exposure 2.000 Monotonic seen 98.000 seq 2",
        );
        // pt-heartbeat's rows carry no node name: the identity names the listed node.
        let by_identity = HeartbeatRow { node: None, identity: Some("id-p".into()), ..row("", 3, 99.0) };
        check(
            Case::new(vec![writer("p", P)], vec![by_identity]),
            "unlisted 0 malformed 0
             p (p-region) ok lag 0.000 exposure 1.000 Monotonic seen 99.000 seq 3",
        );
    }

    #[test]
    fn unlisted_sources() {
        let unknown_id = HeartbeatRow { node: None, identity: Some("9".into()), ..row("", 1, 95.0) };
        // sources: listed counts them and makes no pair.
        check(
            Case::new(vec![writer("p", P)], vec![row("p", 3, 99.0), row("x", 1, 95.0), unknown_id.clone()]),
            "unlisted 2 malformed 0
             p (p-region) ok lag 0.000 exposure 1.000 Monotonic seen 99.000 seq 3",
        );
        // sources: any reads them on the replica's clock, in the row's region.
        check(
            Case::new(vec![writer("p", P)], vec![row("p", 3, 99.0), row("x", 1, 95.0), unknown_id]).any(),
            "unlisted 0 malformed 0
             p (p-region) ok lag 0.000 exposure 1.000 Monotonic seen 99.000 seq 3
             server-9 (far) ok lag 4.000 exposure 5.000 ReplicaClock seen 95.000 seq 1
             x (far) ok lag 4.000 exposure 5.000 ReplicaClock seen 95.000 seq 1",
        );
    }

    #[test]
    fn malformed_unlisted_names() {
        let bad_region = HeartbeatRow { region: Some("eu west".into()), ..row("y", 1, 95.0) };
        check(
            Case::new(vec![writer("p", P)], vec![row("p", 3, 99.0), row("x\"}", 1, 95.0), bad_region]).any(),
            "unlisted 0 malformed 2
             p (p-region) ok lag 0.000 exposure 1.000 Monotonic seen 99.000 seq 3",
        );
        // With sources: listed the name is never a label, so it is only unlisted.
        check(
            Case::new(vec![writer("p", P)], vec![row("p", 3, 99.0), row("x\"}", 1, 95.0)]),
            "unlisted 1 malformed 0
             p (p-region) ok lag 0.000 exposure 1.000 Monotonic seen 99.000 seq 3",
        );
    }

    #[test]
    fn too_many_unlisted_sources() {
        let rows: Vec<_> = (0..=MAX_UNLISTED_SOURCES).map(|i| row(&format!("x{i:02}"), 1, 95.0)).collect();
        let mut expected = String::from("unlisted 0 malformed 1\n");
        for i in 0..MAX_UNLISTED_SOURCES {
            expected +=
                &format!("x{i:02} (far) ok lag 4.000 exposure 5.000 ReplicaClock seen 95.000 seq 1\n");
        }
        // The 33rd is refused; listed sources never count against the cap.
        let mut case = Case::new(vec![writer("p", P)], rows).any();
        case.rows.push(row("p", 3, 99.0));
        expected.insert_str(
            expected.find('\n').unwrap() + 1,
            "p (p-region) ok lag 0.000 exposure 1.000 Monotonic seen 99.000 seq 3\n",
        );
        check(case, &expected);
    }

    #[test]
    fn retired_sources() {
        // A demoted primary, reachable and read-only: its old row is no pair, in
        // either write mode.
        let demoted = || vec![reader("old", &[]), writer("p", P)];
        let rows = || vec![row("old", 40, 80.0), row("p", 3, 99.0)];
        for case in [Case::new(demoted(), rows()), Case::new(demoted(), rows()).multi_writer()] {
            check(
                case,
                "unlisted 0 malformed 0
                 p (p-region) ok lag 0.000 exposure 1.000 Monotonic seen 99.000 seq 3",
            );
        }
        // A failed-over primary (down, writable when last seen) is superseded by the
        // new writer in a single-writer cluster...
        let failed_over = || vec![down("old", &[]), writer("p", P)];
        check(
            Case::new(failed_over(), rows()),
            "unlisted 0 malformed 0
             p (p-region) ok lag 0.000 exposure 1.000 Monotonic seen 99.000 seq 3",
        );
        // ...but in a multi-writer cluster it is one writer among several.
        check(
            Case::new(failed_over(), rows()).multi_writer(),
            "unlisted 0 malformed 0
             old (old-region) ok lag 19.000 exposure 20.000 ReplicaClock seen 80.000 seq 40
             p (p-region) ok lag 0.000 exposure 1.000 Monotonic seen 99.000 seq 3",
        );
        // With no writer at all nothing supersedes it.
        check(
            Case::new(vec![down("old", &[])], vec![row("old", 40, 80.0)]),
            "unlisted 0 malformed 0
             old (old-region) ok lag 19.000 exposure 20.000 ReplicaClock seen 80.000 seq 40",
        );
    }

    #[test]
    fn identity_mismatch() {
        let with_id = |id: &str| HeartbeatRow { identity: Some(id.into()), ..row("p", 3, 99.0) };
        check(
            Case::new(vec![writer("p", P)], vec![with_id("other")]).expect_identity("id-p"),
            "unlisted 0 malformed 0
             p (p-region) identity_mismatch seen 99.000 seq 3
             ! p identity_mismatch",
        );
        check(
            Case::new(vec![writer("p", P)], vec![with_id("id-p")]).expect_identity("id-p"),
            "unlisted 0 malformed 0
             p (p-region) ok lag 0.000 exposure 1.000 Monotonic seen 99.000 seq 3",
        );
        // A status already logged is not logged again.
        check(
            Case::new(vec![writer("p", P)], vec![with_id("other")])
                .expect_identity("id-p")
                .previous("p", prev(RowStatus::IdentityMismatch, 3, 0)),
            "unlisted 0 malformed 0
             p (p-region) identity_mismatch seen 99.000 seq 3",
        );
    }

    #[test]
    fn sequence_regression_is_counted() {
        check(
            Case::new(vec![writer("p", P)], vec![row("p", 2, 98.0)]).previous("p", prev(RowStatus::Ok, 5, 1)),
            "unlisted 0 malformed 0
             p (p-region) ok lag 1.000 exposure 2.000 Monotonic seen 98.000 seq 2 regressions 2
             ! p seq 5 -> 2",
        );
        // A row with no sequence keeps the last one seen and counts nothing (without a
        // sequence it is no write of ours: the source's clock places it).
        let no_seq = HeartbeatRow { seq: Field::Null, ..row("p", 0, 98.0) };
        check(
            Case::new(vec![writer("p", P)], vec![no_seq]).previous("p", prev(RowStatus::Ok, 5, 1)),
            "unlisted 0 malformed 0
             p (p-region) ok lag 1.000 exposure 2.000 SourceClock seen 98.000 seq 5 regressions 1",
        );
    }

    #[test]
    fn missing_pair_of_a_live_writer() {
        // The replica shows nothing of p: lag from the oldest remembered write.
        check(
            Case::new(vec![writer("p", &[(1, 90.0), (2, 95.0)])], vec![]),
            "unlisted 0 malformed 0
             p (p-region) missing lag 10.000 exposure 10.000 Monotonic
             ! p missing",
        );
        // It keeps its sequence and regressions, and logs once.
        check(
            Case::new(vec![writer("p", &[(1, 90.0)])], vec![]).previous("p", prev(RowStatus::Missing, 4, 1)),
            "unlisted 0 malformed 0
             p (p-region) missing lag 10.000 exposure 10.000 Monotonic seq 4 regressions 1",
        );
        // None for a writer not written to yet, a writer that is down, or heartbeats
        // another process writes.
        for case in [
            Case::new(vec![writer("p", &[])], vec![]),
            Case::new(vec![down("p", P)], vec![]),
            Case::new(vec![writer("p", P)], vec![]).foreign(),
        ] {
            check(case, "unlisted 0 malformed 0");
        }
    }

    #[test]
    fn earlier_writers_floor() {
        // The replica still follows the failed-over primary: its data ends at the
        // old primary's newest row it holds (20 s ago), older than p's first write.
        let nodes = || vec![down("old", &[]), writer("p", &[(1, 95.0)])];
        check(
            Case::new(nodes(), vec![row("old", 40, 80.0), row("old", 41, 85.0)]),
            "unlisted 0 malformed 0
             p (p-region) missing lag 5.000 exposure 15.000 Monotonic
             ! p missing",
        );
        // A floor below the lag changes nothing.
        check(
            Case::new(nodes(), vec![row("old", 41, 98.0)]),
            "unlisted 0 malformed 0
             p (p-region) missing lag 5.000 exposure 5.000 Monotonic
             ! p missing",
        );
        // Multi-writer: old is a writer of its own, no floor.
        check(
            Case::new(nodes(), vec![row("old", 40, 80.0)]).multi_writer(),
            "unlisted 0 malformed 0
             old (old-region) ok lag 19.000 exposure 20.000 ReplicaClock seen 80.000 seq 40
             p (p-region) missing lag 5.000 exposure 5.000 Monotonic
             ! p missing",
        );
    }

    #[test]
    fn invalid_timestamp_keeps_no_seen_time() {
        // A date from 1970 is an integer but no heartbeat's time; a time that is no
        // integer at all reads the same.
        for written_us in [Field::Int(0), Field::Invalid] {
            check(
                Case::new(vec![writer("p", P)], vec![HeartbeatRow { written_us, ..row("p", 3, 0.0) }]),
                "unlisted 0 malformed 0
                 p (p-region) invalid_timestamp seq 3
                 ! p invalid_timestamp",
            );
        }
        // A null time has no time to keep either; a future one keeps it.
        check(
            Case::new(
                vec![writer("p", P)],
                vec![HeartbeatRow { written_us: Field::Null, ..row("p", 3, 0.0) }],
            ),
            "unlisted 0 malformed 0
             p (p-region) null_timestamp seq 3
             ! p null_timestamp",
        );
        check(
            Case::new(vec![writer("p", P)], vec![row("p", 3, 110.0)]),
            "unlisted 0 malformed 0
             p (p-region) future_timestamp seen 110.000 seq 3
             ! p future_timestamp",
        );
    }
}
