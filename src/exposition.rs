//! The scrape: every family the exporter can emit ([`all`]), which text format a
//! scraper gets ([`Format`]), and the encoders that turn the latest measurements
//! into it.
//!
//! The encoder reads a snapshot of the live state ([`crate::state::Live`]) and
//! this process's `/proc` readings ([`crate::process`]): it only copies numbers
//! out of memory, so a scrape never waits on a database, DNS or a probe. One
//! small encoder writes both formats, the Prometheus text format 0.0.4 and
//! OpenMetrics: their sample lines are the same (a counter's samples end in
//! `_total` in both), only the `# HELP`/`# TYPE` lines and OpenMetrics' closing
//! `# EOF` differ. OpenMetrics used to come from prometheus-client's encoder,
//! which cost about twice as much per series; a unit test keeps ours equal to
//! what it writes. Families switched off (`--no-collector.NAME`) are left out
//! whole. Sits above every part that declares metric families; only the server
//! (and the benchmark) use it.

use crate::metrics::{escape, MetricDesc, MetricKind, Samples, Switches, CORE, PROCESS};
use crate::state::{Live, PROBES};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

/// Every family the exporter can emit: the core ones, then each engine's, then
/// each probe subsystem's ([`PROBES`]), then the process's ([`PROCESS`]).
pub fn all() -> impl Iterator<Item = &'static MetricDesc> {
    CORE.iter()
        .copied()
        .chain(crate::engine::metrics())
        .chain(PROBES.iter().flat_map(|p| p.metrics.iter().copied()))
        .chain(PROCESS.iter().copied())
}

/// The samples of one scrape into `samples`: the live state's, then this
/// process's.
fn snapshot(live: &Live, samples: &mut Samples) {
    live.collect(samples);
    crate::process::sample(samples);
}

/// The text formats a scraper can get.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// The Prometheus text format 0.0.4: without an Accept header, or when asked.
    Text,
    /// OpenMetrics 1.0.0, when the Accept header prefers it (as Prometheus does).
    OpenMetrics,
}

impl Format {
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Text => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }

    /// Chooses the format as client_golang's promhttp does: the media ranges of
    /// `Accept` from the highest `q` down (ties in the order sent), the first that
    /// is `application/openmetrics-text` (version 1.0.0, 0.0.1 or none) or
    /// `text/plain` (version 0.0.4 or none); the text format when none is, when a
    /// wildcard comes first, or without an Accept header.
    pub fn negotiate(accept: Option<&str>) -> Format {
        let Some(accept) = accept else { return Format::Text };
        let mut ranges: Vec<(f64, usize, Option<Format>)> = Vec::new();
        for (i, range) in accept.split(',').enumerate() {
            let mut parts = range.split(';');
            let media = parts.next().unwrap_or("").trim();
            let (mut q, mut version) = (1.0, "");
            for param in parts {
                let Some((key, value)) = param.split_once('=') else { continue };
                let value = value.trim().trim_matches('"');
                match key.trim().to_ascii_lowercase().as_str() {
                    "q" => q = value.parse().unwrap_or(0.0),
                    "version" => version = value,
                    _ => {}
                }
            }
            let format = if media.eq_ignore_ascii_case("application/openmetrics-text") {
                matches!(version, "" | "1.0.0" | "0.0.1").then_some(Format::OpenMetrics)
            } else if media.eq_ignore_ascii_case("text/plain") {
                matches!(version, "" | "0.0.4").then_some(Format::Text)
            } else {
                None
            };
            if q > 0.0 {
                ranges.push((q, i, format));
            }
        }
        ranges.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
        ranges.into_iter().find_map(|(_, _, format)| format).unwrap_or(Format::Text)
    }
}

/// What the server encodes on each scrape: the live state, the size of the last
/// exposition in each format, so a scrape writes into one buffer of the right
/// size instead of growing (and copying) it a dozen times, and the last scrape's
/// sample buffers, emptied, for the next one to fill.
#[derive(Debug)]
pub struct Exposition {
    live: Arc<Live>,
    size_hint: [AtomicUsize; 2],
    /// Taken by a scrape, given back after it; concurrent scrapes beyond the
    /// first start with empty buffers.
    spare: Mutex<Option<Samples>>,
}

