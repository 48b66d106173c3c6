//! One Prometheus per region and a global view, with real servers, as SREs run it: a
//! PostgreSQL primary (us-east-1) and replica (eu-west-1), a sidecar exporter beside
//! each, two regional Prometheus servers (external label `region`), each scraping only
//! its region's sidecar and evaluating alerts/regional/, a global Prometheus federating
//! both (`/federate`, honor_labels) and evaluating alerts/global/, and two Alertmanagers
//! clustered over loopback with the shipped routing (deploy/alertmanager/alertmanager.yml,
//! its receivers replaced by webhooks this test runs). Every Prometheus sends to both.
//!
//! 1. A steady healthy state raises nothing anywhere (pending or firing, on any of the
//!    three) for 2 minutes, and nothing is notified. A pending is excused only by an input
//!    that was really interrupted (a failed scrape, a stalled heartbeat writer, a missed
//!    probe), which the test names; it must still never fire.
//! 2. A replica stalled past its RPO (paused replay) pages exactly once — one webhook
//!    call although two Prometheus layers and two Alertmanagers see it — with its region
//!    labels. The timeline is printed: stall, regional alert, global alert, page.
//! 3. Stopping one regional Prometheus raises the global meta-alert
//!    (RPORegionalPrometheusDown) and no RPO alert about the series that vanished with it.
//!
//! About six minutes of real time, most of it waiting on the rules' `for:`: scripts/test.sh
//! runs it on its own beside the workspace tests, like the soak.

mod support;

use rpo_lab::{Alertmanager, Prometheus, PrometheusOptions};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::{Duration, Instant};
use support::webhook::Webhook;
use support::*;

const JOB: &str = "rpo-exporter";
const FEDERATION_JOB: &str = "rpo-federate";
const FEDERATE: &[&str] = &[r#"{__name__=~"rpo_.+"}"#, r#"{__name__=~"region[a-z_]*:rpo_.+"}"#];
const US: &str = "us-east-1";
const EU: &str = "eu-west-1";

/// The rule files of one set, `alerts/SET/*.yml`.
fn rule_set(set: &str) -> Vec<PathBuf> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("alerts").join(set);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no rule files in {}", dir.display());
    files
}

/// The shipped Alertmanager config, its receivers replaced by the test's webhooks and
/// its waits shortened (the test times the rules, not Alertmanager's batching).
fn alertmanager_config(pager: &str, ticket: &str) -> String {
    let shipped = std::fs::read_to_string(
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("deploy/alertmanager/alertmanager.yml"),
    )
    .unwrap();
    let (routing, _) = shipped.split_once("\nreceivers:\n").expect("the shipped config has receivers");
    let mut config = routing.to_owned();
    for (from, to) in [("group_wait: 30s", "group_wait: 1s"), ("group_wait: 10s", "group_wait: 1s")] {
        assert!(config.contains(from), "the shipped config no longer says {from:?}");
        config = config.replace(from, to);
    }
    config.push_str(&format!(
        "\nreceivers:\n  - name: pager\n    webhook_configs:\n      - url: '{pager}'\n        send_resolved: false\n\
         \x20 - name: ticket\n    webhook_configs:\n      - url: '{ticket}'\n        send_resolved: false\n\
         \x20 - name: \"null\"\n"
    ));
    config
}

/// A sidecar's config: the cluster with only `node` in it.
fn sidecar_config(lab: &Lab, node: &str) -> String {
    format!(
        "clusters:\n  - name: lab\n    rpo: 20s\n    rto: 5m\n    heartbeat: {{ interval: 1s, create_table: false }}\n    nodes:\n{}",
        lab.node_yaml(node)
    )
}

fn host_port(prom: &Prometheus) -> String {
    format!("127.0.0.1:{}", prom.port())
}

/// `alertname/alertstate` of every alert a Prometheus holds (pending or firing).
async fn alerts(prom: &Prometheus) -> BTreeSet<String> {
    let list = prom.query("ALERTS").await.unwrap();
    list.as_array()
        .unwrap()
        .iter()
        .map(|a| {
            format!(
                "{}/{}",
                a["metric"]["alertname"].as_str().unwrap_or("?"),
                a["metric"]["alertstate"].as_str().unwrap_or("?")
            )
        })
        .collect()
}

/// Waits up to a minute until none of `proms` holds an alert; panics with what they hold.
async fn quiet(proms: &[&Prometheus], when: &str) {
    let all_quiet = || async {
        for prom in proms {
            if !alerts(prom).await.is_empty() {
                return false;
            }
        }
        true
    };
    if !wait_for(Duration::from_secs(60), all_quiet).await {
        let mut held = Vec::new();
        for prom in proms {
            held.push(alerts(prom).await);
        }
        panic!("alerts {when}: {held:?}");
    }
}

