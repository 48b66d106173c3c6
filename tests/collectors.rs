//! The optional collectors (`--collector.NAME` / `--no-collector.NAME`) against a
//! real PostgreSQL pair: with `--no-collector.replication` the engine's native
//! families are absent, its query is never sent (the primary's statement log says
//! so), and lag and exposure are measured as before; one scrape of the same lab
//! with every collector on shows them, so the absence is the switch's doing.

mod support;

use rpo_lab::free_port;
use std::time::Duration;
use support::*;

const NATIVE: &[&str] = &[
    "rpo_pg_standbys",
    "rpo_pg_standby_state",
    "rpo_pg_wal_receiver_status",
    "rpo_pg_replay_paused",
    "rpo_pg_unreplayed_bytes",
];

/// The exporter on `config` with extra flags.
async fn exporter_with(config: &str, flags: &[&str]) -> Exporter {
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("config.yml");
    std::fs::write(&config_path, config).unwrap();
    let addr = format!("127.0.0.1:{}", free_port());
    let mut command = std::process::Command::new(env!("CARGO_BIN_EXE_rpo-exporter"));
    command.args(Exporter::args(&config_path)).args(["--web.listen-address", &addr]).args(flags);
    Exporter::spawn(dir, command, addr).await
}

/// Samples on `m` of the families the collector `switch` emits.
fn series_of(m: &Metrics, switch: &str) -> usize {
    let names: Vec<String> = rpo_exporter::exposition::all()
        .filter(|d| d.switch.is_some_and(|s| s.name() == switch))
        .map(|d| d.sample_name())
        .collect();
    m.samples.iter().filter(|s| names.contains(&s.name)).count()
}

/// Entries of the primary's log that executed a statement naming `view`. An
/// entry starts with its timestamp; a statement's text goes on over the lines
/// after it.
fn executions(lab: &Lab, view: &str) -> usize {
    let log = std::fs::read_to_string(lab.pg.node("p").log_file()).unwrap_or_default();
    let mut entries: Vec<String> = Vec::new();
    for line in log.lines() {
        match entries.last_mut() {
            Some(entry) if !line.starts_with(|c: char| c.is_ascii_digit()) => entry.push_str(line),
            _ => entries.push(line.to_owned()),
        }
    }
    entries.iter().filter(|e| e.contains("execute") && e.contains(view)).count()
}

#[tokio::test(flavor = "multi_thread")]
async fn no_collector_replication_drops_native_families_and_their_query() {
    let lab = Lab::start(spec_primary_replica()).await;
    // Every statement the primary runs goes to its log, with its text.
    let p = lab.pg.node("p");
    p.execute("ALTER SYSTEM SET log_min_duration_statement = 0").await.unwrap();
    p.execute("SELECT pg_reload_conf()").await.unwrap();
    let config = lab.config("1s", "");
    let pair = lab.pair("p", "r1");
    let primary = lab.node_labels("p");

    let off = exporter_with(&config, &["--no-collector.replication", "--no-collector.row_status"]).await;
    wait_for_pair(&off, &pair).await;
    let log = off.log();
    assert!(log.contains("enabled=collector_stats disabled=replication,gtid,row_status"), "{log}");
    // A few more ticks, each of which would have sent the native query.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let m = off.scrape().await;
    let stats_series = series_of(&m, "collector_stats");
    println!(
        "without replication and row_status: {} series; collector_stats' {stats_series}",
        m.samples.len()
    );
    assert!(m.get("rpo_replication_lag_seconds", &pair).is_some(), "lag present");
    assert!(m.get("rpo_data_loss_exposure_seconds", &pair).is_some(), "exposure present");
    for family in NATIVE.iter().chain(&["rpo_heartbeat_row_status"]) {
        assert!(!m.types.contains_key(*family), "{family} is switched off but on /metrics");
        assert!(m.samples.iter().all(|s| s.name != *family), "{family} sample while switched off");
    }
    let replication = with(primary.clone(), &[("collector", "replication")]);
    assert!(m.find("rpo_collector_success", &replication).is_empty(), "the native collector ran");
    assert!(m.find("rpo_measurement_age_seconds", &replication).is_empty(), "the native collector ran");
    let read = with(primary.clone(), &[("collector", "heartbeat_read")]);
    assert_eq!(m.get("rpo_collector_success", &read), Some(1.0), "collector_stats stays on");
    // The log records the heartbeat statements (so it would show the native one too).
    let heartbeats = executions(&lab, "heartbeat");
    assert!(heartbeats >= 3, "the primary's log shows {heartbeats} heartbeat executions");
    assert_eq!(executions(&lab, "pg_stat_replication"), 0, "the native query ran while switched off");
    drop(off);

    // The same lab with the defaults: the native families and their query are back.
    let on = exporter_with(&config, &["--no-collector.collector_stats"]).await;
    wait_for_pair(&on, &pair).await;
    let ok = wait_for(Duration::from_secs(10), || async {
        on.scrape().await.get("rpo_pg_standbys", &primary) == Some(1.0)
    })
    .await;
    assert!(ok, "rpo_pg_standbys never showed with replication on; log:\n{}", on.log());
    let m = on.scrape().await;
    println!(
        "without collector_stats: {} series; replication's {}, gtid's {}, row_status' {}",
        m.samples.len(),
        series_of(&m, "replication"),
        series_of(&m, "gtid"),
        series_of(&m, "row_status")
    );
    assert!(m.types.contains_key("rpo_heartbeat_row_status"));
    assert!(
        !m.types.contains_key("rpo_collector_success")
            && !m.types.contains_key("rpo_collector_duration_seconds")
    );
    assert!(
        m.get("rpo_measurement_age_seconds", &replication).is_some(),
        "ages stay without collector_stats"
    );
    assert!(executions(&lab, "pg_stat_replication") > 0, "the native query never showed in the log");
}
