//! What a drill observed, and the report made of it: the figures, each objective's
//! verdict, the timeline in the runbook's order, as Markdown and as JSON. Pure:
//! the runner fills an [`Observed`], [`Report::from`] judges it.

use serde_json::{json, Value};
use std::collections::BTreeMap;
use std::fmt::Write;

/// One acknowledged write: its sequence, when it was sent (Unix seconds, the
/// drill's clock), when its acknowledgement arrived, and the node that took it.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ack {
    pub seq: i64,
    pub sent_at: f64,
    pub acked_at: f64,
    pub node: usize,
}

/// One writer's story (the drill table's, or the probe table's).
#[derive(Debug, Clone, Default)]
pub struct WriterLog {
    /// The table it writes.
    pub table: String,
    pub acked: u64,
    pub failed: u64,
    pub last_ack: Option<Ack>,
    pub incident: Option<Incident>,
}

/// A writer's outage: from its first failed write to its first acknowledged one after.
#[derive(Debug, Clone, Default)]
pub struct Incident {
    /// The first write that failed: sequence, when it was sent, and why.
    pub failed_seq: i64,
    pub failed_at: f64,
    pub error: String,
    /// The node that took the writes before (the old primary).
    pub old_node: Option<usize>,
    /// The newest write the old primary acknowledged.
    pub last_acked: Option<Ack>,
    /// The first write acknowledged after the failure, and since when its node
    /// was seen writable.
    pub resumed: Option<Ack>,
    pub writable_since: Option<f64>,
    /// Read on the node where writes resumed: the newest of the old primary's
    /// acknowledged writes it holds (seq, sent at), `Some(None)` when none.
    pub newest_present: Option<Option<(i64, f64)>>,
    /// Acknowledged writes of the old primary missing there.
    pub lost_writes: Option<u64>,
    pub loss_error: Option<String>,
}

/// When a probe or DNS figure was reached for one region, after the failure.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Reach {
    pub at80: Option<f64>,
    pub at100: Option<f64>,
}

/// Why the drill ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum End {
    /// Every figure was measured (and the settle time passed).
    #[default]
    Complete,
    /// SIGINT or SIGTERM.
    Interrupted,
    /// `--drill.duration` passed first.
    TimeLimit,
}

impl End {
    fn as_str(self) -> &'static str {
        match self {
            End::Complete => "complete",
            End::Interrupted => "interrupted",
            End::TimeLimit => "time_limit",
        }
    }
}

/// Everything a drill saw.
#[derive(Debug, Clone, Default)]
pub struct Observed {
    pub cluster: String,
    pub run: String,
    pub rpo: f64,
    pub rto: f64,
    pub interval: f64,
    pub started_at: f64,
    pub ended_at: f64,
    pub end: End,
    /// (name, region) of every node, in config order.
    pub nodes: Vec<(String, String)>,
    /// The drill table's writer, then the probe table's when there is one.
    pub writers: Vec<WriterLog>,
    /// The old primary seen read-only, and seen unreachable, after the failure.
    pub fenced_at: Option<f64>,
    pub unreachable_at: Option<f64>,
    /// Time with two or more writable nodes, and when it was first and last seen.
    pub split_brain_seconds: f64,
    pub split_brain_first: Option<f64>,
    pub split_brain_last: Option<f64>,
    /// The cluster's DNS records (names) and, per region, when its answer reached
    /// 80 % and 100 % of the resolvers; `None` when no record follows the cluster.
    pub dns: Option<(Vec<String>, BTreeMap<String, Reach>)>,
    /// Per region, when its health probes passed (quorum) after the failure;
    /// `None` when there is no `health:` section.
    pub health: Option<BTreeMap<String, Option<f64>>>,
}

/// A PASS or FAIL of one objective, or UNKNOWN when its figure was not measured.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    Pass,
    Fail,
    Unknown,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Pass => "PASS",
            Verdict::Fail => "FAIL",
            Verdict::Unknown => "UNKNOWN",
        }
    }

    fn of(figure: Option<f64>, objective: f64) -> Verdict {
        match figure {
            Some(f) if f <= objective => Verdict::Pass,
            Some(_) => Verdict::Fail,
            None => Verdict::Unknown,
        }
    }
}

