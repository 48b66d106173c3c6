//! Ground truth: the reference lag every tool is judged against.
//!
//! Per lab a writer commits a numbered row on the primary every 100 ms (while
//! [`Truth::writing`] is on) and a poller records when each row becomes visible on the
//! replica. The heartbeats the lab's exporters write are commits too: a second poller
//! reads each heartbeat table's newest sequence and written time on the primary every
//! 20 ms, and the replica's poller its newest visible sequence. True lag at time t =
//! age of the oldest commit, row or heartbeat, made by t but not visible at t
//! ([`Truth::at`]). Owns the commit instants, the visibility histories and the
//! connections that feed them; knows nothing of the tools.

use anyhow::Result;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// Commit instants of the truth rows (row id n at index n-1) and the history of the
/// highest id visible on the replica; the same for each heartbeat table.
#[derive(Default)]
pub struct Truth {
    commits: Mutex<Vec<Instant>>,
    visible: Mutex<Vec<(Instant, u64)>>,
    /// One per heartbeat table of the lab's exporters, in the order of the tables.
    heartbeats: Vec<Heartbeats>,
    /// The writer commits rows only while this is on.
    pub writing: AtomicBool,
}

/// One heartbeat table: when each sequence was written (the row's own time, on the
/// primary's clock, which is this host's), and the newest sequence visible on the
/// replica over time.
#[derive(Default)]
struct Heartbeats {
    written: Mutex<Vec<(Instant, i64)>>,
    visible: Mutex<Vec<(Instant, i64)>>,
}

impl Heartbeats {
    /// Age at `t` of the oldest heartbeat written by `t` with a sequence above the
    /// newest visible at `t`; 0 before the replica was first read.
    fn at(&self, t: Instant) -> f64 {
        let seen = {
            let vis = self.visible.lock().unwrap();
            match vis.partition_point(|(at, _)| *at <= t) {
                0 => return 0.0,
                i => vis[i - 1].1,
            }
        };
        let written = self.written.lock().unwrap();
        written
            .iter()
            .find(|(_, seq)| *seq > seen)
            .filter(|(at, _)| *at <= t)
            .map_or(0.0, |(at, _)| t.duration_since(*at).as_secs_f64())
    }
}

impl Truth {
    /// True lag at `t`: age of the oldest commit made by `t` and not visible at `t`,
    /// a truth row or a heartbeat.
    pub fn at(&self, t: Instant) -> f64 {
        self.heartbeats.iter().map(|h| h.at(t)).fold(self.rows_at(t), f64::max)
    }

