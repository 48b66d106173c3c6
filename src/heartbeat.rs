//! Lag arithmetic: from what a replica shows of a source's heartbeat row to
//! `lag` and `data-loss exposure`, exactly as SPEC.md defines them.
//!
//! Pure functions and plain data, no I/O. Times on this process's side are seconds
//! on a monotonic clock ([`mono_now`]); database times are microseconds since the
//! Unix epoch on that database's own clock. A database time is brought onto the
//! monotonic clock through a [`ClockSample`] of the *same* database, so readings
//! never mix two hosts' wall clocks unless nothing else is possible (then the
//! result says so with [`Basis::ReplicaClock`] and a future timestamp is reported
//! as such, never clamped away).

use std::collections::VecDeque;
use std::sync::{Arc, OnceLock};
use std::time::Instant;

/// Seconds on this process's monotonic clock.
pub fn mono_now() -> f64 {
    static EPOCH: OnceLock<Instant> = OnceLock::new();
    EPOCH.get_or_init(Instant::now).elapsed().as_secs_f64()
}

/// How many of its own writes the exporter remembers per source. At the default
/// 1 s interval that is over an hour; older heartbeats fall back to clock mapping.
pub const HISTORY_LEN: usize = 4096;

/// One heartbeat this process wrote.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct WriteRecord {
    pub seq: i64,
    /// Midpoint of the write's round trip on the monotonic clock.
    pub mono: f64,
    /// The written timestamp, source database clock, µs.
    pub db_us: i64,
}

/// The writes this process made on one source, oldest first. A clone is cheap (the
/// entries are shared until the next write), so a replica's worker can copy a
/// source's history out of its lock and judge its rows without holding it.
#[derive(Debug, Default, Clone)]
pub struct WriteHistory {
    entries: Arc<VecDeque<WriteRecord>>,
}

impl WriteHistory {
    /// Records a write. A sequence that does not move forward means the row was
    /// reset under us (table recreated); what we remembered no longer matches it.
    pub fn push(&mut self, rec: WriteRecord) {
        let entries = Arc::make_mut(&mut self.entries);
        if entries.back().is_some_and(|last| rec.seq <= last.seq) {
            entries.clear();
        }
        if entries.len() == HISTORY_LEN {
            entries.pop_front();
        }
        entries.push_back(rec);
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    pub fn latest(&self) -> Option<&WriteRecord> {
        self.entries.back()
    }

    /// The write with this sequence and timestamp, if it is ours and remembered.
    fn find(&self, seq: i64, db_us: i64) -> Option<&WriteRecord> {
        let idx = self.entries.partition_point(|r| r.seq < seq);
        self.entries.get(idx).filter(|r| r.seq == seq && r.db_us == db_us)
    }

    /// The oldest remembered write after `seq`, whenever it happened.
    fn first_after(&self, seq: i64) -> Option<&WriteRecord> {
        let idx = self.entries.partition_point(|r| r.seq <= seq);
        self.entries.get(idx)
    }

    /// The oldest remembered write.
    pub fn first(&self) -> Option<&WriteRecord> {
        self.entries.front()
    }
}

/// A database clock reading taken during a round trip.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ClockSample {
    /// The database's clock, µs since the epoch.
    pub db_us: i64,
    /// Midpoint of the round trip on the monotonic clock.
    pub mono: f64,
    /// The round trip's duration, seconds; half of it bounds the mapping's error.
    pub rtt: f64,
}

impl ClockSample {
    /// Where a time on the same database's clock falls on the monotonic clock.
    pub fn to_mono(&self, db_us: i64) -> f64 {
        self.mono - (self.db_us - db_us) as f64 / 1e6
    }
}

/// Which clocks a reading compared.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Basis {
    /// The heartbeat was written by this process: its own monotonic clock, immune
    /// to clock skew between hosts.
    Monotonic,
    /// Written elsewhere, but this process reaches the source and mapped the
    /// source's timestamp through the source's own clock.
    SourceClock,
    /// Only the replica's clock was available (a sidecar beside the replica): skew
    /// between source and replica enters the reading and is detected when it
    /// shows as a timestamp from the future.
    ReplicaClock,
}

/// One integer field of a heartbeat row (its sequence, or its time in µs since
/// the epoch) as the server sent it. A hand-made or forged table can hold what
/// no integer is: an infinite or NaN time, a date outside 64-bit microseconds, a
/// sequence beyond 64 bits. The engine reports such a value as `Invalid`, so it
/// marks its own row and never fails the read of the others.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Field {
    #[default]
    Null,
    Invalid,
    Int(i64),
}

impl Field {
    /// The integer, if there is one.
    pub fn get(self) -> Option<i64> {
        match self {
            Field::Int(v) => Some(v),
            Field::Null | Field::Invalid => None,
        }
    }
}

impl From<Option<i64>> for Field {
    fn from(v: Option<i64>) -> Field {
        v.map_or(Field::Null, Field::Int)
    }
}

/// Heartbeat times the exporter accepts, µs since the epoch: from 2000-01-01 to
/// the end of the year 9999 (UTC). No heartbeat was written before 2000 (an
/// earlier time is a zero or sentinel date, a broken clock, or a forged row), and
/// nothing later is a date MySQL can hold. A time in that range but ahead of the
/// clock it is compared with reads as [`Reading::FutureTimestamp`], up to
/// [`MAX_CLOCK_SKEW`] ahead.
pub const VALID_WRITTEN_US: std::ops::RangeInclusive<i64> = 946_684_800_000_000..=253_402_300_799_999_999;

