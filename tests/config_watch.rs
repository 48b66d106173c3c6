//! The config follows its file: a changed `--config.file` is reloaded without a
//! signal or `/-/reload`, here through a Kubernetes ConfigMap volume's atomic
//! symlink swap (`config.yml -> ..data/config.yml`, `..data -> ..<timestamp>`,
//! the kubelet renaming a new `..data` link over the old one). A bad new file is
//! refused as a reload is, and the previous config keeps running.

mod support;

use rpo_lab::PgLabSpec;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};
use support::*;

const OK: &str = "rpo_exporter_config_last_reload_successful";

fn config(lab: &Lab, rpo: &str) -> String {
    let nodes: String = ["p", "r1"].iter().map(|n| lab.node_yaml(n)).collect();
    format!(
        "clusters:\n  - name: lab\n    rpo: {rpo}\n    rto: 5m\n    heartbeat: {{ interval: 1s, create_table: false }}\n    nodes:\n{nodes}"
    )
}

/// Writes `..<stamp>/config.yml` and points `..data` at it the way the kubelet
/// does: a new symlink renamed over the old one, in one step.
fn publish(volume: &Path, stamp: &str, text: &str) {
    let dir = volume.join(format!("..{stamp}"));
    std::fs::create_dir(&dir).unwrap();
    std::fs::write(dir.join("config.yml"), text).unwrap();
    let tmp = volume.join("..data_tmp");
    std::os::unix::fs::symlink(format!("..{stamp}"), &tmp).unwrap();
    std::fs::rename(&tmp, volume.join("..data")).unwrap();
}

async fn objective(exporter: &Exporter) -> Option<f64> {
    exporter.scrape().await.get("rpo_objective_seconds", &[("db_cluster", "lab".into())])
}

/// Waits until the cluster's rpo reads `seconds`; returns how long it took.
async fn wait_for_objective(exporter: &Exporter, seconds: f64, what: &str) -> Duration {
    let started = Instant::now();
    let ok = wait_for(Duration::from_secs(10), || async { objective(exporter).await == Some(seconds) }).await;
    assert!(ok, "{what}: rpo_objective_seconds is not {seconds}; log:\n{}", exporter.log());
    started.elapsed()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_configmap_symlink_swap_is_reloaded_and_a_bad_one_refused() {
    let lab = Lab::start(spec_primary_replica()).await;
    let dir = tempfile::tempdir().unwrap();
    let volume = dir.path().join("volume");
    std::fs::create_dir(&volume).unwrap();
    publish(&volume, "2026_11_30_a", &config(&lab, "30s"));
    std::os::unix::fs::symlink("..data/config.yml", volume.join("config.yml")).unwrap();

    let addr = format!("127.0.0.1:{}", rpo_lab::free_port());
    let mut command = Command::new(env!("CARGO_BIN_EXE_rpo-exporter"));
    command.args(Exporter::args(&volume.join("config.yml"))).args(["--web.listen-address", &addr]);
    let exporter = Exporter::spawn(dir, command, addr).await;
    wait_for_pair(&exporter, &lab.pair("p", "r1")).await;
    assert_eq!(objective(&exporter).await, Some(30.0));

    // A new ConfigMap version: picked up without a signal or /-/reload.
    publish(&volume, "2026_11_30_b", &config(&lab, "45s"));
    let took = wait_for_objective(&exporter, 45.0, "after the swap to ..2026_11_30_b").await;
    eprintln!("the symlink swap was reloaded after {took:?}");
    let m = exporter.scrape().await;
    assert_eq!(m.get(OK, &[]), Some(1.0));
    assert_eq!(m.get("rpo_node_up", &lab.node_labels("p")), Some(1.0));
    let log = exporter.log();
    assert!(
        log.contains("Config file changed; reloading") && log.contains("Configuration reloaded"),
        "{log}"
    );

    // A bad version: refused, reported, the previous config keeps measuring.
    let bad = config(&lab, "45s").replace("interval: 1s", "interval: 1 fortnight");
    publish(&volume, "2026_11_30_c", &bad);
    let refused =
        wait_for(Duration::from_secs(10), || async { exporter.scrape().await.get(OK, &[]) == Some(0.0) })
            .await;
    assert!(refused, "the bad config was not reported; log:\n{}", exporter.log());
    assert!(
        // logfmt escapes the quotes inside the quoted error.
        exporter.log().contains(r#"clusters[0].heartbeat.interval: invalid duration \"1 fortnight\""#),
        "{}",
        exporter.log()
    );
    let before =
        exporter.scrape().await.get("rpo_heartbeat_seen_timestamp_seconds", &lab.pair("p", "r1")).unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    let m = exporter.scrape().await;
    assert_eq!(objective(&exporter).await, Some(45.0), "the previous config stays");
    assert!(
        m.get("rpo_heartbeat_seen_timestamp_seconds", &lab.pair("p", "r1")).unwrap() > before,
        "the previous config keeps measuring"
    );
    // Refused once, not on every look at the unchanged bad file.
    assert_eq!(exporter.log().matches("Configuration reload failed").count(), 1, "{}", exporter.log());

    // Fixed: the next version loads.
    publish(&volume, "2026_11_30_d", &config(&lab, "1m"));
    wait_for_objective(&exporter, 60.0, "after the fix in ..2026_11_30_d").await;
    assert_eq!(exporter.scrape().await.get(OK, &[]), Some(1.0));
}

#[tokio::test(flavor = "multi_thread")]
async fn an_edit_in_place_is_reloaded_the_same_text_is_not_and_the_watch_can_be_off() {
    let lab = Lab::start(PgLabSpec::new().primary("p").replica("r1", "p")).await;
    let exporter = Exporter::start(&config(&lab, "30s")).await;
    wait_for_pair(&exporter, &lab.pair("p", "r1")).await;

    exporter.rewrite_config(&config(&lab, "40s"));
    let took = wait_for_objective(&exporter, 40.0, "after an edit in place").await;
    eprintln!("the edit in place was reloaded after {took:?}");

    // Same text written again: nothing to reload, not even a no-op one.
    let reloads = |log: &str| log.matches("Config file changed; reloading").count();
    let before = reloads(&exporter.log());
    exporter.rewrite_config(&config(&lab, "40s"));
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(reloads(&exporter.log()), before, "{}", exporter.log());

    // --config.watch-interval=0: only SIGHUP and /-/reload reload.
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("config.yml");
    std::fs::write(&path, config(&lab, "30s")).unwrap();
    let addr = format!("127.0.0.1:{}", rpo_lab::free_port());
    let mut command = Command::new(env!("CARGO_BIN_EXE_rpo-exporter"));
    command.args(Exporter::args(&path)).args(["--web.listen-address", &addr, "--config.watch-interval=0"]);
    let unwatched = Exporter::spawn(dir, command, addr).await;
    assert_eq!(objective(&unwatched).await, Some(30.0));
    std::fs::write(&path, config(&lab, "50s")).unwrap();
    tokio::time::sleep(Duration::from_secs(3)).await;
    assert_eq!(objective(&unwatched).await, Some(30.0), "reloaded although the watch is off");
    unwatched.signal(nix::sys::signal::Signal::SIGHUP);
    wait_for_objective(&unwatched, 50.0, "after SIGHUP").await;
}