/// A figure that may be measured, not reached (yet), or not configured.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Figure {
    Seconds(f64),
    NotReached,
    NotConfigured,
}

impl Figure {
    fn seconds(self) -> Option<f64> {
        match self {
            Figure::Seconds(s) => Some(s),
            _ => None,
        }
    }

    fn text(self) -> String {
        match self {
            Figure::Seconds(s) => format!("{s:.3} s"),
            Figure::NotReached => "not reached".to_owned(),
            Figure::NotConfigured => "not configured".to_owned(),
        }
    }

    fn json(self) -> Value {
        match self {
            Figure::Seconds(s) => json!(round(s)),
            _ => Value::Null,
        }
    }
}

fn round(s: f64) -> f64 {
    (s * 1000.0).round() / 1000.0
}

/// The figures of a drill, measured from the first failed write.
#[derive(Debug, Clone)]
pub struct Report {
    pub observed: Observed,
    pub failed_at: Option<f64>,
    pub old_primary: Option<usize>,
    pub new_primary: Option<usize>,
    pub data_loss_seconds: Option<f64>,
    pub data_loss_writes: Option<u64>,
    pub writable: Figure,
    pub fenced: Figure,
    pub unreachable: Figure,
    pub dns80: Figure,
    pub dns100: Figure,
    pub health: Figure,
    pub resumed: Figure,
    /// The RTO figure: the last of the recovery steps (writable, DNS on every
    /// resolver, health, writes resumed).
    pub recovery: Option<f64>,
    pub rpo: Verdict,
    pub rto: Verdict,
    /// The probe table's writer: data loss (seconds, writes) and writes resumed.
    pub probe: Option<(Option<f64>, Option<u64>, Figure)>,
}

/// A writer's data loss: seconds between the newest write the old primary
/// acknowledged and the newest of those the new primary holds, and how many writes.
fn loss(i: &Incident, started_at: f64) -> (Option<f64>, Option<u64>) {
    let Some(last) = i.last_acked else { return (Some(0.0), Some(0)) };
    match i.newest_present {
        Some(Some((_, sent))) => (Some((last.sent_at - sent).max(0.0)), i.lost_writes),
        Some(None) => (Some((last.sent_at - started_at).max(0.0)), i.lost_writes),
        None => (None, None),
    }
}

impl Report {
    pub fn from(observed: Observed) -> Report {
        let drill = observed.writers.first().and_then(|w| w.incident.clone());
        let failed_at = drill.as_ref().map(|i| i.failed_at);
        let after = |at: Option<f64>| match (at, failed_at) {
            (Some(at), Some(t0)) => Figure::Seconds((at - t0).max(0.0)),
            _ => Figure::NotReached,
        };
        let new_primary = drill.as_ref().and_then(|i| i.resumed.map(|a| a.node));
        let new_region = new_primary.and_then(|n| observed.nodes.get(n)).map(|(_, r)| r.clone());
        let (data_loss_seconds, data_loss_writes) =
            drill.as_ref().map_or((None, None), |i| loss(i, observed.started_at));
        let writable = after(drill.as_ref().and_then(|i| {
            i.resumed?;
            Some(i.writable_since.unwrap_or(i.failed_at).max(i.failed_at))
        }));
        let resumed = after(drill.as_ref().and_then(|i| i.resumed.map(|a| a.acked_at)));
        let (dns80, dns100) = match &observed.dns {
            None => (Figure::NotConfigured, Figure::NotConfigured),
            Some((_, regions)) => {
                let reach = new_region.as_ref().and_then(|r| regions.get(r)).copied().unwrap_or_default();
                (after(reach.at80), after(reach.at100))
            }
        };
        let health = match &observed.health {
            None => Figure::NotConfigured,
            Some(regions) => match new_region.as_ref().and_then(|r| regions.get(r)) {
                Some(at) => after(*at),
                // The new region has no probes: nothing to wait for.
                None if new_region.is_some() => Figure::NotConfigured,
                None => Figure::NotReached,
            },
        };
        let steps = [writable, resumed, dns100, health];
        let recovery = if failed_at.is_none() || steps.contains(&Figure::NotReached) {
            None
        } else {
            steps.iter().filter_map(|f| f.seconds()).reduce(f64::max)
        };
        let probe = observed.writers.get(1).map(|w| match &w.incident {
            None => (Some(0.0), Some(0), Figure::NotReached),
            Some(i) => {
                let (s, n) = loss(i, observed.started_at);
                let resumed = match (i.resumed, failed_at) {
                    (Some(a), Some(t0)) => Figure::Seconds((a.acked_at - t0).max(0.0)),
                    _ => Figure::NotReached,
                };
                (s, n, resumed)
            }
        });
        Report {
            failed_at,
            old_primary: drill.as_ref().and_then(|i| i.old_node),
            new_primary,
            data_loss_seconds,
            data_loss_writes,
            writable,
            fenced: after(observed.fenced_at),
            unreachable: after(observed.unreachable_at),
            dns80,
            dns100,
            health,
            resumed,
            recovery,
            rpo: Verdict::of(data_loss_seconds, observed.rpo),
            rto: Verdict::of(recovery, observed.rto),
            probe,
            observed,
        }
    }

