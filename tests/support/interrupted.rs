//! Why a rule may have gone pending in a healthy lab: the inputs of the shipped rules
//! that were really interrupted in a window (a failed scrape on any layer, a heartbeat
//! writer that stalled past the stale threshold, a node that missed a probe). Tests that
//! require a healthy lab to raise nothing accept a pending only with such a cause named,
//! and never a firing alert.

use rpo_lab::Prometheus;
use std::collections::BTreeMap;
use std::time::Duration;

/// The scrapes of `prom` that failed in the last `window`, per job and instance, with the
/// slowest scrape of each target in that window: `{job/instance: (failed, slowest s)}`.
pub async fn failed_scrapes(prom: &Prometheus, window: Duration) -> BTreeMap<String, (f64, f64)> {
    let w = window.as_secs();
    let failed = prom.query(&format!("count_over_time(up[{w}s]) - sum_over_time(up[{w}s])")).await.unwrap();
    let slowest = prom.query(&format!("max_over_time(scrape_duration_seconds[{w}s])")).await.unwrap();
    let by_target = |v: &serde_json::Value| -> BTreeMap<String, f64> {
        v.as_array()
            .unwrap()
            .iter()
            .map(|s| {
                let key = format!(
                    "{}/{}",
                    s["metric"]["job"].as_str().unwrap_or("?"),
                    s["metric"]["instance"].as_str().unwrap_or("?")
                );
                (key, s["value"][1].as_str().and_then(|x| x.parse().ok()).unwrap_or(f64::NAN))
            })
            .collect()
    };
    let slowest = by_target(&slowest);
    by_target(&failed)
        .into_iter()
        .map(|(k, n)| {
            let s = slowest.get(&k).copied().unwrap_or(f64::NAN);
            (k, (n, s))
        })
        .collect()
}

/// What in the last `window` could have made a rule go pending in a healthy lab: a failed
/// scrape on any layer, a heartbeat write age past the stale threshold (the writer really
/// stalled: the host held the database or the exporter), or a node that missed a probe.
/// One line per cause; empty when every input flowed.
pub async fn causes(layers: &[(&str, &Prometheus)], window: Duration) -> Vec<String> {
    let w = window.as_secs();
    let mut causes = Vec::new();
    for (name, prom) in layers {
        for (target, (failed, slowest)) in failed_scrapes(prom, window).await {
            if failed > 0.0 {
                causes.push(format!("{name}: {failed} failed scrapes of {target} (slowest {slowest} s)"));
            }
        }
        let queries = [
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
                let node = s["metric"]["node"].as_str().unwrap_or("?");
                causes.push(format!("{name}: node {node}: {what} {}", s["value"][1]));
            }
        }
    }
    causes
}
