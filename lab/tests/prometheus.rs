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