    fn node(&self, n: Option<usize>) -> String {
        n.and_then(|n| self.observed.nodes.get(n))
            .map_or_else(|| "unknown".to_owned(), |(name, region)| format!("{name} ({region})"))
    }

    /// The timeline in the runbook's order: (step, event, seconds from the first
    /// failed write, Unix time).
    pub fn timeline(&self) -> Vec<(&'static str, String, Figure, Option<f64>)> {
        let t0 = self.failed_at;
        let at = |f: Figure| match (f, t0) {
            (Figure::Seconds(s), Some(t0)) => Some(t0 + s),
            _ => None,
        };
        let old = self.node(self.old_primary);
        let new = self.node(self.new_primary);
        let mut steps = Vec::new();
        const STOP: &str = "1. stop writes to the failed region";
        const PROMOTE: &str = "2. promote";
        const SHIFT: &str = "3. shift traffic (DNS)";
        const WARM: &str = "4. warm caches (health probes)";
        const RESUME: &str = "5. resume writes";
        let drill = self.observed.writers.first().and_then(|w| w.incident.as_ref());
        if let (Some(i), Some(t0)) = (drill, t0) {
            if let Some(last) = i.last_acked {
                steps.push((
                    STOP,
                    format!("last write acknowledged by {old} (seq {})", last.seq),
                    Figure::Seconds(last.sent_at - t0),
                    Some(last.sent_at),
                ));
            }
            steps.push((
                STOP,
                format!("first failed write (seq {}): {}", i.failed_seq, i.error),
                Figure::Seconds(0.0),
                Some(t0),
            ));
        }
        steps.push((
            STOP,
            format!("old primary {old} seen read-only (fenced)"),
            self.fenced,
            at(self.fenced),
        ));
        steps.push((
            STOP,
            format!("old primary {old} seen unreachable"),
            self.unreachable,
            at(self.unreachable),
        ));
        steps.push((PROMOTE, format!("new primary {new} writable"), self.writable, at(self.writable)));
        let records =
            self.observed.dns.as_ref().map_or_else(|| "(no record)".to_owned(), |(r, _)| r.join(", "));
        let region =
            self.new_primary.and_then(|n| self.observed.nodes.get(n)).map_or("?", |(_, r)| r.as_str());
        steps.push((
            SHIFT,
            format!("DNS {records} answers {region} on 80 % of resolvers"),
            self.dns80,
            at(self.dns80),
        ));
        steps.push((
            SHIFT,
            format!("DNS {records} answers {region} on 100 % of resolvers"),
            self.dns100,
            at(self.dns100),
        ));
        steps.push((WARM, format!("health probes of {region} pass"), self.health, at(self.health)));
        steps.push((RESUME, format!("writes resume on {new}"), self.resumed, at(self.resumed)));
        if let Some((_, _, resumed)) = self.probe {
            let table = self.observed.writers.get(1).map_or("", |w| w.table.as_str());
            steps.push((RESUME, format!("probe writes to {table} resume"), resumed, at(resumed)));
        }
        steps
    }

