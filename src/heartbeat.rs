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
use std::sync::OnceLock;
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

/// The writes this process made on one source, oldest first.
#[derive(Debug, Default, Clone)]
pub struct WriteHistory {
    entries: VecDeque<WriteRecord>,
}

impl WriteHistory {
    /// Records a write. A sequence that does not move forward means the row was
    /// reset under us (table recreated); what we remembered no longer matches it.
    pub fn push(&mut self, rec: WriteRecord) {
        if self.entries.back().is_some_and(|last| rec.seq <= last.seq) {
            self.entries.clear();
        }
        if self.entries.len() == HISTORY_LEN {
            self.entries.pop_front();
        }
        self.entries.push_back(rec);
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

    /// The oldest write after `seq` that happened before `before` (monotonic).
    fn first_after(&self, seq: i64, before: f64) -> Option<&WriteRecord> {
        let idx = self.entries.partition_point(|r| r.seq <= seq);
        self.entries.get(idx).filter(|r| r.mono < before)
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

/// What the replica shows of one source's row, with the context to judge it.
#[derive(Debug, Clone)]
pub struct PairInput<'a> {
    pub seq: Option<i64>,
    pub written_us: Option<i64>,
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
            Reading::FutureTimestamp { .. } => RowStatus::FutureTimestamp,
        }
    }
}

/// The bounded status of a source's row as seen on a replica.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RowStatus {
    Ok,
    NullTimestamp,
    FutureTimestamp,
    IdentityMismatch,
}

impl RowStatus {
    pub const ALL: [RowStatus; 4] =
        [RowStatus::Ok, RowStatus::NullTimestamp, RowStatus::FutureTimestamp, RowStatus::IdentityMismatch];

    pub fn as_str(self) -> &'static str {
        match self {
            RowStatus::Ok => "ok",
            RowStatus::NullTimestamp => "null_timestamp",
            RowStatus::FutureTimestamp => "future_timestamp",
            RowStatus::IdentityMismatch => "identity_mismatch",
        }
    }
}

/// Lag and exposure of one (source → replica) pair at the instant of the read.
pub fn evaluate(input: &PairInput) -> Reading {
    let Some(written_us) = input.written_us else {
        return Reading::NullTimestamp;
    };
    let read_mono = input.replica_clock.mono;
    let ours = input.history.filter(|h| !h.is_empty());
    let own_write = input.seq.zip(ours).and_then(|(seq, h)| h.find(seq, written_us));
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
        return Reading::FutureTimestamp { ahead: -exposure, basis };
    }
    // Within the measurement's own error a tiny negative is noise, not skew.
    let exposure = exposure.max(0.0);
    let lag = match (ours, input.seq) {
        // We wrote the source's heartbeats: the oldest one not visible yet is the
        // first of ours after the seen sequence that was written before the read.
        (Some(h), Some(seq)) => {
            h.first_after(seq, read_mono).map_or(0.0, |next| (read_mono - next.mono).max(0.0))
        }
        // Someone else writes them: the next one was due one interval after the
        // seen one, a lower bound while that writer is healthy.
        _ => (exposure - input.interval).max(0.0),
    };
    Reading::Ok { lag, exposure, basis: if own_write.is_some() { Basis::Monotonic } else { basis } }
}

#[cfg(test)]
mod tests {
    use super::*;

    const S: i64 = 1_000_000;

    fn history(writes: &[(i64, f64)]) -> WriteHistory {
        let mut h = WriteHistory::default();
        for &(seq, mono) in writes {
            // The source's clock runs 1000 s ahead of monotonic time here.
            h.push(WriteRecord { seq, mono, db_us: ((1000.0 + mono) * 1e6) as i64 });
        }
        h
    }

    fn replica(at: f64, clock_ahead: f64) -> ClockSample {
        ClockSample { db_us: ((1000.0 + at + clock_ahead) * 1e6) as i64, mono: at, rtt: 0.0 }
    }

    fn input<'a>(seq: i64, written_at: f64, read_at: f64, h: Option<&'a WriteHistory>) -> PairInput<'a> {
        PairInput {
            seq: Some(seq),
            written_us: Some(((1000.0 + written_at) * 1e6) as i64),
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
        i.source_clock = Some(ClockSample { db_us: 1013 * S, mono: 13.0, rtt: 0.002 });
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
        i.written_us = None;
        assert_eq!(evaluate(&i), Reading::NullTimestamp);
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