/// How far ahead of the clock it is compared with a heartbeat's time may be and
/// still read as clock skew (`future_timestamp`): a day. Clocks that far apart are
/// broken, but a time further ahead (the year 2100, 3000) is no clock's reading at
/// all: a forged or garbage row, `invalid_timestamp`.
pub const MAX_CLOCK_SKEW: f64 = 86_400.0;

/// What the replica shows of one source's row, with the context to judge it.
#[derive(Debug, Clone)]
pub struct PairInput<'a> {
    pub seq: Field,
    pub written_us: Field,
    /// The replica's clock during the read; its `mono` is the read's instant.
    pub replica_clock: ClockSample,
    /// This process's writes on the source, when it writes the source's heartbeats.
    pub history: Option<&'a WriteHistory>,
    /// A recent sample of the source's clock, when this process reaches the source.
    pub source_clock: Option<ClockSample>,
    /// The heartbeat interval, seconds.
    pub interval: f64,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Reading {
    Ok {
        lag: f64,
        exposure: f64,
        basis: Basis,
    },
    /// The row has no timestamp: nothing can be said about the pair.
    NullTimestamp,
    /// The row's time is no usable instant: infinite, NaN, unparsable, or outside
    /// [`VALID_WRITTEN_US`].
    InvalidTimestamp,
    /// The row's sequence is no 64-bit integer (NaN, fractional, or too large).
    InvalidSequence,
    /// The row's timestamp lies in the future of the clock it was compared with,
    /// by `ahead` seconds: clock skew (or a forged row). Never read as lag 0.
    FutureTimestamp {
        ahead: f64,
        basis: Basis,
    },
}

impl Reading {
    pub fn status(&self) -> RowStatus {
        match self {
            Reading::Ok { .. } => RowStatus::Ok,
            Reading::NullTimestamp => RowStatus::NullTimestamp,
            Reading::InvalidTimestamp => RowStatus::InvalidTimestamp,
            Reading::InvalidSequence => RowStatus::InvalidSequence,
            Reading::FutureTimestamp { .. } => RowStatus::FutureTimestamp,
        }
    }
}

/// The bounded status of a source's row as seen on a replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowStatus {
    Ok,
    NullTimestamp,
    InvalidTimestamp,
    InvalidSequence,
    FutureTimestamp,
    IdentityMismatch,
    /// The replica shows no row of a live writer whose heartbeats this process
    /// writes: it receives nothing from it (lag and exposure still say how much).
    Missing,
}

impl RowStatus {
    pub const ALL: [RowStatus; 7] = [
        RowStatus::Ok,
        RowStatus::NullTimestamp,
        RowStatus::InvalidTimestamp,
        RowStatus::InvalidSequence,
        RowStatus::FutureTimestamp,
        RowStatus::IdentityMismatch,
        RowStatus::Missing,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RowStatus::Ok => "ok",
            RowStatus::NullTimestamp => "null_timestamp",
            RowStatus::InvalidTimestamp => "invalid_timestamp",
            RowStatus::InvalidSequence => "invalid_sequence",
            RowStatus::FutureTimestamp => "future_timestamp",
            RowStatus::IdentityMismatch => "identity_mismatch",
            RowStatus::Missing => "missing",
        }
    }
}

/// Lag and exposure of one (source → replica) pair at the instant of the read.
pub fn evaluate(input: &PairInput) -> Reading {
    let written_us = match input.written_us {
        Field::Null => return Reading::NullTimestamp,
        Field::Int(us) if VALID_WRITTEN_US.contains(&us) => us,
        Field::Int(_) | Field::Invalid => return Reading::InvalidTimestamp,
    };
    if input.seq == Field::Invalid {
        return Reading::InvalidSequence;
    }
    let read_mono = input.replica_clock.mono;
    let ours = input.history.filter(|h| !h.is_empty());
    let own_write = input.seq.get().zip(ours).and_then(|(seq, h)| h.find(seq, written_us));
    // Where the seen heartbeat was written, on our monotonic clock, and how
    // uncertain that placement is (the midpoints' half round trips).
    let (written_mono, slack, basis) = if let Some(rec) = own_write {
        (rec.mono, 0.0, Basis::Monotonic)
    } else if let Some(src) = input.source_clock {
        (src.to_mono(written_us), src.rtt / 2.0, Basis::SourceClock)
    } else {
        (input.replica_clock.to_mono(written_us), 0.0, Basis::ReplicaClock)
    };
    let slack = slack + input.replica_clock.rtt / 2.0;
    let exposure = read_mono - written_mono;
    // One clock cannot disagree with itself: below zero on the monotonic basis is
    // only the midpoints' rounding.
    if exposure < -slack && basis != Basis::Monotonic {
        if -exposure > MAX_CLOCK_SKEW {
            return Reading::InvalidTimestamp;
        }
        return Reading::FutureTimestamp { ahead: -exposure, basis };
    }
    // Within the measurement's own error a tiny negative is noise, not skew.
    let exposure = exposure.max(0.0);
    let lag = match (ours, input.seq.get()) {
        // We wrote the source's heartbeats: the oldest one not visible yet is the
        // first of ours after the seen sequence that was written before the read.
        (Some(h), Some(seq)) => history_lag(h, seq, read_mono, exposure, input.interval),
        // Someone else writes them: the next one was due one interval after the
        // seen one, a lower bound while that writer is healthy.
        _ => (exposure - input.interval).max(0.0),
    };
    Reading::Ok { lag, exposure, basis: if own_write.is_some() { Basis::Monotonic } else { basis } }
}

