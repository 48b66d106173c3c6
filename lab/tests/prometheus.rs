//! Integration test of the Prometheus runner: it scrapes itself (up = 1) and a port where
//! nothing listens (up = 0).

use std::time::{Duration, Instant};

use rpo_lab::{free_port, Prometheus};

#[tokio::test]
async fn prometheus_scrapes_itself() {
    let port = free_port();
    let target = format!("127.0.0.1:{port}");
    let dead = format!("127.0.0.1:{}", free_port());
    let t0 = Instant::now();
    let prom =
        Prometheus::start_on(port, &[target.clone(), dead.clone()], Duration::from_secs(1), "/metrics")
            .await
            .unwrap();
    eprintln!("Prometheus ready in {:?}", t0.elapsed());
    assert_eq!(prom.url(), format!("http://{target}"));

    let t1 = Instant::now();
    let up = prom
        .wait_for("up{job=\"rpo\"}", Duration::from_secs(15), |r| r.as_array().is_some_and(|a| a.len() == 2))
        .await
        .unwrap();
    eprintln!("first scrape results {:?} after ready", t1.elapsed());
    for series in up.as_array().unwrap() {
        let instance = series["metric"]["instance"].as_str().unwrap();
        let value = series["value"][1].as_str().unwrap();
        let expected = if instance == target { "1" } else { "0" };
        assert_eq!(value, expected, "up for {instance}: {series}");
    }
    let targets = prom.targets().await.unwrap();
    assert_eq!(targets.as_array().unwrap().len(), 2);

    let err = prom.query("this is not promql").await.unwrap_err();
    assert!(format!("{err:#}").contains("bad_data"), "{err:#}");

    let taken = Prometheus::start_on(port, &[], Duration::from_secs(1), "/metrics").await.unwrap_err();
    assert!(format!("{taken:#}").contains("address already in use"), "{taken:#}");

    let dir = prom.dir().to_path_buf();
    drop(prom);
    assert!(!dir.exists());
    assert!(Prometheus::start(&["10.1.2.3:9090".to_string()], Duration::from_secs(1), "/metrics")
        .await
        .is_err());
}

/// A regional Prometheus with an external label, federated by a global one: the
/// series keep the regional label (honor_labels), and the federation's `up` carries the
/// source's label. Two Alertmanagers gossip on loopback and see each other.
#[tokio::test]
async fn a_global_prometheus_federates_a_regional_one_and_alertmanagers_cluster() {
    use rpo_lab::{Alertmanager, PrometheusOptions};
    let port = free_port();
    let regional = Prometheus::start_with_on(
        port,
        &PrometheusOptions::new(&[format!("127.0.0.1:{port}")])
            .job_name("self")
            .external_label("region", "eu-west-1"),
    )
    .await
    .unwrap();
    let global = Prometheus::start_with(&PrometheusOptions::new(&[]).federate(
        "federate",
        &[(format!("127.0.0.1:{port}"), "eu-west-1".to_owned())],
        "region",
        &["{job=\"self\"}"],
    ))
    .await
    .unwrap();
    let federated = global
        .wait_for("up{job=\"self\", region=\"eu-west-1\"}", Duration::from_secs(30), |r| {
            r.as_array().is_some_and(|a| a.len() == 1)
        })
        .await
        .unwrap();
    assert_eq!(federated[0]["value"][1], "1", "{federated}");
    let up = global.query("up{job=\"federate\", region=\"eu-west-1\"}").await.unwrap();
    assert_eq!(up[0]["value"][1], "1", "{up}");
    drop(regional);

    let config = "route: { receiver: \"null\" }\nreceivers:\n  - name: \"null\"\n";
    let members = Alertmanager::start_cluster(2, config, Duration::from_secs(2)).await.unwrap();
    let http = reqwest::Client::new();
    for am in &members {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let status: serde_json::Value =
                http.get(format!("{}/api/v2/status", am.url())).send().await.unwrap().json().await.unwrap();
            let peers = status["cluster"]["peers"].as_array().map_or(0, Vec::len);
            if peers == 2 && status["cluster"]["status"] == "ready" {
                break;
            }
            assert!(Instant::now() < deadline, "the cluster did not form: {status}");
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}