impl Exposition {
    pub fn new(live: Arc<Live>) -> Exposition {
        Exposition {
            live,
            size_hint: [AtomicUsize::new(16 * 1024), AtomicUsize::new(16 * 1024)],
            spare: Mutex::new(None),
        }
    }

    /// Renders the latest measurements as OpenMetrics text.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        self.render_as(Format::OpenMetrics)
    }

    /// Renders the latest measurements in `format`.
    pub fn render_as(&self, format: Format) -> Result<String, std::fmt::Error> {
        let size_hint = &self.size_hint[format as usize];
        // A little headroom for label values and numbers that grew since.
        let hint = size_hint.load(Ordering::Relaxed);
        let mut out = String::with_capacity(hint + hint / 8);
        let spare = self.spare.lock().unwrap_or_else(|p| p.into_inner()).take();
        let mut samples = spare.unwrap_or_default();
        snapshot(&self.live, &mut samples);
        let encoded = encode(&mut out, &samples, self.live.switches(), format);
        samples.clear();
        *self.spare.lock().unwrap_or_else(|p| p.into_inner()) = Some(samples);
        encoded?;
        size_hint.store(out.len(), Ordering::Relaxed);
        Ok(out)
    }
}

/// A family's fixed text, made once: its `# HELP` and `# TYPE` lines in each
/// format.
struct FamilyText {
    desc: &'static MetricDesc,
    /// The format 0.0.4's, under the sample name (a counter's with `_total`, as
    /// client_golang writes it).
    text_header: String,
    /// OpenMetrics', under the family name (a counter's without `_total`), as
    /// prometheus-client writes it.
    om_header: String,
}

/// Every family's fixed text, in the order of [`all`].
fn family_texts() -> &'static [FamilyText] {
    static FAMILIES: OnceLock<Vec<FamilyText>> = OnceLock::new();
    FAMILIES.get_or_init(|| {
        all()
            .map(|desc| FamilyText {
                desc,
                text_header: header(desc, Format::Text),
                om_header: header(desc, Format::OpenMetrics),
            })
            .collect()
    })
}

/// The place of `desc` in [`family_texts`] (and [`all`]); `None` for a family
/// not listed there, which is never shown. A binary search by address: a
/// scrape asks once per family of each node.
fn family_index(desc: &'static MetricDesc) -> Option<usize> {
    static BY_ADDRESS: OnceLock<Vec<(usize, usize)>> = OnceLock::new();
    let by_address = BY_ADDRESS.get_or_init(|| {
        let mut v: Vec<(usize, usize)> = family_texts()
            .iter()
            .enumerate()
            .map(|(i, f)| (std::ptr::from_ref(f.desc) as usize, i))
            .collect();
        v.sort_unstable();
        v
    });
    let address = std::ptr::from_ref(desc) as usize;
    by_address.binary_search_by_key(&address, |&(a, _)| a).ok().map(|k| by_address[k].1)
}

/// A family's `# HELP` and `# TYPE` lines in `format`: under the sample name in
/// the text format 0.0.4 (a counter's with `_total`), under the family's name in
/// OpenMetrics.
fn header(desc: &MetricDesc, format: Format) -> String {
    let kind = match desc.kind {
        MetricKind::Gauge => "gauge",
        MetricKind::Counter => "counter",
    };
    let name = match format {
        Format::Text => desc.sample_name(),
        Format::OpenMetrics => desc.name.to_owned(),
    };
    let mut out = format!("# HELP {name} ");
    escape(&mut out, desc.help, format == Format::OpenMetrics);
    out.push_str(&format!("\n# TYPE {name} {kind}\n"));
    out
}