/// Lag from this process's own writes: the age of the first write after `seen`
/// that was made before the read. When the history does not hold the write right
/// after `seen` (the exporter restarted or reloaded, or the replica is more than
/// [`HISTORY_LEN`] writes behind), that write came before the oldest remembered one
/// at a time nobody recorded: the lag is then at least `exposure − interval`, the
/// bound a healthy writer gives, so it stays within an interval of the truth
/// instead of counting from the first write this process happens to remember.
fn history_lag(h: &WriteHistory, seen: i64, read_mono: f64, exposure: f64, interval: f64) -> f64 {
    let Some(next) = h.first_after(seen) else {
        // The replica shows our newest write, or a newer one we never saw committed.
        return 0.0;
    };
    let known = (read_mono - next.mono).max(0.0);
    if next.seq.saturating_sub(seen) == 1 {
        known
    } else {
        known.max(exposure - interval)
    }
}

/// Which bound gave a pair's exposure.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ExposureSource {
    /// The age of the newest source heartbeat the replica shows.
    #[default]
    Heartbeat,
    /// The age of the last source transaction the replica replayed
    /// ([`refine_exposure`]): tighter while the source has write traffic.
    CommitTimestamp,
}

impl ExposureSource {
    pub const ALL: [ExposureSource; 2] = [ExposureSource::Heartbeat, ExposureSource::CommitTimestamp];

    pub fn as_str(self) -> &'static str {
        match self {
            ExposureSource::Heartbeat => "heartbeat",
            ExposureSource::CommitTimestamp => "commit_timestamp",
        }
    }
}

/// The commit time, on the source's clock (µs), of the last transaction a
/// physical replica replayed (PostgreSQL's `pg_last_xact_replay_timestamp()`), and
/// the instant (monotonic) by which the replica had replayed it: the end of the
/// round trip that read it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReplayedCommit {
    pub commit_us: i64,
    pub observed_mono: f64,
}

/// How fast a wall clock may drift from the monotonic one, s/s: NTP slews a clock
/// by at most 500 ppm. A clock sample that is `age` seconds old places a time
/// with up to `age × MAX_CLOCK_DRIFT` more error.
pub const MAX_CLOCK_DRIFT: f64 = 500e-6;

/// How much tighter than the heartbeat bound, beyond the source clock's round
/// trip, a replayed commit's bound must be to replace it: the time between a
/// heartbeat's `now()` and its commit, on a busy server.
pub const IDLE_MARGIN: f64 = 0.002;

/// Tightens an `Ok` reading's exposure (at the read instant `read_mono`) with the
/// replica's last replayed commit. Commit records replay in WAL order, so every
/// transaction the source committed at or before that commit's time C is visible
/// on the replica once it was observed; the oldest write the replica lacks was
/// committed after C, so the true loss at any instant after the observation is at
/// most that instant less C. (A commit's timestamp is taken just before its
/// record enters the WAL, so two concurrent commits may enter it in the other
/// order; but one the replica lacks entered the WAL after the replayed one, so
/// after C: as its client saw it, it committed after C.) C is placed on the
/// monotonic clock through the
/// *source's* clock sample only, its half round trip and drift since the sample
/// added so the bound stays above the truth. Exposure is then aged to the scrape
/// from `read_mono` like any other: `read_mono − C + slack + (scrape − read_mono)`
/// is `scrape − C + slack`, honest for every scrape after the observation (the
/// worker stores the reading only once the tick's steps have all answered). The
/// result is the smaller bound, never below the reading's lag (a lower bound as of
/// the read; the replica may have replayed more between the two statements).
///
/// Unchanged, with [`ExposureSource::Heartbeat`]: no commit or no source clock,
/// a commit in the future of the source's clock (no reading of the same clock can
/// be), a reading other than `Ok`, or a heartbeat bound already the smaller or
/// within the source clock's round trip and [`IDLE_MARGIN`] of it (an idle source:
/// its last commit is the heartbeat itself, or older).
pub fn refine_exposure(
    reading: Reading,
    read_mono: f64,
    commit: Option<ReplayedCommit>,
    source_clock: Option<ClockSample>,
) -> (Reading, ExposureSource) {
    let unchanged = (reading, ExposureSource::Heartbeat);
    let (Reading::Ok { lag, exposure, basis }, Some(c), Some(src)) = (reading, commit, source_clock) else {
        return unchanged;
    };
    let commit_mono = src.to_mono(c.commit_us);
    let slack = src.rtt / 2.0 + (c.observed_mono - src.mono).abs() * MAX_CLOCK_DRIFT;
    if commit_mono - slack > c.observed_mono {
        return unchanged;
    }
    let bound = read_mono - commit_mono + slack;
    // On an idle source the last replayed commit is the seen heartbeat's own:
    // its bound then differs from the heartbeat's only by the two clocks'
    // placements (a round trip at most). Only a tighter one is news.
    if bound >= exposure - (src.rtt + IDLE_MARGIN) {
        return unchanged;
    }
    let exposure = bound.max(lag).max(0.0);
    (Reading::Ok { lag, exposure, basis }, ExposureSource::CommitTimestamp)
}