    /// The Markdown report.
    pub fn markdown(&self) -> String {
        let o = &self.observed;
        let mut m = String::new();
        let _ = writeln!(m, "# Drill report: cluster `{}`\n", o.cluster);
        let _ = writeln!(m, "- Run: `{}` ({}), heartbeat every {:.3} s", o.run, o.end.as_str(), o.interval);
        let _ = writeln!(m, "- Started {}, ended {}", utc(o.started_at), utc(o.ended_at));
        match self.failed_at {
            None if o.writers.first().is_some_and(|w| w.acked == 0) => {
                let _ = writeln!(
                    m,
                    "- No write was ever acknowledged: the drill found no writable node (see its log)."
                );
            }
            None => {
                let _ = writeln!(m, "- No write failed: the primary was not lost during the drill.");
            }
            Some(t0) => {
                let _ = writeln!(m, "- First failed write: {} (t = 0 below)", utc(t0));
                let _ = writeln!(
                    m,
                    "- Old primary: {}; new primary: {}",
                    self.node(self.old_primary),
                    self.node(self.new_primary)
                );
            }
        }
        let w = o.writers.first();
        let _ = writeln!(
            m,
            "- Drill writes: {} acknowledged, {} failed",
            w.map_or(0, |w| w.acked),
            w.map_or(0, |w| w.failed)
        );
        let _ = writeln!(m, "\n## Objectives\n");
        let _ = writeln!(m, "| Objective | Target | Measured | Verdict |");
        let _ = writeln!(m, "|---|---|---|---|");
        let opt = |s: Option<f64>| s.map_or_else(|| "not measured".to_owned(), |s| format!("{s:.3} s"));
        let _ = writeln!(
            m,
            "| RPO (data lost) | {:.3} s | {} | {} |",
            o.rpo,
            opt(self.data_loss_seconds),
            self.rpo.as_str()
        );
        let _ = writeln!(
            m,
            "| RTO (service back) | {:.3} s | {} | {} |",
            o.rto,
            opt(self.recovery),
            self.rto.as_str()
        );
        let _ = writeln!(m, "\n## Figures\n");
        let _ = writeln!(m, "| Figure | Value |");
        let _ = writeln!(m, "|---|---|");
        let _ = writeln!(m, "| Data lost | {} |", opt(self.data_loss_seconds));
        let _ = writeln!(
            m,
            "| Writes lost | {} |",
            self.data_loss_writes.map_or_else(|| "not measured".to_owned(), |n| n.to_string())
        );
        let _ = writeln!(m, "| Time to a writable new primary | {} |", self.writable.text());
        let _ = writeln!(m, "| Split-brain window (two writable nodes) | {:.3} s |", o.split_brain_seconds);
        let _ = writeln!(m, "| DNS answers the new region on 80 % of resolvers | {} |", self.dns80.text());
        let _ = writeln!(m, "| DNS answers the new region on 100 % of resolvers | {} |", self.dns100.text());
        let _ = writeln!(m, "| New region's health probes pass | {} |", self.health.text());
        let _ = writeln!(m, "| Writes resume | {} |", self.resumed.text());
        if let Some((s, n, resumed)) = self.probe {
            let table = o.writers.get(1).map_or("", |w| w.table.as_str());
            let _ = writeln!(
                m,
                "| Probe table {table}: data lost / writes lost / writes resume | {} / {} / {} |",
                opt(s),
                n.map_or_else(|| "not measured".to_owned(), |n| n.to_string()),
                resumed.text()
            );
        }
        let _ = writeln!(m, "\n## Timeline (runbook order)\n");
        let _ = writeln!(m, "| Step | Event | t (s) | At (UTC) |");
        let _ = writeln!(m, "|---|---|---|---|");
        for (step, event, figure, at) in self.timeline() {
            let t = match figure {
                Figure::Seconds(s) => format!("{s:+.3}"),
                other => other.text(),
            };
            let _ = writeln!(m, "| {step} | {event} | {t} | {} |", at.map_or_else(|| "–".to_owned(), utc));
        }
        if let (Some(first), Some(last)) = (o.split_brain_first, o.split_brain_last) {
            let _ = writeln!(m, "\nTwo nodes were writable between {} and {}.", utc(first), utc(last));
        }
        if let Some(e) = w.and_then(|w| w.incident.as_ref()).and_then(|i| i.loss_error.as_ref()) {
            let _ = writeln!(m, "\nData loss could not be read on the new primary: {e}");
        }
        m
    }

