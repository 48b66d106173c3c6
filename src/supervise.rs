//! Keeps the exporter's background loops alive: a node's worker, the DNS loop and
//! the region-probe loop each run as a task that is started again when it panics,
//! so a bug met by one loop costs one restart, never that loop's readings for the
//! rest of the process's life.
//!
//! State kept: how many times each kind of loop was restarted since the process
//! started (`rpo_exporter_task_restarts_total{task}`), in process-wide counters.
//! Imports nothing of the crate.

use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;
use tokio_util::sync::CancellationToken;

/// The kinds of supervised loop: the `task` label's values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Loop {
    Worker,
    Dns,
    Health,
}

impl Loop {
    pub const ALL: [Loop; 3] = [Loop::Worker, Loop::Dns, Loop::Health];

    pub fn as_str(self) -> &'static str {
        match self {
            Loop::Worker => "worker",
            Loop::Dns => "dns",
            Loop::Health => "health",
        }
    }

    fn counter(self) -> &'static AtomicU64 {
        static RESTARTS: [AtomicU64; 3] = [AtomicU64::new(0), AtomicU64::new(0), AtomicU64::new(0)];
        &RESTARTS[self as usize]
    }

    /// Restarts of this kind of loop since the process started.
    pub fn restarts(self) -> u64 {
        self.counter().load(Ordering::Relaxed)
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
        kind.counter().fetch_add(1, Ordering::Relaxed);
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
    use std::sync::atomic::AtomicU32;
    use std::sync::Arc;

    #[tokio::test(start_paused = true)]
    async fn a_loop_that_panics_runs_again_and_is_counted() {
        let runs = Arc::new(AtomicU32::new(0));
        let before = Loop::Health.restarts();
        let counted = runs.clone();
        supervise(Loop::Health, "test", CancellationToken::new(), move || {
            let n = counted.fetch_add(1, Ordering::SeqCst);
            Some(async move {
                if n < 2 {
                    panic!("probe {n} failed");
                }
            })
        })
        .await;
        assert_eq!(runs.load(Ordering::SeqCst), 3, "two crashes, then a run that ended");
        assert!(Loop::Health.restarts() >= before + 2);
    }

    #[tokio::test(start_paused = true)]
    async fn shutdown_during_the_pause_ends_it() {
        let shutdown = CancellationToken::new();
        let token = shutdown.clone();
        let runs = Arc::new(AtomicU32::new(0));
        let counted = runs.clone();
        let supervised = tokio::spawn(supervise(Loop::Dns, "test", shutdown, move || {
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
        supervise(Loop::Worker, "gone", CancellationToken::new(), || None::<std::future::Ready<()>>).await;
    }

    #[test]
    fn panic_messages() {
        assert_eq!(panic_message(Box::new("static")), "static");
        assert_eq!(panic_message(Box::new(String::from("owned"))), "owned");
        assert_eq!(panic_message(Box::new(7_u8)), "a panic without a message");
    }
}