/// How far a source's committed history reached, in terms a replica's replay
/// can be compared with ([`CommitPosition::ahead_of`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CommitPosition {
    /// The commit time of the last committed transaction, µs on the source's
    /// clock: on a PostgreSQL primary `pg_last_committed_xact()` (with
    /// `track_commit_timestamp`), on its physical replica
    /// `pg_last_xact_replay_timestamp()`.
    CommitTime(i64),
    /// The highest sequence number per GTID domain, sorted by domain: a MariaDB
    /// primary's `@@gtid_binlog_pos`, its replica's `Gtid_Slave_Pos`.
    Gtid(Vec<(u32, u64)>),
}

impl CommitPosition {
    /// Whether a source at `self` had committed a transaction a replica at
    /// `replica` has not applied: a later commit time (commit records replay in
    /// WAL order, see [`refine_exposure`]), or a higher sequence in any domain
    /// both show.
    /// Positions of different kinds compare as not ahead.
    pub fn ahead_of(&self, replica: &CommitPosition) -> bool {
        match (self, replica) {
            (CommitPosition::CommitTime(s), CommitPosition::CommitTime(r)) => s > r,
            // A domain the replica shows nothing of is no evidence: it may never
            // have replicated it (writes on the source from before it was set up).
            (CommitPosition::Gtid(s), CommitPosition::Gtid(r)) => {
                s.iter().any(|(domain, seq)| r.iter().any(|(d, applied)| d == domain && seq > applied))
            }
            _ => false,
        }
    }

    /// Which bound a lag refined by this kind of position comes from.
    pub fn lag_source(&self) -> LagSource {
        match self {
            CommitPosition::CommitTime(_) => LagSource::CommitTimestamp,
            CommitPosition::Gtid(_) => LagSource::GtidPosition,
        }
    }
}

/// A source's commit position, and the instant (monotonic) by which it had
/// certainly been reached: the end of the round trip that read it, or earlier
/// when the position is itself a commit time placed through the source's clock.
#[derive(Debug, Clone, PartialEq)]
pub struct PositionSample {
    pub position: CommitPosition,
    pub by_mono: f64,
}

/// How many commit positions the exporter remembers per source (about 50 KiB).
/// Only changes are kept: at ten samples per second of a busy source that is
/// 100 s. A replica further behind keeps the heartbeats' bound, and while it
/// applies nothing its lag is carried forward from its last reading.
pub const POSITION_HISTORY_LEN: usize = 1024;

/// A source's commit positions as sampled between heartbeats, oldest first, one
/// entry per change. A clone is cheap, like [`WriteHistory`]'s.
#[derive(Debug, Default, Clone)]
pub struct PositionHistory {
    entries: Arc<VecDeque<PositionSample>>,
}

impl PositionHistory {
    /// Records a sample when the position moved. One that went back (a restored
    /// or rebuilt server, a GTID position reset) starts the history again: what
    /// was remembered no longer describes this server's commits.
    pub fn push(&mut self, sample: PositionSample) {
        if self.entries.back().is_some_and(|last| last.position == sample.position) {
            return;
        }
        let entries = Arc::make_mut(&mut self.entries);
        if entries.back().is_some_and(|last| last.position.ahead_of(&sample.position)) {
            entries.clear();
        }
        if entries.len() == POSITION_HISTORY_LEN {
            entries.pop_front();
        }
        entries.push_back(sample);
    }

    pub fn is_empty(&self) -> bool {
        self.entries.is_empty()
    }

    /// The newest position sampled.
    pub fn latest(&self) -> Option<&CommitPosition> {
        self.entries.back().map(|s| &s.position)
    }

    /// The earliest instant by which the source had committed something a
    /// replica at `replica` lacks, if any remembered sample shows one. Positions
    /// only move forward here, so "ahead of the replica" holds from some sample on.
    pub fn first_ahead_of(&self, replica: &CommitPosition) -> Option<f64> {
        let idx = self.entries.partition_point(|s| !s.position.ahead_of(replica));
        self.entries.get(idx).map(|s| s.by_mono)
    }
}

/// Which bound gave a pair's lag.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum LagSource {
    /// The age of the oldest source heartbeat the replica does not show.
    #[default]
    Heartbeat,
    /// A source commit, sampled between heartbeats with its commit time, that
    /// the replica has not replayed (PostgreSQL with `track_commit_timestamp`).
    CommitTimestamp,
    /// A source GTID position, sampled between heartbeats, beyond the replica's
    /// executed position (MariaDB).
    GtidPosition,
}

impl LagSource {
    pub const ALL: [LagSource; 3] =
        [LagSource::Heartbeat, LagSource::CommitTimestamp, LagSource::GtidPosition];

    pub fn as_str(self) -> &'static str {
        match self {
            LagSource::Heartbeat => "heartbeat",
            LagSource::CommitTimestamp => "commit_timestamp",
            LagSource::GtidPosition => "gtid_position",
        }
    }
}

