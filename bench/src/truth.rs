//! Ground truth: the reference lag every tool is judged against.
//!
//! Per lab a writer commits a numbered row on the primary every 100 ms (while
//! [`Truth::writing`] is on) and a poller records when each row becomes visible on the
//! replica. True lag at time t = age of the oldest row committed by t but not visible at
//! t ([`Truth::at`]). Owns the commit instants, the visibility history and the two
//! connections that feed them; knows nothing of the tools.

use anyhow::Result;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Commit instants of the truth rows (row id n at index n-1) and the history of the
/// highest id visible on the replica.
#[derive(Default)]
pub struct Truth {
    commits: Mutex<Vec<Instant>>,
    visible: Mutex<Vec<(Instant, u64)>>,
    /// The writer commits rows only while this is on.
    pub writing: AtomicBool,
}

impl Truth {
    /// True lag at `t`: age of the oldest row committed by `t` and not visible at `t`.
    pub fn at(&self, t: Instant) -> f64 {
        let v = {
            let vis = self.visible.lock().unwrap();
            let i = vis.partition_point(|(at, _)| *at <= t);
            if i == 0 {
                0
            } else {
                vis[i - 1].1
            }
        };
        let commits = self.commits.lock().unwrap();
        match commits.get(v as usize) {
            Some(c) if *c <= t => t.duration_since(*c).as_secs_f64(),
            _ => 0.0,
        }
    }
    fn saw(&self, id: u64) {
        self.saw_at(Instant::now(), id)
    }
    fn saw_at(&self, at: Instant, id: u64) {
        let mut vis = self.visible.lock().unwrap();
        if vis.last().map(|(_, v)| *v) != Some(id) {
            vis.push((at, id));
        }
    }
    fn committed_at(&self, at: Instant) {
        self.commits.lock().unwrap().push(at);
    }
}

/// Where a lab's truth table lives: a PostgreSQL port, or a MariaDB server.
pub enum Db {
    Pg(u16),
    Maria(mysql_async::Opts),
}

async fn pg_client(port: u16) -> Result<tokio_postgres::Client> {
    let mut c = tokio_postgres::Config::new();
    c.host("127.0.0.1")
        .port(port)
        .user("postgres")
        .dbname("postgres")
        .connect_timeout(Duration::from_secs(1));
    let (client, conn) = c.connect(tokio_postgres::NoTls).await?;
    tokio::spawn(async move {
        let _ = conn.await;
    });
    Ok(client)
}

enum Conn {
    Pg(tokio_postgres::Client),
    Maria(mysql_async::Conn),
}

impl Db {
    async fn connect(&self) -> Result<Conn> {
        Ok(match self {
            Db::Pg(port) => Conn::Pg(pg_client(*port).await?),
            Db::Maria(opts) => Conn::Maria(
                tokio::time::timeout(Duration::from_secs(1), mysql_async::Conn::new(opts.clone())).await??,
            ),
        })
    }
}

impl Conn {
    async fn exec(&mut self, sql: &str) -> Result<()> {
        use mysql_async::prelude::Queryable;
        match self {
            Conn::Pg(c) => {
                c.batch_execute(sql).await?;
            }
            Conn::Maria(c) => c.query_drop(sql).await?,
        }
        Ok(())
    }
    async fn max_id(&mut self) -> Result<u64> {
        use mysql_async::prelude::Queryable;
        match self {
            Conn::Pg(c) => {
                let row = c.query_one("SELECT coalesce(max(id), 0) FROM bench_truth", &[]).await?;
                Ok(row.get::<_, i64>(0) as u64)
            }
            Conn::Maria(c) => {
                let v: Option<u64> = c.query_first("SELECT COALESCE(MAX(id), 0) FROM bench.truth").await?;
                Ok(v.unwrap_or(0))
            }
        }
    }
}

/// Starts the writer (primary) and the poller (replica) of one lab's truth. `insert`
/// holds `{id}` where the row's number goes.
pub fn start_truth(primary: Db, replica: Db, insert: &'static str) -> Arc<Truth> {
    let truth = Arc::new(Truth::default());
    tokio::spawn(write_rows(truth.clone(), primary, insert));
    tokio::spawn(poll_visible(truth.clone(), replica));
    truth
}

/// Every 100 ms while `truth.writing`, commits the next row and records when.
async fn write_rows(t: Arc<Truth>, primary: Db, insert: &'static str) {
    let mut conn = None;
    let mut tick = tokio::time::interval(Duration::from_millis(100));
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tick.tick().await;
        if !t.writing.load(Ordering::SeqCst) {
            continue;
        }
        if conn.is_none() {
            conn = primary.connect().await.ok();
        }
        let Some(c) = conn.as_mut() else { continue };
        let id = t.commits.lock().unwrap().len() + 1;
        match tokio::time::timeout(Duration::from_secs(2), c.exec(&insert.replace("{id}", &id.to_string())))
            .await
        {
            Ok(Ok(())) => t.committed_at(Instant::now()),
            _ => conn = None,
        }
    }
}

/// Every 20 ms, records the highest row id visible on the replica.
async fn poll_visible(t: Arc<Truth>, replica: Db) {
    let mut conn: Option<Conn> = None;
    loop {
        if conn.is_none() {
            conn = replica.connect().await.ok();
            if conn.is_none() {
                tokio::time::sleep(Duration::from_millis(200)).await;
                continue;
            }
        }
        match tokio::time::timeout(Duration::from_secs(1), conn.as_mut().unwrap().max_id()).await {
            Ok(Ok(id)) => t.saw(id),
            _ => conn = None,
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A truth whose rows were committed at `t0 + commits[i]` s and whose replica showed
    /// id `v` from `t0 + s` s for every `(s, v)` in `visible`.
    pub(crate) fn truth(t0: Instant, commits: &[f64], visible: &[(f64, u64)]) -> Truth {
        let t = Truth::default();
        for &c in commits {
            t.committed_at(t0 + Duration::from_secs_f64(c));
        }
        for &(s, v) in visible {
            t.saw_at(t0 + Duration::from_secs_f64(s), v);
        }
        t
    }

    #[test]
    fn lag_is_the_age_of_the_oldest_row_not_yet_visible() {
        let t0 = Instant::now();
        // Rows 1..=3 committed at 1, 2, 3 s; the replica shows 1 from 1.5 s, 3 from 5 s.
        let tr = truth(t0, &[1.0, 2.0, 3.0], &[(1.5, 1), (1.6, 1), (5.0, 3)]);
        let at = |s: f64| tr.at(t0 + Duration::from_secs_f64(s));
        for (s, want) in [
            (0.5, 0.0), // nothing committed yet
            (1.2, 0.2), // row 1 committed, not visible
            (1.5, 0.0), // row 1 visible, row 2 not committed yet
            (2.5, 0.5), // row 2 waiting since 2 s
            (4.0, 2.0), // rows 2 and 3 waiting: the oldest counts
            (5.0, 0.0), // everything visible
            (9.0, 0.0),
        ] {
            assert!((at(s) - want).abs() < 1e-6, "at {s} s: {} (want {want})", at(s));
        }
        // A repeated id is recorded once.
        assert_eq!(tr.visible.lock().unwrap().len(), 2);
    }
}
