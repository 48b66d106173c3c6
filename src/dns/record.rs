//! What one failover record looks like right now, and when its last change spread.
//!
//! A [`RecordState`] holds the expected answer, each server's latest outcome, and the
//! propagation clock. It is pure logic (times are passed in), so the rules below are
//! tested table-style without a network:
//!
//! - The expected answer changes when the active region changes (a new writable node
//!   in a followed cluster, or the first time the region is known). That resets the
//!   clock: `changed_at` is now, and the change is neither published nor propagated.
//! - The change is **published** the first time every authoritative server that
//!   answered serves the expected answer (at least one must answer). If one of them
//!   serves something else later (the zone moved again), it is unpublished.
//! - It is **propagated** the first time, after publication, that every configured
//!   resolver serves it. The propagation time is propagated − published: the delay
//!   resolver caches add, comparable with the record's TTL. It is only reported for a
//!   publication seen happen: one already in place when the exporter started (seen in
//!   its first round) has no known start.

use super::query::{Answer, Failure, Mode, Outcome};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;

/// A server's latest outcome for this record, and its failures so far.
#[derive(Debug, Clone, Default)]
pub struct ServerSlot {
    /// `None` until the server has been asked once.
    pub last: Option<Outcome<Answer>>,
    /// Failed queries by reason (a counter: it catches failures between scrapes).
    pub failures: BTreeMap<Failure, u64>,
}

impl ServerSlot {
    pub fn answer(&self) -> Option<&Answer> {
        self.last.as_ref()?.result.as_ref().ok()
    }

    pub fn failure(&self) -> Option<Failure> {
        self.last.as_ref()?.result.as_ref().err().copied()
    }
}

#[derive(Debug, Default)]
pub struct RecordState {
    /// The region whose answer is expected; `None` until known.
    pub active_region: Option<String>,
    pub expected: Option<BTreeSet<String>>,
    /// Unix time the expected answer last changed (or was first known).
    pub changed_at: Option<f64>,
    /// Unix time every answering authoritative server first served the expected answer.
    pub published_at: Option<f64>,
    propagated: bool,
    /// Seconds from publication to every resolver serving the answer, for the last change.
    pub propagation: Option<f64>,
    /// Whether the publication was seen happen (not already in place in the first round).
    publication_seen: bool,
    /// Whether a whole round of queries has been recorded while the expected answer was
    /// known: publications found before that were already in place.
    pub first_round_done: bool,
    /// The servers of the current round and their latest outcomes.
    pub servers: BTreeMap<(Mode, SocketAddr), ServerSlot>,
}

impl RecordState {
    /// Sets the expected answer; a different one restarts the propagation clock.
    pub fn set_expected(&mut self, region: &str, values: &[String], now: f64) {
        let values: BTreeSet<String> = values.iter().cloned().collect();
        if self.expected.as_ref() == Some(&values) && self.active_region.as_deref() == Some(region) {
            return;
        }
        let answer_changed = self.expected.as_ref() != Some(&values);
        self.active_region = Some(region.to_owned());
        self.expected = Some(values);
        if answer_changed {
            self.changed_at = Some(now);
            self.published_at = None;
            self.propagated = false;
            self.propagation = None;
            self.evaluate(now);
        }
    }

    /// The active region has no configured answer: nothing can be judged until it has.
    pub fn clear_expected(&mut self, region: &str, now: f64) {
        if self.active_region.as_deref() == Some(region) && self.expected.is_none() {
            return;
        }
        self.active_region = Some(region.to_owned());
        self.expected = None;
        self.changed_at = Some(now);
        self.published_at = None;
        self.propagated = false;
        self.propagation = None;
    }

    /// Keeps the servers of this round (with their last outcomes) and forgets the others.
    pub fn set_servers(&mut self, servers: impl IntoIterator<Item = (Mode, SocketAddr)>) {
        let mut next = BTreeMap::new();
        for key in servers {
            let old = self.servers.remove(&key).unwrap_or_default();
            next.insert(key, old);
        }
        self.servers = next;
    }

    /// Records one server's outcome and moves the propagation clock.
    pub fn record(&mut self, mode: Mode, server: SocketAddr, outcome: Outcome<Answer>, now: f64) {
        if let Some(slot) = self.servers.get_mut(&(mode, server)) {
            if let Err(f) = outcome.result {
                *slot.failures.entry(f).or_default() += 1;
            }
            slot.last = Some(outcome);
            self.evaluate(now);
        }
    }

