//! Keeps the exporter's background loops alive and paced: a node's worker and
//! each probe subsystem's loop run as a task that is started again when it
//! panics, so a bug met by one loop costs one restart, never that loop's readings
//! for the rest of the process's life; each runs its rounds at one [`Pace`]: a
//! round per interval, until shutdown.
//!
//! State kept: how many times each kind of loop was restarted since the process
//! started (`rpo_exporter_task_restarts_total{task}`), in process-wide counters.
//! Imports nothing of the crate.

use std::collections::BTreeMap;
use std::future::Future;
use std::sync::Mutex;
use std::time::Duration;
use tokio::time::{Instant, Interval, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

/// A kind of supervised loop, by name: the `task` label's value, so a name
/// written in the code (`worker`, each probe subsystem's), never one from the
/// config or the network.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Loop(&'static str);

/// Restarts per kind of loop since the process started; a kind that never
/// crashed is absent (0).
static RESTARTS: Mutex<BTreeMap<&'static str, u64>> = Mutex::new(BTreeMap::new());

impl Loop {
    /// Each node's worker.
    pub const WORKER: Loop = Loop("worker");

    pub const fn new(name: &'static str) -> Loop {
        Loop(name)
    }

    pub fn as_str(self) -> &'static str {
        self.0
    }

    /// Restarts of this kind of loop since the process started.
    pub fn restarts(self) -> u64 {
        RESTARTS.lock().unwrap_or_else(|p| p.into_inner()).get(self.0).copied().unwrap_or(0)
    }

    fn count_restart(self) {
        *RESTARTS.lock().unwrap_or_else(|p| p.into_inner()).entry(self.0).or_default() += 1;
    }
}

/// A loop's pace: a round every interval from its start (a round that overruns
/// delays the next; missed ones are not made up in a burst), until shutdown. A
/// shutdown while waiting or mid-round ends the loop at once: the round is
/// abandoned, and nothing half-done is kept.
#[derive(Debug)]
pub struct Pace {
    ticker: Interval,
    shutdown: CancellationToken,
}

impl Pace {
    /// The first round at `start`, then one every `interval` (more than zero).
    pub fn new(start: Instant, interval: Duration, shutdown: CancellationToken) -> Pace {
        let mut ticker = tokio::time::interval_at(start, interval);
        ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
        Pace { ticker, shutdown }
    }

    /// Waits for the next tick: `false` once shutdown is cancelled (the loop ends),
    /// for a loop whose round watches the shutdown itself.
    pub async fn tick(&mut self) -> bool {
        tokio::select! {
            _ = self.shutdown.cancelled() => false,
            _ = self.ticker.tick() => true,
        }
    }

    /// Waits for the next tick, then runs `round`: its output, or `None` once
    /// shutdown is cancelled (the loop ends). `round` is first polled after the
    /// tick: give it an async fn's or block's future, which does nothing before.
    pub async fn round<T>(&mut self, round: impl Future<Output = T>) -> Option<T> {
        if !self.tick().await {
            return None;
        }
        tokio::select! {
            _ = self.shutdown.cancelled() => None,
            out = round => Some(out),
        }
    }
}

/// The pause before a crashed loop runs again: long enough that a loop that
/// panics at once cannot spin, short enough to lose at most a tick or two.
const BACKOFF_FIRST: Duration = Duration::from_secs(1);
const BACKOFF_MAX: Duration = Duration::from_secs(30);

