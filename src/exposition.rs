//! The scrape: every family the exporter can emit ([`all`]), which text format a
//! scraper gets ([`Format`]), and the encoders that turn the latest measurements
//! into it.
//!
//! Both encoders read a snapshot of the live state ([`crate::state::Live`]) and
//! this process's `/proc` readings ([`crate::process`]): they only copy numbers
//! out of memory, so a scrape never waits on a database, DNS or a probe.
//! OpenMetrics comes from a prometheus-client [`Collector`]; the Prometheus text
//! format 0.0.4 from a small encoder of the same samples, with the same sample
//! names (a counter's samples end in `_total` in both). Sits above every part
//! that declares metric families; only the server (and the benchmark) use it.

use crate::metrics::{MetricDesc, MetricKind, Samples, CORE, PROCESS};
use crate::state::{Live, PROBES};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::fmt::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

/// Every family the exporter can emit: the core ones, then each engine's, then
/// each probe subsystem's ([`PROBES`]), then the process's ([`PROCESS`]).
pub fn all() -> impl Iterator<Item = &'static MetricDesc> {
    CORE.iter()
        .copied()
        .chain(crate::engine::metrics())
        .chain(PROBES.iter().flat_map(|p| p.metrics.iter().copied()))
        .chain(PROCESS.iter().copied())
}

/// The samples of one scrape: the live state's, then this process's.
fn snapshot(live: &Live) -> Samples {
    let mut samples = live.samples();
    crate::process::sample(&mut samples);
    samples
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

/// The prometheus-client collector that reads the shared state on each scrape.
#[derive(Debug)]
struct StateCollector {
    live: Arc<Live>,
}

impl Collector for StateCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut samples = snapshot(&self.live);
        for desc in all() {
            let kind = match desc.kind {
                MetricKind::Gauge => MetricType::Gauge,
                MetricKind::Counter => MetricType::Counter,
            };
            let mut metric_encoder = encoder.encode_descriptor(desc.name, desc.help, None, kind)?;
            let Some(family) = samples.take(desc) else { continue };
            let mut labels = Vec::with_capacity(desc.labels.len());
            for (pairs, value) in family.samples() {
                labels.clear();
                labels.extend(pairs);
                let encoder = metric_encoder.encode_family(&labels)?;
                match desc.kind {
                    MetricKind::Gauge => ConstGauge::new(value).encode(encoder)?,
                    MetricKind::Counter => ConstCounter::new(value).encode(encoder)?,
                }
            }
        }
        Ok(())
    }
}

/// What the server encodes on each scrape: the registry over the shared state,
/// and the size of the last exposition in each format, so a scrape writes into
/// one buffer of the right size instead of growing (and copying) it a dozen times.
#[derive(Debug)]
pub struct Exposition {
    live: Arc<Live>,
    registry: Registry,
    size_hint: [AtomicUsize; 2],
}

impl Exposition {
    pub fn new(live: Arc<Live>) -> Exposition {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(StateCollector { live: live.clone() }));
        Exposition { live, registry, size_hint: [AtomicUsize::new(16 * 1024), AtomicUsize::new(16 * 1024)] }
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
        match format {
            Format::OpenMetrics => prometheus_client::encoding::text::encode(&mut out, &self.registry)?,
            Format::Text => encode_text(&mut out, snapshot(&self.live))?,
        }
        size_hint.store(out.len(), Ordering::Relaxed);
        Ok(out)
    }
}

/// A family's fixed text in the format 0.0.4, made once: its `# HELP` and
/// `# TYPE` lines and its sample name.
struct TextFamily {
    desc: &'static MetricDesc,
    header: String,
    sample_name: String,
}

/// Every family's fixed text, in the order of [`all`].
fn text_families() -> &'static [TextFamily] {
    static FAMILIES: OnceLock<Vec<TextFamily>> = OnceLock::new();
    FAMILIES.get_or_init(|| {
        all()
            .map(|desc| {
                let kind = match desc.kind {
                    MetricKind::Gauge => "gauge",
                    MetricKind::Counter => "counter",
                };
                let sample_name = desc.sample_name();
                let mut header = format!("# HELP {sample_name} ");
                escape(&mut header, desc.help, false);
                header.push_str(&format!("\n# TYPE {sample_name} {kind}\n"));
                TextFamily { desc, header, sample_name }
            })
            .collect()
    })
}