    /// The JSON report.
    pub fn json(&self) -> Value {
        let o = &self.observed;
        let node = |n: Option<usize>| {
            n.and_then(|n| o.nodes.get(n))
                .map_or(Value::Null, |(name, region)| json!({"node": name, "region": region}))
        };
        let drill = o.writers.first().and_then(|w| w.incident.as_ref());
        let timeline: Vec<Value> = self
            .timeline()
            .into_iter()
            .map(|(step, event, figure, at)| {
                json!({"step": step, "event": event, "seconds": figure.json(), "at": at.map(round)})
            })
            .collect();
        json!({
            "cluster": o.cluster,
            "run": o.run,
            "end": o.end.as_str(),
            "interval_seconds": o.interval,
            "started_at": round(o.started_at),
            "ended_at": round(o.ended_at),
            "objectives": {"rpo_seconds": o.rpo, "rto_seconds": o.rto},
            "verdicts": {"rpo": self.rpo.as_str(), "rto": self.rto.as_str()},
            "old_primary": node(self.old_primary),
            "new_primary": node(self.new_primary),
            "first_failed_write": drill.map(|i| json!({"seq": i.failed_seq, "at": round(i.failed_at), "error": i.error})),
            "last_acknowledged_by_old_primary": drill.and_then(|i| i.last_acked).map(|a| json!({"seq": a.seq, "sent_at": a.sent_at})),
            "newest_present_on_new_primary": drill.and_then(|i| i.newest_present).map(|p| p.map(|(seq, sent)| json!({"seq": seq, "sent_at": sent}))),
            "writes": {"acknowledged": o.writers.first().map_or(0, |w| w.acked), "failed": o.writers.first().map_or(0, |w| w.failed)},
            "figures": {
                "data_loss_seconds": self.data_loss_seconds.map(round),
                "data_loss_writes": self.data_loss_writes,
                "time_to_writable_seconds": self.writable.json(),
                "split_brain_seconds": round(o.split_brain_seconds),
                "dns_80_seconds": self.dns80.json(),
                "dns_100_seconds": self.dns100.json(),
                "health_seconds": self.health.json(),
                "writes_resumed_seconds": self.resumed.json(),
                "old_primary_fenced_seconds": self.fenced.json(),
                "old_primary_unreachable_seconds": self.unreachable.json(),
                "recovery_seconds": self.recovery.map(round),
                "dns_configured": o.dns.is_some(),
                "health_configured": o.health.is_some(),
            },
            "probe_table": self.probe.map(|(s, n, resumed)| json!({
                "table": o.writers.get(1).map(|w| w.table.clone()),
                "data_loss_seconds": s.map(round),
                "data_loss_writes": n,
                "writes_resumed_seconds": resumed.json(),
            })),
            "split_brain": {"first_at": o.split_brain_first, "last_at": o.split_brain_last},
            "timeline": timeline,
        })
    }
}

