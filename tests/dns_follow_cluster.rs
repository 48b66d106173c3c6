//! The expected DNS answer follows the database failover by itself: a record with
//! `follow_cluster` expects the answer of the region whose node accepts writes. After
//! the lab's primary `p` (us-east-1) stops and `r1` (eu-west-1) is promoted, the
//! exporter expects eu-west-1's answer without a config change; once the zone serves
//! it, resolvers and authoritative server match again.

mod support;

use rpo_lab::{Knot, Unbound, Zone};
use std::time::Duration;
use support::dns::*;
use support::{spec_primary_replica, Exporter, Lab};

#[tokio::test(flavor = "multi_thread")]
async fn the_expected_answer_follows_the_writable_node() {
    let lab = Lab::start(spec_primary_replica()).await;
    assert_eq!((lab.region("p"), lab.region("r1")), ("us-east-1", "eu-west-1"));
    let mut zone = Zone::new(ZONE).record("www", "A", USE1);
    let knot = Knot::start(&zone).await.expect("start Knot");
    let resolver = Unbound::start(&[(ZONE, knot.port())], None).await.expect("start Unbound");
    let dns = format!(
        "dns:\n  interval: 250ms\n  timeout: 200ms\n  records:\n    - name: {RECORD}\n      type: A\n      follow_cluster: lab\n      answers: {{ us-east-1: {USE1}, eu-west-1: {EUW1} }}\n      resolvers: [ \"{}\" ]\n      authoritative: [ \"{}\" ]\n",
        resolver.addr(),
        knot.addr()
    );
    let exporter = Exporter::start(&format!("{}{dns}", lab.config("500ms", ""))).await;
    let record = rec(RECORD, "A");
    let info = |region: &str| [("record", RECORD.to_owned()), ("active_region", region.to_owned())];

    let m = wait_metrics(&exporter, Duration::from_secs(15), "us-east-1's answer expected and served", |m| {
        m.get("rpo_dns_record_info", &info("us-east-1")) == Some(1.0)
            && m.get("rpo_dns_answer_matches", &www(&resolver.addr(), "recursive")) == Some(1.0)
            && m.get("rpo_dns_answer_matches", &www(&knot.addr(), "authoritative")) == Some(1.0)
    })
    .await;
    let first_change = m.get("rpo_dns_expected_answer_changed_timestamp_seconds", &record).unwrap();
    assert_eq!(m.get("rpo_dns_propagation_ratio", &record), Some(1.0));
    assert_eq!(
        m.get("rpo_dns_propagation_seconds", &record),
        None,
        "the answer was in place before the exporter started: no propagation time to tell"
    );

    // Fail over: the exporter sees r1 writable and expects eu-west-1's answer, which
    // nobody serves yet.
    lab.pg.node("p").stop().unwrap();
    lab.pg.node("r1").promote().await.unwrap();
    let promoted = unix_now();
    let m = wait_metrics(&exporter, Duration::from_secs(15), "eu-west-1's answer expected", |m| {
        m.get("rpo_dns_record_info", &info("eu-west-1")) == Some(1.0)
            && m.get("rpo_dns_answer_matches", &www(&resolver.addr(), "recursive")) == Some(0.0)
            && m.get("rpo_dns_answer_matches", &www(&knot.addr(), "authoritative")) == Some(0.0)
    })
    .await;
    let changed = m.get("rpo_dns_expected_answer_changed_timestamp_seconds", &record).unwrap();
    println!("Expected answer switched to eu-west-1's {:.2} s after pg_promote()", changed - promoted);
    assert!(
        changed > first_change && changed >= promoted - 0.05,
        "{first_change} → {changed} (promoted {promoted})"
    );
    assert_eq!(m.get("rpo_dns_propagation_ratio", &record), Some(0.0));
    assert_eq!(m.get("rpo_dns_published_timestamp_seconds", &record), None);
    assert_eq!(m.get("rpo_dns_propagation_seconds", &record), None);
    assert!(m.find("rpo_dns_record_info", &record).len() == 1, "one active region at a time");

    // The failover automation updates DNS: the authoritative server matches at once,
    // the resolver when its cached copy expires.
    zone.set("www", "A", EUW1);
    let updated = unix_now();
    knot.load(&zone).await.unwrap();
    let m = wait_metrics(&exporter, Duration::from_secs(8), "eu-west-1's answer served everywhere", |m| {
        m.get("rpo_dns_answer_matches", &www(&resolver.addr(), "recursive")) == Some(1.0)
            && m.get("rpo_dns_propagation_seconds", &record).is_some()
    })
    .await;
    assert_eq!(m.get("rpo_dns_answer_matches", &www(&knot.addr(), "authoritative")), Some(1.0));
    assert_eq!(m.get("rpo_dns_propagation_ratio", &record), Some(1.0));
    let published = m.get("rpo_dns_published_timestamp_seconds", &record).unwrap();
    let propagation = m.get("rpo_dns_propagation_seconds", &record).unwrap();
    println!(
        "Zone updated {:.2} s after pg_promote(), published {:.2} s later; the resolver followed {propagation:.2} s after that (TTL 3 s): {:.2} s from pg_promote() to every resolver",
        updated - promoted,
        published - updated,
        published + propagation - promoted
    );
    assert!(propagation <= 4.5, "{propagation}");
}