    /// Whether `server`'s latest answer is the expected one; `None` while unknown.
    pub fn matches(&self, mode: Mode, server: SocketAddr) -> Option<bool> {
        let expected = self.expected.as_ref()?;
        let slot = self.servers.get(&(mode, server))?;
        slot.last.as_ref()?;
        Some(slot.answer().is_some_and(|a| &a.values == expected))
    }

    /// Fraction of the resolvers whose latest answer is the expected one (a resolver
    /// that failed or has not answered yet counts as not serving it).
    pub fn ratio(&self) -> Option<f64> {
        self.expected.as_ref()?;
        let resolvers: Vec<_> = self.servers.keys().filter(|(m, _)| *m == Mode::Recursive).collect();
        if resolvers.is_empty() {
            return None;
        }
        let matching = resolvers.iter().filter(|(m, s)| self.matches(*m, *s) == Some(true)).count();
        Some(matching as f64 / resolvers.len() as f64)
    }

    fn evaluate(&mut self, now: f64) {
        let Some(expected) = &self.expected else {
            return;
        };
        let authoritative: Vec<&Answer> = self
            .servers
            .iter()
            .filter(|((m, _), _)| *m == Mode::Authoritative)
            .filter_map(|(_, s)| s.answer())
            .collect();
        let serves = |a: &&Answer| &a.values == expected;
        if self.published_at.is_none() && !authoritative.is_empty() && authoritative.iter().all(serves) {
            self.published_at = Some(now);
            self.publication_seen = self.first_round_done;
            self.propagated = false;
            self.propagation = None;
        } else if self.published_at.is_some() && !authoritative.iter().all(serves) {
            self.published_at = None;
            self.propagated = false;
            self.propagation = None;
        }
        if let (Some(published), false) = (self.published_at, self.propagated) {
            let mut resolvers = self.servers.iter().filter(|((m, _), _)| *m == Mode::Recursive).peekable();
            let all =
                resolvers.peek().is_some() && resolvers.all(|(_, s)| s.answer().is_some_and(|a| serves(&a)));
            if all {
                self.propagated = true;
                if self.publication_seen {
                    self.propagation = Some((now - published).max(0.0));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    const OLD: &str = "192.0.2.10";
    const NEW: &str = "198.51.100.20";

    fn ok(v: &str) -> Outcome<Answer> {
        Outcome { result: Ok(Answer { values: [v.to_owned()].into(), ttl: 3 }), duration: Duration::ZERO }
    }

    fn failed(f: Failure) -> Outcome<Answer> {
        Outcome { result: Err(f), duration: Duration::ZERO }
    }

    fn addr(port: u16) -> SocketAddr {
        SocketAddr::from(([127, 0, 0, 1], port))
    }

    const AUTH: (Mode, u16) = (Mode::Authoritative, 1);
    const R1: (Mode, u16) = (Mode::Recursive, 11);
    const R2: (Mode, u16) = (Mode::Recursive, 12);

    /// A record expecting NEW, with one authoritative server and two resolvers.
    fn record() -> RecordState {
        let mut r = RecordState::default();
        r.set_servers([AUTH, R1, R2].map(|(m, p)| (m, addr(p))));
        r.set_expected("eu-west-1", &[NEW.to_owned()], 0.0);
        r
    }

    /// Applies `(time, server, outcome)` events; the first `first_round` events are
    /// the first round.
    fn run(r: &mut RecordState, first_round: usize, events: &[(f64, (Mode, u16), Outcome<Answer>)]) {
        for (i, (t, (m, p), o)) in events.iter().enumerate() {
            if i == first_round {
                r.first_round_done = true;
            }
            r.record(*m, addr(*p), o.clone(), *t);
        }
    }

    #[test]
    fn propagation_is_measured_from_publication_to_the_last_resolver() {
        let mut r = record();
        run(&mut r, 3, &[(1.0, AUTH, ok(OLD)), (1.0, R1, ok(OLD)), (1.0, R2, ok(OLD))]);
        assert_eq!((r.published_at, r.ratio()), (None, Some(0.0)));
        run(&mut r, 0, &[(2.0, AUTH, ok(NEW)), (2.0, R1, ok(OLD)), (3.0, R1, ok(NEW))]);
        assert_eq!((r.published_at, r.ratio(), r.propagation), (Some(2.0), Some(0.5), None));
        run(&mut r, 0, &[(4.5, R2, ok(NEW))]);
        assert_eq!((r.ratio(), r.propagation), (Some(1.0), Some(2.5)));
        // A later round changes nothing.
        run(&mut r, 0, &[(5.0, AUTH, ok(NEW)), (5.0, R1, ok(NEW)), (5.0, R2, ok(NEW))]);
        assert_eq!((r.published_at, r.propagation), (Some(2.0), Some(2.5)));
    }

    #[test]
    fn already_in_place_at_start_has_no_propagation_time() {
        let mut r = record();
        run(&mut r, 3, &[(1.0, AUTH, ok(NEW)), (1.0, R1, ok(NEW)), (1.0, R2, ok(NEW))]);
        assert_eq!((r.published_at, r.ratio(), r.propagation), (Some(1.0), Some(1.0), None));
        // Published before start, resolvers still catching up: still no known start.
        let mut r = record();
        run(&mut r, 3, &[(1.0, AUTH, ok(NEW)), (1.0, R1, ok(OLD)), (1.0, R2, ok(NEW)), (2.0, R1, ok(NEW))]);
        assert_eq!((r.ratio(), r.propagation), (Some(1.0), None));
    }

    #[test]
    fn failing_resolvers_count_as_not_serving_and_hold_propagation() {
        let mut r = record();
        run(&mut r, 3, &[(1.0, AUTH, ok(OLD)), (1.0, R1, ok(OLD)), (1.0, R2, failed(Failure::Timeout))]);
        run(&mut r, 0, &[(2.0, AUTH, ok(NEW)), (3.0, R1, ok(NEW)), (3.0, R2, failed(Failure::Timeout))]);
        assert_eq!((r.ratio(), r.propagation), (Some(0.5), None));
        assert_eq!(r.matches(Mode::Recursive, addr(12)), Some(false));
        run(&mut r, 0, &[(6.0, R2, ok(NEW))]);
        assert_eq!(r.propagation, Some(4.0));
    }

    #[test]
    fn a_failing_authoritative_server_does_not_block_publication_but_a_stale_one_does() {
        let mut r = record();
        r.set_servers([AUTH, (Mode::Authoritative, 2), R1, R2].map(|(m, p)| (m, addr(p))));
        run(
            &mut r,
            4,
            &[
                (1.0, AUTH, ok(OLD)),
                ((1.0), (Mode::Authoritative, 2), failed(Failure::Network)),
                (1.0, R1, ok(OLD)),
                (1.0, R2, ok(OLD)),
                (2.0, AUTH, ok(NEW)),
            ],
        );
        assert_eq!(r.published_at, Some(2.0));
        // The second server comes back serving the old answer: not published after all.
        run(&mut r, 0, &[(3.0, (Mode::Authoritative, 2), ok(OLD))]);
        assert_eq!(r.published_at, None);
        run(&mut r, 0, &[(4.0, (Mode::Authoritative, 2), ok(NEW)), (5.0, R1, ok(NEW)), (7.0, R2, ok(NEW))]);
        assert_eq!((r.published_at, r.propagation), (Some(4.0), Some(3.0)));
    }

    #[test]
    fn a_new_expected_answer_restarts_the_clock() {
        let mut r = record();
        run(&mut r, 3, &[(1.0, AUTH, ok(NEW)), (1.0, R1, ok(NEW)), (1.0, R2, ok(NEW))]);
        r.set_expected("us-east-1", &[OLD.to_owned()], 10.0);
        assert_eq!((r.changed_at, r.published_at, r.ratio()), (Some(10.0), None, Some(0.0)));
        run(&mut r, 0, &[(12.0, AUTH, ok(OLD)), (13.0, R1, ok(OLD)), (15.0, R2, ok(OLD))]);
        assert_eq!((r.published_at, r.propagation), (Some(12.0), Some(3.0)));
        // The same answer again (same region) changes nothing.
        r.set_expected("us-east-1", &[OLD.to_owned()], 20.0);
        assert_eq!(r.changed_at, Some(10.0));
    }
}