/// Unix seconds as `YYYY-MM-DD HH:MM:SS.mmm UTC`.
pub fn utc(t: f64) -> String {
    let at = std::time::UNIX_EPOCH + std::time::Duration::from_secs_f64(t.max(0.0));
    // RFC 3339 with milliseconds (`2026-11-30T11:43:06.748Z`), read more easily.
    let rfc = humantime::format_rfc3339_millis(at).to_string();
    format!("{} UTC", rfc.trim_end_matches('Z').replacen('T', " ", 1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn observed() -> Observed {
        let ack = |seq, sent_at: f64, node| Ack { seq, sent_at, acked_at: sent_at + 0.002, node };
        Observed {
            cluster: "pg".into(),
            run: "pg-1".into(),
            rpo: 5.0,
            rto: 30.0,
            interval: 0.1,
            started_at: 1000.0,
            ended_at: 1100.0,
            nodes: vec![("a".into(), "eu".into()), ("b".into(), "us".into())],
            writers: vec![WriterLog {
                table: "rpo.drill".into(),
                acked: 500,
                failed: 80,
                last_ack: Some(ack(600, 1060.0, 1)),
                incident: Some(Incident {
                    failed_seq: 301,
                    failed_at: 1030.0,
                    error: "connection closed".into(),
                    old_node: Some(0),
                    last_acked: Some(ack(300, 1029.9, 0)),
                    resumed: Some(ack(381, 1038.0, 1)),
                    writable_since: Some(1037.95),
                    newest_present: Some(Some((270, 1026.9))),
                    lost_writes: Some(30),
                    loss_error: None,
                }),
            }],
            fenced_at: None,
            unreachable_at: Some(1030.1),
            split_brain_seconds: 0.0,
            dns: Some((
                vec!["db.example.".into()],
                BTreeMap::from([("us".into(), Reach { at80: Some(1045.0), at100: Some(1050.0) })]),
            )),
            health: Some(BTreeMap::from([("us".into(), Some(1040.0)), ("eu".into(), None)])),
            ..Observed::default()
        }
    }

    #[test]
    fn figures_count_from_the_first_failed_write() {
        let r = Report::from(observed());
        assert_eq!(r.data_loss_seconds, Some(3.0));
        assert_eq!(r.data_loss_writes, Some(30));
        assert!(matches!(r.writable, Figure::Seconds(s) if (s - 7.95).abs() < 1e-9));
        assert!(matches!(r.resumed, Figure::Seconds(s) if (s - 8.002).abs() < 1e-9));
        assert_eq!(r.dns80, Figure::Seconds(15.0));
        assert_eq!(r.dns100, Figure::Seconds(20.0));
        assert_eq!(r.health, Figure::Seconds(10.0));
        assert_eq!(r.recovery, Some(20.0));
        assert_eq!((r.rpo, r.rto), (Verdict::Pass, Verdict::Pass));
        let md = r.markdown();
        assert!(md.contains("| RPO (data lost) | 5.000 s | 3.000 s | PASS |"), "{md}");
        let steps: Vec<&str> = r.timeline().iter().map(|s| s.0).collect();
        let mut sorted = steps.clone();
        sorted.sort();
        assert_eq!(steps, sorted, "runbook order");
    }

    #[test]
    fn objectives_fail_and_unmeasured_steps_are_unknown() {
        let mut o = observed();
        o.rpo = 1.0;
        o.dns.as_mut().unwrap().1.clear();
        let r = Report::from(o);
        assert_eq!(r.rpo, Verdict::Fail);
        assert_eq!(r.dns100, Figure::NotReached);
        assert_eq!((r.recovery, r.rto), (None, Verdict::Unknown));
        let mut o = observed();
        (o.dns, o.health) = (None, None);
        let r = Report::from(o);
        assert_eq!(r.dns80, Figure::NotConfigured);
        assert!(matches!(r.recovery, Some(s) if (s - 8.002).abs() < 1e-9));
        assert_eq!(r.json()["figures"]["dns_100_seconds"], Value::Null);
    }

    #[test]
    fn utc_times() {
        assert_eq!(utc(0.0), "1970-01-01 00:00:00.000 UTC");
        assert_eq!(utc(1_796_000_000.25), "2026-11-30 00:53:20.250 UTC");
    }
}