/// Runs the loop `start` builds until it ends or `shutdown` is cancelled; when it
/// panics, logs the panic, counts it and runs a fresh one after a pause that
/// doubles with each crash in a row (from 1 s to 30 s, reset by a loop that ran
/// longer than the pause). `start` returns `None` when there is nothing left to
/// run (a worker whose node a reload removed). `what` names the loop in logs:
/// configured names only, never a DSN.
pub async fn supervise<F, Fut>(kind: Loop, what: &str, shutdown: CancellationToken, mut start: F)
where
    F: FnMut() -> Option<Fut>,
    Fut: Future<Output = ()> + Send + 'static,
{
    let mut backoff = BACKOFF_FIRST;
    loop {
        let Some(run) = start() else { return };
        let started = tokio::time::Instant::now();
        let error = match tokio::spawn(run).await {
            Ok(()) => return,
            Err(e) if e.is_cancelled() => return,
            Err(e) => panic_message(e.into_panic()),
        };
        kind.count_restart();
        if started.elapsed() > backoff {
            backoff = BACKOFF_FIRST;
        }
        tracing::error!(task = kind.as_str(), name = %what, error = %error,
            retry_in = ?backoff, "Background loop crashed; restarting it");
        tokio::select! {
            _ = shutdown.cancelled() => return,
            _ = tokio::time::sleep(backoff) => {}
        }
        backoff = (backoff * 2).min(BACKOFF_MAX);
    }
}

/// A panic's payload as text (what `panic!` was given, when it was a string).
pub fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(s) => *s,
        Err(payload) => match payload.downcast::<&'static str>() {
            Ok(s) => (*s).to_owned(),
            Err(_) => "a panic without a message".to_owned(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, Ordering};
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn a_loop_that_panics_runs_again_and_is_counted() {
        let runs = Arc::new(AtomicU32::new(0));
        let kind = Loop::new("test_crashes");
        let counted = runs.clone();
        supervise(kind, "test", CancellationToken::new(), move || {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            Some(async move {
                if n < 2 {
                    panic!("probe {n} failed");
                }
            })
        })
        .await;
        assert_eq!(runs.load(Ordering::SeqCst), 3, "two crashes, then a run that ended");
        assert_eq!(kind.restarts(), 2);
        assert_eq!(Loop::new("test_never_ran").restarts(), 0);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_during_the_pause_ends_it() {
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let runs = Arc::new(AtomicU32::new(0));
        let counted = runs.clone();
        let supervised = tokio::spawn(supervise(Loop::new("test_pause"), "test", shutdown, move || {
            counted.fetch_add(1, Ordering::SeqCst);
            Some(async { panic!("always") })
        }));
        tokio::time::sleep(Duration::from_millis(500)).await;
        token.cancel();
        supervised.await.unwrap();
        assert_eq!(runs.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn nothing_to_run_returns_at_once() {
        supervise(Loop::WORKER, "gone", CancellationToken::new(), || None::<std::future::Ready<()>>).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_pace_runs_a_round_per_interval_until_shutdown() {
        let shutdown = CancellationToken::new();
        let start = Instant::now();
        let mut pace = Pace::new(start, Duration::from_secs(1), shutdown.clone());
        let at = || async move { start.elapsed() };
        assert_eq!(pace.round(at()).await, Some(Duration::ZERO));
        assert_eq!(pace.round(at()).await, Some(Duration::from_secs(1)));
        // A round that overruns (2 s to 4.5 s) delays the next; none is made up.
        pace.round(async { tokio::time::sleep(Duration::from_millis(2500)).await }).await;
        assert_eq!(pace.round(at()).await, Some(Duration::from_millis(4500)));
        assert_eq!(pace.round(at()).await, Some(Duration::from_millis(5500)));
        // A shutdown mid-round abandons it, and the loop ends.
        let cancel = shutdown.clone();
        let cut = pace.round(async move {
            cancel.cancel();
            std::future::pending::<Duration>().await
        });
        assert_eq!(cut.await, None);
        assert_eq!(pace.round(at()).await, None);
    }

    #[test]
    fn panic_messages() {
        assert_eq!(panic_message(Box::new("static")), "static");
        assert_eq!(panic_message(Box::new(String::from("owned"))), "owned");
        assert_eq!(panic_message(Box::new(7_u8)), "a panic without a message");
    }
}
