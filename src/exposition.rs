//! The scrape: every family the exporter can emit ([`all`]) and the encoder that
//! turns the latest measurements into OpenMetrics text.
//!
//! The encoder is a prometheus-client [`Collector`] over a snapshot of the live
//! state ([`crate::state::Live`]): it only copies numbers out of memory, so a
//! scrape never waits on a database, DNS or a probe. Sits above every part that
//! declares metric families; only the server (and the benchmark) use it.

use crate::metrics::{MetricDesc, MetricKind, CORE};
use crate::state::{Live, PROBES};
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeMetric};
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Every family the exporter can emit: the core ones, then each engine's, then
/// each probe subsystem's ([`PROBES`]).
pub fn all() -> impl Iterator<Item = &'static MetricDesc> {
    CORE.iter()
        .copied()
        .chain(crate::engine::metrics())
        .chain(PROBES.iter().flat_map(|p| p.metrics.iter().copied()))
}

/// The prometheus-client collector that reads the shared state on each scrape.
#[derive(Debug)]
struct StateCollector {
    live: Arc<Live>,
}

impl Collector for StateCollector {
    fn encode(&self, mut encoder: DescriptorEncoder) -> Result<(), std::fmt::Error> {
        let mut samples = self.live.samples();
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
/// and the size of the last exposition, so a scrape writes into one buffer of the
/// right size instead of growing (and copying) it a dozen times.
#[derive(Debug)]
pub struct Exposition {
    registry: Registry,
    size_hint: AtomicUsize,
}

impl Exposition {
    pub fn new(live: Arc<Live>) -> Exposition {
        let mut registry = Registry::default();
        registry.register_collector(Box::new(StateCollector { live }));
        Exposition { registry, size_hint: AtomicUsize::new(16 * 1024) }
    }

    /// Renders the latest measurements as OpenMetrics text.
    pub fn render(&self) -> Result<String, std::fmt::Error> {
        // A little headroom for label values and numbers that grew since.
        let hint = self.size_hint.load(Ordering::Relaxed);
        let mut out = String::with_capacity(hint + hint / 8);
        prometheus_client::encoding::text::encode(&mut out, &self.registry)?;
        self.size_hint.store(out.len(), Ordering::Relaxed);
        Ok(out)
    }
}

/// The content type of [`Exposition::render`]'s output.
pub const CONTENT_TYPE: &str = "application/openmetrics-text; version=1.0.0; charset=utf-8";
