//! Why a rule may have gone pending in a healthy lab: the inputs of the shipped rules
//! that were really interrupted in a window (a failed scrape on any layer, a heartbeat
//! writer that stalled past the stale threshold, a node that missed a probe). Tests that
//! require a healthy lab to raise nothing (`global_layout`) accept a pending only with
//! such a cause named, and never a firing alert.

use rpo_lab::Prometheus;
use std::time::Duration;

/// What in the last `window` could have made a rule go pending in a healthy lab: a failed
/// scrape on any layer, a heartbeat write age past the stale threshold (the writer really
/// stalled: the host held the database or the exporter), or a node that missed a probe.
/// One line per cause; empty when every input flowed.
pub async fn causes(layers: &[(&str, &Prometheus)], window: Duration) -> Vec<String> {
    let w = window.as_secs();
    let mut causes = Vec::new();
    for (name, prom) in layers {
        let queries = [
            (format!("count_over_time(up[{w}s]) - sum_over_time(up[{w}s]) > 0"), "failed scrapes"),
            (
                format!(
                    r#"max_over_time(rpo_measurement_age_seconds{{collector="heartbeat_write"}}[{w}s]) > 5"#
                ),
                "heartbeat write age reached (s)",
            ),
            (format!("min_over_time(rpo_node_up[{w}s]) < 1"), "a node missed a probe: rpo_node_up fell to"),
        ];
        for (query, what) in queries {
            for s in prom.query(&query).await.unwrap().as_array().unwrap() {
                causes.push(format!("{name}: {}: {what} {}", s["metric"], s["value"][1]));
            }
        }
    }
    causes
}