/// Tightens an `Ok` reading's lag (at the read instant `read_mono`) with the
/// source's sampled commit positions. `replica` is the replica's applied
/// position, read after the rows (so at least what it had applied at the read):
/// if the source was ahead of it at a sample reached by instant `t`, a
/// transaction committed by `t` was not visible at the read, so the true lag
/// then was at least `read_mono − t`. A source samples its position several
/// times per heartbeat interval, so under write traffic this bound comes within
/// one sample period of the truth where the heartbeats' own bound can be a
/// whole interval below it. Never above the reading's exposure (the upper
/// bound), never below its lag.
///
/// Unchanged, with [`LagSource::Heartbeat`]: a reading other than `Ok`, no
/// replica position, no sample ahead of it (an idle source: lag stays exactly
/// what the heartbeats say, 0 on a replica that has them all), or a bound no
/// tighter than the heartbeats'.
pub fn refine_lag(
    reading: Reading,
    read_mono: f64,
    replica: Option<&CommitPosition>,
    positions: &PositionHistory,
) -> (Reading, LagSource) {
    let unchanged = (reading, LagSource::Heartbeat);
    let (Reading::Ok { lag, exposure, basis }, Some(replica)) = (reading, replica) else {
        return unchanged;
    };
    let Some(by) = positions.first_ahead_of(replica) else {
        return unchanged;
    };
    let bound = (read_mono - by).min(exposure);
    if bound <= lag {
        return unchanged;
    }
    (Reading::Ok { lag: bound, exposure, basis }, replica.lag_source())
}