/// Encodes `samples` in `format`: per family its `# HELP` and `# TYPE` lines,
/// then its sample lines (the same in both formats, see [`Samples`]);
/// OpenMetrics ends in `# EOF`.
/// Families `switches` turn off are left out whole.
fn encode(out: &mut String, samples: &Samples, switches: Switches, format: Format) -> std::fmt::Result {
    // Each family's sample lines were encoded as they were collected, some in
    // parts kept by the nodes: gather every part's lines of each family (by its
    // place in `family_texts`), then write the families in order, each line
    // copied once.
    let texts = family_texts();
    let mut lines: Vec<Vec<&str>> = vec![Vec::new(); texts.len()];
    samples.for_each_family(|desc, text| {
        if let Some(i) = family_index(desc) {
            lines[i].push(text);
        }
    });
    for (family, lines) in texts.iter().zip(&lines).filter(|(f, _)| switches.emits(f.desc)) {
        out.push_str(match format {
            Format::Text => &family.text_header,
            Format::OpenMetrics => &family.om_header,
        });
        for text in lines {
            out.push_str(text);
        }
    }
    if format == Format::OpenMetrics {
        out.push_str("# EOF\n");
    }
    Ok(())
}

/// The Prometheus text format 0.0.4 of `families` alone, in their order: for a
/// process that serves a few families of its own (`rpo-exporter drill`).
pub fn encode_text_of(families: &[&'static MetricDesc], samples: Samples) -> String {
    let mut out = String::new();
    for desc in families {
        out.push_str(&header(desc, Format::Text));
        if let Some(family) = samples.get(desc) {
            out.push_str(family.lines());
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::metrics::{NODE_UP, OBJECTIVE, TASK_RESTARTS};

    #[test]
    fn negotiates_like_promhttp() {
        let prometheus = "application/openmetrics-text;version=1.0.0,application/openmetrics-text;\
                          version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1";
        for (accept, want) in [
            (None, Format::Text),
            (Some(""), Format::Text),
            (Some("*/*"), Format::Text),
            (Some("text/plain"), Format::Text),
            (Some("text/plain; version=0.0.4"), Format::Text),
            (Some("text/plain;version=0.0.4;q=0.5,*/*;q=0.1"), Format::Text),
            (Some(prometheus), Format::OpenMetrics),
            (Some("application/openmetrics-text"), Format::OpenMetrics),
            (Some("Application/OpenMetrics-Text; version=\"0.0.1\""), Format::OpenMetrics),
            (Some("application/openmetrics-text; version=2.0.0"), Format::Text),
            (Some("text/plain;q=0.9, application/openmetrics-text"), Format::OpenMetrics),
            (Some("application/openmetrics-text;q=0.2, text/plain;q=0.9"), Format::Text),
            (Some("application/openmetrics-text;q=0, text/plain;q=0.1"), Format::Text),
            (Some("application/vnd.google.protobuf;proto=io.prometheus.client.MetricFamily"), Format::Text),
        ] {
            assert_eq!(Format::negotiate(accept), want, "{accept:?}");
        }
    }

    /// Samples of a gauge and a counter family with hard label values and values.
    fn tricky() -> Samples {
        let mut samples = Samples::default();
        samples.push(&NODE_UP, &["c", "n\"1\\\n", "r"], 1.0);
        samples.push(&NODE_UP, &["c", "é", "r"], 0.0);
        samples.push(&OBJECTIVE, &["c"], 0.25);
        samples.push(&OBJECTIVE, &["d"], 1_764_000_000.125);
        samples.push(&TASK_RESTARTS, &["worker"], 3.0);
        samples.push(&TASK_RESTARTS, &["dns"], 0.0);
        samples.push(&crate::metrics::RELOAD_AT, &[], f64::NAN);
        samples
    }

    /// Our OpenMetrics is what prometheus-client writes for the same samples: the
    /// same lines in the same order, values equal as numbers (it writes `1.0`
    /// where we write `1`, both valid).
    #[test]
    fn openmetrics_matches_prometheus_client() {
        use prometheus_client::collector::Collector;
        use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
        use prometheus_client::metrics::counter::ConstCounter;
        use prometheus_client::metrics::gauge::ConstGauge;
        use prometheus_client::metrics::MetricType;

        #[derive(Debug)]
        struct Oracle;
        impl Collector for Oracle {
            fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
                let mut samples = tricky();
                for desc in all() {
                    let kind = match desc.kind {
                        MetricKind::Gauge => MetricType::Gauge,
                        MetricKind::Counter => MetricType::Counter,
                    };
                    let mut metric = encoder.encode_descriptor(desc.name, desc.help, None, kind)?;
                    let Some(family) = samples.take(desc) else { continue };
                    for (pairs, value) in family.samples() {
                        let labels: Vec<(&str, String)> = pairs.collect();
                        let encoder = metric.encode_family(&labels)?;
                        match desc.kind {
                            MetricKind::Gauge => ConstGauge::new(value).encode(encoder)?,
                            MetricKind::Counter => ConstCounter::new(value).encode(encoder)?,
                        }
                    }
                }
                Ok(())
            }
        }
        let mut registry = prometheus_client::registry::Registry::default();
        registry.register_collector(Box::new(Oracle));
        let mut theirs = String::new();
        prometheus_client::encoding::text::encode(&mut theirs, &registry).unwrap();
        let mut ours = String::new();
        encode(&mut ours, &tricky(), Switches::default(), Format::OpenMetrics).unwrap();
        assert_eq!(ours.lines().count(), theirs.lines().count(), "ours:\n{ours}\ntheirs:\n{theirs}");
        for (a, b) in ours.lines().zip(theirs.lines()) {
            if a.starts_with('#') {
                assert_eq!(a, b);
                continue;
            }
            let (sa, va) = a.rsplit_once(' ').unwrap();
            let (sb, vb) = b.rsplit_once(' ').unwrap();
            assert_eq!(sa, sb);
            let (va, vb): (f64, f64) = (va.parse().unwrap(), vb.parse().unwrap());
            assert!(va == vb || (va.is_nan() && vb.is_nan()), "{a} vs {b}");
        }
        assert!(ours.ends_with("# EOF\n"));
        assert!(ours.contains("# TYPE rpo_exporter_task_restarts counter\n"));
        assert!(ours.contains("rpo_exporter_task_restarts_total{task=\"worker\"} 3\n"));
    }

    /// A family switched off is absent whole, in both formats.
    #[test]
    fn switched_off_families_are_absent() {
        use crate::metrics::{Switch, COLLECTOR_SUCCESS, ROW_STATUS};
        for format in [Format::Text, Format::OpenMetrics] {
            let mut samples = tricky();
            samples.push(&COLLECTOR_SUCCESS, &["c", "n", "r", "role"], 1.0);
            samples.push(&ROW_STATUS, &["c", "p", "r", "n", "r", "ok"], 1.0);
            let mut out = String::new();
            let switches = Switches::default().with(Switch::RowStatus, false);
            encode(&mut out, &samples, switches, format).unwrap();
            assert!(out.contains("rpo_collector_success{"), "{out}");
            assert!(!out.contains("rpo_heartbeat_row_status"), "{out}");
            assert!(
                out.contains("# TYPE rpo_pg_standbys gauge"),
                "engine families stay while replication is on"
            );
        }
        let mut out = String::new();
        encode(&mut out, &tricky(), Switches::none(), Format::Text).unwrap();
        for gone in ["rpo_pg_standbys", "rpo_mysql_replica_gtid_position", "rpo_collector_duration_seconds"] {
            assert!(!out.contains(gone), "{gone} with every collector off");
        }
        assert!(out.contains("# TYPE rpo_node_up gauge"), "core families stay");
    }

    /// A scrape reuses the last one's buffers, never its samples: a change in
    /// the store shows in the next scrape, in both formats, and nothing of the
    /// scrape before is repeated.
    #[test]
    fn the_next_scrape_sees_the_store_as_it_is() {
        let yaml = "clusters:\n  - name: c\n    rpo: 30s\n    rto: 5m\n    nodes:\n      - { name: p, region: r, engine: postgres, dsn: \"host=127.0.0.1 user=rpo dbname=postgres\" }\n";
        let config = crate::config::Config::parse(std::path::Path::new("<test>"), yaml).unwrap();
        let live = Arc::new(Live::new(crate::state::State::new(&config)));
        let exposition = Exposition::new(live.clone());
        let up = |v: u8| format!("\nrpo_node_up{{db_cluster=\"c\",node=\"p\",node_region=\"r\"}} {v}\n");
        for format in [Format::Text, Format::OpenMetrics] {
            let node = live.current().clusters[0].nodes[0].clone();
            node.lock().up = false;
            let before = exposition.render_as(format).unwrap();
            assert!(before.contains(&up(0)), "{before}");
            node.lock().up = true;
            node.lock().sessions_opened = 7;
            let after = exposition.render_as(format).unwrap();
            assert!(after.contains(&up(1)) && !after.contains(&up(0)), "{after}");
            assert!(after.contains(
                "rpo_node_sessions_opened_total{db_cluster=\"c\",node=\"p\",node_region=\"r\"} 7\n"
            ));
            assert_eq!(after.matches("rpo_node_up{").count(), 1, "{after}");
            assert_eq!(after.matches("# TYPE rpo_node_up gauge").count(), 1);
        }
    }

    /// Parts shared by reference (a node's kept samples) are written under
    /// their families' headers with the collection's own lines, each family
    /// once and whole: the same text as when every line is copied in.
    #[test]
    fn shared_parts_are_written_with_their_families() {
        let mut part = Samples::default();
        part.push(&NODE_UP, &["c", "b", "r"], 0.0);
        part.push(&TASK_RESTARTS, &["dns"], 2.0);
        let part = Arc::new(part);
        let mut shared = Samples::default();
        shared.push(&NODE_UP, &["c", "a", "r"], 1.0);
        shared.push(&OBJECTIVE, &["c"], 0.25);
        shared.append_shared(part.clone());
        shared.append_shared(part.clone());
        let mut copied = Samples::default();
        copied.push(&NODE_UP, &["c", "a", "r"], 1.0);
        copied.push(&OBJECTIVE, &["c"], 0.25);
        copied.append(&part);
        copied.append(&part);
        for format in [Format::Text, Format::OpenMetrics] {
            let (mut a, mut b) = (String::new(), String::new());
            encode(&mut a, &shared, Switches::default(), format).unwrap();
            encode(&mut b, &copied, Switches::default(), format).unwrap();
            assert_eq!(a, b);
            assert_eq!(a.matches("# TYPE rpo_node_up gauge").count(), 1);
            assert!(a.contains(
                "rpo_node_up{db_cluster=\"c\",node=\"a\",node_region=\"r\"} 1\n\
                 rpo_node_up{db_cluster=\"c\",node=\"b\",node_region=\"r\"} 0\n\
                 rpo_node_up{db_cluster=\"c\",node=\"b\",node_region=\"r\"} 0\n"
            ));
        }
        shared.flatten();
        assert_eq!(shared.get(&TASK_RESTARTS).map(|f| f.lines().lines().count()), Some(2));
        shared.clear();
        assert_eq!(Arc::strong_count(&part), 1, "a cleared collection lets the shared parts go");
    }

    #[test]
    fn encodes_the_text_format() {
        let mut samples = Samples::default();
        samples.push(&NODE_UP, &["c", "n\"1\\\n", "r"], 1.0);
        samples.push(&OBJECTIVE, &["c"], 0.25);
        samples.push(&TASK_RESTARTS, &["worker"], 3.0);
        let mut out = String::new();
        encode(&mut out, &samples, Switches::default(), Format::Text).unwrap();
        assert!(out.contains(
            "# HELP rpo_node_up 1 if the node answered its last role probe, else 0.\n# TYPE rpo_node_up gauge\n\
             rpo_node_up{db_cluster=\"c\",node=\"n\\\"1\\\\\\n\",node_region=\"r\"} 1\n"
        ));
        assert!(out.contains("rpo_objective_seconds{db_cluster=\"c\"} 0.25\n"));
        assert!(out.contains("# TYPE rpo_exporter_task_restarts_total counter\n"));
        assert!(out.contains("rpo_exporter_task_restarts_total{task=\"worker\"} 3\n"));
        assert!(!out.contains("# EOF"));
        let mut v = String::new();
        for x in
            [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e21, -0.5, 1_764_000_000.125, 0.0, -0.0, -3.0, 1e15]
        {
            crate::metrics::push_value(&mut v, x);
            v.push(' ');
        }
        assert_eq!(v, "NaN +Inf -Inf 1000000000000000000000 -0.5 1764000000.125 0 -0 -3 1000000000000000 ");
    }
}