/// The Prometheus text format 0.0.4: `# HELP` and `# TYPE` under the sample name
/// (a counter's with `_total`, as client_golang writes it), then the samples.
fn encode_text(out: &mut String, mut samples: Samples) -> std::fmt::Result {
    for family in text_families() {
        out.push_str(&family.header);
        let Some(samples) = samples.take(family.desc) else { continue };
        for (labels, value) in samples.samples() {
            out.push_str(&family.sample_name);
            let mut first = true;
            for (label, label_value) in labels {
                out.push(if first { '{' } else { ',' });
                first = false;
                out.push_str(label);
                out.push_str("=\"");
                escape(out, label_value, true);
                out.push('"');
            }
            if !first {
                out.push('}');
            }
            out.push(' ');
            push_value(out, value)?;
            out.push('\n');
        }
    }
    Ok(())
}

/// The Prometheus text format 0.0.4 of `families` alone, in their order: for a
/// process that serves a few families of its own (`rpo-exporter drill`).
pub fn encode_text_of(families: &[&'static MetricDesc], mut samples: Samples) -> String {
    let mut out = String::new();
    for desc in families {
        let kind = match desc.kind {
            MetricKind::Gauge => "gauge",
            MetricKind::Counter => "counter",
        };
        let name = desc.sample_name();
        out.push_str(&format!("# HELP {name} "));
        escape(&mut out, desc.help, false);
        out.push_str(&format!("\n# TYPE {name} {kind}\n"));
        let Some(family) = samples.take(desc) else { continue };
        for (labels, value) in family.samples() {
            out.push_str(&name);
            let mut first = true;
            for (label, label_value) in labels {
                out.push(if first { '{' } else { ',' });
                first = false;
                out.push_str(label);
                out.push_str("=\"");
                escape(&mut out, label_value, true);
                out.push('"');
            }
            if !first {
                out.push('}');
            }
            out.push(' ');
            // Writing into a String cannot fail.
            let _ = push_value(&mut out, value);
            out.push('\n');
        }
    }
    out
}

/// A HELP text or (`quotes`) a label value, escaped as the text format requires.
fn escape(out: &mut String, text: &str, quotes: bool) {
    if !text.bytes().any(|b| matches!(b, b'\\' | b'\n' | b'"')) {
        out.push_str(text);
        return;
    }
    for c in text.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '"' if quotes => out.push_str("\\\""),
            c => out.push(c),
        }
    }
}

/// A sample value as Go's parser reads it: the shortest decimal that reads back
/// the same, `NaN`, `+Inf` or `-Inf`.
fn push_value(out: &mut String, value: f64) -> std::fmt::Result {
    if value.is_nan() {
        out.push_str("NaN");
    } else if value.is_infinite() {
        out.push_str(if value > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        write!(out, "{value}")?;
    }
    Ok(())
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

    #[test]
    fn encodes_the_text_format() {
        let mut samples = Samples::default();
        samples.push(&NODE_UP, &["c", "n\"1\\\n", "r"], 1.0);
        samples.push(&OBJECTIVE, &["c"], 0.25);
        samples.push(&TASK_RESTARTS, &["worker"], 3.0);
        let mut out = String::new();
        encode_text(&mut out, samples).unwrap();
        assert!(out.contains(
            "# HELP rpo_node_up 1 if the node answered its last role probe, else 0.\n# TYPE rpo_node_up gauge\n\
             rpo_node_up{db_cluster=\"c\",node=\"n\\\"1\\\\\\n\",node_region=\"r\"} 1\n"
        ));
        assert!(out.contains("rpo_objective_seconds{db_cluster=\"c\"} 0.25\n"));
        assert!(out.contains("# TYPE rpo_exporter_task_restarts_total counter\n"));
        assert!(out.contains("rpo_exporter_task_restarts_total{task=\"worker\"} 3\n"));
        assert!(!out.contains("# EOF"));
        let mut v = String::new();
        for x in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY, 1e21, -0.5, 1_764_000_000.125] {
            push_value(&mut v, x).unwrap();
            v.push(' ');
        }
        assert_eq!(v, "NaN +Inf -Inf 1000000000000000000000 -0.5 1764000000.125 ");
    }
}