/// A replica that shows no row at all of a source whose heartbeats this process
/// writes (a replica a failover left following a dead primary, or one that never
/// received the row): it has none of them. Lag is the age of the oldest write this
/// process remembers, a lower bound; exposure is at least that, and at least
/// `floor`, the age of the newest heartbeat of the cluster's earlier writers the
/// replica holds (its data ends there). `None` when nothing was written yet.
pub fn evaluate_missing(history: &WriteHistory, read_mono: f64, floor: Option<f64>) -> Option<Reading> {
    let first = history.first()?;
    let lag = (read_mono - first.mono).max(0.0);
    let exposure = floor.map_or(lag, |f| f.max(lag));
    Some(Reading::Ok { lag, exposure, basis: Basis::Monotonic })
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;
    /// Database clocks here read monotonic time plus this (November 2023).
    const T0: f64 = 1_700_000_000.0;

    fn history(writes: &[(i64, f64)]) -> WriteHistory {
        let mut h = WriteHistory::default();
        for &(seq, mono) in writes {
            h.push(WriteRecord { seq, mono, db_us: ((T0 + mono) * 1e6) as i64 });
        }
        h
    }

    fn replica(at: f64, clock_ahead: f64) -> ClockSample {
        ClockSample { db_us: ((T0 + at + clock_ahead) * 1e6) as i64, mono: at, rtt: 0.0 }
    }

    fn input<'a>(seq: i64, written_at: f64, read_at: f64, h: Option<&'a WriteHistory>) -> PairInput<'a> {
        PairInput {
            seq: Field::Int(seq),
            written_us: Field::Int(((T0 + written_at) * 1e6) as i64),
            replica_clock: replica(read_at, 0.0),
            history: h,
            source_clock: None,
            interval: 1.0,
        }
    }

    fn ok(r: Reading) -> (f64, f64, Basis) {
        match r {
            Reading::Ok { lag, exposure, basis } => {
                ((lag * 1e3).round() / 1e3, (exposure * 1e3).round() / 1e3, basis)
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn caught_up_replica_has_zero_lag_and_sub_interval_exposure() {
        let h = history(&[(1, 10.0), (2, 11.0), (3, 12.0)]);
        assert_eq!(ok(evaluate(&input(3, 12.0, 12.4, Some(&h)))), (0.0, 0.4, Basis::Monotonic));
    }

    #[test]
    fn stuck_replica_lag_counts_from_first_missing_heartbeat() {
        let h = history(&[(1, 10.0), (2, 11.0), (3, 12.0), (4, 13.0)]);
        // Replica shows seq 1; seq 2 was written at 11.0; read at 13.5.
        assert_eq!(ok(evaluate(&input(1, 10.0, 13.5, Some(&h)))), (2.5, 3.5, Basis::Monotonic));
    }

    #[test]
    fn a_write_after_the_read_is_not_expected_yet() {
        let h = history(&[(1, 10.0), (2, 11.0)]);
        assert_eq!(ok(evaluate(&input(1, 10.0, 10.9, Some(&h)))), (0.0, 0.9, Basis::Monotonic));
    }

    #[test]
    fn foreign_writer_gives_lower_bound_lag() {
        let mut i = input(7, 10.0, 13.5, None);
        assert_eq!(ok(evaluate(&i)), (2.5, 3.5, Basis::ReplicaClock));
        // The source reached directly: its clock maps the timestamp, skew-free.
        i.replica_clock = replica(13.5, 50.0); // replica clock 50 s ahead
        i.source_clock = Some(ClockSample { db_us: (T0 as i64 + 13) * S, mono: 13.0, rtt: 0.002 });
        assert_eq!(ok(evaluate(&i)), (2.5, 3.5, Basis::SourceClock));
    }

    #[test]
    fn skew_shows_as_future_timestamp_not_zero() {
        let mut i = input(7, 10.0, 10.5, None);
        i.replica_clock = replica(10.5, -2.0); // replica clock 2 s behind
        match evaluate(&i) {
            Reading::FutureTimestamp { ahead, basis } => {
                assert!((ahead - 1.5).abs() < 1e-6);
                assert_eq!(basis, Basis::ReplicaClock);
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn null_timestamp_is_its_own_reading() {
        let mut i = input(1, 0.0, 1.0, None);
        i.written_us = Field::Null;
        assert_eq!(evaluate(&i), Reading::NullTimestamp);
    }

    #[test]
    fn an_unusable_time_or_sequence_is_its_own_reading() {
        let h = history(&[(1, 10.0)]);
        // (seq, written_us) → reading, for a source this process writes and for a
        // foreign one alike.
        let year = |y: i64| (y - 1970) * 31_556_952 * S;
        let cases = [
            (Field::Int(1), Field::Invalid, Reading::InvalidTimestamp), // ±infinity, NaN, unparsable
            (Field::Int(1), Field::Int(i64::MAX), Reading::InvalidTimestamp),
            (Field::Int(1), Field::Int(i64::MIN), Reading::InvalidTimestamp),
            (Field::Int(1), Field::Int(0), Reading::InvalidTimestamp), // the epoch: a zero date
            (Field::Int(1), Field::Int(year(1900)), Reading::InvalidTimestamp),
            (Field::Int(1), Field::Int(year(12000)), Reading::InvalidTimestamp),
            (Field::Invalid, Field::Int((T0 as i64 + 10) * S), Reading::InvalidSequence),
            (Field::Invalid, Field::Null, Reading::NullTimestamp),
            (Field::Invalid, Field::Invalid, Reading::InvalidTimestamp),
        ];
        for (seq, written_us, want) in cases {
            for history in [None, Some(&h)] {
                let mut i = input(1, 10.0, 11.0, history);
                (i.seq, i.written_us) = (seq, written_us);
                assert_eq!(evaluate(&i), want, "{seq:?} {written_us:?}");
            }
        }
        // A time ahead of the clock by up to a day is clock skew; beyond that (the
        // year 2100) no clock's reading: an invalid row.
        let mut i = input(1, 10.0, 11.0, None);
        i.written_us = Field::Int(year(2100));
        assert_eq!(evaluate(&i), Reading::InvalidTimestamp);
        i.written_us = Field::Int(((T0 + 11.0 + MAX_CLOCK_SKEW - 60.0) * 1e6) as i64);
        assert!(matches!(evaluate(&i), Reading::FutureTimestamp { ahead, .. } if ahead > 86_000.0));
        // A NULL sequence is no damage: the lag falls back to the lower bound.
        i = input(1, 10.0, 13.5, Some(&h));
        i.seq = Field::Null;
        assert_eq!(ok(evaluate(&i)), (2.5, 3.5, Basis::ReplicaClock));
        // The bounds themselves are valid times.
        for us in [*VALID_WRITTEN_US.start(), 1_700_000_000 * S] {
            i = input(1, 10.0, 11.0, None);
            i.written_us = Field::Int(us);
            assert!(matches!(evaluate(&i), Reading::Ok { .. }), "{us}");
        }
    }

    #[test]
    fn a_restart_never_reads_less_than_exposure_minus_interval() {
        // A new process remembers writes 21.. only; the replica shows seq 1, written
        // 20 intervals before the restart. Without the bound, lag would count from
        // write 21 (2.5 s); the truth is about 24.5 s.
        let h = history(&[(21, 30.0), (22, 31.0), (23, 32.0)]);
        assert_eq!(ok(evaluate(&input(1, 10.0, 32.5, Some(&h)))), (21.5, 22.5, Basis::ReplicaClock));
    }

    #[test]
    fn a_restart_with_the_replica_caught_up_stays_exact() {
        // The replica shows the last write of the previous process (seq 20); the
        // first unseen one is ours (seq 21), whatever the downtime was.
        let h = history(&[(21, 30.0), (22, 31.0)]);
        assert_eq!(ok(evaluate(&input(20, 10.0, 31.5, Some(&h)))), (1.5, 21.5, Basis::ReplicaClock));
    }

    #[test]
    fn a_replica_behind_more_than_the_history_keeps_the_bound() {
        let mut h = WriteHistory::default();
        for i in 0..(HISTORY_LEN as i64 + 100) {
            h.push(WriteRecord { seq: i, mono: i as f64, db_us: ((T0 + i as f64) * 1e6) as i64 });
        }
        let now = HISTORY_LEN as f64 + 100.0;
        // Seq 5 was forgotten long ago; the first remembered write is seq 100.
        let (lag, exposure, _) = ok(evaluate(&input(5, 5.0, now, Some(&h))));
        assert_eq!(exposure, now - 5.0);
        assert_eq!(lag, exposure - 1.0);
    }

    #[test]
    fn a_gap_inside_the_history_keeps_the_bound() {
        // Write 2 committed but its answer timed out: never recorded.
        let h = history(&[(1, 10.0), (3, 12.0)]);
        assert_eq!(ok(evaluate(&input(1, 10.0, 14.0, Some(&h)))), (3.0, 4.0, Basis::Monotonic));
    }

    #[test]
    fn a_missing_row_lags_from_the_first_remembered_write() {
        let h = history(&[(1, 10.0), (2, 11.0), (3, 12.0)]);
        assert_eq!(ok(evaluate_missing(&h, 15.0, None).unwrap()), (5.0, 5.0, Basis::Monotonic));
        assert_eq!(ok(evaluate_missing(&h, 15.0, Some(9.0)).unwrap()), (5.0, 9.0, Basis::Monotonic));
        assert_eq!(ok(evaluate_missing(&h, 9.0, None).unwrap()), (0.0, 0.0, Basis::Monotonic));
        assert!(evaluate_missing(&WriteHistory::default(), 15.0, None).is_none());
    }

    /// A source clock that reads monotonic time plus T0, sampled at `at`.
    fn source(at: f64, rtt: f64) -> Option<ClockSample> {
        Some(ClockSample { db_us: ((T0 + at) * 1e6) as i64, mono: at, rtt })
    }

    fn replayed(commit_at: f64, observed: f64) -> Option<ReplayedCommit> {
        Some(ReplayedCommit { commit_us: ((T0 + commit_at) * 1e6) as i64, observed_mono: observed })
    }

    fn refined(
        r: Reading,
        read: f64,
        c: Option<ReplayedCommit>,
        src: Option<ClockSample>,
    ) -> (f64, f64, &'static str) {
        let (r, source) = refine_exposure(r, read, c, src);
        let (lag, exposure, _) = ok(r);
        (lag, exposure, source.as_str())
    }

    #[test]
    fn a_newer_replayed_commit_tightens_exposure() {
        // Traffic: the replica shows the heartbeat of 13.0 and replayed a commit of
        // 13.7; read at 13.9, the replay time read just after.
        let h = history(&[(1, 10.0), (2, 11.0), (3, 12.0), (4, 13.0)]);
        let r = evaluate(&input(4, 13.0, 13.9, Some(&h)));
        assert_eq!(ok(r), (0.0, 0.9, Basis::Monotonic));
        assert_eq!(
            refined(r, 13.9, replayed(13.7, 13.91), source(13.91, 0.0)),
            (0.0, 0.2, "commit_timestamp")
        );
        // The source clock's half round trip, and its drift since the sample, are slack.
        let (_, e, s) = refined(r, 13.9, replayed(13.7, 13.91), source(13.91, 0.02));
        assert_eq!((e, s), (0.21, "commit_timestamp"));
        let (_, e, _) = refined(r, 13.9, replayed(13.7, 113.91), source(13.91, 0.0));
        assert_eq!(e, 0.25); // a sample 100 s older than the observation: 50 ms of drift
                             // Never below the lag read at the same instant (the replica replayed more
                             // between the read and the replay time's).
        let r = evaluate(&input(1, 10.0, 13.5, Some(&h)));
        let (lag, e, s) = refined(r, 13.5, replayed(13.49, 13.51), source(13.51, 0.0));
        assert_eq!((lag, e, s), (2.5, 2.5, "commit_timestamp"));
    }

    #[test]
    fn an_older_replayed_commit_keeps_the_heartbeat_bound() {
        // Idle: the last commit the replica replayed is older than the heartbeat it shows.
        let h = history(&[(1, 10.0), (2, 11.0)]);
        let r = evaluate(&input(2, 11.0, 11.4, Some(&h)));
        assert_eq!(refined(r, 11.4, replayed(5.0, 11.41), source(11.0, 0.0)), (0.0, 0.4, "heartbeat"));
        assert_eq!(refine_exposure(r, 11.4, replayed(5.0, 11.41), source(11.0, 0.0)).0, r);
        // The seen heartbeat's own commit, a millisecond after its `now()`: no news.
        assert_eq!(refined(r, 11.4, replayed(11.001, 11.41), source(11.0, 0.0)), (0.0, 0.4, "heartbeat"));
        assert_eq!(refined(r, 11.4, replayed(11.004, 11.41), source(11.0, 0.0)).2, "commit_timestamp");
    }

    #[test]
    fn a_future_commit_or_no_source_clock_changes_nothing() {
        let h = history(&[(1, 10.0), (2, 11.0), (3, 12.0), (4, 13.0)]);
        let r = evaluate(&input(1, 10.0, 13.5, Some(&h)));
        // A commit 2 s ahead of the source's clock at its observation: skew, ignored.
        assert_eq!(refined(r, 13.5, replayed(15.5, 13.51), source(13.4, 0.002)), (2.5, 3.5, "heartbeat"));
        // Through the replica's clock it would mix two hosts' clocks: no source clock, no refinement.
        assert_eq!(refined(r, 13.5, replayed(13.3, 13.51), None), (2.5, 3.5, "heartbeat"));
        assert_eq!(refined(r, 13.5, None, source(13.4, 0.0)), (2.5, 3.5, "heartbeat"));
        // Only an Ok reading has an exposure to refine.
        let bad = Reading::NullTimestamp;
        assert_eq!(
            refine_exposure(bad, 13.5, replayed(13.3, 13.51), source(13.4, 0.0)),
            (bad, ExposureSource::Heartbeat)
        );
    }

    fn at(position: CommitPosition, by_mono: f64) -> PositionSample {
        PositionSample { position, by_mono }
    }

    fn gtid(p: &[(u32, u64)]) -> CommitPosition {
        CommitPosition::Gtid(p.to_vec())
    }

    #[test]
    fn positions_compare_per_kind() {
        use CommitPosition::CommitTime as T;
        assert!(T(5).ahead_of(&T(4)));
        assert!(!T(5).ahead_of(&T(5)) && !T(4).ahead_of(&T(5)));
        assert!(gtid(&[(0, 10)]).ahead_of(&gtid(&[(0, 9)])));
        assert!(!gtid(&[(0, 10)]).ahead_of(&gtid(&[(0, 10), (1, 3)])));
        assert!(gtid(&[(0, 10), (2, 5)]).ahead_of(&gtid(&[(0, 10), (2, 4)])));
        // A domain the replica shows nothing of is no evidence.
        assert!(!gtid(&[(0, 10), (2, 1)]).ahead_of(&gtid(&[(0, 10)])));
        assert!(!T(5).ahead_of(&gtid(&[(0, 1)])));
    }

    #[test]
    fn position_history_keeps_changes_and_restarts_when_they_go_back() {
        let mut h = PositionHistory::default();
        h.push(at(gtid(&[(0, 1)]), 1.0));
        h.push(at(gtid(&[(0, 1)]), 1.1)); // idle: no change, not kept
        h.push(at(gtid(&[(0, 3)]), 1.2));
        assert_eq!(h.entries.len(), 2);
        assert_eq!(h.first_ahead_of(&gtid(&[(0, 1)])), Some(1.2));
        assert_eq!(h.first_ahead_of(&gtid(&[(0, 0)])), Some(1.0));
        assert_eq!(h.first_ahead_of(&gtid(&[(0, 3)])), None);
        h.push(at(gtid(&[(0, 2)]), 1.3)); // reset under us
        assert_eq!(h.entries.len(), 1);
        for i in 0..(POSITION_HISTORY_LEN as i64 + 5) {
            h.push(at(CommitPosition::CommitTime(i), i as f64));
        }
        assert_eq!(h.entries.len(), POSITION_HISTORY_LEN);
    }

    #[test]
    fn a_sampled_position_tightens_lag_under_write_traffic() {
        use CommitPosition::CommitTime as T;
        // Heartbeats each second; the replica shows 12.0 and stalled after a
        // commit at 12.45; the source committed again at 12.5 (sampled by 12.52).
        let h = history(&[(1, 10.0), (2, 11.0), (3, 12.0), (4, 13.0), (5, 14.0)]);
        let r = evaluate(&input(3, 12.0, 14.3, Some(&h)));
        assert_eq!(ok(r), (1.3, 2.3, Basis::Monotonic));
        let mut p = PositionHistory::default();
        for (commit, by) in
            [(11_900_000, 11.92), (12_450_000, 12.47), (12_500_000, 12.52), (13_000_000, 13.02)]
        {
            p.push(at(T(commit), by));
        }
        let (refined, source) = refine_lag(r, 14.3, Some(&T(12_450_000)), &p);
        let (lag, exposure, _) = ok(refined);
        assert!((lag - 1.78).abs() < 1e-9 && exposure == 2.3, "{lag} {exposure}");
        assert_eq!(source, LagSource::CommitTimestamp);
        // Caught up with the newest sample: nothing is known to be missing.
        assert_eq!(refine_lag(r, 14.3, Some(&T(13_000_000)), &p), (r, LagSource::Heartbeat));
        // No replica position, or no samples: the heartbeats' bound.
        assert_eq!(refine_lag(r, 14.3, None, &p), (r, LagSource::Heartbeat));
        assert_eq!(refine_lag(r, 14.3, Some(&T(0)), &PositionHistory::default()), (r, LagSource::Heartbeat));
        // Never above the exposure, never below the heartbeats' lag.
        let (capped, _) = refine_lag(r, 14.3, Some(&T(0)), &{
            let mut q = PositionHistory::default();
            q.push(at(T(1), 11.0));
            q
        });
        assert_eq!(ok(capped).0, 2.3);
        let (r2, s2) = refine_lag(r, 14.3, Some(&T(12_999_999)), &p);
        assert_eq!((ok(r2).0, s2), (1.3, LagSource::Heartbeat));
        // A GTID position names its own source.
        let mut g = PositionHistory::default();
        g.push(at(gtid(&[(0, 7)]), 12.2));
        assert_eq!(refine_lag(r, 14.3, Some(&gtid(&[(0, 6)])), &g).1, LagSource::GtidPosition);
        // Not an Ok reading: nothing to tighten.
        let bad = Reading::NullTimestamp;
        assert_eq!(refine_lag(bad, 14.3, Some(&T(0)), &p), (bad, LagSource::Heartbeat));
    }

    #[test]
    fn history_resets_when_sequence_goes_back() {
        let mut h = history(&[(5, 1.0), (6, 2.0)]);
        h.push(WriteRecord { seq: 1, mono: 3.0, db_us: 0 });
        assert_eq!(h.latest().unwrap().seq, 1);
        assert_eq!(h.entries.len(), 1);
    }

    #[test]
    fn history_is_bounded() {
        let mut h = WriteHistory::default();
        for i in 0..(HISTORY_LEN as i64 + 10) {
            h.push(WriteRecord { seq: i, mono: i as f64, db_us: i });
        }
        assert_eq!(h.entries.len(), HISTORY_LEN);
        assert_eq!(h.entries.front().unwrap().seq, 10);
    }
}