/// Every firing alert named `name` the webhook was sent, one entry per notification.
fn notified(webhook: &Webhook, name: &str) -> Vec<Value> {
    let received = webhook.received.lock().unwrap();
    received
        .iter()
        .flat_map(|(_, n)| n["alerts"].as_array().cloned().unwrap_or_default())
        .filter(|a| a["labels"]["alertname"] == name && a["status"] == "firing")
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
#[ignore = "six minutes of real time: scripts/test.sh runs it beside the workspace tests"]
async fn one_prometheus_per_region_and_a_global_view_page_once() {
    let lab = Lab::start(spec_primary_replica()).await;
    assert_eq!((lab.region("p"), lab.region("r1")), (US, EU), "the lab's regions changed");
    let (pager, ticket) = (Webhook::start().await, Webhook::start().await);
    let ams =
        Alertmanager::start_cluster(2, &alertmanager_config(&pager.url, &ticket.url), Duration::from_secs(3))
            .await
            .unwrap();
    let sidecar_p = Exporter::start(&sidecar_config(&lab, "p")).await;
    let sidecar_r1 = Exporter::start(&sidecar_config(&lab, "r1")).await;
    let notify = |options: PrometheusOptions| {
        ams.iter()
            .fold(options, |o, am| o.alertmanager(&am.host_port()))
            .scrape_interval(Duration::from_secs(1))
    };
    let regional = |sidecar: &Exporter, region: &str| {
        let options = PrometheusOptions::new(std::slice::from_ref(&sidecar.addr))
            .job_name(JOB)
            .external_label("region", region);
        notify(rule_set("regional").into_iter().fold(options, |o, f| o.rule_file(f)))
    };
    let us = Prometheus::start_with(&regional(&sidecar_p, US)).await.unwrap();
    let eu = Prometheus::start_with(&regional(&sidecar_r1, EU)).await.unwrap();
    let sources = [(host_port(&us), US.to_owned()), (host_port(&eu), EU.to_owned())];
    let global_options = PrometheusOptions::new(&[]).federate(FEDERATION_JOB, &sources, "region", FEDERATE);
    let global = Prometheus::start_with(&notify(
        rule_set("global").into_iter().fold(global_options, |o, f| o.rule_file(f)),
    ))
    .await
    .unwrap();

    // Both regions reach the global layer, with the pair the replica's sidecar measures.
    global
        .wait_for("count by (region) (rpo_node_up)", Duration::from_secs(60), |r| {
            r.as_array().is_some_and(|a| a.len() == 2)
        })
        .await
        .unwrap();
    let pair = r#"rpo_data_loss_exposure_seconds{source_node="p", replica_node="r1", region="eu-west-1"}"#;
    global
        .wait_for(pair, Duration::from_secs(60), |r| r.as_array().is_some_and(|a| a.len() == 1))
        .await
        .unwrap();

    // The global rules' first evaluations may predate one region's first federated
    // scrape; the steady state starts once no layer holds anything.
    let settling = Instant::now();
    quiet(&[&us, &eu, &global], "at the start").await;
    println!("settled {:.1} s after both regions reached the global layer", settling.elapsed().as_secs_f64());

    // 1. Healthy for 2 minutes: nothing firing anywhere, nothing notified, and nothing
    // pending unless one of its inputs was really interrupted (`interrupted::causes`: a failed
    // scrape, a stalled heartbeat writer, a missed probe), as on a host loaded by three
    // lanes of tests, where a clean CI-like run once saw the global RPOHeartbeatsStale
    // pending for a moment. Such a pending is printed with when it was seen and must be
    // gone by the end of the window: one that lasts its `for:` fires and fails the check.
    let healthy = Instant::now();
    let mut checks = 0;
    let mut pending: BTreeMap<String, (f64, f64)> = BTreeMap::new();
    while healthy.elapsed() < Duration::from_secs(120) {
        for (name, prom) in [("us-east-1", &us), ("eu-west-1", &eu), ("global", &global)] {
            let held = alerts(prom).await;
            assert!(!held.iter().any(|a| a.ends_with("/firing")), "{name} holds {held:?} in a healthy state");
            let at = healthy.elapsed().as_secs_f64();
            for a in held {
                pending.entry(format!("{name}: {a}")).or_insert((at, at)).1 = at;
            }
        }
        checks += 1;
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let window = healthy.elapsed() + Duration::from_secs(5);
    let causes =
        interrupted::causes(&[("us-east-1", &us), ("eu-west-1", &eu), ("global", &global)], window).await;
    quiet(&[&us, &eu, &global], "after the healthy window").await;
    let (pages, tickets) = (pager.seen(), ticket.seen());
    println!(
        "healthy 2 min: {checks} checks of the three Prometheus servers, 0 firing; pending (first, last seen, s): \
         {pending:?}; notifications: {pages:?} {tickets:?}; interrupted inputs: {causes:?}"
    );
    assert!(
        pending.is_empty() || !causes.is_empty(),
        "healthy, every scrape and probe succeeded and heartbeats stayed fresh, yet rules went pending: {pending:?}"
    );
    assert!(pages.is_empty() && tickets.is_empty(), "healthy, yet notified: {pages:?} {tickets:?}");

    // 2. The replica stops applying: one page, from whichever layer sees it first.
    lab.pg.node("r1").execute("SELECT pg_wal_replay_pause()").await.unwrap();
    let stalled = Instant::now();
    let mut firsts: Vec<(String, f64)> = Vec::new();
    let note = |what: String, firsts: &mut Vec<(String, f64)>| {
        if !firsts.iter().any(|(w, _)| *w == what) {
            firsts.push((what, stalled.elapsed().as_secs_f64()));
        }
    };
    let deadline = stalled + Duration::from_secs(150);
    while notified(&pager, "RPOBreached").is_empty()
        || !firsts.iter().any(|(w, _)| w.starts_with("eu-west-1"))
    {
        assert!(
            Instant::now() < deadline,
            "no page and regional alert within 150 s: {firsts:?}; pages {:?}",
            pager.seen()
        );
        for (name, prom) in [("eu-west-1", &eu), ("us-east-1", &us), ("global", &global)] {
            for a in alerts(prom).await.into_iter().filter(|a| a.ends_with("/firing")) {
                note(format!("{name} {a}"), &mut firsts);
            }
        }
        if !notified(&pager, "RPOBreached").is_empty() {
            note("page: RPOBreached".to_owned(), &mut firsts);
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
    // Long enough for the other Alertmanager to have sent its own, were it not clustered.
    tokio::time::sleep(Duration::from_secs(10)).await;
    println!("timeline of the stall (seconds after pg_wal_replay_pause):");
    for (what, at) in &firsts {
        println!("  {at:6.1}  {what}");
    }
    let pages = notified(&pager, "RPOBreached");
    println!("pages: {} ({:?}); tickets: {:?}", pages.len(), pager.seen(), ticket.seen());
    assert_eq!(pages.len(), 1, "the stall paged {} times: {:?}", pages.len(), pager.seen());
    let labels = &pages[0]["labels"];
    for (label, want) in [
        ("db_cluster", "lab"),
        ("source_node", "p"),
        ("source_region", US),
        ("replica_node", "r1"),
        ("replica_region", EU),
    ] {
        assert_eq!(labels[label], want, "the page's {label}: {labels}");
    }
    assert_eq!(pager.seen().len(), 1, "other pages: {:?}", pager.seen());

    resume_replay(lab.pg.node("r1")).await;
    quiet(&[&us, &eu, &global], "after the replica caught up").await;
    let pages_before = pager.received.lock().unwrap().len();

    // 3. The us-east-1 Prometheus stops: the writer's series vanish from the global layer.
    drop(us);
    let stopped = Instant::now();
    let meta = loop {
        let held = alerts(&global).await;
        let other: Vec<&String> =
            held.iter().filter(|a| !a.starts_with("RPORegionalPrometheusDown/")).collect();
        assert!(other.is_empty(), "the global layer raised {other:?} when a regional Prometheus stopped");
        if held.contains("RPORegionalPrometheusDown/firing") {
            break stopped.elapsed().as_secs_f64();
        }
        assert!(stopped.elapsed() < Duration::from_secs(200), "no meta-alert 200 s after us-east-1 stopped");
        tokio::time::sleep(Duration::from_secs(1)).await;
    };
    let paged = wait_for(Duration::from_secs(20), || async {
        !notified(&pager, "RPORegionalPrometheusDown").is_empty()
    })
    .await;
    assert!(paged, "RPORegionalPrometheusDown fired but paged nobody");
    tokio::time::sleep(Duration::from_secs(10)).await;
    let later: Vec<String> = pager.seen().into_iter().skip(pages_before).collect();
    println!("us-east-1's Prometheus stopped: RPORegionalPrometheusDown firing after {meta:.1} s; pages since: {later:?}; eu-west-1 holds {:?}", alerts(&eu).await);
    assert_eq!(later, vec!["RPORegionalPrometheusDown=firing".to_owned()], "one meta page, nothing else");
    let down = &notified(&pager, "RPORegionalPrometheusDown")[0]["labels"];
    assert_eq!(down["region"], US, "the meta page names the silent region: {down}");
}