    /// Age at `t` of the oldest truth row committed by `t` and not visible at `t`.
    fn rows_at(&self, t: Instant) -> f64 {
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
#[derive(Clone)]
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
    /// The newest heartbeat of `table`: its sequence and written time (µs since
    /// the epoch); `None` when the table has no row.
    async fn newest_heartbeat(&mut self, table: &str) -> Result<Option<(i64, i64)>> {
        use mysql_async::prelude::Queryable;
        match self {
            Conn::Pg(c) => {
                let sql = format!(
                    "SELECT seq, (extract(epoch FROM written_at) * 1000000)::bigint FROM {table} ORDER BY seq DESC LIMIT 1"
                );
                let row = c.query_opt(&sql, &[]).await?;
                Ok(row.map(|r| (r.get::<_, i64>(0), r.get::<_, i64>(1))))
            }
            Conn::Maria(c) => {
                // written_at is UTC_TIMESTAMP(6): microseconds from the epoch as naive times.
                let sql = format!(
                    "SELECT seq, TIMESTAMPDIFF(MICROSECOND, '1970-01-01 00:00:00', written_at) FROM {table} ORDER BY seq DESC LIMIT 1"
                );
                Ok(c.query_first::<(i64, i64), _>(sql).await?)
            }
        }
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

/// Starts the writer (primary), the heartbeat poller (primary) and the poller
/// (replica) of one lab's truth. `insert` holds `{id}` where the row's number goes;
/// `heartbeats` names the tables (`schema.table`) the lab's exporters write their
/// heartbeats to, which may not exist yet when the pollers start.
pub fn start_truth(
    primary: Db,
    replica: Db,
    insert: &'static str,
    heartbeats: &[&'static str],
) -> Arc<Truth> {
    let truth = Arc::new(Truth {
        heartbeats: heartbeats.iter().map(|_| Heartbeats::default()).collect(),
        ..Truth::default()
    });
    let tables: Arc<[&'static str]> = heartbeats.into();
    tokio::spawn(poll_written(truth.clone(), primary.clone(), tables.clone()));
    tokio::spawn(write_rows(truth.clone(), primary, insert));
    tokio::spawn(poll_visible(truth.clone(), replica, tables));
    truth
}

/// Every 20 ms, the newest heartbeat of each table on the primary: a sequence not
/// seen before is recorded at its written time.
async fn poll_written(t: Arc<Truth>, primary: Db, tables: Arc<[&'static str]>) {
    if tables.is_empty() {
        return;
    }
    let mut conn: Option<Conn> = None;
    loop {
        if conn.is_none() {
            conn = primary.connect().await.ok();
        }
        let mut failed = conn.is_none();
        for (table, hb) in tables.iter().zip(&t.heartbeats) {
            let Some(c) = conn.as_mut() else { break };
            // An empty table: nothing to record. A failed read (a table not made
            // yet, a broken or hung connection): a new connection, a little later.
            match tokio::time::timeout(Duration::from_secs(1), c.newest_heartbeat(table)).await {
                Ok(Ok(Some((seq, written_us)))) => {
                    let mut written = hb.written.lock().unwrap();
                    if written.last().is_none_or(|(_, last)| seq > *last) {
                        written.push((instant_of(written_us), seq));
                    }
                }
                Ok(Ok(None)) => {}
                Ok(Err(_)) | Err(_) => {
                    conn = None;
                    failed = true;
                }
            }
        }
        let pause = if failed { 200 } else { 20 };
        tokio::time::sleep(Duration::from_millis(pause)).await;
    }
}

/// The instant of `us` (microseconds since the epoch, this host's clock).
fn instant_of(us: i64) -> Instant {
    let now = (Instant::now(), std::time::SystemTime::now());
    let now_us = now.1.duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_micros() as i64);
    let ago = Duration::from_micros(now_us.saturating_sub(us).max(0) as u64);
    now.0.checked_sub(ago).unwrap_or(now.0)
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

/// Every 20 ms, records the highest row id and heartbeat sequences visible on the
/// replica.
async fn poll_visible(t: Arc<Truth>, replica: Db, tables: Arc<[&'static str]>) {
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
        for (table, hb) in tables.iter().zip(&t.heartbeats) {
            let Some(c) = conn.as_mut() else { break };
            if let Ok(Ok(Some((seq, _)))) =
                tokio::time::timeout(Duration::from_secs(1), c.newest_heartbeat(table)).await
            {
                let mut vis = hb.visible.lock().unwrap();
                if vis.last().map(|(_, v)| *v) != Some(seq) {
                    vis.push((Instant::now(), seq));
                }
            }
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
    fn a_heartbeat_the_replica_lacks_is_a_commit_too() {
        let t0 = Instant::now();
        let mut tr = truth(t0, &[1.0, 2.0], &[(0.1, 0), (1.5, 1)]);
        let hb = Heartbeats::default();
        let at = |s: f64| t0 + Duration::from_secs_f64(s);
        // Heartbeats 7, 8, 9 written at 0.5, 1.9, 2.9 s; the replica shows 7 from 0.6 s.
        hb.written.lock().unwrap().extend([(at(0.5), 7), (at(1.9), 8), (at(2.9), 9)]);
        hb.visible.lock().unwrap().extend([(at(0.0), 6), (at(0.6), 7)]);
        tr.heartbeats.push(hb);
        for (s, want) in [
            (0.55, 0.05), // heartbeat 7 not visible yet, no row committed
            (1.2, 0.2),   // row 1 waits since 1 s, heartbeat 7 visible
            (1.95, 0.05), // row 1 visible, heartbeat 8 waits since 1.9 s, row 2 not yet
            (2.5, 0.6),   // heartbeat 8 (1.9 s) is older than row 2 (2 s)
            (3.0, 1.1),   // heartbeat 9 written, 8 still the oldest missing
        ] {
            assert!((tr.at(at(s)) - want).abs() < 1e-6, "at {s} s: {} (want {want})", tr.at(at(s)));
        }
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
